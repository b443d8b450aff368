// hiredis_smoke HOST PORT KEY: a hiredis client against one csetd node, run
// by test_clients.py (SPEC.md: hiredis is a tested client).
//
// Connects, SADDs, SISMEMBERs (binary-safe members through %b), pipelines
// 1000 commands in one write (SADD m_i then SISMEMBER m_i, alternating:
// commands on one connection take effect in the order sent) and checks every
// reply, then SCARD and an unknown command's ERR. KEY must be unused.
// Exit 0 when every check passed; 1 with the failed check on stderr.
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

constexpr int kPipelined = 1000;

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "hiredis_smoke: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

bool is_integer(const redisReply* reply, long long value) {
  return reply != nullptr && reply->type == REDIS_REPLY_INTEGER && reply->integer == value;
}

std::string describe(const redisReply* reply) {
  if (reply == nullptr) return "no reply";
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      return "integer " + std::to_string(reply->integer);
    case REDIS_REPLY_ERROR:
      return "error " + std::string(reply->str, reply->len);
    case REDIS_REPLY_STATUS:
      return "status " + std::string(reply->str, reply->len);
    case REDIS_REPLY_STRING:
      return "string " + std::string(reply->str, reply->len);
    case REDIS_REPLY_ARRAY:
      return "array of " + std::to_string(reply->elements);
    default:
      return "nil";
  }
}

ReplyPtr command(redisContext* context, const char* format, const char* key) {
  return ReplyPtr(static_cast<redisReply*>(redisCommand(context, format, key)));
}

void plain_commands(redisContext* context, const char* key) {
  ReplyPtr added = command(context, "SADD %s a b c", key);
  check(is_integer(added.get(), 3), "SADD a b c → 3, got " + describe(added.get()));
  ReplyPtr again = command(context, "SADD %s a", key);
  check(is_integer(again.get(), 0), "SADD a again → 0, got " + describe(again.get()));
  ReplyPtr present = command(context, "SISMEMBER %s b", key);
  check(is_integer(present.get(), 1), "SISMEMBER b → 1, got " + describe(present.get()));
  ReplyPtr absent = command(context, "SISMEMBER %s zz", key);
  check(is_integer(absent.get(), 0), "SISMEMBER zz → 0, got " + describe(absent.get()));

  const char binary[] = {'x', '\0', '\r', '\n', '\xff'};
  ReplyPtr bin_add(
      static_cast<redisReply*>(redisCommand(context, "SADD %s %b", key, binary, sizeof(binary))));
  check(is_integer(bin_add.get(), 1), "SADD binary → 1, got " + describe(bin_add.get()));
  ReplyPtr bin_has(static_cast<redisReply*>(
      redisCommand(context, "SISMEMBER %s %b", key, binary, sizeof(binary))));
  check(is_integer(bin_has.get(), 1), "SISMEMBER binary → 1, got " + describe(bin_has.get()));
  ReplyPtr bin_prefix(
      static_cast<redisReply*>(redisCommand(context, "SISMEMBER %s %b", key, binary, size_t{1})));
  check(is_integer(bin_prefix.get(), 0),
        "SISMEMBER of the binary member's 1-byte prefix → 0, got " + describe(bin_prefix.get()));
}

void pipelined_commands(redisContext* context, const char* key) {
  for (int i = 0; i < kPipelined / 2; ++i) {
    std::string member = "m_" + std::to_string(i);
    redisAppendCommand(context, "SADD %s %s", key, member.c_str());
    redisAppendCommand(context, "SISMEMBER %s %s", key, member.c_str());
  }
  for (int i = 0; i < kPipelined; ++i) {
    void* raw = nullptr;
    if (redisGetReply(context, &raw) != REDIS_OK) {
      check(false, "pipelined reply " + std::to_string(i) + ": " + context->errstr);
      return;
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    check(is_integer(reply.get(), 1), "pipelined reply " + std::to_string(i) + " (" +
                                          (i % 2 == 0 ? "SADD" : "SISMEMBER") + ") → 1, got " +
                                          describe(reply.get()));
  }
  ReplyPtr size = command(context, "SCARD %s", key);
  check(is_integer(size.get(), 3 + 1 + kPipelined / 2), "SCARD → 504, got " + describe(size.get()));
  ReplyPtr unknown(static_cast<redisReply*>(redisCommand(context, "NOSUCHCOMMAND x")));
  check(unknown != nullptr && unknown->type == REDIS_REPLY_ERROR &&
            std::strncmp(unknown->str, "ERR ", 4) == 0,
        "unknown command → ERR ..., got " + describe(unknown.get()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hiredis_smoke HOST PORT KEY\n");
    return 2;
  }
  timeval timeout{10, 0};
  std::unique_ptr<redisContext, ContextDeleter> context(
      redisConnectWithTimeout(argv[1], std::atoi(argv[2]), timeout));
  if (!context || context->err) {
    std::fprintf(stderr, "hiredis_smoke: cannot connect: %s\n",
                 context ? context->errstr : "out of memory");
    return 1;
  }
  redisSetTimeout(context.get(), timeout);
  plain_commands(context.get(), argv[3]);
  pipelined_commands(context.get(), argv[3]);
  if (failures == 0) std::printf("hiredis_smoke: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
