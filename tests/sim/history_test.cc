#include "check/history.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

namespace cset::check {
namespace {

// An operation with its fields in declaration order (aggregate initialization
// of a partial field list would trip -Wmissing-field-initializers).
Operation make_op(uint64_t client, OpKind kind, std::string key, std::vector<std::string> members,
                  int64_t invoke, int64_t complete, Outcome outcome, uint64_t count = 0) {
  Operation o;
  o.client = client;
  o.kind = kind;
  o.key = std::move(key);
  o.members = std::move(members);
  o.invoke = invoke;
  o.complete = complete;
  o.outcome = outcome;
  o.count = count;
  return o;
}

using namespace std::string_literals;

History sample() {
  History h;
  Operation add = make_op(1, OpKind::kAdd, "k", {"a", ""s, "\0"s}, 0, 10, Outcome::kOk, 3);
  Operation strict = make_op(2, OpKind::kAddStrict, "\xff\xfe"s, {"a\0b"s}, 5, 15, Outcome::kOk);
  strict.flag = false;  // EXISTS
  Operation strict_ok = make_op(2, OpKind::kAddStrict, "k", {"\r\n"s}, 16, 17, Outcome::kOk);
  strict_ok.flag = true;
  Operation rem = make_op(3, OpKind::kRem, "k", {"1", "01", "1.0"}, -5, 20, Outcome::kUnknown);
  Operation has = make_op(1, OpKind::kContains, "k", {"\xc3\xa9"s}, 11, 12, Outcome::kOk);
  has.flag = true;
  Operation members = make_op(4, OpKind::kMembers, "k", {}, 30, 40, Outcome::kOk);
  members.result_members = {"a", "\x80"s, "*1\r\n$3\r\nfoo"s, ""};
  Operation size = make_op(5, OpKind::kSize, "", {}, 41, 41, Outcome::kOk, 9000000000ull);
  Operation failed = make_op(6, OpKind::kAdd, "k", {"z"}, 50, 60, Outcome::kFail);
  return {add, strict, strict_ok, rem, has, members, size, failed};
}

TEST(HistoryTest, JsonlRoundTripIsExact) {
  History h = sample();
  ASSERT_TRUE(validate_history(h).is_ok());
  std::string text = to_jsonl(h);
  auto parsed = parse_jsonl(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(*parsed, h);
  EXPECT_EQ(to_jsonl(*parsed), text);
}

TEST(HistoryTest, FileRoundTrip) {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("cset-history-test-" + std::to_string(::getpid()) + ".jsonl"))
                         .string();
  History h = sample();
  ASSERT_TRUE(write_history_file(path, h).is_ok());
  auto read = read_history_file(path);
  std::remove(path.c_str());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(*read, h);
  EXPECT_EQ(read_history_file(path).code(), Code::kIo);
}

TEST(HistoryTest, BinaryBytesUseHexAndUtf8StaysReadable) {
  Operation op = make_op(7, OpKind::kContains, "caf\xc3\xa9"s, {"\xff"s}, 1, 2, Outcome::kOk);
  std::string line = to_json_line(op);
  EXPECT_NE(line.find("\"key\":\"caf\xc3\xa9\""), std::string::npos) << line;
  EXPECT_NE(line.find("{\"hex\":\"ff\"}"), std::string::npos) << line;
  // Overlong, surrogate and out-of-range sequences are not UTF-8: hex.
  for (std::string bad : {"\xc0\x80"s, "\xed\xa0\x80"s, "\xf4\x90\x80\x80"s, "\xe2\x82"s}) {
    op.key = bad;
    auto back = parse_json_line(to_json_line(op));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->key, bad);
  }
}

TEST(HistoryTest, ReadsHandWrittenLines) {
  auto h = parse_jsonl(
      "{\"client\":1,\"op\":\"add\",\"key\":\"k\",\"members\":[\"a\",{\"hex\":\"00FF\"}],"
      "\"invoke\":1,\"complete\":2,\"outcome\":\"ok\",\"result\":2,\"note\":\"ignored\"}\r\n"
      "\n"
      "{\"client\":2,\"op\":\"add_strict\",\"key\":\"k\",\"member\":\"a\",\"invoke\":3,"
      "\"complete\":4,\"outcome\":\"ok\",\"result\":\"exists\"}\n"
      "{\"client\":2,\"op\":\"size\",\"key\":\"k\",\"invoke\":5,\"complete\":9,"
      "\"outcome\":\"unknown\"}");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].members, (std::vector<std::string>{"a", "\0\xff"s}));
  EXPECT_EQ((*h)[0].count, 2u);
  EXPECT_FALSE((*h)[1].flag);
  EXPECT_EQ((*h)[2].outcome, Outcome::kUnknown);
}

