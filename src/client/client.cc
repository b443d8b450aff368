#include "cset/client.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <utility>

namespace cset::client {
namespace {

// The least an endpoint is given before the next one is tried, ms (unless the
// whole budget is smaller): enough for a healthy node's reply on a busy
// machine, so a silent one (paused, or a lost reply) costs a share of the
// budget, never all of it.
constexpr std::chrono::milliseconds kMinAttempt{1000};

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(milliseconds ms) {
  if (ms < milliseconds(1)) ms = milliseconds(1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Reply convert(const redisReply& raw) {
  Reply reply;
  switch (raw.type) {
    case REDIS_REPLY_STRING:
      reply.type = Reply::Type::kString;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = Reply::Type::kStatus;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = Reply::Type::kError;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = Reply::Type::kInteger;
      reply.integer = raw.integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = Reply::Type::kArray;
      reply.elements.reserve(raw.elements);
      for (size_t i = 0; i < raw.elements; ++i) reply.elements.push_back(convert(*raw.element[i]));
      break;
    default:
      reply.type = Reply::Type::kNil;
      break;
  }
  return reply;
}

// Connects and authenticates. Nothing of the request is sent yet, so every
// failure here leaves the request unapplied.
// What is left until `deadline` (at least 1 ms, so a socket timeout is set).
milliseconds left_until(Clock::time_point deadline) {
  return std::max(milliseconds(1),
                  std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

// Connects (and authenticates) by `deadline`: the connect, AUTH and the
// exchange that follows share one budget, not one each.
Expected<ContextPtr> connect(const Endpoint& endpoint, Clock::time_point deadline) {
  ContextPtr context(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                             to_timeval(left_until(deadline))));
  if (!context) return Error(Code::kUnavailable, endpoint.to_string() + ": out of memory", false);
  if (context->err != 0) {
    return Error(Code::kUnavailable, endpoint.to_string() + ": " + context->errstr, false);
  }
  if (Clock::now() >= deadline) {
    return Error(Code::kUnavailable, endpoint.to_string() + ": connecting took the whole budget",
                 false);
  }
  if (redisSetTimeout(context.get(), to_timeval(left_until(deadline))) != REDIS_OK) {
    return Error(Code::kUnavailable, endpoint.to_string() + ": cannot set the socket timeout",
                 false);
  }
  if (!endpoint.password.empty()) {
    auto* r = static_cast<redisReply*>(
        redisCommand(context.get(), "AUTH %b", endpoint.password.data(), endpoint.password.size()));
    if (r == nullptr) {
      return Error(Code::kUnavailable, endpoint.to_string() + ": AUTH got no answer", false);
    }
    std::string error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    if (!error.empty()) {
      Code code = error.rfind("WRONGPASS", 0) == 0 ? Code::kWrongPass : Code::kNoAuth;
      return Error(code, endpoint.to_string() + ": " + error, false);
    }
  }
  return context;
}

// The failure of a connection after the request may have been sent (the
// caller decides whether the outcome is unknown).
Error io_failure(const redisContext& context, int saved_errno, const Endpoint& endpoint,
                 milliseconds timeout) {
  bool timed_out =
      (context.err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) ||
      std::strstr(context.errstr, "temporarily unavailable") != nullptr;
  if (timed_out) {
    return Error(Code::kTimeout,
                 "no reply from " + endpoint.to_string() + " within " +
                     std::to_string(timeout.count()) + " ms",
                 true);
  }
  return Error(Code::kUnavailable,
               "connection to " + endpoint.to_string() + " failed: " + context.errstr, true);
}

// Pipelines `commands` on `context` (one write) and reads one reply per
// command, by `deadline` (the socket timeout is what is left of it).
Expected<std::vector<Reply>> exchange(redisContext& context, const std::vector<Command>& commands,
                                      const Endpoint& endpoint, Clock::time_point deadline) {
  const milliseconds timeout = left_until(deadline);
  if (redisSetTimeout(&context, to_timeval(timeout)) != REDIS_OK) {
    return Error(Code::kUnavailable, endpoint.to_string() + ": cannot set the socket timeout",
                 false);
  }
  for (const Command& command : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : command) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(&context, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return io_failure(context, errno, endpoint, timeout);
    }
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(&context, &raw) != REDIS_OK || raw == nullptr) {
      return io_failure(context, errno, endpoint, timeout);
    }
    ReplyPtr owned(static_cast<redisReply*>(raw));
    replies.push_back(convert(*owned));
  }
  return replies;
}

// True when every reply says nothing changed here and another node may do
// better (see the failover rules in the header).
bool try_elsewhere(const std::vector<Reply>& replies, Idempotence idempotence) {
  if (replies.empty()) return false;
  if (idempotence == Idempotence::kExactlyOnce) {
    // A session write may be re-sent: one that timed out goes on too.
    for (const Reply& reply : replies) {
      if (reply.code_word() == "TIMEOUT") return true;
    }
  }
  for (const Reply& reply : replies) {
    std::string word = reply.code_word();
    if (word != "NOQUORUM" && word != "REMOVED") return false;
  }
  return true;
}

bool answered_timeout(const std::vector<Reply>& replies) {
  for (const Reply& reply : replies) {
    if (reply.code_word() == "TIMEOUT") return true;
  }
  return false;
}

Error unexpected(const Reply& reply) {
  return Error(Code::kErr, "unexpected reply: " + reply.as_text(), false);
}

}  // namespace

// ---- values -----------------------------------------------------------------------

std::string Reply::code_word() const {
  if (type != Type::kError) return "";
  return text.substr(0, text.find(' '));
}

std::string Reply::as_text() const {
  switch (type) {
    case Type::kInteger:
      return std::to_string(integer);
    case Type::kNil:
      return "";
    case Type::kArray: {
      std::string out;
      for (const Reply& element : elements) {
        if (!out.empty()) out += ' ';
        out += element.as_text();
      }
      return out;
    }
    default:
      return text;
  }
}

Code code_of_word(std::string_view word) {
  static constexpr std::pair<std::string_view, Code> kWords[] = {
      {"NOQUORUM", Code::kNoQuorum},   {"TIMEOUT", Code::kTimeout},
      {"NOSPACE", Code::kNoSpace},     {"BUSY", Code::kBusy},
      {"REMOVED", Code::kRemoved},     {"TOOBIG", Code::kTooBig},
      {"EXISTS", Code::kExists},       {"NOAUTH", Code::kNoAuth},
      {"WRONGPASS", Code::kWrongPass}, {"SESSIONEXPIRED", Code::kSessionExpired},
      {"NOPROTO", Code::kNoProto}};
  for (const auto& [name, code] : kWords) {
    if (name == word) return code;
  }
  return Code::kErr;
}

Error Error::from_reply(const Reply& reply) {
  Code code = code_of_word(reply.code_word());
  return Error(code, reply.text, code == Code::kTimeout, true);
}

std::string_view Error::word() const {
  return code_ == Code::kUnavailable ? std::string_view("UNREACHABLE") : code_word(code_);
}

std::string Error::to_string() const {
  if (from_server_) return message_;
  return std::string(word()) + " " + message_;
}

Result<std::vector<Endpoint>> parse_endpoints(std::string_view list) {
  std::vector<Endpoint> endpoints;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
      return Status(Code::kInvalid, "endpoint '" + std::string(item) + "' is not HOST:PORT");
    }
    std::string_view host = item.substr(0, colon);
    const bool bracketed = !host.empty() && host.front() == '[';
    if (bracketed) {
      if (host.size() < 3 || host.back() != ']') {
        return Status(Code::kInvalid, "endpoint '" + std::string(item) +
                                          "': an IPv6 host goes in brackets: [::1]:6381");
      }
      host = host.substr(1, host.size() - 2);
    }
    // An empty host, blanks or stray brackets are typos; an IPv6 address
    // without brackets is ambiguous ("::1:6381").
    if (host.empty() || host.find_first_of(" \t[]") != std::string_view::npos ||
        (!bracketed && host.find(':') != std::string_view::npos)) {
      return Status(Code::kInvalid, "endpoint '" + std::string(item) +
                                        "' is not HOST:PORT (an IPv6 host in brackets: "
                                        "[::1]:6381)");
    }
    std::string_view port_text = item.substr(colon + 1);
    int port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
        port > 65535) {
      return Status(Code::kInvalid, "endpoint '" + std::string(item) + "' has a bad port");
    }
    endpoints.push_back(Endpoint{std::string(host), port, {}});
  }
  if (endpoints.empty()) return Status(Code::kInvalid, "no endpoint given");
  return endpoints;
}

