#include "tools/cset_client.h"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <utility>

namespace cset::cli {
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

Result<ContextPtr> connect(const Endpoint& endpoint, milliseconds timeout) {
  ContextPtr context(
      redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, to_timeval(timeout)));
  if (!context) return Status(Code::kUnavailable, endpoint.to_string() + ": out of memory");
  if (context->err != 0) {
    return Status(Code::kUnavailable, endpoint.to_string() + ": " + context->errstr);
  }
  if (redisSetTimeout(context.get(), to_timeval(timeout)) != REDIS_OK) {
    return Status(Code::kUnavailable, endpoint.to_string() + ": cannot set the socket timeout");
  }
  if (!endpoint.password.empty()) {
    auto* r = static_cast<redisReply*>(
        redisCommand(context.get(), "AUTH %b", endpoint.password.data(), endpoint.password.size()));
    if (r == nullptr) {
      return Status(Code::kUnavailable, endpoint.to_string() + ": AUTH got no answer");
    }
    std::string error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    if (!error.empty()) {
      Code code = error.rfind("WRONGPASS", 0) == 0 ? Code::kWrongPass : Code::kNoAuth;
      return Status(code, endpoint.to_string() + ": " + error);
    }
  }
  return context;
}

// The failure of a connection after the request may have been sent.
Status io_failure(const redisContext& context, int saved_errno, const Endpoint& endpoint,
                  milliseconds timeout) {
  bool timed_out =
      (context.err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) ||
      std::strstr(context.errstr, "temporarily unavailable") != nullptr;
  if (timed_out) {
    return Status(Code::kTimeout, "no reply from " + endpoint.to_string() + " within " +
                                      std::to_string(timeout.count()) + " ms");
  }
  return Status(Code::kUnavailable,
                "connection to " + endpoint.to_string() + " failed: " + context.errstr);
}

// Pipelines `commands` on `context` and reads one reply per command.
Result<std::vector<Reply>> exchange(redisContext& context, const std::vector<Command>& commands,
                                    const Endpoint& endpoint, milliseconds timeout) {
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

}  // namespace

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
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
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

FailoverClient::FailoverClient(std::vector<Endpoint> endpoints, milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {}

Result<std::vector<Reply>> FailoverClient::run(const std::vector<Command>& commands,
                                               Idempotence idempotence) {
  const auto deadline = Clock::now() + timeout_;
  std::string failures;  // why each endpoint did not answer, for the final error
  bool timed_out = false;
  std::vector<Reply> elsewhere_replies;  // the last "try elsewhere" answer
  // Starting with the endpoint that answered last: a later command of the
  // same cset run (a session's write after its registration) does not wait on
  // a silent endpoint again.
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
    // does not use up the whole --timeout before the others are tried.
    const auto left = static_cast<int64_t>(endpoints_.size() - i);
    const milliseconds attempt =
        left > 1 ? std::max(remaining / left, std::min(remaining, kMinAttempt)) : remaining;
    const Endpoint& endpoint = endpoints_[e];
    auto context = connect(endpoint, attempt);
    if (!context &&
        (context.status().code() == Code::kNoAuth || context.status().code() == Code::kWrongPass)) {
      return context.status();  // every node has the same password: no failover
    }
    if (!context) {
      failures += (failures.empty() ? "" : "; ") + context.status().message();
      continue;
    }
    auto replies = exchange(**context, commands, endpoint, attempt);
    if (!replies) {
      if (idempotence == Idempotence::kNotIdempotent) {
        Status status = replies.status();
        return Status(status.code(), status.message() + " (the outcome is unknown)");
      }
      if (replies.status().code() == Code::kTimeout) timed_out = true;
      failures += (failures.empty() ? "" : "; ") + replies.status().message();
      continue;
    }
    answered_ = e;
    if (try_elsewhere(*replies, idempotence) && i + 1 < endpoints_.size()) {
      elsewhere_replies = std::move(*replies);
      continue;
    }
    return replies;
  }
  if (!elsewhere_replies.empty()) return elsewhere_replies;
  if (timed_out) {
    return Status(Code::kTimeout, "no endpoint answered within " +
                                      std::to_string(timeout_.count()) + " ms" +
                                      (failures.empty() ? "" : " (" + failures + ")"));
  }
  return Status(Code::kUnavailable, "no endpoint answered: " + failures);
}

Result<Reply> FailoverClient::run_once(const Endpoint& endpoint, const Command& command,
                                       milliseconds timeout) {
  auto context = connect(endpoint, timeout);
  if (!context) return context.status();
  auto replies = exchange(**context, {command}, endpoint, timeout);
  if (!replies) return replies.status();
  return std::move((*replies)[0]);
}

}  // namespace cset::cli
