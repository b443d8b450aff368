// RocksStore (storage/rocks_store.h): the raft::Storage contract — the same
// cases as MemoryStorage's (tests/raft/memory_storage_test.cc) — checked both
// on the open store and after a reopen, plus the write side (save as one
// batch with one fsync, snapshots, compaction), the set::Kv spaces and the
// directory's identity.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "raft/codec.h"
#include "storage/fault_fs.h"
#include "test_util.h"

namespace cset::storage {
namespace {

using namespace cset::storage::testing;  // NOLINT
using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::Term;

class RocksStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = must_open(options_for(dir_.path())); }
  RocksStore& s() { return *store_; }
  void reopen() {
    store_.reset();
    store_ = must_open(options_for(dir_.path()));
    ASSERT_NE(store_, nullptr);
  }
  // A snapshot at 3 (term 3) and entries 4..6 (terms 4, 5, 6).
  void with_snapshot_and_entries() {
    install(snapshot_at(3, 3));
    ASSERT_TRUE(s().append({entry(4, 4), entry(5, 5), entry(6, 6)}).is_ok());
  }
  void install(raft::Snapshot snap, MapView image = MapView()) {
    Status st = s().install_snapshot(std::move(snap), [&] { return s().kv().replace_all(image); });
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }

  TempDir dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(RocksStoreTest, NewStoreIsEmptyAndHasAnIdentity) {
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 1u);
    EXPECT_EQ(s().last_index(), 0u);
    EXPECT_EQ(s().hard_state(), HardState{});
    EXPECT_TRUE(s().snapshot().empty());
    ASSERT_TRUE(s().term(0).ok());
    EXPECT_EQ(*s().term(0), 0u);
    EXPECT_EQ(s().term(1).code(), Code::kUnavailable);
    EXPECT_TRUE(indexes(s(), 1, 1, kNoLimit).empty());
    EXPECT_EQ(s().entries(0, 1, kNoLimit).code(), Code::kCompacted);
    EXPECT_EQ(s().entries(1, 2, kNoLimit).code(), Code::kUnavailable);
    EXPECT_EQ(s().identity().node_id, 1u);
    EXPECT_EQ(s().identity().format_version, kStoreFormatVersion);
    EXPECT_EQ(s().identity().incarnation.size(), 16u);
    EXPECT_TRUE(s().verify_log().is_ok());
    reopen();
  }
}

TEST_F(RocksStoreTest, IncarnationIsRandomPerDirectoryAndStable) {
  const std::string first = s().identity().incarnation;
  reopen();
  EXPECT_EQ(s().identity().incarnation, first);
  TempDir other;
  auto again = must_open(options_for(other.path()));
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again->identity().incarnation, first);
}

TEST_F(RocksStoreTest, HardStateIsStoredAsGivenAndSurvivesReopen) {
  ASSERT_TRUE(s().set_hard_state(HardState{5, 2, 0}).is_ok());
  EXPECT_EQ(s().hard_state(), (HardState{5, 2, 0}));
  reopen();
  EXPECT_EQ(s().hard_state(), (HardState{5, 2, 0}));
  ASSERT_TRUE(s().set_hard_state(HardState{6, raft::kNoNode, 0}).is_ok());
  reopen();
  EXPECT_EQ(s().hard_state(), (HardState{6, raft::kNoNode, 0}));
}

TEST_F(RocksStoreTest, TermAndBoundsAroundASnapshot) {
  with_snapshot_and_entries();
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 4u);
    EXPECT_EQ(s().last_index(), 6u);
    const struct {
      Index i;
      Code code;
      Term term;
    } table[] = {
        {2, Code::kCompacted, 0}, {3, Code::kOk, 3},          {4, Code::kOk, 4},
        {6, Code::kOk, 6},        {7, Code::kUnavailable, 0},
    };
    for (const auto& row : table) {
      Result<Term> t = s().term(row.i);
      EXPECT_EQ(t.code(), row.code) << "term(" << row.i << ") round " << round;
      if (t.ok()) {
        EXPECT_EQ(*t, row.term) << "term(" << row.i << ")";
      }
    }
    reopen();
  }
}