// ---- failover -----------------------------------------------------------------------

// The answer of one failover run, and how many endpoints were sent the
// request (a SESSIONEXPIRED answer to the first send means nothing applied).
struct Client::Run {
  Expected<std::vector<Reply>> replies;
  size_t sends = 0;
};

Result<Client> Client::create(const Options& options) {
  auto endpoints = parse_endpoints(options.endpoints);
  if (!endpoints) return endpoints.status();
  if (options.timeout_ms == 0) return Status(Code::kInvalid, "timeout_ms must be at least 1");
  for (Endpoint& endpoint : *endpoints) endpoint.password = options.password;
  return Client(std::move(*endpoints), milliseconds(options.timeout_ms), options.sessions,
                options.session_timeout_ms);
}

Client::Client(std::vector<Endpoint> endpoints, milliseconds timeout, bool sessions,
               uint64_t session_timeout_ms)
    : endpoints_(std::move(endpoints)),
      timeout_(timeout),
      sessions_(sessions),
      session_timeout_ms_(session_timeout_ms) {
  assert(!endpoints_.empty());
}

Client::Run Client::run(const std::vector<Command>& commands, Idempotence idempotence) {
  const auto deadline = Clock::now() + timeout_;
  std::string failures;  // why each endpoint did not answer, for the final error
  bool timed_out = false;
  bool maybe_applied = false;  // a session write's earlier send may have been applied
  size_t sends = 0;
  std::vector<Reply> elsewhere_replies;  // the last "try elsewhere" answer
  // Starting with the endpoint that answered last: a later call does not wait
  // on a silent endpoint again.
  const size_t first = answered_;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t e = (first + i) % endpoints_.size();
    auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (remaining <= milliseconds(0)) {
      timed_out = true;
      break;
    }
    // Each endpoint gets an equal share of what is left (at least
    // kMinAttempt), so one that accepts the connection and then stays silent
    // does not use up the whole timeout before the others are tried.
    const auto left = static_cast<int64_t>(endpoints_.size() - i);
    const milliseconds attempt =
        left > 1 ? std::max(remaining / left, std::min(remaining, kMinAttempt)) : remaining;
    const Endpoint& endpoint = endpoints_[e];
    const auto attempt_deadline = Clock::now() + attempt;
    auto context = connect(endpoint, attempt_deadline);
    if (!context &&
        (context.error().code() == Code::kNoAuth || context.error().code() == Code::kWrongPass)) {
      return {context.error(), sends};  // every node has the same password: no failover
    }
    if (!context) {
      failures += (failures.empty() ? "" : "; ") + context.error().message();
      continue;
    }
    ++sends;
    auto replies = exchange(**context, commands, endpoint, attempt_deadline);
    if (!replies) {
      const Error& error = replies.error();
      if (idempotence == Idempotence::kNotIdempotent) {
        return {Error(error.code(), error.message() + " (the outcome is unknown)", true), sends};
      }
      if (error.code() == Code::kTimeout) timed_out = true;
      maybe_applied = true;  // sent, then no answer: it may have been applied
      failures += (failures.empty() ? "" : "; ") + error.message();
      continue;
    }
    if (!try_elsewhere(*replies, idempotence)) {
      answered_ = e;
      return {std::move(replies), sends};
    }
    if (idempotence == Idempotence::kExactlyOnce && answered_timeout(*replies)) {
      maybe_applied = true;
    }
    elsewhere_replies = std::move(*replies);
  }
  if (!elsewhere_replies.empty()) {
    // The last "try elsewhere" answer (NOQUORUM, REMOVED, a session write's
    // TIMEOUT). Its "nothing changed" does not hold for the request when an
    // earlier send of the same session write may have applied.
    if (idempotence == Idempotence::kExactlyOnce && maybe_applied) {
      for (Reply& reply : elsewhere_replies) {
        if (reply.is_error() && reply.code_word() != "TIMEOUT") {
          reply.text =
              "TIMEOUT an earlier attempt of this request may have been applied (no "
              "answer, or TIMEOUT); the last endpoint answered: " +
              reply.text;
        }
      }
    }
    return {std::move(elsewhere_replies), sends};
  }
  // A session write that was sent and never answered may have applied.
  const bool unknown = sends > 0 && idempotence == Idempotence::kExactlyOnce;
  if (timed_out) {
    return {Error(Code::kTimeout,
                  "no endpoint answered within " + std::to_string(timeout_.count()) + " ms" +
                      (failures.empty() ? "" : " (" + failures + ")"),
                  unknown),
            sends};
  }
  return {Error(Code::kUnavailable, "no endpoint answered: " + failures, unknown), sends};
}

