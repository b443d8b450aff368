// ReplyWriter (src/resp/writer.h): byte-exact RESP2 and RESP3 output, and the
// reply reader (reply_reader.h) reading it back.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "resp/reply_reader.h"
#include "resp/writer.h"

namespace cset::resp {
namespace {

// Writes with `fill` in protocol `protocol` and returns the bytes.
template <typename Fill>
std::string written(int protocol, Fill fill) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  fill(writer);
  return out;
}

// Expects `fill` to give `resp2` in RESP2 and `resp3` in RESP3.
template <typename Fill>
void expect_bytes(Fill fill, std::string_view resp2, std::string_view resp3) {
  EXPECT_EQ(written(2, fill), resp2);
  EXPECT_EQ(written(3, fill), resp3);
}

TEST(RespWriterTest, Scalars) {
  expect_bytes([](ReplyWriter& w) { w.ok(); }, "+OK\r\n", "+OK\r\n");
  expect_bytes([](ReplyWriter& w) { w.simple_string("PONG"); }, "+PONG\r\n", "+PONG\r\n");
  expect_bytes([](ReplyWriter& w) { w.integer(0); }, ":0\r\n", ":0\r\n");
  expect_bytes([](ReplyWriter& w) { w.integer(-42); }, ":-42\r\n", ":-42\r\n");
  expect_bytes([](ReplyWriter& w) { w.integer(std::numeric_limits<int64_t>::min()); },
               ":-9223372036854775808\r\n", ":-9223372036854775808\r\n");
  expect_bytes([](ReplyWriter& w) { w.bulk_string("hello"); }, "$5\r\nhello\r\n",
               "$5\r\nhello\r\n");
  expect_bytes([](ReplyWriter& w) { w.bulk_string(""); }, "$0\r\n\r\n", "$0\r\n\r\n");
  expect_bytes([](ReplyWriter& w) { w.bulk_string(std::string("a\r\n\0b", 5)); },
               std::string("$5\r\na\r\n\0b\r\n", 11), std::string("$5\r\na\r\n\0b\r\n", 11));
}

TEST(RespWriterTest, Errors) {
  expect_bytes([](ReplyWriter& w) { w.error("ERR syntax error"); }, "-ERR syntax error\r\n",
               "-ERR syntax error\r\n");
  expect_bytes([](ReplyWriter& w) { w.error(Status(Code::kNoQuorum, "no quorum within 5000 ms")); },
               "-NOQUORUM no quorum within 5000 ms\r\n", "-NOQUORUM no quorum within 5000 ms\r\n");
  expect_bytes([](ReplyWriter& w) { w.error(Status(Code::kTooBig, "key is 5000 bytes")); },
               "-TOOBIG key is 5000 bytes\r\n", "-TOOBIG key is 5000 bytes\r\n");
  // CR and LF cannot break the framing.
  expect_bytes([](ReplyWriter& w) { w.error("ERR bad\r\ninput"); }, "-ERR bad  input\r\n",
               "-ERR bad  input\r\n");
  expect_bytes([](ReplyWriter& w) { w.simple_string("a\nb"); }, "+a b\r\n", "+a b\r\n");
}

TEST(RespWriterTest, Nulls) {
  expect_bytes([](ReplyWriter& w) { w.null(); }, "$-1\r\n", "_\r\n");
  expect_bytes([](ReplyWriter& w) { w.null_array(); }, "*-1\r\n", "_\r\n");
}

TEST(RespWriterTest, Aggregates) {
  expect_bytes(
      [](ReplyWriter& w) {
        w.array_header(2);
        w.integer(1);
        w.bulk_string("x");
      },
      "*2\r\n:1\r\n$1\r\nx\r\n", "*2\r\n:1\r\n$1\r\nx\r\n");
  expect_bytes([](ReplyWriter& w) { w.array_header(0); }, "*0\r\n", "*0\r\n");
  expect_bytes(
      [](ReplyWriter& w) {
        w.map_header(1);
        w.bulk_string("server");
        w.bulk_string("csetd");
      },
      "*2\r\n$6\r\nserver\r\n$5\r\ncsetd\r\n", "%1\r\n$6\r\nserver\r\n$5\r\ncsetd\r\n");
  expect_bytes(
      [](ReplyWriter& w) {
        w.set_header(2);
        w.simple_string("write");
        w.simple_string("fast");
      },
      "*2\r\n+write\r\n+fast\r\n", "~2\r\n+write\r\n+fast\r\n");
  std::vector<std::string> members{"a", "bc"};
  expect_bytes([&](ReplyWriter& w) { w.bulk_array(members); }, "*2\r\n$1\r\na\r\n$2\r\nbc\r\n",
               "*2\r\n$1\r\na\r\n$2\r\nbc\r\n");
}

TEST(RespWriterTest, BooleansDoublesVerbatim) {
  expect_bytes([](ReplyWriter& w) { w.boolean(true); }, ":1\r\n", "#t\r\n");
  expect_bytes([](ReplyWriter& w) { w.boolean(false); }, ":0\r\n", "#f\r\n");
  expect_bytes([](ReplyWriter& w) { w.double_value(1.5); }, "$3\r\n1.5\r\n", ",1.5\r\n");
  expect_bytes([](ReplyWriter& w) { w.double_value(3); }, "$1\r\n3\r\n", ",3\r\n");
  expect_bytes([](ReplyWriter& w) { w.double_value(0.1); }, "$3\r\n0.1\r\n", ",0.1\r\n");
  expect_bytes([](ReplyWriter& w) { w.double_value(-INFINITY); }, "$4\r\n-inf\r\n", ",-inf\r\n");
  expect_bytes([](ReplyWriter& w) { w.double_value(INFINITY); }, "$3\r\ninf\r\n", ",inf\r\n");
  expect_bytes([](ReplyWriter& w) { w.double_value(NAN); }, "$3\r\nnan\r\n", ",nan\r\n");
  expect_bytes([](ReplyWriter& w) { w.verbatim("# Raft\r\nrole:leader\r\n"); },
               "$21\r\n# Raft\r\nrole:leader\r\n\r\n", "=25\r\ntxt:# Raft\r\nrole:leader\r\n\r\n");
}

TEST(RespWriterTest, ProtocolSwitch) {
  std::string out;
  ReplyWriter w(&out);
  EXPECT_EQ(w.protocol(), 2);
  w.null();
  w.set_protocol(3);
  w.null();
  EXPECT_EQ(out, "$-1\r\n_\r\n");
}

TEST(RespWriterTest, ReaderReadsEveryTypeBack) {
  for (int protocol : {2, 3}) {
    std::string out = written(protocol, [](ReplyWriter& w) {
      w.array_header(9);
      w.ok();
      w.error("EXISTS member already present");
      w.integer(7);
      w.bulk_string("bin\r\nary");
      w.null();
      w.map_header(1);
      w.bulk_string("k");
      w.boolean(true);
      w.set_header(1);
      w.double_value(2.25);
      w.verbatim("text");
      w.null_array();
    });
    ReadResult r = read_reply(out);
    ASSERT_EQ(r.status, ReadStatus::kOk) << protocol;
    EXPECT_EQ(r.consumed, out.size());
    const auto& e = r.reply.elements;
    ASSERT_EQ(e.size(), 9u);
    EXPECT_EQ(e[0].type, Reply::Type::kSimple);
    EXPECT_EQ(e[1].text, "EXISTS member already present");
    EXPECT_EQ(e[2].integer, 7);
    EXPECT_EQ(e[3].text, "bin\r\nary");
    EXPECT_EQ(e[4].type, Reply::Type::kNull);
    EXPECT_EQ(e[5].type, protocol == 3 ? Reply::Type::kMap : Reply::Type::kArray);
    EXPECT_EQ(e[5].elements.size(), 2u);
    EXPECT_EQ(e[6].type, protocol == 3 ? Reply::Type::kSet : Reply::Type::kArray);
    EXPECT_EQ(e[6].elements[0].type, protocol == 3 ? Reply::Type::kDouble : Reply::Type::kBulk);
    EXPECT_EQ(e[7].text, "text");
    EXPECT_EQ(e[8].type, Reply::Type::kNull);
    // Every proper prefix is incomplete, never malformed.
    for (size_t cut = 0; cut < out.size(); ++cut) {
      EXPECT_EQ(read_reply(std::string_view(out).substr(0, cut)).status, ReadStatus::kIncomplete)
          << cut;
    }
  }
}

TEST(RespWriterTest, ReaderRejectsMalformedReplies) {
  for (const char* bad : {"?\r\n", ":1x\r\n", "$3\r\nabcd\r\n", "#x\r\n", ",1.5.5\r\n",
                          "=3\r\nabc\r\n", "%-1\r\n", "\r\n", "$-2\r\n", "_x\r\n"}) {
    EXPECT_EQ(read_reply(bad).status, ReadStatus::kMalformed) << bad;
  }
  // A huge announced count is not allocated before its bytes are there.
  EXPECT_EQ(read_reply("*999999999999\r\n").status, ReadStatus::kIncomplete);
  // Nesting deeper than the limit.
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  EXPECT_EQ(read_reply(deep, 32).status, ReadStatus::kMalformed);
  EXPECT_EQ(read_reply(deep, 200).status, ReadStatus::kOk);
}

}  // namespace
}  // namespace cset::resp