TEST_F(RocksStoreTest, EntriesRangesAndErrors) {
  with_snapshot_and_entries();
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().entries(2, 6, kNoLimit).code(), Code::kCompacted);
    EXPECT_EQ(s().entries(3, 4, kNoLimit).code(), Code::kCompacted);
    EXPECT_EQ(indexes(s(), 4, 5, kNoLimit), (std::vector<Index>{4}));
    EXPECT_EQ(indexes(s(), 4, 7, kNoLimit), (std::vector<Index>{4, 5, 6}));
    EXPECT_EQ(indexes(s(), 5, 7, kNoLimit), (std::vector<Index>{5, 6}));
    EXPECT_TRUE(indexes(s(), 7, 7, kNoLimit).empty());
    EXPECT_EQ(s().entries(4, 8, kNoLimit).code(), Code::kUnavailable);
    EXPECT_EQ(s().entries(6, 5, kNoLimit).code(), Code::kInvalid);
    auto r = s().entries(5, 6, kNoLimit);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->at(0), entry(5, 5));
    reopen();
  }
}

TEST_F(RocksStoreTest, EntriesStopBeforeExceedingMaxBytes) {
  ASSERT_TRUE(s().append({entry(1, 1, std::string(100, 'a')), entry(2, 1, std::string(100, 'b')),
                          entry(3, 1, std::string(100, 'c')), entry(4, 1, "")})
                  .is_ok());
  const struct {
    uint64_t max_bytes;
    std::vector<Index> want;
  } table[] = {
      {0, {1}},      {99, {1}},     {100, {1}},          {199, {1}},
      {200, {1, 2}}, {299, {1, 2}}, {300, {1, 2, 3, 4}}, {kNoLimit, {1, 2, 3, 4}},
  };
  for (const auto& row : table) {
    EXPECT_EQ(indexes(s(), 1, 5, row.max_bytes), row.want) << "max_bytes " << row.max_bytes;
  }
  EXPECT_EQ(indexes(s(), 2, 3, 0), (std::vector<Index>{2}));
}

TEST_F(RocksStoreTest, AppendTruncatesAConflictingSuffix) {
  with_snapshot_and_entries();
  ASSERT_TRUE(s().append({entry(4, 4), entry(5, 5)}).is_ok());
  EXPECT_EQ(s().last_index(), 5u);
  ASSERT_TRUE(s().append({entry(6, 6)}).is_ok());
  ASSERT_TRUE(s().append({entry(5, 7, "new"), entry(6, 7), entry(7, 7)}).is_ok());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().last_index(), 7u);
    EXPECT_EQ(*s().term(4), 4u);
    EXPECT_EQ(*s().term(5), 7u);
    EXPECT_EQ(s().entries(5, 6, kNoLimit)->at(0).data, "new");
    reopen();
  }
  ASSERT_TRUE(s().append({entry(8, 7)}).is_ok());
  EXPECT_EQ(s().last_index(), 8u);
  ASSERT_TRUE(s().append({entry(4, 9)}).is_ok());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 4u);
    EXPECT_EQ(s().last_index(), 4u);
    EXPECT_EQ(*s().term(3), 3u);
    EXPECT_EQ(*s().term(4), 9u);
    EXPECT_EQ(s().entries(4, 6, kNoLimit).code(), Code::kUnavailable);
    EXPECT_TRUE(s().verify_log().is_ok()) << s().verify_log().to_string();
    reopen();
  }
  ASSERT_TRUE(s().append({}).is_ok());
  EXPECT_EQ(s().last_index(), 4u);
}

TEST_F(RocksStoreTest, AppendSkipsEntriesTheSnapshotCovers) {
  with_snapshot_and_entries();
  ASSERT_TRUE(s().append({entry(2, 2), entry(3, 3)}).is_ok());
  EXPECT_EQ(s().first_index(), 4u);
  EXPECT_EQ(s().last_index(), 6u);
  EXPECT_EQ(*s().term(3), 3u);
  ASSERT_TRUE(s().append({entry(2, 2), entry(3, 3), entry(4, 8), entry(5, 8)}).is_ok());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 4u);
    EXPECT_EQ(s().last_index(), 5u);
    EXPECT_EQ(*s().term(3), 3u);
    EXPECT_EQ(*s().term(4), 8u);
    reopen();
  }
}

