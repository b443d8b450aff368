// cset::Client: a C++ client of a csetd cluster over the Redis protocol
// (RESP2, through hiredis), with the failover and exactly-once rules of the
// cset CLI (issue 9; docs/library.md "Client"). The cset CLI is built on it.
//
//   cset::client::Options o;
//   o.endpoints = "10.0.0.1:6381,10.0.0.2:6381,10.0.0.3:6381";
//   auto client = cset::Client::create(o).value();
//   auto added = client.add("fruits", "apple");          // kAdded / kAlreadyPresent
//   if (!added) std::cerr << added.error().to_string();  // "NOQUORUM ..." etc.
//   client.contains("fruits", "apple");                  // true
//   client.pipeline({{"SADD", "k", "a"}, {"SCARD", "k"}}, Idempotence::kNotIdempotent);
//
// ## Endpoints and failover
// Any node answers any request (followers forward writes to the leader), so
// a call goes to one endpoint and moves on to the next in the list when:
//   - the endpoint cannot be connected to (nothing was sent), or
//   - every reply says nothing changed and another node may do better:
//     NOQUORUM (this node sees no quorum; another may) or REMOVED, or
//   - the connection failed after sending (dropped, or no reply within the
//     endpoint's share of the timeout) and the request is kIdempotent (a
//     read) or kExactlyOnce (a write in the client session: the cluster
//     applies one (session, sequence) at most once and answers a retry with
//     the first attempt's answer), or
//   - a kExactlyOnce request was answered TIMEOUT (outcome unknown): the same
//     (session, sequence) goes to the next endpoint.
// A plain write (kNotIdempotent) whose connection failed after it was sent is
// NEVER re-sent (that is how duplicates are born, DESIGN.md "Semantics"): the
// call fails with outcome_unknown() set.
// Each call starts with the endpoint that answered the previous one, and gives
// each endpoint an equal share of what is left of Options::timeout_ms (at
// least 1000 ms unless less is left), so a node that accepts connections and
// stays silent costs a share of the budget, never all of it.
//
// ## Client sessions (exactly-once writes)
// With Options::sessions on (the default), the writes of add, sadd, rem and
// session_write() run in a client session (Raft dissertation §6.3;
// docs/sessions.md): the client opens one with CSET.SESSION on its first
// write and sends each write as CSET.SEQ <session> <sequence>
// <lowest_unacked> <command...>. A retry after a lost reply carries the same
// (session, sequence) and is answered with the first attempt's reply, so
// add() reports kAdded when its own lost first attempt added the member, and
// kAlreadyPresent only when the member was there before. A session the
// cluster expired (idle longer than session_timeout_ms) answers
// SESSIONEXPIRED: on a request's first attempt (nothing was applied) the
// client opens a new session and sends it again; on a retry it fails with
// SESSIONEXPIRED and outcome_unknown() (the lost first attempt may or may
// not have applied; this retry did not). A server without sessions (CSET.SESSION
// unknown) gets plain writes. One request is in flight at a time, so each
// write's lowest_unacked is its own sequence: the cluster forgets the results
// of earlier requests, whose calls have returned.
//
// ## Errors
// Calls return Expected<T>: a value or a client::Error holding a cset::Code
// (include/cset/status.h; the SPEC.md code words NOQUORUM, TIMEOUT, NOSPACE,
// BUSY, REMOVED, TOOBIG, EXISTS, NOAUTH, WRONGPASS, SESSIONEXPIRED, ERR;
// Code::kUnavailable is UNREACHABLE: no node answered), the message, whether
// it is a node's error reply or the client's own finding, and whether the
// request may have taken effect (outcome_unknown()). Not std::error_code (the
// embedded replica's choice, for callbacks): a synchronous client returns a
// value, and callers need the node's text and the outcome bit, which neither
// an error_code nor a cset::Status carries. The raw calls (pipeline,
// command) return error replies as Reply values (Reply::is_error()); their
// Error is only the lack of an answer.
//
// ## Thread-safety
// A Client is used by one thread at a time (it keeps the session's sequence
// numbers and the last endpoint); use one Client per thread. A call blocks for
// at most Options::timeout_ms per request it sends: a write that first opens the
// session takes up to two such budgets (four when it replaces an expired
// session). Move-only. The free functions are thread-safe.
#pragma once

