// RequestParser (src/resp/parser.h): every input is checked in every
// chunking (whole, byte at a time, several fixed sizes, pseudo-random sizes,
// and through prepare()/commit()), and all of them must agree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "resp/parser.h"

namespace cset::resp {
namespace {

using ::testing::ElementsAre;

struct Event {
  ParseStatus status;
  std::vector<std::string> args;
  std::string error;
  bool is_inline = false;
  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  os << "{status=" << static_cast<int>(e.status) << " args=[";
  for (const auto& a : e.args) os << '"' << a << "\" ";
  return os << "] error=\"" << e.error << "\" inline=" << e.is_inline << "}";
}

Event command(std::vector<std::string> args, bool is_inline = false) {
  return Event{ParseStatus::kCommand, std::move(args), "", is_inline};
}
Event too_big(std::string error) { return Event{ParseStatus::kTooBig, {}, std::move(error)}; }
Event protocol_error(std::string error) {
  return Event{ParseStatus::kProtocolError, {}, std::move(error)};
}

std::string multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Feeds `input` in chunks from `next_chunk`, draining after every feed.
// Stops at a protocol error. `max_buffered` records the largest
// buffered_bytes() seen after a drain.
std::vector<Event> parse(std::string_view input, const Limits& limits,
                         const std::function<size_t()>& next_chunk, bool use_prepare = false,
                         size_t* max_buffered = nullptr) {
  RequestParser parser(limits);
  std::vector<Event> events;
  size_t pos = 0;
  while (pos < input.size()) {
    const size_t n = std::min(next_chunk(), input.size() - pos);
    if (use_prepare) {
      std::span<char> space = parser.prepare(n + 5);
      std::copy_n(input.data() + pos, n, space.data());
      parser.commit(n);
    } else {
      parser.feed(input.substr(pos, n));
    }
    pos += n;
    while (true) {
      ParseResult r = parser.next();
      if (r.status == ParseStatus::kNeedMore) break;
      Event e{r.status, {}, std::string(r.error), r.is_inline};
      for (std::string_view a : r.args) e.args.emplace_back(a);
      events.push_back(std::move(e));
      if (r.status == ParseStatus::kProtocolError) return events;
    }
    if (max_buffered) *max_buffered = std::max(*max_buffered, parser.buffered_bytes());
  }
  return events;
}

std::vector<Event> parse_whole(std::string_view input, const Limits& limits = Limits{}) {
  return parse(input, limits, [&] { return input.size(); });
}

// Parses `input` in every chunking and checks they all give `expected`.
void expect_events(std::string_view input, const std::vector<Event>& expected,
                   const Limits& limits = Limits{}) {
  EXPECT_EQ(parse_whole(input, limits), expected) << "whole";
  EXPECT_EQ(parse(input, limits, [] { return size_t{1}; }), expected) << "byte at a time";
  for (size_t size : {2, 3, 5, 7, 16, 64, 1000}) {
    EXPECT_EQ(parse(input, limits, [=] { return size; }), expected) << "chunks of " << size;
  }
  std::mt19937 rng(7);
  EXPECT_EQ(parse(input, limits, [&] { return size_t{1} + rng() % 13; }), expected) << "random";
  EXPECT_EQ(parse(
                input, limits, [&] { return size_t{1} + rng() % 29; }, true),
            expected)
      << "prepare/commit";
}

TEST(RespParserTest, MultibulkCommand) {
  expect_events("*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n", {command({"PING", "hello"})});
}

TEST(RespParserTest, PayloadIsBinarySafe) {
  std::string member("a\r\nb\0c\xff*$", 9);
  expect_events(multibulk({"SADD", "k", member, ""}), {command({"SADD", "k", member, ""})});
}

TEST(RespParserTest, EmptyMultibulkIsSkipped) {
  expect_events("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", {command({"PING"})});
}

TEST(RespParserTest, PipelinedCommandsComeOutInOrder) {
  std::string input;
  std::vector<Event> expected;
  for (int i = 0; i < 10000; ++i) {
    std::vector<std::string> args{"SADD", "set" + std::to_string(i % 7), "m" + std::to_string(i)};
    input += multibulk(args);
    expected.push_back(command(args));
  }
  EXPECT_EQ(parse_whole(input), expected);
  EXPECT_EQ(parse(input, Limits{}, [] { return size_t{1}; }), expected);
  EXPECT_EQ(parse(
                input, Limits{}, [] { return size_t{4096}; }, true),
            expected);
}

TEST(RespParserTest, PipelineOfTenThousandDrainedOneByOne) {
  // All 10,000 commands buffered at once; views of each command are valid
  // until the next call.
  std::string input;
  for (int i = 0; i < 10000; ++i) input += multibulk({"SISMEMBER", "k", std::to_string(i)});
  RequestParser parser;
  parser.feed(input);
  for (int i = 0; i < 10000; ++i) {
    ParseResult r = parser.next();
    ASSERT_EQ(r.status, ParseStatus::kCommand);
    ASSERT_EQ(r.args.size(), 3u);
    EXPECT_EQ(r.args[2], std::to_string(i));
  }
  EXPECT_EQ(parser.next().status, ParseStatus::kNeedMore);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(RespParserTest, InlineCommands) {
  expect_events("PING\r\nSADD k  a\tb\nECHO \"hello world\" 'it''s'\r\n",
                {command({"PING"}, true), command({"SADD", "k", "a", "b"}, true),
                 protocol_error("ERR Protocol error: unbalanced quotes in request")});
  expect_events("\r\n   \r\n\nPING\n", {command({"PING"}, true)});
}

TEST(RespParserTest, InlineQuotingFollowsSdssplitargs) {
  expect_events(R"(SET "a b" 'c d' "\x41\x7a\n\t\\\"" 'it\'s' x"y z" "\xZZ")"
                "\n",
                {command({"SET", "a b", "c d", "Az\n\t\\\"", "it's", "xy z", "xZZ"}, true)});
  // A closing quote must be followed by a blank or the end.
  expect_events("SET \"a\"b\r\n",
                {protocol_error("ERR Protocol error: unbalanced quotes in request")});
  expect_events("SET 'a'b\r\n",
                {protocol_error("ERR Protocol error: unbalanced quotes in request")});
  expect_events("SET 'abc\r\n",
                {protocol_error("ERR Protocol error: unbalanced quotes in request")});
  // A NUL byte ends the line, as in C.
  expect_events(std::string("PING\0garbage \"\n", 15), {command({"PING"}, true)});
}

TEST(RespParserTest, InlineAndMultibulkMix) {
  expect_events("PING\r\n" + multibulk({"ECHO", "x"}) + "QUIT\r\n",
                {command({"PING"}, true), command({"ECHO", "x"}), command({"QUIT"}, true)});
}

TEST(RespParserTest, InlineLengthLimit) {
  Limits limits;
  std::string at_limit(limits.max_inline_bytes, 'a');
  EXPECT_EQ(parse_whole(at_limit + "\n"), (std::vector<Event>{command({at_limit}, true)}));
  std::string over(limits.max_inline_bytes + 1, 'a');
  const auto error = protocol_error("ERR Protocol error: too big inline request");
  EXPECT_EQ(parse_whole(over + "\n"), std::vector<Event>{error});
  // Without any LF the error comes as soon as the limit is passed.
  EXPECT_EQ(parse(over, limits, [] { return size_t{1000}; }), std::vector<Event>{error});
  Limits small;
  small.max_inline_bytes = 8;
  expect_events("PING 123\nPING 1234\n",
                {command({"PING", "123"}, true),
                 protocol_error("ERR Protocol error: too big inline request")},
                small);
}

TEST(RespParserTest, InvalidMultibulkLength) {
  const auto error = protocol_error("ERR Protocol error: invalid multibulk length");
  for (const char* input : {"*abc\r\n", "*\r\n", "*+1\r\n", "*01\r\n", "*1 \r\n", "*-0\r\n",
                            "*1\rX", "*1048577\r\n", "*99999999999999999999\r\n"}) {
    expect_events(input, {error});
  }
  // A count line that never ends fails without waiting for 64 KiB.
  expect_events("*" + std::string(40, '1'), {error});
  Limits limits;
  limits.max_args = 3;
  expect_events("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*4\r\n", {command({"a", "b", "c"}), error},
                limits);
}

TEST(RespParserTest, InvalidBulkLength) {
  const auto error = protocol_error("ERR Protocol error: invalid bulk length");
  for (const char* input :
       {"*1\r\n$-1\r\n", "*1\r\n$99999999999\r\n", "*1\r\n$abc\r\n", "*1\r\n$\r\n", "*1\r\n$03\r\n",
        "*1\r\n$3\rX", "*1\r\n$999999999999999999999999\r\n", "*1\r\n$536870913\r\n"}) {
    expect_events(input, {error});
  }
  expect_events("*1\r\n$" + std::string(40, '9'), {error});
}

TEST(RespParserTest, ExpectedDollar) {
  expect_events("*2\r\n$4\r\nPING\r\n:1\r\n",
                {protocol_error("ERR Protocol error: expected '$', got ':'")});
  // CR and LF never reach the reply line.
  expect_events("*1\r\n\r\n", {protocol_error("ERR Protocol error: expected '$', got ' '")});
}

TEST(RespParserTest, PayloadMustEndWithCrlf) {
  expect_events("*1\r\n$3\r\nabcXY",
                {protocol_error("ERR Protocol error: bulk payload not followed by CRLF")});
}

TEST(RespParserTest, CommandsBeforeAProtocolErrorComeFirst) {
  expect_events(multibulk({"PING"}) + multibulk({"ECHO", "a"}) + "*1\r\n$x\r\n",
                {command({"PING"}), command({"ECHO", "a"}),
                 protocol_error("ERR Protocol error: invalid bulk length")});
}

TEST(RespParserTest, ProtocolErrorIsFinal) {
  RequestParser parser;
  parser.feed("*1\r\n$-1\r\n");
  EXPECT_EQ(parser.next().status, ParseStatus::kProtocolError);
  EXPECT_TRUE(parser.failed());
  parser.feed(multibulk({"PING"}));
  ParseResult r = parser.next();
  EXPECT_EQ(r.status, ParseStatus::kProtocolError);
  EXPECT_EQ(r.error, "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  std::span<char> space = parser.prepare(10);
  std::copy_n("*1\r\n$4\r\nPI", 10, space.data());
  parser.commit(10);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(RespParserTest, TruncatedFramesWaitForMore) {
  const std::string frame = multibulk({"SADD", "key", "member"});
  for (size_t cut = 1; cut < frame.size(); ++cut) {
    RequestParser parser;
    parser.feed(frame.substr(0, cut));
    EXPECT_EQ(parser.next().status, ParseStatus::kNeedMore) << cut;
    EXPECT_EQ(parser.next().status, ParseStatus::kNeedMore) << cut;
    EXPECT_EQ(parser.buffered_bytes(), cut);
    parser.feed(frame.substr(cut));
    ParseResult r = parser.next();
    ASSERT_EQ(r.status, ParseStatus::kCommand) << cut;
    EXPECT_THAT(std::vector<std::string>(r.args.begin(), r.args.end()),
                ElementsAre("SADD", "key", "member"));
  }
}

TEST(RespParserTest, OversizedBulkIsSkippedAndTheStreamStaysInSync) {
  Limits limits;
  limits.max_request_bytes = 100;
  const std::string big(300, 'x');
  expect_events(multibulk({"SADD", "k", big}) + multibulk({"SADD", "k", "small"}),
                {too_big("TOOBIG request exceeds 100 bytes"), command({"SADD", "k", "small"})},
                limits);
  // A bulk under the request limit but over the bulk limit.
  limits.max_bulk_bytes = 10;
  expect_events(multibulk({"SADD", "k", std::string(11, 'y')}) + multibulk({"PING"}),
                {too_big("TOOBIG argument exceeds 10 bytes"), command({"PING"})}, limits);
}

TEST(RespParserTest, ManySmallArgumentsOverTheRequestLimit) {
  Limits limits;
  limits.max_request_bytes = 64;
  std::vector<std::string> args{"SADD", "k"};
  for (int i = 0; i < 40; ++i) args.push_back("m");
  expect_events(multibulk(args) + "PING\r\n",
                {too_big("TOOBIG request exceeds 64 bytes"), command({"PING"}, true)}, limits);
  // Exactly at the limit is accepted.
  std::string frame = multibulk({"ECHO", std::string(10, 'z')});
  limits.max_request_bytes = frame.size();
  expect_events(frame, {command({"ECHO", std::string(10, 'z')})}, limits);
  limits.max_request_bytes = frame.size() - 1;
  expect_events(frame,
                {too_big("TOOBIG request exceeds " + std::to_string(frame.size() - 1) + " bytes")},
                limits);
}

TEST(RespParserTest, SkippedBulkIsNeverBuffered) {
  // 20 MB announced: over the 1.5 MiB request limit, under the 512 MiB skip
  // limit. Fed in 64 KiB chunks, the parser must hold almost nothing.
  const size_t length = 20 * 1000 * 1000;
  std::string header = "*3\r\n$4\r\nSADD\r\n$1\r\nk\r\n$" + std::to_string(length) + "\r\n";
  RequestParser parser;
  parser.feed(header);
  EXPECT_EQ(parser.next().status, ParseStatus::kNeedMore);
  const std::string chunk(64 * 1024, 'z');
  size_t sent = 0;
  size_t max_buffered = 0;
  while (sent < length) {
    const size_t n = std::min(chunk.size(), length - sent);
    parser.feed(std::string_view(chunk).substr(0, n));
    sent += n;
    EXPECT_EQ(parser.next().status, ParseStatus::kNeedMore);
    max_buffered = std::max(max_buffered, parser.buffered_bytes());
  }
  EXPECT_LE(max_buffered, 1u);
  parser.feed("\r\n" + multibulk({"SCARD", "k"}));
  ParseResult r = parser.next();
  EXPECT_EQ(r.status, ParseStatus::kTooBig);
  EXPECT_EQ(r.error, "TOOBIG request exceeds 1572864 bytes");
  r = parser.next();
  ASSERT_EQ(r.status, ParseStatus::kCommand);
  EXPECT_EQ(r.args[0], "SCARD");
}

TEST(RespParserTest, LargeBulkWithinLimitsIsDelivered) {
  const std::string member(1500 * 1000, 'q');
  std::string input = multibulk({"ECHO", member});
  size_t max_buffered = 0;
  auto events = parse(
      input, Limits{}, [] { return size_t{16384}; }, true, &max_buffered);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].args[1], member);
  EXPECT_LE(max_buffered, input.size());
}

TEST(RespParserTest, BinaryGarbageNeverCrashesAndStaysBounded) {
  std::mt19937_64 rng(12345);
  Limits limits;
  for (int round = 0; round < 300; ++round) {
    std::string input(1 + rng() % 3000, '\0');
    for (char& c : input) c = static_cast<char>(rng());
    if (round % 3 == 0) input[0] = '*';  // reach the multibulk paths
    size_t max_buffered = 0;
    auto whole = parse(
        input, limits, [&] { return input.size(); }, false, &max_buffered);
    auto bytewise = parse(
        input, limits, [] { return size_t{1}; }, false, &max_buffered);
    EXPECT_EQ(whole, bytewise) << round;
    EXPECT_LE(max_buffered, limits.max_inline_bytes + 1) << round;
  }
}

TEST(RespParserTest, UnauthenticatedBounds) {
  RequestParser parser;
  parser.set_authenticated(false);
  std::vector<std::string> ten{"AUTH"};
  for (int i = 0; i < 9; ++i) ten.push_back("x");
  parser.feed(multibulk(ten) + multibulk({"AUTH", std::string(16384, 'p')}));
  EXPECT_EQ(parser.next().status, ParseStatus::kCommand);
  EXPECT_EQ(parser.next().status, ParseStatus::kCommand);
  parser.feed("*11\r\n");
  ParseResult r = parser.next();
  EXPECT_EQ(r.status, ParseStatus::kProtocolError);
  EXPECT_EQ(r.error, "ERR Protocol error: unauthenticated multibulk length");

  RequestParser bulk;
  bulk.set_authenticated(false);
  bulk.feed("*2\r\n$4\r\nAUTH\r\n$16385\r\n");
  r = bulk.next();
  EXPECT_EQ(r.status, ParseStatus::kProtocolError);
  EXPECT_EQ(r.error, "ERR Protocol error: unauthenticated bulk length");

  RequestParser later;
  later.set_authenticated(false);
  later.set_authenticated(true);
  later.feed(multibulk(std::vector<std::string>(11, "x")));
  EXPECT_EQ(later.next().status, ParseStatus::kCommand);
}

TEST(RespParserTest, SplitInlineArgs) {
  std::string storage;
  std::vector<std::string_view> out;
  ASSERT_TRUE(split_inline_args("  a  \"b c\"  ", storage, out));
  EXPECT_THAT(out, ElementsAre("a", "b c"));
  ASSERT_TRUE(split_inline_args("", storage, out));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(split_inline_args("\"\" ''", storage, out));
  EXPECT_THAT(out, ElementsAre("", ""));
  ASSERT_TRUE(split_inline_args("a\vb", storage, out));  // \v separates only leading blanks
  EXPECT_THAT(out, ElementsAre("a\vb"));
  EXPECT_FALSE(split_inline_args("\"abc", storage, out));
  EXPECT_FALSE(split_inline_args("\"abc\\\"", storage, out));
}

}  // namespace
}  // namespace cset::resp