TEST(HistoryTest, MalformedLinesNameTheLine) {
  const char* bad[] = {
      "not json",
      "[1,2]",
      "{\"client\":1,\"op\":\"frobnicate\",\"key\":\"k\",\"invoke\":1,\"complete\":2,"
      "\"outcome\":\"ok\"}",
      "{\"client\":-1,\"op\":\"size\",\"key\":\"k\",\"invoke\":1,\"complete\":2,"
      "\"outcome\":\"ok\",\"result\":0}",
      "{\"client\":1,\"op\":\"size\",\"key\":\"k\",\"invoke\":1.5,\"complete\":2,"
      "\"outcome\":\"ok\",\"result\":0}",
      "{\"client\":1,\"op\":\"size\",\"key\":{\"hex\":\"0\"},\"invoke\":1,\"complete\":2,"
      "\"outcome\":\"ok\",\"result\":0}",
      "{\"client\":1,\"op\":\"contains\",\"key\":\"k\",\"invoke\":1,\"complete\":2,"
      "\"outcome\":\"ok\",\"result\":true}",
      "{\"client\":1,\"op\":\"contains\",\"key\":\"k\",\"member\":\"m\",\"invoke\":1,"
      "\"complete\":2,\"outcome\":\"ok\",\"result\":1}",
      "{\"client\":1,\"op\":\"add\",\"key\":\"k\",\"members\":[\"m\"],\"invoke\":1,"
      "\"complete\":2,\"outcome\":\"fail\",\"result\":1}",
  };
  for (const char* line : bad) {
    std::string text =
        "{\"client\":1,\"op\":\"size\",\"key\":\"k\",\"invoke\":1,\"complete\":2,"
        "\"outcome\":\"ok\",\"result\":0}\n" +
        std::string(line) + "\n";
    auto h = parse_jsonl(text);
    ASSERT_FALSE(h.ok()) << line;
    EXPECT_EQ(h.code(), Code::kInvalid);
    EXPECT_NE(h.status().message().find("line 2"), std::string::npos) << h.status().message();
  }
}

TEST(HistoryTest, ValidateRejectsBadShapes) {
  Operation ok = make_op(1, OpKind::kAdd, "k", {"a"}, 1, 2, Outcome::kOk, 1);
  EXPECT_TRUE(validate_history({ok}).is_ok());
  Operation backwards = ok;
  backwards.complete = 0;
  EXPECT_EQ(validate_history({ok, backwards}).code(), Code::kInvalid);
  EXPECT_NE(validate_history({ok, backwards}).message().find("#2"), std::string::npos);
  Operation no_members = ok;
  no_members.members.clear();
  EXPECT_EQ(validate_history({no_members}).code(), Code::kInvalid);
  Operation two = ok;
  two.kind = OpKind::kContains;
  two.members = {"a", "b"};
  EXPECT_EQ(validate_history({two}).code(), Code::kInvalid);
  Operation size_with_member = make_op(1, OpKind::kSize, "k", {"a"}, 1, 2, Outcome::kOk);
  EXPECT_EQ(validate_history({size_with_member}).code(), Code::kInvalid);
  Operation unknown_with_result = ok;
  unknown_with_result.outcome = Outcome::kUnknown;
  EXPECT_EQ(validate_history({unknown_with_result}).code(), Code::kInvalid);
}

TEST(HistoryTest, DescribeIsReadable) {
  Operation op = make_op(3, OpKind::kMembers, "k", {}, 10, 20, Outcome::kOk);
  op.result_members = {"a", "\0"s};
  EXPECT_EQ(describe(op, 4), "#4 client 3 [10, 20] members(\"k\") -> {\"a\", \"\\x00\"}");
  Operation unknown = make_op(1, OpKind::kAdd, "k", {"a\r\n"}, 1, 5, Outcome::kUnknown);
  EXPECT_EQ(describe(unknown, 1),
            "#1 client 1 [1, ?] add(\"k\", \"a\\r\\n\") -> unknown (gave up at 5)");
}

