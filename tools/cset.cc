// cset: the command-line client and admin tool of consistent-set (SPEC.md
// "cset"). Speaks the Redis protocol to any node through hiredis; the nodes
// forward to the leader, so any endpoint will do, and the next one in
// --endpoints is tried when one is down (rules in include/cset/client.h: the
// CLI is built on the client library, cset::Client).
//
// Writes (add, rem) run in a client session (docs/sessions.md): the client
// opens one with CSET.SESSION and sends each write as CSET.SEQ; when a reply is
// lost (connection dropped, no answer in time, TIMEOUT) it sends the same
// (session, sequence) to the next endpoint, and the cluster answers the retry
// with the first attempt's answer instead of applying it again. So `cset add`
// prints the original outcome: added (exit 0) when its own first attempt
// added the member, "already present" (exit 1) only when it was there before.
//
// Exit codes: 0 success; 1 a negative answer (has: absent; add: a member was
// already present); 2 usage, or a request the cluster refused as malformed
// (ERR, TOOBIG, NOAUTH, WRONGPASS); 3 no quorum, timeout, cannot persist, busy,
// removed, an expired session (SESSIONEXPIRED) or unreachable, with the
// error's code word on stderr.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cset/client.h"
#include "cset/status.h"
#include "tools/cset_bench.h"
#include "tools/cset_client.h"

namespace cset::cli {
namespace {

using std::chrono::milliseconds;

constexpr int kExitOk = 0;
constexpr int kExitNegative = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;
constexpr milliseconds kStatusProbeTimeout{1000};
constexpr const char* kSscanPageSize = "1000";

// ---- errors ------------------------------------------------------------------

// An error reply text: prints it whole (it starts with its code word).
int print_error_text(const std::string& text) {
  static const std::set<std::string> kUnavailableWords = {
      "NOQUORUM", "TIMEOUT", "NOSPACE", "BUSY", "REMOVED", "LOADING", "TRYAGAIN", "SESSIONEXPIRED"};
  std::cerr << "cset: " << text << "\n";
  return kUnavailableWords.count(text.substr(0, text.find(' '))) ? kExitUnavailable : kExitUsage;
}

int print_error_reply(const Reply& reply) { return print_error_text(reply.text); }

// An answer of a shape the command does not expect.
int print_unexpected(const Reply& reply) {
  std::cerr << "cset: ERR unexpected reply: " << reply.as_text() << "\n";
  return kExitUsage;
}

// A call that failed: a node's error reply as it came; otherwise no answer,
// "cset: WORD message", exit 3 (NOAUTH / WRONGPASS and a reply of the wrong
// shape: exit 2).
int print_failure(const client::Error& error) {
  if (error.from_server()) return print_error_text(error.message());
  if (error.code() == Code::kNoAuth || error.code() == Code::kWrongPass) {
    std::cerr << "cset: " << error.message() << "\n";  // holds NOAUTH / WRONGPASS
    return kExitUsage;
  }
  if (error.code() == Code::kErr) {
    std::cerr << "cset: " << error.to_string() << "\n";  // ERR unexpected reply: ...
    return kExitUsage;
  }
  std::string_view word = error.code() == Code::kTimeout ? "TIMEOUT" : "UNREACHABLE";
  std::cerr << "cset: " << word << " " << error.message() << "\n";
  return kExitUnavailable;
}

// The session could not be opened: the write itself was never sent, so
// nothing changed whatever the session request's own fate (an unused
// session just expires). Said so, with NOQUORUM rather than TIMEOUT.
int print_session_failure(const client::Error& error, std::string_view what) {
  const Code code = error.code();
  if (code == Code::kNoAuth || code == Code::kWrongPass || code == Code::kErr) {
    return print_failure(error);
  }
  // A node's verdict keeps its word (REMOVED, NOSPACE, BUSY, ...); a session
  // request that timed out did not change whether the write was sent: it was
  // not, which is NOQUORUM's meaning.
  std::string_view word = code == Code::kTimeout ? std::string_view("NOQUORUM") : error.word();
  // The session request's own error may say "outcome unknown": that is about
  // the session, which changes no member; say so apart from the verdict.
  std::cerr << "cset: " << word << " the " << what
            << " was not sent, nothing changed: a client session could not be opened first "
               "(the session request: "
            << error.message() << ")\n";
  return kExitUnavailable;
}

// Runs one command and hands its reply to `on_reply` unless it failed.
template <typename OnReply>
int run_one(Client& client, Command command, Idempotence idempotence, OnReply on_reply) {
  auto replies = client.pipeline({std::move(command)}, idempotence);
  if (!replies) return print_failure(replies.error());
  const Reply& reply = (*replies)[0];
  if (reply.is_error()) return print_error_reply(reply);
  return on_reply(reply);
}

void write_line(std::string_view bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fputc('\n', stdout);
}

// ---- set commands --------------------------------------------------------------

std::vector<std::string> distinct(const std::vector<std::string>& members) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& member : members) {
    if (seen.insert(member).second) out.push_back(member);
  }
  return out;
}

