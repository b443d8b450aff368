// Helpers shared by the storage tests: temporary directories, a map-backed
// KvView, entry and snapshot builders, a store opener.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/types.h"
#include "set/kv.h"
#include "storage/rocks_store.h"

namespace cset::storage::testing {

/// A fresh directory removed at destruction. Under /dev/shm when it exists
/// (fsync is free there; durability is modelled by FaultFs, not the disk).
class TempDir {
 public:
  TempDir() {
    std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : ::testing::TempDir();
    std::string templ = base + "/cset-storage-XXXXXX";
    char* made = ::mkdtemp(templ.data());
    EXPECT_NE(made, nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline raft::Entry entry(raft::Index index, raft::Term term, std::string data = "") {
  return raft::Entry{term, index, raft::EntryType::kNormal, std::move(data)};
}

inline raft::Snapshot snapshot_at(raft::Index index, raft::Term term, std::string data = "image") {
  raft::Snapshot s;
  s.meta.index = index;
  s.meta.term = term;
  s.meta.config.voters = {1, 2, 3};
  s.meta.config.tiebreaker = 1;
  s.meta.config.members = {{1, "a"}, {2, "b"}, {3, "c"}};
  s.data = std::move(data);
  return s;
}

/// A KvView over two std::maps (the snapshot image a test installs).
class MapView : public set::KvView {
 public:
  std::map<std::string, std::string> data;
  std::map<std::string, std::string> meta;

  Result<std::optional<std::string>> get(set::Space s, std::string_view key) const override {
    const auto& m = s == set::Space::kData ? data : meta;
    auto it = m.find(std::string(key));
    if (it == m.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status scan(set::Space s, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    const auto& m = s == set::Space::kData ? data : meta;
    for (auto it = m.lower_bound(std::string(start)); it != m.end(); ++it) {
      if (!end.empty() && it->first >= end) break;
      if (!fn(it->first, it->second)) break;
    }
    return Status::ok();
  }
};

/// Everything in one space of a view, as a map.
inline std::map<std::string, std::string> dump(const set::KvView& view, set::Space s) {
  std::map<std::string, std::string> out;
  Status st = view.scan(s, "", "", [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return out;
}

inline StoreOptions options_for(const std::string& dir, raft::NodeId id = 1) {
  StoreOptions o;
  o.dir = dir;
  o.node_id = id;
  o.create_if_missing = true;
  o.block_cache_mb = 8;
  o.write_buffer_mb = 4;
  o.warn = [](const std::string&) {};
  return o;
}

inline std::unique_ptr<RocksStore> must_open(const StoreOptions& o) {
  auto r = RocksStore::open(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return nullptr;
  return std::move(r).value();
}

inline std::vector<raft::Index> indexes(const RocksStore& s, raft::Index lo, raft::Index hi,
                                        uint64_t max_bytes) {
  auto r = s.entries(lo, hi, max_bytes);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  std::vector<raft::Index> out;
  if (r.ok()) {
    for (const raft::Entry& e : *r) out.push_back(e.index);
  }
  return out;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Files in `dir` whose name ends with `suffix`, sorted.
inline std::vector<std::string> files_ending(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

constexpr uint64_t kNoLimit = ~0ull;

}  // namespace cset::storage::testing
