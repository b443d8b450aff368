// Damaged data directories (copies of a real one): flipped bytes and
// truncated files are refused at open with kCorrupt and a message naming the
// file, never a crash, a silently shortened log or a wrong answer; a torn
// final WAL record is dropped with a warning. Also the per-entry checksum and
// the format version, damaged through RocksDB itself.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <random>

#include "storage/format.h"
#include "storage/wal_scan.h"
#include "test_util.h"

namespace cset::storage {
namespace {

using namespace cset::storage::testing;  // NOLINT
using raft::Entry;
using raft::HardState;
using raft::Index;

constexpr Index kEntries = 300;

std::string data_of(Index i) { return "entry-" + std::to_string(i) + std::string(i % 50, '.'); }

// A store with entries 1..kEntries (the first 200 flushed to table files,
// the rest only in the WAL), a hard state and some set data.
void populate(const std::string& dir) {
  auto st = must_open(options_for(dir));
  ASSERT_NE(st, nullptr);
  for (Index i = 1; i <= kEntries; i += 10) {
    std::vector<Entry> batch;
    for (Index j = i; j < i + 10; ++j) batch.push_back(entry(j, 1 + j / 100, data_of(j)));
    ASSERT_TRUE(st->save(batch, HardState{1 + (i + 9) / 100, 1, i + 9}, true).is_ok());
    set::WriteBatch kv;
    kv.put(set::Space::kData, "member-" + std::to_string(i), "");
    kv.put(set::Space::kMeta, "A", std::to_string(i));
    ASSERT_TRUE(st->kv().write(kv, false).is_ok());
    if (i + 9 == 200) {
      ASSERT_TRUE(st->flush().is_ok());
    }
  }
  ASSERT_TRUE(st->sync().is_ok());
}

struct Outcome {
  Result<std::unique_ptr<RocksStore>> store;
  std::vector<std::string> warnings;
};

Outcome open_copy(const std::string& dir) {
  std::vector<std::string> warnings;
  StoreOptions o = options_for(dir);
  o.create_if_missing = false;
  o.warn = [&warnings](const std::string& m) { warnings.push_back(m); };
  auto r = RocksStore::open(o);
  return Outcome{std::move(r), warnings};
}

// The whole visible state, to compare a damaged copy with the original.
struct State {
  Index first = 0;
  Index last = 0;
  HardState hs;
  std::vector<Entry> log;
  std::map<std::string, std::string> data, meta;
  bool operator==(const State&) const = default;
};

Result<State> state_of(const RocksStore& s_const) {
  auto& s = const_cast<RocksStore&>(s_const);
  State st;
  st.first = s.first_index();
  st.last = s.last_index();
  st.hs = s.hard_state();
  if (st.last >= st.first) {
    auto es = s.entries(st.first, st.last + 1, kNoLimit);
    if (!es.ok()) return es.status();
    st.log = *es;
  }
  Status v = s.verify_log();
  if (!v) return v;
  auto collect = [&](set::Space sp, std::map<std::string, std::string>* out) {
    return s.kv().scan(sp, "", "", [&](std::string_view k, std::string_view val) {
      out->emplace(std::string(k), std::string(val));
      return true;
    });
  };
  Status c = collect(set::Space::kData, &st.data);
  if (!c) return c;
  c = collect(set::Space::kMeta, &st.meta);
  if (!c) return c;
  return st;
}

class CorruptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    original_ = new TempDir();
    populate(original_->path());
    // Read the expected state from a copy: opening replays and flushes the WAL.
    TempDir scratch;
    std::filesystem::copy(original_->path(), scratch.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
    auto st = must_open(options_for(scratch.path()));
    auto s = state_of(*st);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    expected_ = new State(*s);
  }
  static void TearDownTestSuite() {
    delete original_;
    delete expected_;
  }
  void SetUp() override {
    std::filesystem::copy(original_->path(), copy_.path(),
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::overwrite_existing);
  }
  std::string largest(const std::string& suffix) {
    auto files = files_ending(copy_.path(), suffix);
    EXPECT_FALSE(files.empty()) << suffix;
    std::string best;
    uintmax_t size = 0;
    for (const auto& f : files) {
      if (std::filesystem::file_size(f) >= size) {
        size = std::filesystem::file_size(f);
        best = f;
      }
    }
    return best;
  }
  void flip(const std::string& path, uint64_t at) {
    std::string bytes = read_file(path);
    ASSERT_LT(at, bytes.size());
    bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
    write_file(path, bytes);
  }
  void expect_refused_naming(const std::string& file) {
    Outcome o = open_copy(copy_.path());
    ASSERT_FALSE(o.store.ok()) << "a damaged " << file << " was accepted";
    EXPECT_EQ(o.store.code(), Code::kCorrupt) << o.store.status().to_string();
    const std::string name = std::filesystem::path(file).filename().string();
    EXPECT_NE(o.store.status().message().find(name), std::string::npos)
        << o.store.status().message();
    EXPECT_NE(o.store.status().message().find(copy_.path()), std::string::npos)
        << o.store.status().message();
  }