Expected<std::vector<Reply>> Client::pipeline(const std::vector<Command>& commands,
                                              Idempotence idempotence) {
  if (commands.empty()) return std::vector<Reply>();
  return run(commands, idempotence).replies;
}

Expected<Reply> Client::command(const Command& command, Idempotence idempotence) {
  auto replies = pipeline({command}, idempotence);
  if (!replies) return replies.error();
  return std::move((*replies)[0]);
}

// ---- sessions ---------------------------------------------------------------------

Expected<uint64_t> Client::open_session() {
  if (!sessions_ || session_probed_) return session_id_;
  Command command{"CSET.SESSION"};
  if (session_timeout_ms_ > 0) {
    command.push_back("TIMEOUT");
    command.push_back(std::to_string(session_timeout_ms_));
  }
  // Sending it again after a lost reply is harmless: an unused session just
  // expires.
  auto reply = this->command(command, Idempotence::kExactlyOnce);
  if (!reply) {  // no write of the caller's was sent yet
    return Error(reply.error().code(), reply.error().message(), false, reply.error().from_server());
  }
  if (reply->is_error() && reply->text.rfind("ERR unknown command", 0) == 0) {
    session_probed_ = true;  // a server without sessions: plain writes
    return uint64_t{0};
  }
  if (reply->is_error()) {
    Error error = Error::from_reply(*reply);
    return Error(error.code(), error.message(), false, true);  // no session was opened
  }
  if (reply->type != Reply::Type::kInteger || reply->integer < 1) return unexpected(*reply);
  session_probed_ = true;
  session_id_ = static_cast<uint64_t>(reply->integer);
  next_sequence_ = 1;
  return session_id_;
}