TEST_F(RocksStoreTest, AppendWithAGapHoleOrFallingTermIsRefusedAndChangesNothing) {
  ASSERT_TRUE(s().append({entry(1, 1), entry(2, 2)}).is_ok());
  EXPECT_EQ(s().append({entry(4, 2)}).code(), Code::kInvalid);               // gap
  EXPECT_EQ(s().append({entry(3, 2), entry(5, 2)}).code(), Code::kInvalid);  // hole
  EXPECT_EQ(s().append({entry(3, 1)}).code(), Code::kInvalid);               // term falls
  EXPECT_EQ(s().save({entry(3, 3), entry(4, 2)}, HardState{3, 1, 2}, true).code(), Code::kInvalid);
  EXPECT_EQ(s().last_index(), 2u);
  EXPECT_EQ(s().hard_state(), HardState{});
  reopen();
  EXPECT_EQ(s().last_index(), 2u);
  EXPECT_EQ(s().hard_state(), HardState{});
}

TEST_F(RocksStoreTest, CompactKeepsTheTermOfTheLastDiscardedEntry) {
  ASSERT_TRUE(
      s().append({entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2), entry(5, 3)}).is_ok());
  ASSERT_TRUE(s().create_snapshot(snapshot_at(4, 2), 10).is_ok());
  EXPECT_EQ(s().first_index(), 1u);
  ASSERT_TRUE(s().compact(3).is_ok());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 3u);
    EXPECT_EQ(s().last_index(), 5u);
    EXPECT_EQ(*s().term(2), 1u);
    EXPECT_EQ(s().term(1).code(), Code::kCompacted);
    EXPECT_EQ(s().entries(2, 4, kNoLimit).code(), Code::kCompacted);
    EXPECT_EQ(indexes(s(), 3, 6, kNoLimit), (std::vector<Index>{3, 4, 5}));
    reopen();
  }
  ASSERT_TRUE(s().compact(2).is_ok());
  EXPECT_EQ(s().first_index(), 3u);
  ASSERT_TRUE(s().compact(5).is_ok());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 5u);
    EXPECT_EQ(*s().term(4), 2u);
    EXPECT_EQ(*s().term(5), 3u);
    EXPECT_TRUE(s().verify_log().is_ok());
    reopen();
  }
}

TEST_F(RocksStoreTest, CompactBeyondTheSnapshotOrTheLogIsRefused) {
  ASSERT_TRUE(s().append({entry(1, 1), entry(2, 1), entry(3, 1)}).is_ok());
  EXPECT_EQ(s().compact(3).code(), Code::kInvalid);
  ASSERT_TRUE(s().create_snapshot(snapshot_at(3, 1), 5).is_ok());
  EXPECT_EQ(s().compact(5).code(), Code::kInvalid);
  EXPECT_EQ(s().first_index(), 1u);
  ASSERT_TRUE(s().compact(4).is_ok());  // the whole log
  EXPECT_EQ(s().first_index(), 4u);
  EXPECT_EQ(s().last_index(), 3u);
  reopen();
  EXPECT_EQ(s().first_index(), 4u);
  EXPECT_EQ(s().last_index(), 3u);
  EXPECT_EQ(*s().term(3), 1u);
}

TEST_F(RocksStoreTest, CreateSnapshotKeepsTheRequestedEntries) {
  const struct {
    uint64_t keep;
    Index first;
  } table[] = {{0, 8}, {1, 7}, {3, 5}, {6, 2}, {7, 1}, {100, 1}};
  for (const auto& row : table) {
    TempDir dir;
    auto st = must_open(options_for(dir.path()));
    std::vector<Entry> log;
    for (Index i = 1; i <= 10; ++i) log.push_back(entry(i, (i + 1) / 2, "d"));
    ASSERT_TRUE(st->append(log).is_ok());
    ASSERT_TRUE(st->create_snapshot(snapshot_at(7, 4, "state@7"), row.keep).is_ok());
    for (int round = 0; round < 2; ++round) {
      EXPECT_EQ(st->first_index(), row.first) << "keep " << row.keep;
      EXPECT_EQ(st->last_index(), 10u);
      EXPECT_EQ(st->snapshot().meta.index, 7u);
      EXPECT_EQ(st->snapshot().meta, snapshot_at(7, 4).meta);
      EXPECT_EQ(*st->term(st->first_index() - 1), (st->first_index() - 1 + 1) / 2) << row.keep;
      EXPECT_EQ(*st->term(7), 4u);
      st.reset();
      st = must_open(options_for(dir.path()));
    }
  }
}

