// The cset CLI's connection to a cluster: a list of endpoints tried in order,
// one overall deadline, and the rules for when a request may go to the next
// endpoint (SPEC.md "cset": "it tries the others when one is down").
//
// Failover rules. A request moves on to the next endpoint when
//   - the endpoint cannot be connected to (nothing was sent), or
//   - every reply says nothing changed and another node may do better:
//     NOQUORUM (this node sees no quorum; another may) or REMOVED, or
//   - the connection failed after sending and the caller marked the request
//     kIdempotent (a read: sending it again cannot change anything) or
//     kExactlyOnce (a write in a client session, CSET.SEQ: the cluster
//     applies one (session, sequence) at most once and answers a retry with
//     the first answer, docs/sessions.md), or
//   - a kExactlyOnce request was answered TIMEOUT (outcome unknown): the same
//     (session, sequence) is sent to the next endpoint.
// A plain write whose connection failed after it was sent is never re-sent
// (that is how duplicates are born, DESIGN.md "Semantics"): it fails with
// TIMEOUT or UNREACHABLE and a message saying the outcome is unknown.
//
// Errors: Status with kUnavailable ("UNREACHABLE", nothing was answered) or
// kTimeout (no answer in time); server error replies are not errors here but
// Reply values of type kError, for the caller to judge.
//
// Thread-safety: a FailoverClient is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cset/status.h"

namespace cset::cli {

struct Endpoint {
  std::string host;
  int port = 0;
  /// Sent with AUTH right after connecting when not empty (csetd
  /// --requirepass); a refusal is NOAUTH/WRONGPASS, never a failover.
  std::string password;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

/// Parses "HOST:PORT[,HOST:PORT...]" (an IPv6 host in brackets: "[::1]:6381").
/// Errors: kInvalid naming the bad item.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view list);

/// One reply, copied out of hiredis (RESP2).
struct Reply {
  enum class Type : uint8_t { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string text;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
  /// The error's code word ("NOQUORUM", "ERR", ...); empty unless kError.
  std::string code_word() const;
  /// The reply flattened to text: strings as they are, integers in decimal.
  std::string as_text() const;
};

enum class Idempotence : uint8_t { kIdempotent, kNotIdempotent, kExactlyOnce };

using Command = std::vector<std::string>;

class FailoverClient {
 public:
  /// `timeout` bounds each call of run() as a whole (connects included).
  FailoverClient(std::vector<Endpoint> endpoints, std::chrono::milliseconds timeout);

  /// Sends `commands` pipelined in one write to the first endpoint that takes
  /// them, following the failover rules above, and returns one reply per
  /// command. The endpoint that answered is then endpoint().
  Result<std::vector<Reply>> run(const std::vector<Command>& commands, Idempotence idempotence);

  /// One command to one endpoint only, within `timeout` (no failover).
  static Result<Reply> run_once(const Endpoint& endpoint, const Command& command,
                                std::chrono::milliseconds timeout);

  const Endpoint& endpoint() const { return endpoints_[answered_]; }

 private:
  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds timeout_;
  size_t answered_ = 0;
};

}  // namespace cset::cli