#include <cassert>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cset/status.h"

namespace cset::client {

struct Endpoint {
  std::string host;
  int port = 0;
  /// Sent with AUTH right after connecting when not empty (csetd
  /// --requirepass); a refusal is NOAUTH/WRONGPASS, never a failover.
  std::string password;
  /// "HOST:PORT".
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

/// Parses "HOST:PORT[,HOST:PORT...]" (an IPv6 host in brackets: "[::1]:6381";
/// empty items are skipped). Errors: kInvalid naming the bad item, or "no
/// endpoint given".
Result<std::vector<Endpoint>> parse_endpoints(std::string_view list);

/// One reply, copied out of hiredis (RESP2).
struct Reply {
  enum class Type : uint8_t { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string text;  // kString, kStatus, kError (the whole error line: "NOQUORUM ...")
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
  /// The error's code word ("NOQUORUM", "ERR", ...); empty unless kError.
  std::string code_word() const;
  /// The reply flattened to text: strings as they are, integers in decimal,
  /// array elements joined by spaces, nil empty.
  std::string as_text() const;
};

/// One command: its arguments, the name first; binary-safe.
using Command = std::vector<std::string>;

/// What may be done with a request whose reply was lost (see the header).
enum class Idempotence : uint8_t { kIdempotent, kNotIdempotent, kExactlyOnce };

/// Maps an error reply's code word to its Code: "NOQUORUM" -> kNoQuorum, ...;
/// words SPEC.md does not list ("ERR", "LOADING", ...) -> kErr.
Code code_of_word(std::string_view word);

/// Why a call has no value.
class Error {
 public:
  /// `from_server`: an error reply of a node (`message` is its whole line,
  /// starting with the code word); else the client's own finding.
  Error(Code code, std::string message, bool outcome_unknown, bool from_server = false)
      : code_(code),
        message_(std::move(message)),
        outcome_unknown_(outcome_unknown),
        from_server_(from_server) {}
  /// From a node's error reply; outcome unknown only for TIMEOUT.
  static Error from_reply(const Reply& reply);

  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  /// True when the request may have taken effect (TIMEOUT, a connection lost
  /// after a plain write was sent, every retry of a session write lost, or
  /// SESSIONEXPIRED on a retry); false when it certainly did not.
  bool outcome_unknown() const { return outcome_unknown_; }
  bool from_server() const { return from_server_; }
  /// The SPEC.md code word: "NOQUORUM", ..., "UNREACHABLE" for kUnavailable.
  std::string_view word() const;
  /// A node's error line as it came, else "WORD message".
  std::string to_string() const;

 private:
  Code code_;
  std::string message_;
  bool outcome_unknown_;
  bool from_server_;
};

/// A value or an Error. REQUIRES: value() only when ok(), error() only when not.
template <typename T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}      // NOLINT: implicit on purpose
  Expected(Error error) : v_(std::move(error)) {}  // NOLINT: implicit on purpose

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
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

struct Options {
  /// "HOST:PORT,..." tried in order (see the header).
  std::string endpoints = "127.0.0.1:6381";
  /// Bounds each call as a whole, connects and retries included, ms (>= 1).
  uint64_t timeout_ms = 10000;
  /// AUTH on every connection when not empty.
  std::string password;
  /// Writes of add/sadd/rem/session_write in a client session (exactly once).
  bool sessions = true;
  /// How long the cluster keeps the session after its last request, ms;
  /// 0 = the cluster's default (one hour, also the maximum).
  uint64_t session_timeout_ms = 0;
};

/// CSET.ADD's two answers.
enum class AddResult : uint8_t { kAdded, kAlreadyPresent };

class Client {
 public:
  /// Errors: kInvalid for bad endpoints or a zero timeout. Connects lazily.
  static Result<Client> create(const Options& options);
  /// The same over parsed endpoints (each endpoint's own password is used).
  Client(std::vector<Endpoint> endpoints, std::chrono::milliseconds timeout, bool sessions = true,
         uint64_t session_timeout_ms = 0);
  Client(Client&&) = default;
  Client& operator=(Client&&) = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- the set verbs: errors carry the SPEC.md codes ----