TEST_F(RocksStoreTest, CreateSnapshotRefusesOldBeyondOrMismatched) {
  ASSERT_TRUE(s().append({entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)}).is_ok());
  ASSERT_TRUE(s().create_snapshot(snapshot_at(3, 2), 0).is_ok());
  EXPECT_EQ(s().create_snapshot(snapshot_at(2, 1), 0).code(), Code::kInvalid);
  EXPECT_EQ(s().create_snapshot(snapshot_at(5, 2), 0).code(), Code::kInvalid);
  EXPECT_EQ(s().create_snapshot(snapshot_at(4, 1), 0).code(), Code::kInvalid);
  EXPECT_EQ(s().snapshot().meta.index, 3u);
  ASSERT_TRUE(s().create_snapshot(snapshot_at(3, 2, "again"), 0).is_ok());
  EXPECT_EQ(s().snapshot().data, "again");
  ASSERT_TRUE(s().create_snapshot(snapshot_at(4, 2), 0).is_ok());
  EXPECT_EQ(s().first_index(), 5u);
  EXPECT_EQ(s().last_index(), 4u);
  EXPECT_EQ(*s().term(4), 2u);
}

TEST_F(RocksStoreTest, SnapshotDataIsInMemoryAndMetaIsDurable) {
  ASSERT_TRUE(s().append({entry(1, 1), entry(2, 1)}).is_ok());
  ASSERT_TRUE(s().create_snapshot(snapshot_at(2, 1, "image@2"), 0).is_ok());
  EXPECT_EQ(s().snapshot().data, "image@2");
  reopen();
  EXPECT_EQ(s().snapshot().meta, snapshot_at(2, 1).meta);
  EXPECT_TRUE(s().snapshot().data.empty());  // documented: re-recorded by the owner
  ASSERT_TRUE(s().create_snapshot(snapshot_at(2, 1, "image@2 again"), 0).is_ok());
  EXPECT_EQ(s().snapshot().data, "image@2 again");
}

TEST_F(RocksStoreTest, SnapshotImagesAreBuiltOnlyWhenAFollowerNeedsOne) {
  std::vector<Entry> log;
  for (Index i = 1; i <= 8; ++i) log.push_back(entry(i, 1, "d"));
  ASSERT_TRUE(s().append(log).is_ok());
  Index applied = 5;
  int built = 0;
  bool fail = false;
  s().set_snapshot_source([&]() -> Result<raft::Snapshot> {
    if (fail) return Status(Code::kIo, "cannot read the state");
    ++built;
    return snapshot_at(applied, 1, "image@" + std::to_string(applied));
  });
  // Metadata only: nothing is encoded when the snapshot is taken.
  ASSERT_TRUE(s().create_snapshot(snapshot_at(3, 1, ""), 0).is_ok());
  EXPECT_EQ(built, 0);
  EXPECT_TRUE(s().snapshot().data.empty());
  // A follower needs it: built at the applied index, newer than the metadata.
  raft::SnapshotChunk c = s().snapshot_chunk(0, 4);
  EXPECT_EQ(built, 1);
  EXPECT_EQ(c.meta.index, 5u);
  EXPECT_EQ(c.total_bytes, 7u);
  EXPECT_EQ(c.bytes, "imag");
  c = s().snapshot_chunk(4, 100);  // the rest of the same image
  EXPECT_EQ(built, 1);
  EXPECT_EQ(c.meta.index, 5u);
  EXPECT_EQ(c.bytes, "e@5");
  // A snapshot older than the held image keeps it.
  ASSERT_TRUE(s().create_snapshot(snapshot_at(4, 1, ""), 0).is_ok());
  EXPECT_EQ(s().snapshot_chunk(0, 100).bytes, "image@5");
  EXPECT_EQ(built, 1);
  // A newer one makes it too old to send: the next chunk builds another.
  applied = 7;
  ASSERT_TRUE(s().create_snapshot(snapshot_at(6, 1, ""), 0).is_ok());
  c = s().snapshot_chunk(0, 100);
  EXPECT_EQ(built, 2);
  EXPECT_EQ(c.meta.index, 7u);
  EXPECT_EQ(c.bytes, "image@7");
  // No image to be had: total_bytes 0, never an empty image to install.
  ASSERT_TRUE(s().create_snapshot(snapshot_at(8, 1, ""), 0).is_ok());
  fail = true;
  c = s().snapshot_chunk(0, 100);
  EXPECT_EQ(c.total_bytes, 0u);
  EXPECT_EQ(c.meta.index, 8u);
  reopen();  // no source, no image held
  c = s().snapshot_chunk(0, 100);
  EXPECT_EQ(c.total_bytes, 0u);
  EXPECT_EQ(c.meta, snapshot_at(8, 1).meta);
}