// ---- writes -------------------------------------------------------------------
//
// The writes run through Client::session_write: in the client session
// (CSET.SEQ, sent again on the next endpoint when its reply is lost), or as a
// plain write on a server without sessions (docs/sessions.md).

// One member: CSET.ADD, whose EXISTS answer is exact.
int add_one(Client& client, const std::string& key, const std::string& member) {
  auto replies = client.session_write({{"CSET.ADD", key, member}});
  if (!replies) return print_failure(replies.error());
  const Reply& reply = (*replies)[0];
  if (reply.code_word() == "EXISTS") {
    std::cerr << "already present: " << member << "\n";
    return kExitNegative;
  }
  if (reply.is_error()) return print_error_reply(reply);
  std::cout << "added: " << member << "\n";
  return kExitOk;
}

// Several members: one SADD (one log entry), preceded on the same connection
// by an SMISMEMBER that tells which members were present. A concurrent change
// between the two (or a retry after a lost reply, whose SMISMEMBER sees the
// first attempt's members) can make that list inexact; then only the count
// is given.
int add_many(Client& client, const std::string& key, const std::vector<std::string>& members) {
  Command check{"SMISMEMBER", key};
  Command add{"SADD", key};
  check.insert(check.end(), members.begin(), members.end());
  add.insert(add.end(), members.begin(), members.end());
  auto replies = client.session_write({check, add});
  if (!replies) return print_failure(replies.error());
  const Reply& added = (*replies)[1];
  if (added.is_error()) return print_error_reply(added);
  if (added.type != Reply::Type::kInteger) return print_unexpected(added);
  const int64_t present_count = static_cast<int64_t>(members.size()) - added.integer;
  const Reply& before = (*replies)[0];
  std::vector<std::string> present;
  std::vector<std::string> absent;
  if (before.type == Reply::Type::kArray && before.elements.size() == members.size()) {
    for (size_t i = 0; i < members.size(); ++i) {
      (before.elements[i].integer == 1 ? present : absent).push_back(members[i]);
    }
  }
  const bool exact = static_cast<int64_t>(present.size()) == present_count;
  if (exact) {
    for (const std::string& member : absent) std::cout << "added: " << member << "\n";
  } else {
    std::cout << "added: " << added.integer << " of the given members\n";
  }
  if (present_count <= 0) return kExitOk;
  if (exact) {
    for (const std::string& member : present) std::cerr << "already present: " << member << "\n";
  } else {
    std::cerr << "already present: " << present_count
              << " of the given members (a concurrent change hid which)\n";
  }
  return kExitNegative;
}

int cmd_add(Client& client, const std::string& key, const std::vector<std::string>& members) {
  std::vector<std::string> unique = distinct(members);
  if (unique.size() == 1) return add_one(client, key, unique[0]);
  return add_many(client, key, unique);
}