Expected<std::vector<Reply>> Client::session_write(std::vector<Command> commands) {
  if (commands.empty()) return std::vector<Reply>();
  auto session = open_session();
  if (!session) return session.error();
  if (*session == 0) return pipeline(commands, Idempotence::kNotIdempotent);
  const Command write = commands.back();
  // At most two tries: the second only after the first was refused on its
  // first send with SESSIONEXPIRED (nothing applied) and a new session opened.
  for (int attempt = 0;; ++attempt) {
    const std::string sequence = std::to_string(next_sequence_++);
    // One request in flight: every earlier one has returned, so
    // lowest_unacked is this request's own sequence.
    Command wrapped{"CSET.SEQ", std::to_string(session_id_), sequence, sequence};
    wrapped.insert(wrapped.end(), write.begin(), write.end());
    commands.back() = std::move(wrapped);
    Run result = run(commands, Idempotence::kExactlyOnce);
    if (!result.replies) return result.replies;
    const Reply& last = result.replies->back();
    if (last.code_word() != "SESSIONEXPIRED") return result.replies;
    // After more than one send the lost earlier attempt may have applied;
    // this one did not. After one send nothing did: open a new session and
    // send it once more (only once).
    const bool unknown = result.sends > 1;
    if (unknown || attempt > 0) return Error(Code::kSessionExpired, last.text, unknown, true);
    session_probed_ = false;
    session_id_ = 0;
    commands.back() = write;
    auto reopened = open_session();
    if (!reopened) return reopened.error();
    if (*reopened == 0) return pipeline(commands, Idempotence::kNotIdempotent);
  }
}