TEST_F(RocksStoreTest, InstallSnapshotReplacesLogAndStateInOneStep) {
  ASSERT_TRUE(s().append({entry(1, 1), entry(2, 1), entry(3, 2)}).is_ok());
  set::WriteBatch old;
  old.put(set::Space::kData, "old-member", "");
  old.put(set::Space::kMeta, "A", "3");
  ASSERT_TRUE(s().kv().write(old, true).is_ok());
  MapView image;
  image.data = {{"m1", ""}, {std::string("\0bin\xff", 5), ""}};
  image.meta = {{"A", "10"}};
  install(snapshot_at(10, 5, "ten"), image);
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(s().first_index(), 11u);
    EXPECT_EQ(s().last_index(), 10u);
    EXPECT_EQ(*s().term(10), 5u);
    EXPECT_EQ(s().term(3).code(), Code::kCompacted);
    EXPECT_EQ(s().snapshot().meta.config.voters, (std::vector<raft::NodeId>{1, 2, 3}));
    EXPECT_EQ(dump(s().kv(), set::Space::kData), image.data);
    EXPECT_EQ(dump(s().kv(), set::Space::kMeta), image.meta);
    reopen();
  }
  // Older or equal: ignored, restore not even called.
  bool called = false;
  ASSERT_TRUE(s().install_snapshot(snapshot_at(8, 5),
                                   [&] {
                                     called = true;
                                     return Status::ok();
                                   })
                  .is_ok());
  EXPECT_FALSE(called);
  ASSERT_TRUE(s().append({entry(11, 6), entry(12, 6)}).is_ok());
  EXPECT_EQ(s().last_index(), 12u);
  install(snapshot_at(11, 6, "eleven"), image);
  EXPECT_EQ(s().first_index(), 12u);
  EXPECT_EQ(s().last_index(), 11u);
  EXPECT_EQ(s().snapshot().data, "eleven");
  EXPECT_EQ(s().entries(12, 13, kNoLimit).code(), Code::kUnavailable);
}

TEST_F(RocksStoreTest, FailedInstallChangesNothing) {
  ASSERT_TRUE(s().append({entry(1, 1), entry(2, 1)}).is_ok());
  EXPECT_EQ(
      s().install_snapshot(snapshot_at(5, 2), [] { return Status(Code::kCorrupt, "bad image"); })
          .code(),
      Code::kCorrupt);
  EXPECT_EQ(s().install_snapshot(snapshot_at(5, 2), [] { return Status::ok(); }).code(),
            Code::kInvalid);
  EXPECT_EQ(s().last_index(), 2u);
  EXPECT_TRUE(s().snapshot().empty());
  reopen();
  EXPECT_EQ(s().last_index(), 2u);
  EXPECT_TRUE(s().snapshot().empty());
}

TEST_F(RocksStoreTest, SaveIsOneBatchWithOneWalSync) {
  TempDir dir;
  auto fs = std::make_shared<FaultFs>();
  StoreOptions o = options_for(dir.path());
  o.fs = fs;
  auto st = must_open(o);
  std::vector<Entry> batch;
  for (Index i = 1; i <= 256; ++i) batch.push_back(entry(i, 1, std::string(100, 'x')));
  const uint64_t before = fs->wal_syncs();
  ASSERT_TRUE(st->save(batch, HardState{1, 1, 200}, true).is_ok());
  EXPECT_EQ(fs->wal_syncs() - before, 1u);
  const uint64_t mid = fs->wal_syncs();
  ASSERT_TRUE(st->save({entry(257, 1)}, HardState{1, 1, 257}, false).is_ok());
  EXPECT_EQ(fs->wal_syncs(), mid);
  EXPECT_EQ(st->last_index(), 257u);
  EXPECT_EQ(st->hard_state().commit, 257u);
}