int cmd_rem(Client& client, const std::string& key, const std::vector<std::string>& members) {
  Command command{"SREM", key};
  command.insert(command.end(), members.begin(), members.end());
  auto replies = client.session_write({command});
  if (!replies) return print_failure(replies.error());
  const Reply& reply = (*replies)[0];
  if (reply.is_error()) return print_error_reply(reply);
  return reply.type == Reply::Type::kInteger ? kExitOk : print_unexpected(reply);
}

int cmd_has(Client& client, const std::string& key, const std::string& member) {
  return run_one(client, {"SISMEMBER", key, member}, Idempotence::kIdempotent,
                 [](const Reply& reply) {
                   if (reply.type != Reply::Type::kInteger) return print_unexpected(reply);
                   write_line(reply.integer == 1 ? "true" : "false");
                   return reply.integer == 1 ? kExitOk : kExitNegative;
                 });
}

// A set over the server's --max-reply-members: page through it with SSCAN
// (not one atomic snapshot, unlike SMEMBERS).
int members_by_scan(Client& client, const std::string& key) {
  std::cerr << "cset: the set is too big for one reply; listing it with SSCAN\n";
  std::string cursor = "0";
  do {
    auto replies = client.pipeline({{"SSCAN", key, cursor, "COUNT", kSscanPageSize}},
                                   Idempotence::kIdempotent);
    if (!replies) return print_failure(replies.error());
    const Reply& reply = (*replies)[0];
    if (reply.is_error()) return print_error_reply(reply);
    if (reply.type != Reply::Type::kArray || reply.elements.size() != 2) {
      return print_unexpected(reply);
    }
    cursor = reply.elements[0].as_text();
    for (const Reply& member : reply.elements[1].elements) write_line(member.text);
  } while (cursor != "0");
  return kExitOk;
}

int cmd_members(Client& client, const std::string& key) {
  auto replies = client.pipeline({{"SMEMBERS", key}}, Idempotence::kIdempotent);
  if (!replies) return print_failure(replies.error());
  const Reply& reply = (*replies)[0];
  if (reply.code_word() == "TOOBIG") return members_by_scan(client, key);
  if (reply.is_error()) return print_error_reply(reply);
  if (reply.type != Reply::Type::kArray) return print_unexpected(reply);
  for (const Reply& member : reply.elements) write_line(member.text);
  return kExitOk;
}

int cmd_size(Client& client, const std::string& key) {
  return run_one(client, {"SCARD", key}, Idempotence::kIdempotent, [](const Reply& reply) {
    if (reply.type != Reply::Type::kInteger) return print_unexpected(reply);
    write_line(std::to_string(reply.integer));
    return kExitOk;
  });
}

// Cluster administration: the reply is printed as it comes (+OK).
int cmd_admin(Client& client, Command command) {
  return run_one(client, std::move(command), Idempotence::kNotIdempotent, [](const Reply& reply) {
    write_line(reply.as_text());
    return kExitOk;
  });
}

// ---- status ------------------------------------------------------------------

struct NodeRow {
  std::string id, peer, client, role, state, match;
  std::string term = "-", commit = "-", applied = "-";
};

