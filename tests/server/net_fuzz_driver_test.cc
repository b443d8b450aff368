// Runs the peer frame fuzz target's entry point (fuzz/peer_frame_fuzz.cc)
// without libFuzzer: over the checked-in seed corpus, then over 20,000
// deterministic inputs (mutations of the seeds and random bytes, one fixed
// seed). A crash, a sanitizer report or the target's own trap fails the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> load_corpus() {
  std::vector<std::string> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(CSET_PEER_FRAME_CORPUS_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::sort(seeds.begin(), seeds.end());  // directory order is not stable
  return seeds;
}

void run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string mutate(std::string s, const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  const int steps = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < steps; ++i) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // overwrite a byte with an interesting value
        if (!s.empty()) {
          const char values[] = {0, 1, 0x7f, static_cast<char>(0x80), static_cast<char>(0xff)};
          s[rng() % s.size()] = values[rng() % 5];
        }
        break;
      case 2:  // insert random bytes
        s.insert(s.begin() + static_cast<long>(s.empty() ? 0 : rng() % s.size()),
                 static_cast<size_t>(1 + rng() % 8), static_cast<char>(rng()));
        break;
      case 3:  // truncate
        if (!s.empty()) s.resize(rng() % s.size());
        break;
      case 4: {  // splice with another seed
        const std::string& other = seeds[rng() % seeds.size()];
        if (!other.empty()) s += other.substr(rng() % other.size());
        break;
      }
      case 5:  // switch between stream and payload mode
        if (!s.empty()) s[0] = static_cast<char>(s[0] ^ 0x80);
        break;
    }
  }
  return s;
}

TEST(NetFuzzDriver, SeedCorpus) {
  const std::vector<std::string> seeds = load_corpus();
  ASSERT_GE(seeds.size(), 8u);
  for (const std::string& s : seeds) run(s);
}

TEST(NetFuzzDriver, TwentyThousandDeterministicInputs) {
  const std::vector<std::string> seeds = load_corpus();
  ASSERT_FALSE(seeds.empty());
  std::mt19937_64 rng(20240605);
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    if (i % 5 == 0) {
      input.resize(rng() % 256);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = mutate(seeds[rng() % seeds.size()], seeds, rng);
    }
    run(input);
  }
}

}  // namespace
