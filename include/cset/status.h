// Errors as values, for every path that can fail in production.
//
// One project-wide enum of error codes. The client-facing ones map one to one
// onto the code words of SPEC.md ("NOQUORUM", "TIMEOUT", ...); the rest are
// internal and surface to clients as ERR or as a node that refuses to start.
//
// Thread-safety: Status and Result are plain values; share them like any value.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cset {

enum class Code : uint8_t {
  kOk = 0,
  // Client-facing (SPEC.md "Errors").
  kErr,             // ERR: syntax, arity, unknown command, bad argument.
  kNoQuorum,        // NOQUORUM: never proposed, nothing changed.
  kTimeout,         // TIMEOUT: passed the point of no return; outcome unknown.
  kNoSpace,         // NOSPACE: cannot persist; nothing changed.
  kBusy,            // BUSY: a configuration change is already in flight.
  kRemoved,         // REMOVED: this node was removed from the cluster.
  kTooBig,          // TOOBIG: key, member or request over its limit.
  kExists,          // EXISTS: CSET.ADD of a present member.
  kNoAuth,          // NOAUTH
  kWrongPass,       // WRONGPASS
  kSessionExpired,  // SESSIONEXPIRED: a retry on an expired client session.
  kNoProto,         // NOPROTO: HELLO with a protocol version other than 2 or 3 (as Redis).
  // Internal.
  kNotLeader,    // a proposal reached a node that is not (or no longer) leader.
  kCompacted,    // a log index below the first retained index.
  kUnavailable,  // a log index above the last index.
  kCorrupt,      // a checksum or format check failed.
  kIo,           // an operating-system call failed.
  kInvalid,      // a precondition the caller had to meet was not met.
};

/// The SPEC.md code word for a code ("NOQUORUM", ...); "ERR" for internal codes.
std::string_view code_word(Code code);

/// An error code with a human-readable message. Default-constructed: ok.
class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "CODE message", as sent to a Redis client after '-'.
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

/// A value or an error Status. REQUIRES: value() only when ok().
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).is_ok()); }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  Code code() const { return ok() ? Code::kOk : std::get<Status>(v_).code(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cset