TEST_F(RocksStoreTest, LongRunWithReopensMatchesAModel) {
  // Appends, overwrites, snapshots and compactions with a reopen every few
  // steps; after each step every index's term and data match a plain map.
  std::map<Index, Term> model;
  Index floor = 0;
  std::mt19937_64 rng(7);
  auto data_of = [](Index i, Term t) { return std::to_string(i) + "/" + std::to_string(t); };
  auto verify = [&](int step) {
    ASSERT_EQ(s().first_index(), floor + 1) << step;
    ASSERT_EQ(s().last_index(), model.empty() ? floor : model.rbegin()->first) << step;
    for (const auto& [i, t] : model) {
      if (i < floor) continue;
      ASSERT_EQ(*s().term(i), t) << step << " index " << i;
    }
    if (s().last_index() > floor) {
      auto es = s().entries(floor + 1, s().last_index() + 1, kNoLimit);
      ASSERT_TRUE(es.ok()) << es.status().to_string();
      for (const Entry& e : *es) ASSERT_EQ(e.data, data_of(e.index, e.term)) << step;
    }
  };
  Term term = 1;
  for (int step = 0; step < 300; ++step) {
    const Index last = s().last_index();
    if (step % 7 == 3 && last > floor + 2) {
      ++term;
      ASSERT_TRUE(s().append({entry(last - 1, term, data_of(last - 1, term)),
                              entry(last, term, data_of(last, term)),
                              entry(last + 1, term, data_of(last + 1, term))})
                      .is_ok());
      model[last - 1] = model[last] = model[last + 1] = term;
    } else if (step % 11 == 10 && last > floor + 3) {
      const Index at = last - 2;
      ASSERT_TRUE(s().create_snapshot(snapshot_at(at, model[at]), 2).is_ok()) << step;
      floor = at - 2;
      for (auto it = model.begin(); it != model.end() && it->first < floor;) it = model.erase(it);
    } else {
      const size_t n = 1 + rng() % 4;
      std::vector<Entry> batch;
      for (size_t k = 0; k < n; ++k) {
        batch.push_back(entry(last + 1 + k, term, data_of(last + 1 + k, term)));
        model[last + 1 + k] = term;
      }
      ASSERT_TRUE(s().save(batch, HardState{term, 1, last}, step % 2 == 0).is_ok());
    }
    verify(step);
    if (step % 25 == 24) {
      reopen();
      verify(step);
      ASSERT_TRUE(s().verify_log().is_ok()) << s().verify_log().to_string();
    }
  }
}

