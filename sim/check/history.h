// A client history of set operations, as the simulator and the real-process
// tests record it, and its JSONL file format (docs/history-format.md).
//
// Each operation has an invocation and a completion time and one of three
// outcomes: ok (it took effect once, between the two, with the recorded
// result), fail (it certainly never took effect) or unknown (it may take
// effect at any time after its invocation, or never). The linearizability
// checker (check/linearizability.h) reads nothing else.
//
// Keys and members are arbitrary bytes. In JSON they are strings when the
// bytes are valid UTF-8 and {"hex": "..."} objects otherwise, so every byte
// string round-trips exactly.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cset/status.h"

namespace cset::check {

enum class OpKind : uint8_t {
  kAdd,        // SADD key member...      result: count newly added
  kAddStrict,  // CSET.ADD key member     result: added (OK) or not (EXISTS)
  kRem,        // SREM key member...      result: count removed
  kContains,   // SISMEMBER key member    result: present
  kMembers,    // SMEMBERS key            result: the members
  kSize,       // SCARD key               result: count
};

enum class Outcome : uint8_t {
  kOk,       // took effect once, with the recorded result
  kFail,     // certainly never took effect (NOQUORUM, NOSPACE, refused...)
  kUnknown,  // may or may not have taken effect (TIMEOUT, connection lost)
};

struct Operation {
  uint64_t client = 0;  // the connection: its operations take effect in invocation order
  OpKind kind = OpKind::kAdd;
  std::string key;
  /// kAdd, kRem: one or more members. kAddStrict, kContains: exactly one.
  /// kMembers, kSize: none.
  std::vector<std::string> members;
  /// Times in the history's own unit (virtual ticks, nanoseconds...), the same
  /// clock for every client. REQUIRES: invoke <= complete. For kUnknown,
  /// `complete` is when the client gave up; the checker lets the operation
  /// take effect at any later time too.
  int64_t invoke = 0;
  int64_t complete = 0;
  Outcome outcome = Outcome::kOk;

  // The result, only when outcome == kOk (zero/empty otherwise):
  uint64_t count = 0;  // kAdd, kRem: members added / removed; kSize: cardinality
  bool flag = false;   // kContains: present; kAddStrict: true = OK, false = EXISTS
  std::vector<std::string> result_members;  // kMembers, in any order

  // A client-session write (docs/sessions.md): one logical request, however
  // many times it was sent. Optional; the checker reads only `attempts`.
  uint64_t session = 0;  // the session id; 0 = not a session request
  uint64_t seq = 0;      // its sequence number in the session (with `session` only)
  /// Times the request was sent. More than 1: a session request retried,
  /// maybe through other connections, recorded as ONE operation (invoked at
  /// its first attempt, completed at the definitive answer, that answer's
  /// result); it is then not held to its client's sending order.
  uint64_t attempts = 1;
  /// The definitive answer came from the session table (a retry of a request
  /// that had already taken effect). Informative; only with `session`, when ok.
  bool deduplicated = false;

  bool operator==(const Operation&) const = default;
};

using History = std::vector<Operation>;

const char* to_string(OpKind kind);
const char* to_string(Outcome outcome);

/// Checks every operation's shape (member counts, times, no result unless
/// ok; session fields: `seq` and `deduplicated` only with `session`,
/// attempts >= 1, and no (session, seq) twice: a retried session request is
/// one operation). Errors: kInvalid naming the operation (#N counts from 1).
Status validate_history(const History& history);

/// One operation as a single JSON object (no newline).
std::string to_json_line(const Operation& op);
/// Parses one JSON line. Errors: kInvalid with the reason.
Result<Operation> parse_json_line(std::string_view line);

/// The whole history, one line per operation, each ending in '\n'.
std::string to_jsonl(const History& history);
/// Parses JSONL text; blank lines are skipped. Does not validate_history().
/// Errors: kInvalid naming the line.
Result<History> parse_jsonl(std::string_view text);

/// Errors: kIo (with the path), kInvalid (as parse_jsonl).
Status write_history_file(const std::string& path, const History& history);
Result<History> read_history_file(const std::string& path);

/// A byte string for humans: printable ASCII as is, everything else escaped
/// (\xNN, \r, \n, \t, \\, \"), in double quotes.
std::string quote(std::string_view bytes);
/// One line for a report: `#N client C [invoke, complete] op(key, members) -> result`.
/// `number` is the operation's position in its history, counted from 1.
std::string describe(const Operation& op, size_t number);

}  // namespace cset::check