// ---- the set verbs ------------------------------------------------------------------

Expected<Reply> Client::write_one(Command command) {
  auto replies = session_write({std::move(command)});
  if (!replies) return replies.error();
  return std::move((*replies)[0]);
}

Expected<AddResult> Client::add(std::string_view key, std::string_view member) {
  auto reply = write_one({"CSET.ADD", std::string(key), std::string(member)});
  if (!reply) return reply.error();
  if (reply->code_word() == "EXISTS") return AddResult::kAlreadyPresent;
  if (reply->is_error()) return Error::from_reply(*reply);
  if (reply->type != Reply::Type::kStatus) return unexpected(*reply);
  return AddResult::kAdded;
}

Expected<uint64_t> Client::sadd(std::string_view key, const std::vector<std::string>& members) {
  Command command{"SADD", std::string(key)};
  command.insert(command.end(), members.begin(), members.end());
  auto reply = write_one(std::move(command));
  if (!reply) return reply.error();
  if (reply->is_error()) return Error::from_reply(*reply);
  if (reply->type != Reply::Type::kInteger || reply->integer < 0) return unexpected(*reply);
  return static_cast<uint64_t>(reply->integer);
}

Expected<bool> Client::rem(std::string_view key, std::string_view member) {
  auto reply = write_one({"SREM", std::string(key), std::string(member)});
  if (!reply) return reply.error();
  if (reply->is_error()) return Error::from_reply(*reply);
  if (reply->type != Reply::Type::kInteger) return unexpected(*reply);
  return reply->integer > 0;
}

Expected<bool> Client::contains(std::string_view key, std::string_view member) {
  auto reply =
      command({"SISMEMBER", std::string(key), std::string(member)}, Idempotence::kIdempotent);
  if (!reply) return reply.error();
  if (reply->is_error()) return Error::from_reply(*reply);
  if (reply->type != Reply::Type::kInteger) return unexpected(*reply);
  return reply->integer == 1;
}

Expected<std::vector<std::string>> Client::members(std::string_view key) {
  auto reply = command({"SMEMBERS", std::string(key)}, Idempotence::kIdempotent);
  if (!reply) return reply.error();
  if (reply->is_error()) return Error::from_reply(*reply);
  if (reply->type != Reply::Type::kArray) return unexpected(*reply);
  std::vector<std::string> out;
  out.reserve(reply->elements.size());
  for (Reply& element : reply->elements) out.push_back(std::move(element.text));
  return out;
}

Expected<uint64_t> Client::size(std::string_view key) {
  auto reply = command({"SCARD", std::string(key)}, Idempotence::kIdempotent);
  if (!reply) return reply.error();
  if (reply->is_error()) return Error::from_reply(*reply);
  if (reply->type != Reply::Type::kInteger || reply->integer < 0) return unexpected(*reply);
  return static_cast<uint64_t>(reply->integer);
}

Expected<Reply> command_once(const Endpoint& endpoint, const Command& command,
                             milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto context = connect(endpoint, deadline);
  if (!context) return context.error();
  auto replies = exchange(**context, {command}, endpoint, deadline);
  if (!replies) return replies.error();
  return std::move((*replies)[0]);
}

}  // namespace cset::client