bool is_integer(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_address(std::string_view text) {
  size_t colon = text.rfind(':');
  return colon != std::string_view::npos && colon > 0 && is_integer(text.substr(colon + 1));
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Assigns a named field; false when the name is not one of ours.
bool assign_field(NodeRow& row, const std::string& raw_name, const std::string& value) {
  std::string name = lower(raw_name);
  if (name == "id" || name == "node_id") {
    row.id = value;
  } else if (name == "peer" || name == "peer_addr" || name == "peer_address") {
    row.peer = value;
  } else if (name == "client" || name == "client_addr" || name == "client_address") {
    row.client = value;
  } else if (name == "role" || name == "kind" || name == "membership" || name == "suffrage" ||
             name == "type") {
    row.role = value;
  } else if (name == "state" || name == "status") {
    row.state = value;
  } else if (name == "match" || name == "match_index") {
    row.match = value;
  } else {
    return false;
  }
  return true;
}

// Fills a row from unnamed tokens by their content (SPEC.md's order is id,
// peer address, client address, voter|learner, state, match index).
void assign_by_content(NodeRow& row, const std::string& token) {
  static const std::set<std::string> kStates = {"leader",      "follower",     "candidate",
                                                "unreachable", "precandidate", "pre-candidate"};
  std::string word = lower(token);
  if (word == "voter" || word == "learner") {
    row.role = word;
  } else if (kStates.count(word)) {
    row.state = word;
  } else if (is_address(token)) {
    (row.peer.empty() ? row.peer : row.client) = token;
  } else if (is_integer(token)) {
    (row.id.empty() ? row.id : row.match) = token;
  }
}

NodeRow parse_node_tokens(const std::vector<std::string>& tokens) {
  NodeRow row;
  bool named = tokens.size() >= 2 && tokens.size() % 2 == 0 && !is_integer(tokens[0]);
  for (size_t i = 0; named && i < tokens.size(); i += 2) {
    named = assign_field(row, tokens[i], tokens[i + 1]) || !is_address(tokens[i]);
  }
  if (named) return row;
  row = NodeRow{};
  for (const std::string& token : tokens) {
    size_t eq = token.find_first_of("=");
    if (eq != std::string::npos && assign_field(row, token.substr(0, eq), token.substr(eq + 1))) {
      continue;
    }
    assign_by_content(row, token);
  }
  return row;
}

void flatten(const Reply& reply, std::vector<std::string>& out) {
  if (reply.type == Reply::Type::kArray) {
    for (const Reply& element : reply.elements) flatten(element, out);
  } else {
    out.push_back(reply.as_text());
  }
}

std::vector<std::string> split(std::string_view text, std::string_view separators) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(separators, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// CSET.NODES as one row per node, whatever its exact shape: an array of
// per-node arrays (positional or name/value pairs), or lines of text.
std::vector<NodeRow> parse_nodes(const Reply& reply) {
  std::vector<NodeRow> rows;
  auto add_line = [&rows](std::string_view line) {
    std::vector<std::string> tokens = split(line, " \t,\r");
    if (!tokens.empty()) rows.push_back(parse_node_tokens(tokens));
  };
  if (reply.type == Reply::Type::kArray) {
    for (const Reply& element : reply.elements) {
      if (element.type == Reply::Type::kArray) {
        std::vector<std::string> tokens;
        flatten(element, tokens);
        rows.push_back(parse_node_tokens(tokens));
      } else {
        for (const std::string& line : split(element.as_text(), "\n")) add_line(line);
      }
    }
  } else {
    for (const std::string& line : split(reply.as_text(), "\n")) add_line(line);
  }
  return rows;
}

// Term, commit and applied index (and its own view of its role) from the
// node's INFO raft; "unreachable" when it does not answer in time.
void probe_node(NodeRow& row, const Endpoint& answered) {
  auto endpoints = parse_endpoints(row.client);
  if (!endpoints) return;
  Endpoint endpoint = (*endpoints)[0];
  if (endpoint.host == "0.0.0.0" || endpoint.host == "::") endpoint.host = answered.host;
  endpoint.password = answered.password;
  auto reply = client::command_once(endpoint, {"INFO", "raft"}, kStatusProbeTimeout);
  if (!reply || reply->is_error()) {
    row.state = "unreachable";
    return;
  }
  std::map<std::string, std::string> fields;
  for (const std::string& line : split(reply->as_text(), "\r\n")) {
    size_t colon = line.find(':');
    if (colon != std::string::npos) fields[line.substr(0, colon)] = line.substr(colon + 1);
  }
  if (fields.count("role")) row.state = fields["role"];
  if (fields.count("term")) row.term = fields["term"];
  if (fields.count("commit_index")) row.commit = fields["commit_index"];
  if (fields.count("applied_index")) row.applied = fields["applied_index"];
}

void print_table(const std::vector<std::vector<std::string>>& table) {
  std::vector<size_t> widths;
  for (const auto& line : table) {
    widths.resize(std::max(widths.size(), line.size()));
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size());
  }
  for (const auto& line : table) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(widths[i] - line[i].size() + 2, ' ');
    }
    write_line(out);
  }
}