  /// Adds `member` to the set `key` (CSET.ADD, in the session): kAdded, or
  /// kAlreadyPresent (EXISTS: it was there before this call; nothing changed).
  /// Errors: NOQUORUM, TIMEOUT, NOSPACE, TOOBIG, REMOVED, NOAUTH, WRONGPASS,
  /// SESSIONEXPIRED, UNREACHABLE, ERR.
  Expected<AddResult> add(std::string_view key, std::string_view member);
  /// Adds `members` in one atomic write (SADD, in the session); the number of
  /// members that were not present. Errors as add (EXISTS aside).
  Expected<uint64_t> sadd(std::string_view key, const std::vector<std::string>& members);
  /// Removes `member` (SREM, in the session); true if it was present.
  Expected<bool> rem(std::string_view key, std::string_view member);
  /// Linearizable reads (SISMEMBER, SMEMBERS, SCARD; re-sent freely).
  /// members(): TOOBIG when the set is over the server's --max-reply-members
  /// (page through it with command({"SSCAN", ...})).
  Expected<bool> contains(std::string_view key, std::string_view member);
  Expected<std::vector<std::string>> members(std::string_view key);
  Expected<uint64_t> size(std::string_view key);

  // ---- raw calls: error replies are Reply values ----

  /// Sends `commands` pipelined in one write to one endpoint and returns one
  /// reply per command, in order (the failover rules above, with
  /// `idempotence` for the batch as a whole). Errors: UNREACHABLE (nothing
  /// answered), TIMEOUT (no answer in time), NOAUTH, WRONGPASS;
  /// outcome_unknown() when a kNotIdempotent batch may have been applied.
  Expected<std::vector<Reply>> pipeline(const std::vector<Command>& commands,
                                        Idempotence idempotence);
  /// One command: pipeline({command}, idempotence)[0].
  Expected<Reply> command(const Command& command, Idempotence idempotence);
  /// `commands` whose last one is a write (SADD, SREM, DEL, CSET.ADD or
  /// CSET.REM), pipelined; the write runs in the session (CSET.SEQ) when
  /// sessions are on and the server has them, else as a plain write. The
  /// commands before it must be reads (they are re-sent with a retry).
  Expected<std::vector<Reply>> session_write(std::vector<Command> commands);
  /// Opens the session now if it is not open (CSET.SESSION [TIMEOUT ms]);
  /// its id, or 0 when sessions are off or the server has none. Errors: as
  /// pipeline(), and a node's error reply (from_server()).
  Expected<uint64_t> open_session();

  /// The endpoint that answered last (the first one before any answer).
  const Endpoint& endpoint() const { return endpoints_[answered_]; }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  /// The open session's id; 0 when none is open.
  uint64_t session_id() const { return session_id_; }

 private:
  struct Run;
  Run run(const std::vector<Command>& commands, Idempotence idempotence);
  Expected<std::vector<Reply>> plain(const std::vector<Command>& commands, Idempotence idempotence);
  Expected<Reply> write_one(Command command);

  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  bool sessions_ = true;
  uint64_t session_timeout_ms_ = 0;
  size_t answered_ = 0;
  bool session_probed_ = false;  // CSET.SESSION was answered (session_id_ 0: unknown command)
  uint64_t session_id_ = 0;
  uint64_t next_sequence_ = 1;
};

/// One command to one endpoint only, within `timeout` (no failover, no
/// session). Errors as pipeline(). Thread-safe.
Expected<Reply> command_once(const Endpoint& endpoint, const Command& command,
                             std::chrono::milliseconds timeout);

}  // namespace cset::client

namespace cset {
using client::Client;
}  // namespace cset
