#include "set/memory_kv.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace cset::set {
namespace {

using namespace std::string_literals;
using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs dump(const KvView& kv, Space s, std::string_view start = "", std::string_view end = "") {
  Pairs out;
  Status st = kv.scan(s, start, end, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  EXPECT_TRUE(st.is_ok());
  return out;
}

std::optional<std::string> get(const KvView& kv, Space s, std::string_view key) {
  auto v = kv.get(s, key);
  EXPECT_TRUE(v.ok());
  return *v;
}

TEST(MemoryKvTest, PutGetDeleteAndSpacesAreSeparate) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kData, "k", "v1");
  b.put(Space::kMeta, "k", "m1");
  ASSERT_TRUE(kv.write(b, true).is_ok());
  EXPECT_EQ(get(kv, Space::kData, "k"), "v1");
  EXPECT_EQ(get(kv, Space::kMeta, "k"), "m1");
  EXPECT_EQ(get(kv, Space::kData, "absent"), std::nullopt);
  WriteBatch d;
  d.del(Space::kData, "k");
  d.del(Space::kData, "never-there");
  ASSERT_TRUE(kv.write(d, false).is_ok());
  EXPECT_EQ(get(kv, Space::kData, "k"), std::nullopt);
  EXPECT_EQ(get(kv, Space::kMeta, "k"), "m1");
}

TEST(MemoryKvTest, LaterOpsInABatchWin) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kData, "k", "1");
  b.del(Space::kData, "k");
  b.put(Space::kData, "j", "1");
  b.put(Space::kData, "j", "2");
  ASSERT_TRUE(kv.write(b, false).is_ok());
  EXPECT_EQ(get(kv, Space::kData, "k"), std::nullopt);
  EXPECT_EQ(get(kv, Space::kData, "j"), "2");
}

TEST(MemoryKvTest, ScansInBytewiseOrderWithinBounds) {
  MemoryKv kv;
  WriteBatch b;
  for (std::string k : {"b"s, "a"s, ""s, "\0"s, "a\0"s, "\xff"s, "ab"s}) b.put(Space::kData, k, k);
  ASSERT_TRUE(kv.write(b, false).is_ok());
  Pairs all = dump(kv, Space::kData);
  std::vector<std::string> keys;
  for (auto& [k, v] : all) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{""s, "\0"s, "a"s, "a\0"s, "ab"s, "b"s, "\xff"s}));
  Pairs range = dump(kv, Space::kData, "a", "b");
  ASSERT_EQ(range.size(), 3u);
  EXPECT_EQ(range.front().first, "a");
  EXPECT_EQ(range.back().first, "ab");
  int visited = 0;
  ASSERT_TRUE(kv.scan(Space::kData, "", "", [&](std::string_view, std::string_view) {
                  return ++visited < 2;
                }).is_ok());
  EXPECT_EQ(visited, 2);
}

TEST(MemoryKvTest, ViewIsAPointInTime) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kData, "a", "1");
  ASSERT_TRUE(kv.write(b, false).is_ok());
  auto view = kv.view();
  WriteBatch c;
  c.put(Space::kData, "a", "2");
  c.put(Space::kData, "b", "2");
  ASSERT_TRUE(kv.write(c, false).is_ok());
  EXPECT_EQ(get(*view, Space::kData, "a"), "1");
  EXPECT_EQ(get(*view, Space::kData, "b"), std::nullopt);
  EXPECT_EQ(get(kv, Space::kData, "a"), "2");
  EXPECT_EQ(dump(*view, Space::kData).size(), 1u);
}

TEST(MemoryKvTest, ScanCallbackMayReadTheStore) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kData, "a", "b");
  b.put(Space::kData, "b", "x");
  ASSERT_TRUE(kv.write(b, false).is_ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(kv.scan(Space::kData, "", "", [&](std::string_view, std::string_view v) {
                  auto inner = kv.get(Space::kData, v);
                  seen.push_back(inner.ok() && inner->has_value() ? **inner : "-");
                  return true;
                }).is_ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"x", "-"}));
}