  static TempDir* original_;
  static State* expected_;
  TempDir copy_;
};

TempDir* CorruptionTest::original_ = nullptr;
State* CorruptionTest::expected_ = nullptr;

TEST_F(CorruptionTest, TheUndamagedCopyOpensWithTheSameState) {
  Outcome o = open_copy(copy_.path());
  ASSERT_TRUE(o.store.ok()) << o.store.status().to_string();
  auto s = state_of(**o.store);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, *expected_);
  EXPECT_EQ(s->last, kEntries);
  EXPECT_TRUE(o.warnings.empty());
}

TEST_F(CorruptionTest, AFlippedByteInTheMiddleOfTheWalIsRefusedNamingTheFile) {
  const std::string wal = largest(".log");
  flip(wal, std::filesystem::file_size(wal) / 2);
  expect_refused_naming(wal);
}

TEST_F(CorruptionTest, ATornFinalWalRecordIsDroppedWithAWarning) {
  const std::string wal = largest(".log");
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) - 20);
  Outcome o = open_copy(copy_.path());
  ASSERT_TRUE(o.store.ok()) << o.store.status().to_string();
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_NE(o.warnings[0].find(std::filesystem::path(wal).filename().string()), std::string::npos);
  EXPECT_NE(o.warnings[0].find("torn"), std::string::npos) << o.warnings[0];
  auto s = state_of(**o.store);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  // The last write (a sync of the WAL: no log record) or the last save is
  // gone; everything before it is intact and consistent.
  EXPECT_GE(s->last, kEntries - 10);
  EXPECT_LE(s->last, kEntries);
  for (const Entry& e : s->log) EXPECT_EQ(e.data, data_of(e.index));
}

TEST_F(CorruptionTest, HalfARecordOrRandomBytesAppendedToTheWalAreATornTail) {
  const std::string wal = largest(".log");
  const std::string bytes = read_file(wal);
  // Half of the first record: its header promises more than follows.
  const uint32_t len = static_cast<uint8_t>(bytes[4]) | static_cast<uint8_t>(bytes[5]) << 8;
  write_file(wal, bytes + bytes.substr(0, 7 + len / 2));
  Outcome o = open_copy(copy_.path());
  ASSERT_TRUE(o.store.ok()) << o.store.status().to_string();
  EXPECT_EQ(o.warnings.size(), 1u);
  auto s = state_of(**o.store);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, *expected_);
  o.store = Status(Code::kIo, "closed");

  SetUp();  // a fresh copy
  std::mt19937 rng(11);
  std::string garbage(100, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  garbage[5] = static_cast<char>(0xff);  // a length far past the end of the file
  write_file(wal, read_file(wal) + garbage);
  Outcome g = open_copy(copy_.path());
  ASSERT_TRUE(g.store.ok()) << g.store.status().to_string();
  EXPECT_EQ(g.warnings.size(), 1u);
  EXPECT_EQ(*state_of(**g.store), *expected_);
}

TEST_F(CorruptionTest, ADamagedLengthWithValidRecordsAfterItIsNotATornTail) {
  // RocksDB alone would take a record whose length runs past the end of the
  // file for a torn tail and silently drop the synced records after it.
  const std::string wal = largest(".log");
  std::string bytes = read_file(wal);
  auto clean = scan_wal_bytes(wal, bytes);
  ASSERT_EQ(clean.outcome, WalScanResult::Outcome::kClean);
  ASSERT_GT(clean.records, 3u);
  // Find the start of the second-to-last record in the last block.
  uint64_t pos = (bytes.size() / 32768) * 32768;
  std::vector<uint64_t> starts;
  while (pos + 7 <= bytes.size()) {
    const uint32_t len = static_cast<uint8_t>(bytes[pos + 4]) | static_cast<uint8_t>(bytes[pos + 5])
                                                                    << 8;
    starts.push_back(pos);
    pos += 7 + len;
  }
  ASSERT_GE(starts.size(), 2u);
  const uint64_t victim = starts[starts.size() - 2];
  bytes[victim + 5] = static_cast<char>(0x7f);  // length now runs past the end
  write_file(wal, bytes);
  expect_refused_naming(wal);
}

TEST_F(CorruptionTest, AFlippedByteInATableFileIsFoundAtOpen) {
  const std::string sst = largest(".sst");
  flip(sst, std::filesystem::file_size(sst) / 3);
  expect_refused_naming(sst);
}

TEST_F(CorruptionTest, ATruncatedTableFileIsRefused) {
  const std::string sst = largest(".sst");
  std::filesystem::resize_file(sst, std::filesystem::file_size(sst) / 2);
  expect_refused_naming(sst);
}

TEST_F(CorruptionTest, AFlippedByteInTheManifestIsRefused) {
  const std::string manifest = files_ending(copy_.path(), "").empty() ? "" : [&] {
    for (const auto& e : std::filesystem::directory_iterator(copy_.path())) {
      if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) return e.path().string();
    }
    return std::string();
  }();
  ASSERT_FALSE(manifest.empty());
  flip(manifest, std::filesystem::file_size(manifest) / 2);
  expect_refused_naming(manifest);
}

