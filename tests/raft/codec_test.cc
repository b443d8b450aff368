// Encodings of Configuration, Entry, HardState and SnapshotMeta
// (raft/codec.h): golden bytes that pin format version 1, round trips, and
// hostile input (every truncation, trailing bytes, bad enums, bad varints,
// huge counts, random and mutated bytes) answered with kCorrupt.
#include "raft/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace cset::raft {
namespace {

using namespace std::string_literals;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

Configuration joint_config() {
  Configuration c;
  c.mode = QuorumMode::kTiebreak;
  c.voters = {2, 3, 4, 1000};
  c.tiebreaker = 2;
  c.outgoing_voters = {1, 2, 3};
  c.outgoing_tiebreaker = 1;
  c.learners = {7, kU64Max >> 1};
  c.members = {{1, "peer=10.0.0.1:7000"},  {2, ""},  {3, "\0\xff\x80"s},
               {4, std::string(300, 'x')}, {7, "l"}, {1000, "z"},
               {kU64Max >> 1, "max"}};
  c.removed = {5, 6};
  return c;
}

// One encoder/decoder pair and the values to try it on, so the hostile-input
// tests run over every kind of value alike.
struct Codec {
  const char* name;
  std::vector<std::string> samples;                 // valid encodings
  std::function<Code(std::string_view)> decode;     // kOk or the error code
  std::function<bool(std::string_view)> reencodes;  // decode then encode == input
};

template <typename T>
Codec make_codec(const char* name, const std::vector<T>& values, std::string (*encode)(const T&),
                 Result<T> (*decode)(std::string_view)) {
  Codec c;
  c.name = name;
  for (const T& v : values) c.samples.push_back(encode(v));
  c.decode = [decode](std::string_view b) { return decode(b).code(); };
  c.reencodes = [encode, decode](std::string_view b) {
    Result<T> r = decode(b);
    return r.ok() && encode(*r) == b;
  };
  return c;
}

std::vector<Codec> all_codecs() {
  Configuration empty;
  Configuration majority;
  majority.mode = QuorumMode::kMajority;
  majority.voters = {1, 2};
  majority.tiebreaker = 1;
  majority.members = {{1, "a"}, {2, "b"}};
  std::vector<Codec> out;
  out.push_back(make_codec<Configuration>("configuration", {empty, majority, joint_config()},
                                          encode_configuration, decode_configuration));
  out.push_back(make_codec<Entry>(
      "entry",
      {Entry{}, Entry{3, 17, EntryType::kNoop, ""},
       Entry{kU64Max, kU64Max, EntryType::kNormal, std::string(200, '\0')},
       Entry{9, 1u << 20, EntryType::kConfig, encode_configuration(joint_config())}},
      encode_entry, decode_entry));
  out.push_back(make_codec<HardState>(
      "hard state", {HardState{}, HardState{7, 3, 41}, HardState{kU64Max, kU64Max, kU64Max}},
      encode_hard_state, decode_hard_state));
  out.push_back(make_codec<SnapshotMeta>("snapshot meta",
                                         {SnapshotMeta{}, SnapshotMeta{500, 4, joint_config()}},
                                         encode_snapshot_meta, decode_snapshot_meta));
  return out;
}

TEST(VarintTest, RoundTripsAndLengthsAtBoundaries) {
  const std::pair<uint64_t, size_t> cases[] = {
      {0, 1},           {1, 1},        {127, 1},        {128, 2},
      {16383, 2},       {16384, 3},    {1ull << 35, 6}, {(1ull << 63) - 1, 9},
      {1ull << 63, 10}, {kU64Max, 10},
  };
  for (const auto& [value, length] : cases) {
    std::string bytes;
    put_varint(&bytes, value);
    EXPECT_EQ(bytes.size(), length) << value;
    std::string_view in = bytes;
    uint64_t got = 0;
    ASSERT_TRUE(get_varint(&in, &got)) << value;
    EXPECT_EQ(got, value);
    EXPECT_TRUE(in.empty());
  }
  std::string max;
  put_varint(&max, kU64Max);
  EXPECT_EQ(hex(max), "ff ff ff ff ff ff ff ff ff 01");
}

TEST(VarintTest, RejectsTruncatedOverlongAndOverflowingInput) {
  const std::string bad[] = {
      "",                                               // nothing
      "\x80"s,                                          // continuation, then end
      "\xff\xff"s,                                      // same, longer
      "\x80\x00"s,                                      // overlong zero
      "\xff\x00"s,                                      // overlong 127
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"s,      // 65 bits
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01"s,  // 11 bytes
      "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"s,
  };
  for (const std::string& b : bad) {
    std::string_view in = b;
    uint64_t v = 0;
    EXPECT_FALSE(get_varint(&in, &v)) << hex(b);
  }
  // A varint followed by more input leaves the rest.
  std::string_view in = "\x96\x01rest";
  uint64_t v = 0;
  ASSERT_TRUE(get_varint(&in, &v));
  EXPECT_EQ(v, 150u);
  EXPECT_EQ(in, "rest");
}

TEST(CodecTest, GoldenBytesPinFormatVersionOne) {
  Configuration c;
  c.mode = QuorumMode::kMajority;
  c.voters = {1, 300};
  c.tiebreaker = 1;
  c.members = {{1, "a"}, {300, ""}};
  c.removed = {2};
  // version mode tb | voters | out_tb | out_voters | learners | members | removed
  EXPECT_EQ(hex(encode_configuration(c)),
            "01 01 01 02 01 ac 02 00 00 00 02 01 01 61 ac 02 00 01 02");
  EXPECT_EQ(hex(encode_configuration(Configuration{})), "01 00 00 00 00 00 00 00 00");

  // version term index type data
  EXPECT_EQ(hex(encode_entry(Entry{2, 130, EntryType::kConfig, "hi"})), "01 02 82 01 02 02 68 69");
  EXPECT_EQ(hex(encode_entry(Entry{1, 1, EntryType::kNoop, ""})), "01 01 01 01 00");
  // version term vote commit
  EXPECT_EQ(hex(encode_hard_state(HardState{5, 3, 128})), "01 05 03 80 01");
  // version index term config-bytes
  EXPECT_EQ(hex(encode_snapshot_meta(SnapshotMeta{7, 2, Configuration{}})),
            "01 07 02 09 01 00 00 00 00 00 00 00 00");
}

TEST(CodecTest, ValuesRoundTrip) {
  const Configuration c = joint_config();
  Result<Configuration> rc = decode_configuration(encode_configuration(c));
  ASSERT_TRUE(rc.ok()) << rc.status().to_string();
  EXPECT_EQ(*rc, c);
  EXPECT_EQ(rc->members[2].context, "\0\xff\x80"s);

  const Entry e{9, 12345678, EntryType::kConfig, encode_configuration(c)};
  Result<Entry> re = decode_entry(encode_entry(e));
  ASSERT_TRUE(re.ok());
  EXPECT_EQ(*re, e);

  const HardState hs{kU64Max, 42, 1ull << 40};
  Result<HardState> rh = decode_hard_state(encode_hard_state(hs));
  ASSERT_TRUE(rh.ok());
  EXPECT_EQ(*rh, hs);

  const SnapshotMeta meta{1ull << 50, 77, c};
  Result<SnapshotMeta> rm = decode_snapshot_meta(encode_snapshot_meta(meta));
  ASSERT_TRUE(rm.ok());
  EXPECT_EQ(*rm, meta);

  // Deterministic: the same value always gives the same bytes.
  EXPECT_EQ(encode_snapshot_meta(meta), encode_snapshot_meta(SnapshotMeta(meta)));
  for (const Codec& codec : all_codecs()) {
    for (const std::string& s : codec.samples) {
      EXPECT_EQ(codec.decode(s), Code::kOk) << codec.name << ": " << hex(s);
      EXPECT_TRUE(codec.reencodes(s)) << codec.name;
    }
  }
}

TEST(CodecTest, EveryTruncationIsCorrupt) {
  size_t checked = 0;
  for (const Codec& codec : all_codecs()) {
    for (const std::string& s : codec.samples) {
      for (size_t len = 0; len < s.size(); ++len) {
        // A fresh heap copy of exactly `len` bytes, so ASan sees any overread.
        const std::string prefix = s.substr(0, len);
        ASSERT_EQ(codec.decode(prefix), Code::kCorrupt)
            << codec.name << " truncated to " << len << " of " << s.size();
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1000u);
}

TEST(CodecTest, TrailingBytesAndUnknownVersionsAreCorrupt) {
  for (const Codec& codec : all_codecs()) {
    for (const std::string& s : codec.samples) {
      EXPECT_EQ(codec.decode(s + '\0'), Code::kCorrupt) << codec.name;
      EXPECT_EQ(codec.decode(s + s), Code::kCorrupt) << codec.name;
      for (char version : {'\0', '\x02', '\x7f', '\xff'}) {
        std::string other = s;
        other[0] = version;
        EXPECT_EQ(codec.decode(other), Code::kCorrupt) << codec.name << " version " << +version;
      }
    }
  }
}

TEST(CodecTest, OutOfRangeEnumsAndBadVarintsAreCorrupt) {
  // Configuration mode byte 2.
  EXPECT_EQ(decode_configuration("\x01\x02\x00\x00\x00\x00\x00\x00\x00"s).code(), Code::kCorrupt);
  EXPECT_EQ(decode_configuration("\x01\x01\x00\x00\x00\x00\x00\x00\x00"s).code(), Code::kOk);
  // Entry type 3.
  EXPECT_EQ(decode_entry("\x01\x01\x01\x03\x00"s).code(), Code::kCorrupt);
  EXPECT_EQ(decode_entry("\x01\x01\x01\x02\x00"s).code(), Code::kOk);
  // Overlong varint for a hard state's term (0x80 0x00 instead of 0x00).
  EXPECT_EQ(decode_hard_state("\x01\x80\x00\x00\x00"s).code(), Code::kCorrupt);
  EXPECT_EQ(decode_hard_state("\x01\x00\x00\x00"s).code(), Code::kOk);
  // A 65-bit commit index.
  EXPECT_EQ(decode_hard_state("\x01\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"s).code(),
            Code::kCorrupt);
  // Entry data length longer than what follows.
  EXPECT_EQ(decode_entry("\x01\x01\x01\x00\x05"
                         "abcd"s)
                .code(),
            Code::kCorrupt);
  // Snapshot metadata whose configuration bytes are themselves malformed
  // (mode 9), though the outer length is right.
  EXPECT_EQ(decode_snapshot_meta("\x01\x07\x02\x09\x01\x09\x00\x00\x00\x00\x00\x00\x00"s).code(),
            Code::kCorrupt);
  // ... and whose configuration has a trailing byte inside the outer length.
  EXPECT_EQ(
      decode_snapshot_meta("\x01\x07\x02\x0a\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"s).code(),
      Code::kCorrupt);
}

TEST(CodecTest, HugeCountsAndLengthsFailWithoutAllocating) {
  // Voter count 2^62 in a 20-byte input: must fail, not reserve 2^62 ids.
  std::string voters = "\x01\x00\x00"s;
  put_varint(&voters, 1ull << 62);
  voters += std::string(10, '\x01');
  EXPECT_EQ(decode_configuration(voters).code(), Code::kCorrupt);
  // Member count that exceeds what the remaining bytes could hold.
  std::string members = "\x01\x00\x00\x00\x00\x00\x00"s;
  put_varint(&members, 5);                             // 5 members need at least 10 bytes
  members += "\x01\x00\x02\x00\x03\x00\x04\x00\x00"s;  // 9 bytes left
  EXPECT_EQ(decode_configuration(members).code(), Code::kCorrupt);
  // Entry data length UINT64_MAX.
  std::string entry = "\x01\x01\x01\x00"s;
  put_varint(&entry, kU64Max);
  entry += "abc";
  EXPECT_EQ(decode_entry(entry).code(), Code::kCorrupt);
  // Snapshot configuration length 2^40.
  std::string meta = "\x01\x01\x01"s;
  put_varint(&meta, 1ull << 40);
  EXPECT_EQ(decode_snapshot_meta(meta).code(), Code::kCorrupt);
}

TEST(CodecTest, RandomAndMutatedBytesDecodeCanonicallyOrFail) {
  // Every input either fails with kCorrupt or decodes to a value whose
  // encoding is exactly the input (the format is canonical).
  std::mt19937_64 rng(20240611);
  size_t accepted = 0, rejected = 0;
  auto check = [&](const Codec& codec, const std::string& input) {
    const Code code = codec.decode(input);
    ASSERT_TRUE(code == Code::kOk || code == Code::kCorrupt) << codec.name;
    if (code == Code::kOk) {
      ASSERT_TRUE(codec.reencodes(input)) << codec.name << ": " << hex(input);
      ++accepted;
    } else {
      ++rejected;
    }
  };
  for (const Codec& codec : all_codecs()) {
    for (int round = 0; round < 20000; ++round) {
      // Pure noise, biased to start with the version byte so that decoding
      // gets past the first check.
      std::string noise(rng() % 40, '\0');
      for (char& ch : noise) ch = static_cast<char>(rng() % 4 == 0 ? rng() % 3 : rng());
      if (!noise.empty() && rng() % 2) noise[0] = '\x01';
      check(codec, noise);
      // A valid sample with a few bytes changed, inserted or removed.
      std::string s = codec.samples[rng() % codec.samples.size()];
      for (int edits = 1 + rng() % 3; edits > 0 && !s.empty(); --edits) {
        const size_t at = rng() % s.size();
        switch (rng() % 4) {
          case 0:
            s[at] = static_cast<char>(rng());
            break;
          case 1:
            s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8)));
            break;
          case 2:
            s.insert(at, 1, static_cast<char>(rng()));
            break;
          default:
            s.erase(at, 1);
            break;
        }
      }
      check(codec, s);
    }
  }
  // Both outcomes really happened.
  EXPECT_GT(accepted, 1000u);
  EXPECT_GT(rejected, 10000u);
}

