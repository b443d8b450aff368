// client-usage: the client library (include/cset/client.h) against a running
// csetd cluster: add (added, then already present), contains, members, size,
// a pipelined batch, rem. Usage: client-usage [HOST:PORT,...] [KEY]
// (default 127.0.0.1:6381, key "client-usage"). Exit 0 when every answer is
// the expected one; 1 with a message otherwise (or when no node answers
// within the 5 s timeout of each call).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "cset/client.h"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "client-usage: FAILED: %s\n", what.c_str());
  std::exit(1);
}

// The value of a call, or exit 1 naming the error ("NOQUORUM ...", ...).
template <typename T>
T check(cset::client::Expected<T> result, const char* call) {
  if (!result) {
    fail(std::string(call) + ": " + result.error().to_string() +
         (result.error().outcome_unknown() ? " (outcome unknown)" : ""));
  }
  return std::move(*result);
}

}  // namespace

int main(int argc, char** argv) {
  cset::client::Options options;
  options.endpoints = argc > 1 ? argv[1] : "127.0.0.1:6381";
  options.timeout_ms = 5000;
  const std::string key = argc > 2 ? argv[2] : "client-usage";
  auto created = cset::Client::create(options);
  if (!created) fail(created.status().to_string());
  cset::Client client = std::move(*created);
  using cset::client::AddResult;

  check(client.rem(key, "alice"), "rem");  // start from a known state
  if (check(client.add(key, "alice"), "add") != AddResult::kAdded) fail("add: not added");
  if (check(client.add(key, "alice"), "add") != AddResult::kAlreadyPresent) {
    fail("second add: not already present");
  }
  if (!check(client.contains(key, "alice"), "contains")) fail("contains: false");
  std::printf("added alice (session %llu via %s); a second add: already present\n",
              static_cast<unsigned long long>(client.session_id()),
              client.endpoint().to_string().c_str());

  // One write, one reply per command, in order.
  auto replies = check(client.pipeline({{"SADD", key, "bob", "carol"}, {"SCARD", key}},
                                       cset::client::Idempotence::kNotIdempotent),
                       "pipeline");
  if (replies.size() != 2 || replies[1].type != cset::client::Reply::Type::kInteger) {
    fail("pipeline: unexpected replies");
  }
  std::printf("pipeline: SADD -> %s, SCARD -> %s\n", replies[0].as_text().c_str(),
              replies[1].as_text().c_str());
  std::vector<std::string> members = check(client.members(key), "members");
  std::printf("members:");
  for (const std::string& member : members) std::printf(" %s", member.c_str());
  std::printf("\n");
  if (check(client.size(key), "size") != members.size()) fail("size differs from members");
  if (!check(client.rem(key, "alice"), "rem")) fail("rem: alice was not present");
  std::printf("removed alice; size %llu\n",
              static_cast<unsigned long long>(check(client.size(key), "size")));
  return 0;
}