// Opens the copy with plain RocksDB to damage values the store wrote.
void put_raw(const std::string& dir, const char* family, const std::string& key,
             const std::function<std::string(std::string)>& change) {
  rocksdb::DBOptions o;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* name :
       {"default", kLogFamily, kRaftStateFamily, kDataFamily, kSmMetaFamily, kNodeFamily}) {
    cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir, cfs, &handles, &db).ok());
  size_t at = 0;
  for (size_t i = 0; i < cfs.size(); ++i) {
    if (cfs[i].name == family) at = i;
  }
  std::string value;
  rocksdb::Status st = db->Get(rocksdb::ReadOptions(), handles[at], key, &value);
  ASSERT_TRUE(st.ok() || st.IsNotFound());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[at], key, change(value)).ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

TEST_F(CorruptionTest, AnEntryWithABadChecksumIsCorruptNeverReturned) {
  // 137: not one of the entries the term-index bisection reads at open.
  put_raw(copy_.path(), kLogFamily, log_key(137), [](std::string v) {
    v.back() = static_cast<char>(v.back() ^ 1);
    return v;
  });
  Outcome o = open_copy(copy_.path());
  ASSERT_TRUE(o.store.ok()) << o.store.status().to_string();
  RocksStore& s = **o.store;
  ASSERT_EQ(s.last_index(), kEntries);
  auto r = s.entries(130, 160, kNoLimit);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kCorrupt);
  EXPECT_NE(r.status().message().find("log entry 137"), std::string::npos);
  EXPECT_EQ(s.verify_log().code(), Code::kCorrupt);
  EXPECT_TRUE(s.entries(138, 160, kNoLimit).ok());
  o.store = Status(Code::kIo, "closed");
  // An entry moved under another index fails too (the index is checksummed).
  SetUp();
  std::string moved;
  put_raw(copy_.path(), kLogFamily, log_key(151), [&](std::string v) {
    moved = v;
    return v;
  });
  put_raw(copy_.path(), kLogFamily, log_key(152), [&](std::string) { return moved; });
  Outcome m = open_copy(copy_.path());
  ASSERT_TRUE(m.store.ok());
  EXPECT_EQ((*m.store)->entries(152, 153, kNoLimit).code(), Code::kCorrupt);
}

TEST_F(CorruptionTest, ABadFirstOrLastEntryOrAnUnknownFormatStopsTheOpen) {
  put_raw(copy_.path(), kLogFamily, log_key(kEntries), [](std::string v) {
    v[5] = static_cast<char>(v[5] ^ 1);
    return v;
  });
  Outcome o = open_copy(copy_.path());
  ASSERT_FALSE(o.store.ok());
  EXPECT_EQ(o.store.code(), Code::kCorrupt);
  SetUp();
  put_raw(copy_.path(), kNodeFamily, kFormatVersionKey, [](std::string) {
    std::string v;
    put_u32be(&v, 99);
    return v;
  });
  Outcome f = open_copy(copy_.path());
  ASSERT_FALSE(f.store.ok());
  EXPECT_EQ(f.store.code(), Code::kCorrupt);
  EXPECT_NE(f.store.status().message().find("format version 99"), std::string::npos);
  EXPECT_NE(f.store.status().message().find("'node'"), std::string::npos);
}

TEST_F(CorruptionTest, RandomFlipsAndTruncationsNeverGiveWrongAnswers) {
  // Every damaged copy either is refused (kCorrupt, never a crash) or opens
  // with exactly the original state — or, when a torn WAL tail was reported,
  // a consistent prefix of it.
  std::mt19937_64 rng(2024);
  int refused = 0;
  for (int round = 0; round < 40; ++round) {
    SetUp();
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(copy_.path())) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name != "LOCK" && std::filesystem::file_size(e.path()) > 0) {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
    const std::string victim = files[rng() % files.size()];
    const uint64_t size = std::filesystem::file_size(victim);
    const bool truncate = rng() % 4 == 0;
    if (truncate) {
      std::filesystem::resize_file(victim, rng() % size);
    } else {
      flip(victim, rng() % size);
    }
    SCOPED_TRACE(victim + (truncate ? " truncated" : " flipped"));
    Outcome o = open_copy(copy_.path());
    if (!o.store.ok()) {
      EXPECT_TRUE(o.store.code() == Code::kCorrupt || o.store.code() == Code::kInvalid)
          << o.store.status().to_string();
      ++refused;
      continue;
    }
    auto s = state_of(**o.store);
    if (!s.ok()) {  // found on first read: still never a wrong answer
      EXPECT_EQ(s.code(), Code::kCorrupt) << s.status().to_string();
      continue;
    }
    if (s.value() == *expected_) continue;
    ASSERT_FALSE(o.warnings.empty()) << "state changed without a word";
    EXPECT_LE(s->last, expected_->last);
    for (const Entry& e : s->log) EXPECT_EQ(e.data, data_of(e.index));
  }
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace cset::storage