TEST(CheckConfigurationTest, AcceptsWellFormedAndNamesTheFirstViolation) {
  EXPECT_TRUE(check_configuration(Configuration{}).is_ok());
  Configuration good = joint_config();
  EXPECT_TRUE(check_configuration(good).is_ok()) << check_configuration(good).to_string();

  struct Case {
    const char* what;
    std::function<void(Configuration&)> breaks;
  };
  const Case cases[] = {
      {"unsorted voters",
       [](Configuration& c) {
         c.voters = {3, 2, 4, 1000};
       }},
      {"duplicate voter",
       [](Configuration& c) {
         c.voters = {2, 2, 3, 4, 1000};
       }},
      {"zero id",
       [](Configuration& c) {
         c.learners = {0, 7, kU64Max >> 1};
       }},
      {"tie-breaker not a voter", [](Configuration& c) { c.tiebreaker = 1; }},
      {"no tie-breaker", [](Configuration& c) { c.tiebreaker = kNoNode; }},
      {"outgoing tie-breaker", [](Configuration& c) { c.outgoing_tiebreaker = 4; }},
      {"empty half with one",
       [](Configuration& c) {
         c.outgoing_voters.clear();
         c.outgoing_tiebreaker = 2;
       }},
      {"learner is a voter",
       [](Configuration& c) {
         c.learners = {4, 7, kU64Max >> 1};
       }},
      {"removed is a voter",
       [](Configuration& c) {
         c.removed = {4, 5, 6};
       }},
      {"removed is a learner",
       [](Configuration& c) {
         c.removed = {5, 6, 7};
       }},
      {"unsorted removed",
       [](Configuration& c) {
         c.removed = {6, 5};
       }},
      {"member missing", [](Configuration& c) { c.members.pop_back(); }},
      {"extra member",
       [](Configuration& c) {
         c.members.push_back({kU64Max, ""});
       }},
      {"members unsorted", [](Configuration& c) { std::swap(c.members[0], c.members[1]); }},
  };
  for (const Case& k : cases) {
    Configuration c = good;
    k.breaks(c);
    const Status s = check_configuration(c);
    EXPECT_EQ(s.code(), Code::kInvalid) << k.what;
    EXPECT_FALSE(s.message().empty()) << k.what;
    // The codec itself carries such a value faithfully: it is format only.
    Result<Configuration> r = decode_configuration(encode_configuration(c));
    ASSERT_TRUE(r.ok()) << k.what;
    EXPECT_EQ(*r, c) << k.what;
  }
  // A voter being removed may stay in the outgoing half while joint.
  Configuration leaving = good;
  leaving.removed = {1, 5, 6};
  EXPECT_TRUE(check_configuration(leaving).is_ok()) << check_configuration(leaving).to_string();
}

}  // namespace
}  // namespace cset::raft
