// Test helper: every (key, value) of one key space of a Kv, in key order, so
// two states (or a state before and after a refused write) compare whole.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "set/kv.h"

namespace cset::set::test_util {

inline std::vector<std::pair<std::string, std::string>> dump(const KvView& kv, Space s) {
  std::vector<std::pair<std::string, std::string>> out;
  EXPECT_TRUE(kv.scan(s, "", "", [&](std::string_view k, std::string_view v) {
                  out.emplace_back(k, v);
                  return true;
                }).is_ok());
  return out;
}

}  // namespace cset::set::test_util