TEST(MemoryKvTest, FailedWriteChangesNothing) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kData, "a", "1");
  ASSERT_TRUE(kv.write(b, true).is_ok());
  kv.set_write_error(Status(Code::kNoSpace, "disk full"));
  WriteBatch c;
  c.put(Space::kData, "b", "1");
  c.del(Space::kData, "a");
  EXPECT_EQ(kv.write(c, true).code(), Code::kNoSpace);
  MemoryKv other;
  EXPECT_EQ(kv.replace_all(other).code(), Code::kNoSpace);
  EXPECT_EQ(get(kv, Space::kData, "a"), "1");
  EXPECT_EQ(get(kv, Space::kData, "b"), std::nullopt);
  kv.set_write_error(Status::ok());
  EXPECT_TRUE(kv.write(c, true).is_ok());
  EXPECT_EQ(get(kv, Space::kData, "b"), "1");
}

TEST(MemoryKvTest, PowerLossDropsOnlyUnsyncedWrites) {
  MemoryKv kv(MemoryKv::Options{.model_power_loss = true});
  auto put = [&](std::string k, bool sync) {
    WriteBatch b;
    b.put(Space::kData, k, "v");
    ASSERT_TRUE(kv.write(b, sync).is_ok());
  };
  put("a", false);
  put("b", true);  // makes "a" durable too, as an fsync of a WAL would
  put("c", false);
  auto view = kv.view();
  ASSERT_TRUE(kv.drop_unsynced().is_ok());
  EXPECT_EQ(get(kv, Space::kData, "a"), "v");
  EXPECT_EQ(get(kv, Space::kData, "b"), "v");
  EXPECT_EQ(get(kv, Space::kData, "c"), std::nullopt);
  EXPECT_EQ(get(*view, Space::kData, "c"), "v");  // an older view is untouched
  put("d", false);
  ASSERT_TRUE(kv.drop_unsynced().is_ok());
  EXPECT_EQ(kv.size(Space::kData), 2u);

  MemoryKv plain;
  EXPECT_EQ(plain.drop_unsynced().code(), Code::kInvalid);
}

TEST(MemoryKvTest, ReplaceAllCopiesBothSpacesAndIsDurable) {
  MemoryKv source;
  WriteBatch b;
  b.put(Space::kData, "d", "1");
  b.put(Space::kMeta, "m", "2");
  ASSERT_TRUE(source.write(b, false).is_ok());
  MemoryKv kv(MemoryKv::Options{.model_power_loss = true});
  WriteBatch old;
  old.put(Space::kData, "old", "x");
  ASSERT_TRUE(kv.write(old, true).is_ok());
  ASSERT_TRUE(kv.replace_all(source).is_ok());
  EXPECT_EQ(dump(kv, Space::kData), (Pairs{{"d", "1"}}));
  EXPECT_EQ(dump(kv, Space::kMeta), (Pairs{{"m", "2"}}));
  ASSERT_TRUE(kv.drop_unsynced().is_ok());
  EXPECT_EQ(dump(kv, Space::kData), (Pairs{{"d", "1"}}));
}

// Readers running beside a writer never see half a batch: every batch moves
// one unit between two keys, so their sum is constant in every read.
TEST(MemoryKvTest, ConcurrentReadersSeeWholeBatches) {
  MemoryKv kv;
  WriteBatch init;
  init.put(Space::kData, "x", "100");
  init.put(Space::kData, "y", "0");
  ASSERT_TRUE(kv.write(init, false).is_ok());
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  auto reader = [&] {
    while (!stop.load()) {
      int sum = 0;
      auto view = kv.view();
      for (const auto& [k, v] : dump(*view, Space::kData)) sum += std::stoi(v);
      if (sum != 100) torn.fetch_add(1);
    }
  };
  std::thread r1(reader);
  std::thread r2(reader);
  for (int i = 0; i < 2000; ++i) {
    WriteBatch b;
    b.put(Space::kData, "x", std::to_string(100 - i % 100));
    b.put(Space::kData, "y", std::to_string(i % 100));
    EXPECT_TRUE(kv.write(b, false).is_ok());
  }
  stop.store(true);
  r1.join();
  r2.join();
  EXPECT_EQ(torn.load(), 0);
}

}  // namespace
}  // namespace cset::set