TEST_F(RocksStoreTest, EntriesFromMemoryAndFromTheLogAgreeWithAModel) {
  // entries() serves the newest entries from memory (at most 8192 entries,
  // 8 MiB of data) and older ones from the log column family. A long run of
  // appends, conflicting suffixes (shorter and longer), compactions and
  // reopens (which empty the memory), with ranges and max_bytes at random,
  // must read back exactly what a plain model holds, on both paths.
  std::map<Index, Entry> model;
  Index floor = 0;  // entries at or below it are compacted
  std::mt19937_64 rng(11);
  auto data_of = [&](Index i, Term t) {
    // Mostly small, now and then 64 KiB, so that the byte bound is reached too.
    const size_t size = rng() % 50 == 0 ? (64u << 10) : rng() % 300;
    std::string d = std::to_string(i) + "/" + std::to_string(t) + "/";
    d.resize(std::max(d.size(), size), static_cast<char>('a' + i % 26));
    return d;
  };
  auto expect_range = [&](Index lo, Index hi, uint64_t max_bytes, const std::string& where) {
    auto es = s().entries(lo, hi, max_bytes);
    ASSERT_TRUE(es.ok()) << where << ": " << es.status().to_string();
    std::vector<Entry> want;
    uint64_t bytes = 0;
    for (Index i = lo; i < hi; ++i) {
      const Entry& e = model.at(i);
      if (!want.empty() && bytes + e.data.size() > max_bytes) break;
      bytes += e.data.size();
      want.push_back(e);
    }
    ASSERT_EQ(es->size(), want.size()) << where << " lo " << lo << " hi " << hi;
    for (size_t k = 0; k < want.size(); ++k) {
      ASSERT_EQ((*es)[k].index, want[k].index) << where;
      ASSERT_EQ((*es)[k].term, want[k].term) << where << " index " << want[k].index;
      ASSERT_EQ((*es)[k].type, want[k].type) << where << " index " << want[k].index;
      ASSERT_EQ((*es)[k].data, want[k].data) << where << " index " << want[k].index;
    }
  };
  auto check = [&](int step) {
    const Index last = s().last_index();
    ASSERT_EQ(last, model.empty() ? floor : model.rbegin()->first);
    if (last == floor) return;
    for (int q = 0; q < 6; ++q) {
      // Half the queries near the end (memory), half anywhere (the log).
      const Index span = last - floor;
      const Index lo =
          q % 2 == 0 ? last - std::min<Index>(span - 1, rng() % 64) : floor + 1 + rng() % span;
      const Index hi = lo + 1 + rng() % std::min<Index>(last - lo + 1, 200);
      const uint64_t max_bytes = rng() % 3 == 0 ? 1 + rng() % 4096 : kNoLimit;
      expect_range(lo, hi, max_bytes, "step " + std::to_string(step));
    }
    EXPECT_EQ(s().entries(last + 1, last + 2, kNoLimit).status().code(), Code::kUnavailable);
    if (floor > 0) {
      EXPECT_EQ(s().entries(floor, last + 1, kNoLimit).status().code(), Code::kCompacted);
    }
  };
  Term term = 1;
  for (int step = 0; step < 1500; ++step) {
    const Index last = s().last_index();
    const int kind = static_cast<int>(rng() % 20);
    if (kind == 0 && last > floor + 10) {
      // A new term overwrites a suffix: shorter or longer than the old one.
      ++term;
      const Index from = last - rng() % 10;
      const size_t n = 1 + rng() % 20;
      std::vector<Entry> batch;
      for (size_t k = 0; k < n; ++k)
        batch.push_back(entry(from + k, term, data_of(from + k, term)));
      ASSERT_TRUE(s().append(batch, false).is_ok()) << step;
      model.erase(model.lower_bound(from), model.end());
      for (const Entry& e : batch) model[e.index] = e;
    } else if (kind == 1 && last > floor + 12000) {
      const Index to = last - 9000 - rng() % 1000;  // keeps more than memory holds
      ASSERT_TRUE(s().create_snapshot(snapshot_at(to, model.at(to).term), 0).is_ok()) << step;
      ASSERT_TRUE(s().compact(to + 1).is_ok()) << step;
      model.erase(model.begin(), model.upper_bound(to));
      floor = to;
    } else if (kind == 2 && step % 10 == 0) {
      reopen();
    } else {
      const size_t n = 1 + rng() % 32;
      std::vector<Entry> batch;
      for (size_t k = 0; k < n; ++k) {
        batch.push_back(entry(last + 1 + k, term, data_of(last + 1 + k, term)));
        if (rng() % 7 == 0) batch.back().type = raft::EntryType::kNoop;
      }
      ASSERT_TRUE(s().save(batch, HardState{term, 1, floor}, false).is_ok()) << step;
      for (const Entry& e : batch) model[e.index] = e;
    }
    check(step);
    if (::testing::Test::HasFatalFailure()) return;
  }
  ASSERT_GT(s().last_index() - floor, 8192u) << "the run must outgrow the in-memory entries";
  // Everything again from the log alone.
  const Index last = s().last_index();
  std::vector<Entry> before = *s().entries(floor + 1, last + 1, kNoLimit);
  reopen();
  expect_range(floor + 1, last + 1, kNoLimit, "after the final reopen");
  ASSERT_EQ(before.size(), last - floor);
}

TEST_F(RocksStoreTest, ManyTermsAreFoundAgainAfterReopen) {
  // One run per term change: the term index is rebuilt by bisection.
  std::vector<Term> terms;
  Term t = 1;
  std::mt19937_64 rng(3);
  std::vector<Entry> all;
  for (Index i = 1; i <= 5000; ++i) {
    if (rng() % 50 == 0) t += 1 + rng() % 3;
    all.push_back(entry(i, t));
    terms.push_back(t);
  }
  ASSERT_TRUE(s().append(all).is_ok());
  ASSERT_TRUE(s().create_snapshot(snapshot_at(1000, terms[999]), 100).is_ok());
  reopen();
  EXPECT_EQ(s().first_index(), 901u);
  for (Index i = 900; i <= 5000; ++i) ASSERT_EQ(*s().term(i), terms[i - 1]) << i;
  EXPECT_EQ(s().term(899).code(), Code::kCompacted);
  EXPECT_TRUE(s().verify_log().is_ok());
}

