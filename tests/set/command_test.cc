#include "set/command.h"

#include <gtest/gtest.h>

#include <random>

namespace cset::set {
namespace {

using namespace std::string_literals;

std::vector<Command> samples() {
  Command with_session = Command::add("k", {"a", "b"});
  with_session.session = SessionHeader{7, 42, 40};
  Command big_numbers = Command::rem("key", {"m"});
  big_numbers.session = SessionHeader{~0ull, 1ull << 63, 0};
  big_numbers.time_ms = ~0ull;
  Command stamped = Command::del({"k"});
  stamped.time_ms = 1700000000123;
  return {
      stamped,
      Command::register_session(0),
      Command::register_session(1500),
      Command::add("k", {"a"}),
      Command::add(""s, {""s, "\0"s, "a\0b"s, "\r\n"s, "\xff\xfe"s, "1", "01", "1.0"}),
      Command::add_strict("\0key"s, "*1\r\n$3\r\nfoo"s),
      Command::add_strict("k", ""),
      Command::rem("k", {"a", "a"}),
      Command::del({"k1", ""s, "\0"s}),
      with_session,
      big_numbers,
      Command::add(std::string(300, 'x'), {std::string(70000, '\xab')}),
  };
}

TEST(CommandTest, RoundTripsEveryOp) {
  for (const Command& c : samples()) {
    ASSERT_TRUE(validate_command(c).is_ok());
    std::string bytes = encode_command(c);
    EXPECT_EQ(bytes[0], char{kCommandFormatVersion});
    auto decoded = decode_command(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(*decoded, c);
    EXPECT_EQ(encode_command(*decoded), bytes);
  }
}

TEST(CommandTest, EveryTruncationIsCorrupt) {
  for (const Command& c : samples()) {
    std::string bytes = encode_command(c);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto decoded = decode_command(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(decoded.ok()) << to_string(c.op) << " truncated to " << n;
      EXPECT_EQ(decoded.code(), Code::kCorrupt);
    }
  }
}

TEST(CommandTest, TrailingBytesAreCorrupt) {
  std::string bytes = encode_command(Command::add("k", {"a"})) + "x";
  EXPECT_EQ(decode_command(bytes).code(), Code::kCorrupt);
}

TEST(CommandTest, UnknownVersionFlagsAndOpsAreCorrupt) {
  std::string good = encode_command(Command::add_strict("k", "m"));
  for (int version : {0, 3, 0xff}) {
    std::string bad_version = good;
    bad_version[0] = static_cast<char>(version);
    EXPECT_EQ(decode_command(bad_version).code(), Code::kCorrupt) << version;
  }
  std::string bad_flags = good;
  bad_flags[1] = 0x02;
  EXPECT_EQ(decode_command(bad_flags).code(), Code::kCorrupt);
  for (int op : {0, 6, 0xff}) {
    std::string bad_op = good;
    bad_op[10] = static_cast<char>(op);  // after version, flags and time_ms
    EXPECT_EQ(decode_command(bad_op).code(), Code::kCorrupt) << op;
  }
  // REGISTER did not exist in version 1.
  EXPECT_EQ(decode_command("\x01\x00\x05\x00"s).code(), Code::kCorrupt);
}

// Entries written by the previous version stay readable for as long as they
// are in a log: no clock (time_ms 0), the same commands.
TEST(CommandTest, Version1EntriesStillDecode) {
  auto strict = decode_command("\x01\x00\x02\x01k\x01m"s);
  ASSERT_TRUE(strict.ok()) << strict.status().to_string();
  EXPECT_EQ(*strict, Command::add_strict("k", "m"));
  EXPECT_EQ(strict->time_ms, 0u);
  auto with_session = decode_command("\x01\x01\x03\x07\x2a\x28\x04\x01\x01k"s);
  ASSERT_TRUE(with_session.ok()) << with_session.status().to_string();
  Command expected = Command::del({"k"});
  expected.session = SessionHeader{7, 42, 40};
  EXPECT_EQ(*with_session, expected);
  // Re-encoding writes the current version.
  EXPECT_EQ(encode_command(*with_session)[0], char{kCommandFormatVersion});
}

TEST(CommandTest, LeaderStampsTheTimeInPlace) {
  Command c = Command::add("k", {"a"});
  c.session = SessionHeader{3, 9, 8};
  std::string bytes = encode_command(c);
  ASSERT_TRUE(stamp_command_time(bytes, 1700000000999));
  auto decoded = decode_command(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->time_ms, 1700000000999u);
  c.time_ms = 1700000000999;
  EXPECT_EQ(*decoded, c);
  // Not version 2, or too short: left alone.
  std::string v1 = "\x01\x00\x02\x01k\x01m"s;
  EXPECT_FALSE(stamp_command_time(v1, 5));
  EXPECT_EQ(v1, "\x01\x00\x02\x01k\x01m"s);
  std::string tiny = "\x02\x00\x00"s;
  EXPECT_FALSE(stamp_command_time(tiny, 5));
  EXPECT_EQ(tiny, "\x02\x00\x00"s);
}

TEST(CommandTest, RegisterNeverCarriesASession) {
  Command r = Command::register_session(10);
  r.session = SessionHeader{1, 1, 1};
  EXPECT_EQ(validate_command(r).code(), Code::kInvalid);
  // Hand-made bytes: version 2, session flag, time 0, section, REGISTER 10.
  std::string bytes = "\x02\x01"s + std::string(8, '\0') + "\x03\x01\x01\x01\x05\x0a"s;
  EXPECT_EQ(decode_command(bytes).code(), Code::kCorrupt);
  Command keyed = Command::register_session(0);
  keyed.key = "k";
  EXPECT_EQ(validate_command(keyed).code(), Code::kInvalid);
  Command timed = Command::add("k", {"a"});
  timed.timeout_ms = 5;
  EXPECT_EQ(validate_command(timed).code(), Code::kInvalid);
}

TEST(CommandTest, MalformedListsAreCorrupt) {
  // version, flags, ADD, key "k", count 0
  EXPECT_EQ(decode_command("\x01\x00\x01\x01k\x00"s).code(), Code::kCorrupt);
  // count claims far more members than there are bytes: no huge allocation
  EXPECT_EQ(decode_command("\x01\x00\x01\x01k\xff\xff\xff\xff\x0f"s).code(), Code::kCorrupt);
  // overlong varint for the key length (0x81 0x00 encodes 1 non-minimally)
  EXPECT_EQ(decode_command("\x01\x00\x02\x81\x00k\x01m"s).code(), Code::kCorrupt);
  // a varint longer than 64 bits
  EXPECT_EQ(decode_command("\x01\x00\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"s).code(),
            Code::kCorrupt);
  // member length runs past the end
  EXPECT_EQ(decode_command("\x01\x00\x02\x01k\x05m"s).code(), Code::kCorrupt);
}

TEST(CommandTest, SessionSectionMayGrowInALaterVersion) {
  // A session section with one extra trailing field is still readable.
  std::string bytes = "\x01\x01"s + "\x04\x07\x2a\x28\x63"s + "\x02\x01k\x01m"s;
  auto decoded = decode_command(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  ASSERT_TRUE(decoded->session.has_value());
  EXPECT_EQ(*decoded->session, (SessionHeader{7, 42, 40}));
  EXPECT_EQ(decoded->op, Op::kAddStrict);
  // A section too short for its three fields is corrupt.
  EXPECT_EQ(decode_command("\x01\x01\x02\x07\x2a\x02\x01k\x01m"s).code(), Code::kCorrupt);
}

TEST(CommandTest, ValidateRejectsBadShapes) {
  EXPECT_EQ(validate_command(Command::add("k", {})).code(), Code::kInvalid);
  EXPECT_EQ(validate_command(Command::rem("k", {})).code(), Code::kInvalid);
  EXPECT_EQ(validate_command(Command::del({})).code(), Code::kInvalid);
  Command strict = Command::add_strict("k", "a");
  strict.args.push_back("b");
  EXPECT_EQ(validate_command(strict).code(), Code::kInvalid);
  Command del = Command::del({"a"});
  del.key = "x";
  EXPECT_EQ(validate_command(del).code(), Code::kInvalid);
}

// Random and mutated inputs never crash, and whatever decodes re-encodes to a
// command that decodes to itself.
TEST(CommandTest, HostileInputNeverCrashes) {
  std::mt19937_64 rng(12345);
  auto check = [](std::string_view bytes) {
    auto decoded = decode_command(bytes);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.code(), Code::kCorrupt);
      return;
    }
    auto again = decode_command(encode_command(*decoded));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *decoded);
  };
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 24, '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng());
    if (!bytes.empty() && rng() % 2) bytes[0] = static_cast<char>(1 + rng() % 2);
    if (bytes.size() > 1 && rng() % 2) bytes[1] = static_cast<char>(rng() % 2);
    check(bytes);
  }
  for (const Command& c : samples()) {
    std::string bytes = encode_command(c);
    for (size_t pos = 0; pos < std::min<size_t>(bytes.size(), 64); ++pos) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string mutated = bytes;
        mutated[pos] = static_cast<char>(mutated[pos] ^ (1 << bit));
        check(mutated);
      }
    }
  }
}

}  // namespace
}  // namespace cset::set