int cmd_status(Client& client) {
  auto replies = client.pipeline({{"CSET.NODES"}}, Idempotence::kIdempotent);
  if (!replies) return print_failure(replies.error());
  const Reply& reply = (*replies)[0];
  if (reply.is_error()) return print_error_reply(reply);
  std::vector<NodeRow> rows = parse_nodes(reply);
  if (rows.empty()) return print_unexpected(reply);
  std::vector<std::vector<std::string>> table = {
      {"ID", "PEER", "CLIENT", "ROLE", "STATE", "TERM", "COMMIT", "APPLIED"}};
  for (NodeRow& row : rows) {
    probe_node(row, client.endpoint());
    auto dash = [](const std::string& text) { return text.empty() ? std::string("-") : text; };
    table.push_back({dash(row.id), dash(row.peer), dash(row.client), dash(row.role),
                     dash(row.state), row.term, row.commit, row.applied});
  }
  print_table(table);
  return kExitOk;
}

// ---- command line ------------------------------------------------------------

constexpr const char* kFooter =
    R"(Exit codes: 0 success; 1 negative answer (has: absent; add: already
present); 2 usage or a refused request (ERR, TOOBIG, NOAUTH, WRONGPASS);
3 no quorum, timeout, no space, busy, removed, an expired session or
unreachable (the code word is printed on stderr).

Endpoints are tried in order: on to the next when one cannot be connected to or
answers NOQUORUM or REMOVED; reads also when a connection fails mid-request.
add and rem run in a client session (CSET.SESSION, CSET.SEQ): when a reply is
lost (connection failed, no answer in time, TIMEOUT) the same request goes to
the next endpoint, and the cluster answers it with the first attempt's answer
instead of applying it twice. SESSIONEXPIRED (exit 3): the session expired
before the retry; it was not applied again.

add with one member uses CSET.ADD (exact). With several, it sends SMISMEMBER and
SADD (one atomic log entry) on one connection: new members are added, and the
members added ("added: M" on stdout) and those that were present ("already
present: M" on stderr) are named; a concurrent change by another client, or a
retry after a lost reply, between the two can hide which (then only their
number is printed).
members prints one member a line, raw bytes (a member holding a newline is
ambiguous there; use redis-cli --raw for those). Put "--" before members that
start with "-".)";

// ---- bench -------------------------------------------------------------------

struct BenchArgs {
  BenchOptions options;
  std::string mix = "fresh=1";
  bool json = false;
};