TEST_F(RocksStoreTest, KvWritesAreAtomicViewsArePointInTime) {
  set::Kv& kv = s().kv();
  set::WriteBatch b;
  b.put(set::Space::kData, "k1", "v1");
  b.put(set::Space::kData, "k2", "v2");
  b.put(set::Space::kMeta, "A", "1");
  ASSERT_TRUE(kv.write(b, false).is_ok());
  auto view = kv.view();
  set::WriteBatch c;
  c.del(set::Space::kData, "k1");
  c.put(set::Space::kData, "k3", "v3");
  c.put(set::Space::kMeta, "A", "2");
  ASSERT_TRUE(kv.write(c, true).is_ok());
  EXPECT_EQ(dump(*view, set::Space::kData),
            (std::map<std::string, std::string>{{"k1", "v1"}, {"k2", "v2"}}));
  EXPECT_EQ(*view->get(set::Space::kMeta, "A").value(), "1");
  EXPECT_EQ(dump(kv, set::Space::kData),
            (std::map<std::string, std::string>{{"k2", "v2"}, {"k3", "v3"}}));
  EXPECT_FALSE(kv.get(set::Space::kData, "k1").value().has_value());
  // Bounded scan, stopped early.
  std::vector<std::string> seen;
  ASSERT_TRUE(kv.scan(set::Space::kData, "k2", "k3", [&](std::string_view k, std::string_view) {
                  seen.emplace_back(k);
                  return true;
                }).is_ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"k2"}));
  view.reset();
  reopen();
  EXPECT_EQ(*s().kv().get(set::Space::kMeta, "A").value(), "2");
  // replace_all alone (no install pending) replaces both spaces only.
  ASSERT_TRUE(s().append({entry(1, 1)}).is_ok());
  MapView image;
  image.data = {{"z", "1"}};
  ASSERT_TRUE(s().kv().replace_all(image).is_ok());
  EXPECT_EQ(dump(s().kv(), set::Space::kData), image.data);
  EXPECT_TRUE(dump(s().kv(), set::Space::kMeta).empty());
  EXPECT_EQ(s().last_index(), 1u);
}

// ---- Identity ----

TEST(RocksStoreIdentityTest, AnotherNodesDirectoryIsRefused) {
  TempDir dir;
  { ASSERT_NE(must_open(options_for(dir.path(), 7)), nullptr); }
  StoreOptions o = options_for(dir.path(), 8);
  auto r = RocksStore::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find(dir.path()), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("node 7"), std::string::npos) << r.status().message();
  o.node_id = raft::kNoNode;  // a tool: accept whatever is recorded
  o.create_if_missing = false;
  auto any = RocksStore::open(o);
  ASSERT_TRUE(any.ok()) << any.status().to_string();
  EXPECT_EQ((*any)->identity().node_id, 7u);
}

TEST(RocksStoreIdentityTest, ClusterIdIsRecordedOnceAndEnforced) {
  TempDir dir;
  StoreOptions o = options_for(dir.path());
  {
    auto st = must_open(o);  // cluster not known yet
    EXPECT_TRUE(st->identity().cluster_id.empty());
    ASSERT_TRUE(st->set_cluster_id("alpha").is_ok());
    ASSERT_TRUE(st->set_cluster_id("alpha").is_ok());
    EXPECT_EQ(st->set_cluster_id("beta").code(), Code::kInvalid);
  }
  o.cluster_id = "beta";
  auto r = RocksStore::open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("alpha"), std::string::npos);
  EXPECT_NE(r.status().message().find(dir.path()), std::string::npos);
  o.cluster_id = "alpha";
  EXPECT_TRUE(RocksStore::open(o).ok());
  o.cluster_id = "";
  auto st = RocksStore::open(o);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*st)->identity().cluster_id, "alpha");
}

TEST(RocksStoreIdentityTest, MissingStoreWithoutCreateAndRemainsWithoutCurrentAreRefused) {
  TempDir dir;
  StoreOptions o = options_for(dir.sub("absent"));
  o.create_if_missing = false;
  auto r = RocksStore::open(o);
  EXPECT_EQ(r.code(), Code::kInvalid);
  { ASSERT_NE(must_open(options_for(dir.path())), nullptr); }
  std::filesystem::remove(dir.sub("CURRENT"));
  auto again = RocksStore::open(options_for(dir.path()));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Code::kCorrupt);
  EXPECT_NE(again.status().message().find(dir.path()), std::string::npos);
}

}  // namespace
}  // namespace cset::storage
