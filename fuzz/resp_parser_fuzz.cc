// libFuzzer target for the client protocol layer (src/resp).
//
// One input is a byte stream from a hostile client. The harness checks:
// - the parser never crashes, and gives the same events (commands, TOOBIG,
//   protocol error) whether the stream arrives whole, a byte at a time, or in
//   input-chosen chunks through prepare()/commit();
// - after each drained feed the parser holds no more than one partial
//   command: buffered_bytes() <= max(max_request_bytes, max_inline_bytes)
//   plus a header line;
// - every parsed command goes through parse_request(), and every reply the
//   layer writes for it (errors, COMMAND, HELP) reads back as well-formed
//   RESP2 and RESP3;
// - the reply reader and glob matcher survive the same bytes.
// The first input byte picks the limits (bit 0: defaults, or tiny ones that
// make the TOOBIG and skip paths reachable; bit 2: before authentication)
// and seeds the chunk sizes.
//
// Built as a libFuzzer binary when CSET_FUZZ is ON (fuzz/CMakeLists.txt),
// and run without libFuzzer over the seed corpus plus mutated inputs by
// tests/server/resp_fuzz_driver_test.cc.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "resp/commands.h"
#include "resp/glob.h"
#include "resp/parser.h"
#include "resp/reply_reader.h"
#include "resp/writer.h"

namespace {

using cset::resp::Limits;
using cset::resp::ParseStatus;
using cset::resp::RequestParser;

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "resp_parser_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

struct Event {
  ParseStatus status;
  std::vector<std::string> args;
  std::string error;
  bool is_inline;
  bool operator==(const Event&) const = default;
};

Limits limits_for(uint8_t selector) {
  if (selector & 1) return Limits{};
  Limits tiny;
  tiny.max_key_bytes = 8;
  tiny.max_member_bytes = 16;
  tiny.max_request_bytes = 96;
  tiny.max_bulk_bytes = (selector & 2) ? 48 : 96;
  tiny.max_skip_bulk_bytes = 4096;
  tiny.max_args = 12;
  tiny.max_inline_bytes = 40;
  return tiny;
}

// Every reply in `out` must read back whole and well-formed.
void check_replies(std::string_view out) {
  while (!out.empty()) {
    cset::resp::ReadResult r = cset::resp::read_reply(out, 64);
    check(r.status == cset::resp::ReadStatus::kOk, "a written reply reads back");
    out.remove_prefix(r.consumed);
  }
}

void exercise_command(std::span<const std::string_view> args, const Limits& limits) {
  auto parsed = cset::resp::parse_request(args, limits);
  for (int protocol : {2, 3}) {
    std::string out;
    cset::resp::ReplyWriter writer(&out, protocol);
    if (!parsed) {
      writer.error(parsed.status());
      const cset::Code code = parsed.code();
      // NOPROTO: HELLO with a protocol version other than 2 or 3, as Redis.
      check(code == cset::Code::kErr || code == cset::Code::kTooBig || code == cset::Code::kNoProto,
            "error code is ERR/TOOBIG/NOPROTO");
    } else if (auto* query = std::get_if<cset::resp::CommandQuery>(&parsed->request)) {
      cset::resp::write_command_reply(*query, writer);
    } else if (auto* help = std::get_if<cset::resp::Help>(&parsed->request)) {
      cset::resp::write_help(*help, writer);
    } else {
      writer.bulk_array(args);
    }
    check_replies(out);
  }
  if (args.size() >= 3) {
    (void)cset::resp::glob_match(args[1], args[2], false);
    (void)cset::resp::glob_match(args[1], args[2], true);
  }
}

// Feeds `input` in chunks (sizes from `next_chunk`), draining after each
// feed. `exercise` runs the command layer on each command.
template <typename NextChunk>
std::vector<Event> run(std::string_view input, const Limits& limits, bool authenticated,
                       NextChunk next_chunk, bool use_prepare, bool exercise) {
  RequestParser parser(limits);
  parser.set_authenticated(authenticated);
  const size_t bound = std::max(limits.max_request_bytes, limits.max_inline_bytes) + 64;
  std::vector<Event> events;
  size_t pos = 0;
  while (pos < input.size()) {
    size_t n = std::min(next_chunk(), input.size() - pos);
    if (use_prepare) {
      std::span<char> space = parser.prepare(n + 3);
      std::copy_n(input.data() + pos, n, space.data());
      parser.commit(n);
    } else {
      parser.feed(input.substr(pos, n));
    }
    pos += n;
    while (true) {
      cset::resp::ParseResult r = parser.next();
      if (r.status == ParseStatus::kNeedMore) break;
      Event e{r.status, {}, std::string(r.error), r.is_inline};
      for (std::string_view a : r.args) e.args.emplace_back(a);
      if (r.status == ParseStatus::kCommand) {
        check(!r.args.empty(), "a command has arguments");
        if (exercise) exercise_command(r.args, limits);
      }
      events.push_back(std::move(e));
      if (r.status == ParseStatus::kProtocolError) {
        check(parser.failed(), "failed() after a protocol error");
        check(parser.next().status == ParseStatus::kProtocolError, "a protocol error is final");
        check(parser.buffered_bytes() == 0, "a failed parser holds nothing");
        return events;
      }
    }
    check(parser.buffered_bytes() <= bound, "buffered bytes stay within one request");
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (1u << 20)) return 0;
  const Limits limits = limits_for(data[0]);
  const bool authenticated = (data[0] & 4) == 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  (void)cset::resp::read_reply(input, 64);

  const std::vector<Event> whole = run(
      input, limits, authenticated, [&] { return input.size() + 1; }, false, true);
  if (input.size() <= 8192) {
    const std::vector<Event> bytewise = run(
        input, limits, authenticated, [] { return size_t{1}; }, false, false);
    check(bytewise == whole, "byte-at-a-time feeding gives the same events");
  }
  uint32_t state = data[0] * 2654435761u + 1;
  const std::vector<Event> chunked = run(
      input, limits, authenticated,
      [&] {
        state = state * 1664525u + 1013904223u;
        return size_t{1} + (state >> 24) % 97;
      },
      true, false);
  check(chunked == whole, "chunked feeding gives the same events");
  return 0;
}