CLI::App* add_bench_subcommand(CLI::App& app, BenchArgs* b) {
  auto* bench = app.add_subcommand(
      "bench", "load generator: throughput and latency of a command mix (docs/benchmarks.md)");
  BenchOptions& o = b->options;
  bench->add_option("-c,--clients", o.clients, "connections")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  bench->add_option("-n,--requests", o.requests, "measured requests (default: run for --time)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  bench->add_option("-t,--time", o.seconds, "seconds measured after the warm-up")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  bench->add_option("--warmup", o.warmup_seconds, "seconds of load before measuring")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  bench->add_option("-P,--pipeline", o.pipeline, "requests in flight per connection")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  bench
      ->add_option("--mix", b->mix,
                   "NAME=WEIGHT,... (fresh: SADD of a new 16-byte member; add, rem, has: "
                   "SADD, SREM, SISMEMBER within --members; members: SMEMBERS) or A:R:H")
      ->capture_default_str();
  bench->add_option("--members", o.members, "member space of add, rem and has")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  bench->add_option("--keys", o.keys, "keys the load spreads over")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  bench->add_option("--key-prefix", o.key_prefix, "keys are PREFIX:0, PREFIX:1, ...")
      ->capture_default_str();
  bench->add_flag("--all-endpoints", o.all_endpoints,
                  "spread connections over every --endpoints entry (default: the first)");
  bench->add_option("--seed", o.seed, "random seed (default: random)");
  bench->add_flag("--json", b->json, "one JSON object instead of the text report");
  return bench;
}

int cmd_bench(std::vector<Endpoint> endpoints, int timeout_ms, BenchArgs& b) {
  auto mix = parse_bench_mix(b.mix);
  if (!mix) {
    std::cerr << "cset bench: " << mix.status().message() << "\n";
    return kExitUsage;
  }
  b.options.mix = *mix;
  if (!std::isfinite(b.options.seconds) || !std::isfinite(b.options.warmup_seconds)) {
    std::cerr << "cset bench: --time and --warmup must be finite numbers of seconds\n";
    return kExitUsage;
  }
  b.options.endpoints = std::move(endpoints);
  b.options.request_timeout_ms = static_cast<uint64_t>(timeout_ms);
  auto result = run_bench(b.options);
  if (!result) {
    if (result.status().code() == Code::kInvalid) {
      std::cerr << "cset bench: " << result.status().message() << "\n";
      return kExitUsage;
    }
    std::cerr << "cset bench: UNREACHABLE " << result.status().message() << "\n";
    return kExitUnavailable;
  }
  std::cout << (b.json ? bench_report_json(b.options, *result) + "\n"
                       : bench_report_text(b.options, *result));
  if (result->connections_opened < b.options.clients) {
    std::cerr << "cset bench: warning: only " << result->connections_opened << " of "
              << b.options.clients << " connections opened (" << result->first_error << ")\n";
  }
  if (result->requests == 0 || result->errors == result->requests) {
    std::cerr << "cset bench: no request succeeded\n";
    return kExitUnavailable;
  }
  return kExitOk;
}

struct Args {
  std::string endpoints = "127.0.0.1:6381";
  std::string password;
  int timeout_ms = 10000;
  std::string key;
  std::string member;
  std::vector<std::string> members;
  uint64_t id = 0;
  std::string address;
  bool voter = false;
  uint64_t session_timeout_ms = 0;
};

int run(int argc, char** argv) {
  Args args;
  CLI::App app{"cset: command-line client and admin tool of consistent-set"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.add_option("-e,--endpoints", args.endpoints, "HOST:PORT,... tried in order")
      ->capture_default_str();
  app.add_option("-a,--password", args.password,
                 "AUTH with this password (csetd --requirepass; or set CSET_PASSWORD)")
      ->envname("CSET_PASSWORD");
  app.add_option("--timeout", args.timeout_ms, "overall time limit of a command, in ms")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            bool digits = !text.empty() && text.size() <= 8 &&
                          text.find_first_not_of("0123456789") == std::string::npos;
            if (!digits || std::stoi(text) < 1 || std::stoi(text) > 3'600'000) {
              return "'" + text + "' is not a whole number of ms in [1, 3600000]";
            }
            return {};
          },
          ""))
      ->capture_default_str();

  app.add_option("--session-timeout", args.session_timeout_ms,
                 "ms the cluster keeps this client's session (retries of add/rem after it "
                 "answer SESSIONEXPIRED); 0: the cluster's default (1 hour, also the maximum)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{3'600'000}))
      ->capture_default_str();

  auto* add = app.add_subcommand("add", "KEY MEMBER...: add; exit 1 if one was present");
  add->add_option("key", args.key)->required();
  add->add_option("members", args.members)->required();
  auto* rem = app.add_subcommand("rem", "KEY MEMBER...: remove (absent is not an error)");
  rem->add_option("key", args.key)->required();
  rem->add_option("members", args.members)->required();
  auto* has = app.add_subcommand("has", "KEY MEMBER: print true|false; exit 0|1");
  has->add_option("key", args.key)->required();
  has->add_option("member", args.member)->required();
  auto* members = app.add_subcommand("members", "KEY: one member a line");
  members->add_option("key", args.key)->required();
  auto* size = app.add_subcommand("size", "KEY: the number of members");
  size->add_option("key", args.key)->required();
  auto* status = app.add_subcommand("status", "one row per node");

  auto* node = app.add_subcommand("node", "cluster membership");
  node->require_subcommand(1);
  auto* node_add = node->add_subcommand("add", "ID HOST:PORT [--voter]: add a learner (or voter)");
  node_add->add_option("id", args.id)->required();
  node_add->add_option("address", args.address, "the new node's peer address")->required();
  node_add->add_flag("--voter", args.voter, "add it as a voter");
  auto* node_promote = node->add_subcommand("promote", "ID: make a learner a voter");
  node_promote->add_option("id", args.id)->required();
  auto* node_remove = node->add_subcommand("remove", "ID: remove a node");
  node_remove->add_option("id", args.id)->required();
  auto* leader = app.add_subcommand("leader", "leadership");
  leader->require_subcommand(1);
  auto* leader_transfer = leader->add_subcommand("transfer", "ID: hand leadership to ID");
  leader_transfer->add_option("id", args.id)->required();
  BenchArgs bench_args;
  auto* bench = add_bench_subcommand(app, &bench_args);
  for (CLI::App* sub : {add, rem, has, members, size, status, node, leader}) {
    sub->fallthrough();
  }
  for (CLI::App* sub : {node_add, node_promote, node_remove, leader_transfer}) sub->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 says "A subcommand is required" for a misspelt command; name it.
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && !app.remaining().empty()) {
      std::cerr << "cset: unknown command '" << app.remaining().front()
                << "' (run cset --help for the list)\n";
      return kExitUsage;
    }
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  auto endpoints = parse_endpoints(args.endpoints);
  if (!endpoints) {
    std::cerr << "cset: --endpoints: " << endpoints.status().message() << "\n";
    return kExitUsage;
  }
  for (Endpoint& endpoint : *endpoints) endpoint.password = args.password;
  if (*bench) return cmd_bench(std::move(*endpoints), args.timeout_ms, bench_args);
  Client client(std::move(*endpoints), milliseconds(args.timeout_ms), /*sessions=*/true,
                args.session_timeout_ms);
  const std::string id = std::to_string(args.id);
  if (*add || *rem) {
    // The session first, as its own call: its failure is reported as such.
    if (auto session = client.open_session(); !session) {
      return print_session_failure(session.error(), *add ? "add" : "rem");
    }
    if (*add) return cmd_add(client, args.key, args.members);
    return cmd_rem(client, args.key, args.members);
  }
  if (*has) return cmd_has(client, args.key, args.member);
  if (*members) return cmd_members(client, args.key);
  if (*size) return cmd_size(client, args.key);
  if (*status) return cmd_status(client);
  if (*node_add) {
    Command command{"CSET.NODE", "ADD", id, args.address};
    if (args.voter) command.push_back("VOTER");
    return cmd_admin(client, command);
  }
  if (*node_promote) return cmd_admin(client, {"CSET.NODE", "PROMOTE", id});
  if (*node_remove) return cmd_admin(client, {"CSET.NODE", "REMOVE", id});
  if (*leader_transfer) return cmd_admin(client, {"CSET.LEADER", "TRANSFER", id});
  std::cerr << app.help();
  return kExitUsage;
}

}  // namespace
}  // namespace cset::cli

int main(int argc, char** argv) { return cset::cli::run(argc, argv); }
