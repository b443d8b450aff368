// Runs the libFuzzer entry point of fuzz/resp_parser_fuzz.cc without
// libFuzzer, so every debug build exercises it under ASan/UBSan: over every
// file of the checked-in seed corpus, then over 20,000 inputs mutated from
// it with a fixed seed (byte flips, insertions of protocol tokens, splices,
// truncations, pure noise). The entry point aborts on a broken invariant.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int run_one(const std::string& input) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::vector<std::string> load_corpus() {
  std::vector<std::string> corpus;
  for (const auto& entry : std::filesystem::directory_iterator(CSET_RESP_CORPUS_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream file(entry.path(), std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  return corpus;
}

std::string mutate(const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  static const std::vector<std::string> kTokens = {
      "*",       "$",     "\r\n",    "\r",          "\n",      "*1\r\n", "$0\r\n\r\n", "*-1\r\n",
      "$-1\r\n", "0",     "-1",      "99999999999", "1048577", "\"",     "'",          "\\x4",
      " ",       "SADD",  "COMMAND", "DOCS",        "CLIENT",  "HELLO",  "3",          "CSET.NODE",
      "ADD",     "MATCH", "COUNT",   "[",           "*?",      "\0"};
  std::string s = corpus[rng() % corpus.size()];
  if (s.empty()) s = "\x01";
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    const size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // flip a byte
        if (at < s.size()) s[at] = static_cast<char>(rng());
        break;
      case 1:  // insert a protocol token
        s.insert(at, kTokens[rng() % kTokens.size()]);
        break;
      case 2:  // delete a range
        if (at < s.size()) s.erase(at, 1 + rng() % 16);
        break;
      case 3: {  // splice in part of another seed
        const std::string& other = corpus[rng() % corpus.size()];
        const size_t from = other.empty() ? 0 : rng() % other.size();
        s.insert(at, other.substr(from, rng() % 64));
        break;
      }
      case 4:  // truncate
        s.resize(at);
        break;
      default:  // noise
        for (int i = 0, n = static_cast<int>(rng() % 32); i < n; ++i) {
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(std::min(at, s.size())),
                   static_cast<char>(rng()));
        }
        break;
    }
  }
  return s;
}

TEST(RespFuzzDriverTest, SeedCorpus) {
  const std::vector<std::string> corpus = load_corpus();
  ASSERT_GE(corpus.size(), 12u);
  for (const std::string& input : corpus) EXPECT_EQ(run_one(input), 0);
}

TEST(RespFuzzDriverTest, MutatedInputsFromAFixedSeed) {
  const std::vector<std::string> corpus = load_corpus();
  ASSERT_FALSE(corpus.empty());
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 20000; ++i) {
    std::string input = mutate(corpus, rng);
    ASSERT_EQ(run_one(input), 0) << "input " << i;
  }
}

}  // namespace
