// Redis-compatible text helpers (src/resp/text.h) and glob matching
// (src/resp/glob.h).
#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>

#include "resp/glob.h"
#include "resp/text.h"

namespace cset::resp {
namespace {

TEST(RespTextTest, ParseInt64AcceptsWhatString2llAccepts) {
  EXPECT_EQ(parse_int64("0"), 0);
  EXPECT_EQ(parse_int64("7"), 7);
  EXPECT_EQ(parse_int64("-7"), -7);
  EXPECT_EQ(parse_int64("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse_int64("-9223372036854775808"), std::numeric_limits<int64_t>::min());
  for (const char* bad :
       {"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1x", "0x10", "1.0", "9223372036854775808",
        "-9223372036854775809", "99999999999999999999", "123456789012345678901"}) {
    EXPECT_FALSE(parse_int64(bad).has_value()) << bad;
  }
}

TEST(RespTextTest, CaseHelpers) {
  EXPECT_TRUE(iequals("SAdd", "sadd"));
  EXPECT_FALSE(iequals("sadd", "sadd "));
  EXPECT_FALSE(iequals("[", "{"));  // only letters fold
  EXPECT_EQ(to_lower("CSET.Node"), "cset.node");
  EXPECT_EQ(to_upper("client"), "CLIENT");
}

TEST(RespTextTest, PrintablePrefix) {
  EXPECT_EQ(printable_prefix("abc", 2), "ab");
  EXPECT_EQ(printable_prefix(std::string("ab\0cd", 5), 10), "ab");
  EXPECT_EQ(printable_prefix("a\r\nb", 10), "a  b");
}

TEST(RespGlobTest, Wildcards) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "heeeello"));
  EXPECT_FALSE(glob_match("h*llo", "hellox"));
  EXPECT_TRUE(glob_match("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_FALSE(glob_match("*a*b*c*", "xxcxxbxxaxx"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_TRUE(glob_match("a**b", "ab"));
}

TEST(RespGlobTest, ClassesAndEscapes) {
  EXPECT_TRUE(glob_match("h[ae]llo", "hello"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(glob_match("h[b-a]llo", "hallo"));  // reversed range
  EXPECT_FALSE(glob_match("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(glob_match("a\\*b", "axb"));
  EXPECT_TRUE(glob_match("[\\]]", "]"));
  EXPECT_TRUE(glob_match("a\\", "a\\"));  // a trailing lone backslash is literal
  EXPECT_FALSE(glob_match("[", "["));     // an empty open class matches nothing
  EXPECT_TRUE(glob_match("[abc", "b"));   // an open class runs to the end
  EXPECT_TRUE(glob_match(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST(RespGlobTest, NoCase) {
  EXPECT_TRUE(glob_match("SADD", "sadd", true));
  EXPECT_FALSE(glob_match("SADD", "sadd", false));
  EXPECT_TRUE(glob_match("[A-C]*", "bx", true));
  EXPECT_TRUE(glob_match("cset.*", "CSET.NODE|ADD", true));
}

// The iterative matcher against a plain recursive reference on random
// patterns over a small alphabet.
bool reference_match(std::string_view p, std::string_view s) {
  if (p.empty()) return s.empty();
  if (p[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (reference_match(p.substr(1), s.substr(i))) return true;
    }
    return false;
  }
  if (s.empty()) return false;
  if (p[0] == '?' || p[0] == s[0]) return reference_match(p.substr(1), s.substr(1));
  return false;
}

TEST(RespGlobTest, AgreesWithAReferenceMatcher) {
  std::mt19937 rng(99);
  const std::string pattern_alphabet = "ab?*";
  const std::string subject_alphabet = "ab";
  for (int i = 0; i < 20000; ++i) {
    std::string p(rng() % 7, ' ');
    for (char& c : p) c = pattern_alphabet[rng() % pattern_alphabet.size()];
    std::string s(rng() % 8, ' ');
    for (char& c : s) c = subject_alphabet[rng() % subject_alphabet.size()];
    ASSERT_EQ(glob_match(p, s), reference_match(p, s)) << p << " / " << s;
  }
}

TEST(RespGlobTest, PathologicalPatternsAreFast) {
  // Exponential for a naive backtracking matcher; quadratic at worst here.
  std::string pattern;
  for (int i = 0; i < 100; ++i) pattern += "a*";
  pattern += "b";
  const std::string subject(5000, 'a');
  EXPECT_FALSE(glob_match(pattern, subject));
}

}  // namespace
}  // namespace cset::resp