// Client-session fields (docs/history-format.md): optional, round-trip
// exactly, and a line without them is a plain request sent once.
TEST(HistoryTest, SessionFieldsRoundTripAndDefault) {
  Operation retried = make_op(3, OpKind::kAddStrict, "k", {"a"}, 10, 90, Outcome::kOk);
  retried.flag = true;
  retried.session = 17;
  retried.seq = 4;
  retried.attempts = 3;
  retried.deduplicated = true;
  Operation once = make_op(3, OpKind::kRem, "k", {"a"}, 100, 110, Outcome::kUnknown);
  once.session = 17;
  once.seq = 5;
  History h = {retried, once, make_op(1, OpKind::kAdd, "k", {"b"}, 1, 2, Outcome::kOk, 1)};
  ASSERT_TRUE(validate_history(h).is_ok());
  std::string text = to_jsonl(h);
  for (const char* field :
       {"\"attempts\":3,", "\"deduplicated\":true,", "\"seq\":4,\"session\":17}"}) {
    EXPECT_NE(text.find(field), std::string::npos) << field << " in " << text;
  }
  auto parsed = parse_jsonl(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(*parsed, h);
  EXPECT_EQ((*parsed)[2].session, 0u);
  EXPECT_EQ((*parsed)[2].attempts, 1u);
  EXPECT_FALSE((*parsed)[2].deduplicated);
  EXPECT_EQ(describe(retried, 1),
            "#1 client 3 session 17 seq 4 (3 attempts) [10, 90] add_strict(\"k\", \"a\") -> OK "
            "(from the session table)");
  for (const char* bad :
       {R"("session":-1)", R"("seq":"x")", R"("attempts":1.5)", R"("deduplicated":1)"}) {
    std::string line = R"({"client":1,"op":"add","key":"k","members":["a"],"invoke":1,)"
                       R"("complete":2,"outcome":"ok","result":1,)" +
                       std::string(bad) + "}";
    EXPECT_EQ(parse_json_line(line).code(), Code::kInvalid) << line;
  }
}

// A retried session request is ONE operation: two records of one (session,
// seq) are refused, as are session fields that make no sense.
TEST(HistoryTest, ValidateRejectsBadSessionRecords) {
  Operation first = make_op(1, OpKind::kAdd, "k", {"a"}, 1, 5, Outcome::kUnknown);
  first.session = 9;
  first.seq = 1;
  Operation retry = make_op(1, OpKind::kAdd, "k", {"a"}, 6, 8, Outcome::kOk, 1);
  retry.session = 9;
  retry.seq = 1;
  Status st = validate_history({first, retry});
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_NE(st.message().find("#2"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("already op #1"), std::string::npos) << st.message();
  retry.seq = 2;  // another request of the session
  EXPECT_TRUE(validate_history({first, retry}).is_ok());
  retry.session = 10;  // the same sequence in another session
  retry.seq = 1;
  EXPECT_TRUE(validate_history({first, retry}).is_ok());

  Operation bad = retry;
  bad.attempts = 0;
  EXPECT_EQ(validate_history({bad}).code(), Code::kInvalid);
  bad = retry;
  bad.session = 0;  // seq without a session
  EXPECT_EQ(validate_history({bad}).code(), Code::kInvalid);
  bad = first;
  bad.deduplicated = true;  // deduplicated, but not ok
  EXPECT_EQ(validate_history({bad}).code(), Code::kInvalid);
  bad = make_op(1, OpKind::kContains, "k", {"a"}, 1, 2, Outcome::kOk);
  bad.session = 9;  // reads are never session requests
  bad.seq = 3;
  EXPECT_EQ(validate_history({bad}).code(), Code::kInvalid);
}

// The example in docs/history-format.md parses, and is what it says it is.
TEST(HistoryTest, DocumentedExampleParses) {
  auto h = parse_jsonl(
      R"({"client":1,"op":"add","key":"k","members":["a",{"hex":"00ff"}],"invoke":100,"complete":130,"outcome":"ok","result":2}
{"client":2,"op":"contains","key":"k","member":"a","invoke":120,"complete":125,"outcome":"ok","result":false}
{"client":1,"op":"add_strict","key":"k","member":"b","invoke":140,"complete":900,"outcome":"unknown"}
{"client":3,"op":"members","key":"k","invoke":200,"complete":260,"outcome":"ok","result":["a",{"hex":"00ff"}]}
{"client":4,"op":"rem","key":"k","members":["a"],"invoke":300,"complete":310,"outcome":"fail"}
{"client":3,"op":"size","key":"k","invoke":950,"complete":960,"outcome":"ok","result":3}
)");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_EQ(h->size(), 6u);
  EXPECT_TRUE(validate_history(*h).is_ok());
  EXPECT_EQ((*h)[0].members[1], "\0\xff"s);
  EXPECT_EQ((*h)[2].outcome, Outcome::kUnknown);
  EXPECT_EQ((*h)[4].outcome, Outcome::kFail);
}

}  // namespace
}  // namespace cset::check
