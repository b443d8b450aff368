// MemoryStorage (raft/storage.h): the log shape around snapshots and
// compaction, append truncation, size-limited reads and the error codes the
// consensus core relies on. Cases after etcd's storage_test.go.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "raft/storage.h"

namespace cset::raft {
namespace {

Entry entry(Index index, Term term, std::string data = "") {
  return Entry{term, index, EntryType::kNormal, std::move(data)};
}

Snapshot snapshot_at(Index index, Term term, std::string data = "image") {
  Snapshot s;
  s.meta.index = index;
  s.meta.term = term;
  s.meta.config.voters = {1, 2, 3};
  s.meta.config.tiebreaker = 1;
  s.data = std::move(data);
  return s;
}

// Indexes of entries [lo, hi), or the error code as a negative marker.
std::vector<Index> indexes(const MemoryStorage& s, Index lo, Index hi, uint64_t max_bytes) {
  Result<std::vector<Entry>> r = s.entries(lo, hi, max_bytes);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  std::vector<Index> out;
  if (r.ok()) {
    for (const Entry& e : *r) out.push_back(e.index);
  }
  return out;
}

// A storage holding a snapshot at 3 (term 3) and entries 4..6 (terms 4, 5, 6).
MemoryStorage& with_snapshot_and_entries(MemoryStorage& s) {
  s.apply_snapshot(snapshot_at(3, 3));
  s.append({entry(4, 4), entry(5, 5), entry(6, 6)});
  return s;
}

constexpr uint64_t kNoLimit = ~0ull;

TEST(MemoryStorageTest, NewStorageIsEmpty) {
  MemoryStorage s;
  EXPECT_EQ(s.first_index(), 1u);
  EXPECT_EQ(s.last_index(), 0u);
  EXPECT_EQ(s.hard_state(), HardState{});
  EXPECT_TRUE(s.snapshot().empty());
  ASSERT_TRUE(s.term(0).ok());
  EXPECT_EQ(*s.term(0), 0u);
  EXPECT_EQ(s.term(1).code(), Code::kUnavailable);
  EXPECT_TRUE(indexes(s, 1, 1, kNoLimit).empty());
  EXPECT_EQ(s.entries(0, 1, kNoLimit).code(), Code::kCompacted);
  EXPECT_EQ(s.entries(1, 2, kNoLimit).code(), Code::kUnavailable);
}

TEST(MemoryStorageTest, HardStateIsStoredAsGiven) {
  MemoryStorage s;
  s.set_hard_state(HardState{5, 2, 9});
  EXPECT_EQ(s.hard_state(), (HardState{5, 2, 9}));
  s.set_hard_state(HardState{6, kNoNode, 9});
  EXPECT_EQ(s.hard_state(), (HardState{6, kNoNode, 9}));
}

TEST(MemoryStorageTest, TermAndBoundsAroundASnapshot) {
  MemoryStorage s;
  with_snapshot_and_entries(s);
  EXPECT_EQ(s.first_index(), 4u);
  EXPECT_EQ(s.last_index(), 6u);
  // Transcript: index -> term or error.
  const struct {
    Index i;
    Code code;
    Term term;
  } table[] = {
      {2, Code::kCompacted, 0}, {3, Code::kOk, 3},          {4, Code::kOk, 4},
      {6, Code::kOk, 6},        {7, Code::kUnavailable, 0},
  };
  for (const auto& row : table) {
    Result<Term> t = s.term(row.i);
    EXPECT_EQ(t.code(), row.code) << "term(" << row.i << ")";
    if (t.ok()) {
      EXPECT_EQ(*t, row.term) << "term(" << row.i << ")";
    }
  }
}

TEST(MemoryStorageTest, EntriesRangesAndErrors) {
  MemoryStorage s;
  with_snapshot_and_entries(s);
  EXPECT_EQ(s.entries(2, 6, kNoLimit).code(), Code::kCompacted);
  EXPECT_EQ(s.entries(3, 4, kNoLimit).code(), Code::kCompacted);  // the snapshot's own entry
  EXPECT_EQ(indexes(s, 4, 5, kNoLimit), (std::vector<Index>{4}));
  EXPECT_EQ(indexes(s, 4, 7, kNoLimit), (std::vector<Index>{4, 5, 6}));
  EXPECT_EQ(indexes(s, 5, 7, kNoLimit), (std::vector<Index>{5, 6}));
  EXPECT_TRUE(indexes(s, 7, 7, kNoLimit).empty());
  EXPECT_EQ(s.entries(4, 8, kNoLimit).code(), Code::kUnavailable);
  EXPECT_EQ(s.entries(6, 5, kNoLimit).code(), Code::kInvalid);
  // What comes back is what went in.
  Result<std::vector<Entry>> r = s.entries(5, 6, kNoLimit);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(0), entry(5, 5));
}

TEST(MemoryStorageTest, EntriesStopBeforeExceedingMaxBytes) {
  MemoryStorage s;
  s.append({entry(1, 1, std::string(100, 'a')), entry(2, 1, std::string(100, 'b')),
            entry(3, 1, std::string(100, 'c')), entry(4, 1, "")});
  // max_bytes -> indexes returned from [1, 5).
  const struct {
    uint64_t max_bytes;
    std::vector<Index> want;
  } table[] = {
      {0, {1}},  // at least one entry, however large
      {99, {1}},
      {100, {1}},
      {199, {1}},
      {200, {1, 2}},
      {299, {1, 2}},
      {300, {1, 2, 3, 4}},  // the empty entry 4 fits at 300
      {kNoLimit, {1, 2, 3, 4}},
  };
  for (const auto& row : table) {
    EXPECT_EQ(indexes(s, 1, 5, row.max_bytes), row.want) << "max_bytes " << row.max_bytes;
  }
  EXPECT_EQ(indexes(s, 2, 3, 0), (std::vector<Index>{2}));
}

TEST(MemoryStorageTest, AppendTruncatesAConflictingSuffix) {
  MemoryStorage s;
  with_snapshot_and_entries(s);
  // Appending truncates from the batch's first index, even when the entries
  // match: what followed the batch is gone.
  s.append({entry(4, 4), entry(5, 5)});
  EXPECT_EQ(s.last_index(), 5u);
  s.append({entry(6, 6)});
  // A conflicting entry at 5 replaces 5 and everything after it.
  s.append({entry(5, 7, "new"), entry(6, 7), entry(7, 7)});
  EXPECT_EQ(s.last_index(), 7u);
  EXPECT_EQ(*s.term(4), 4u);
  EXPECT_EQ(*s.term(5), 7u);
  EXPECT_EQ(s.entries(5, 6, kNoLimit)->at(0).data, "new");
  // Appending right after the last entry extends the log.
  s.append({entry(8, 7)});
  EXPECT_EQ(s.last_index(), 8u);
  // Replacing from the first index keeps the snapshot boundary.
  s.append({entry(4, 9)});
  EXPECT_EQ(s.first_index(), 4u);
  EXPECT_EQ(s.last_index(), 4u);
  EXPECT_EQ(*s.term(3), 3u);
  EXPECT_EQ(*s.term(4), 9u);
  s.append({});  // no-op
  EXPECT_EQ(s.last_index(), 4u);
}

TEST(MemoryStorageTest, AppendSkipsEntriesTheSnapshotCovers) {
  MemoryStorage s;
  with_snapshot_and_entries(s);
  // Entirely covered: ignored.
  s.append({entry(2, 2), entry(3, 3)});
  EXPECT_EQ(s.first_index(), 4u);
  EXPECT_EQ(s.last_index(), 6u);
  EXPECT_EQ(*s.term(3), 3u);
  // Straddling the snapshot: the covered part is dropped, the rest replaces.
  s.append({entry(2, 2), entry(3, 3), entry(4, 8), entry(5, 8)});
  EXPECT_EQ(s.first_index(), 4u);
  EXPECT_EQ(s.last_index(), 5u);
  EXPECT_EQ(*s.term(3), 3u);
  EXPECT_EQ(*s.term(4), 8u);
}

TEST(MemoryStorageDeathTest, AppendWithAGapOrHoleAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MemoryStorage s;
  s.append({entry(1, 1)});
  EXPECT_DEATH(s.append({entry(3, 1)}), "no gap");
  EXPECT_DEATH(s.append({entry(2, 1), entry(4, 1)}), "consecutive");
}

TEST(MemoryStorageTest, CompactKeepsTheTermOfTheLastDiscardedEntry) {
  MemoryStorage s;
  s.append({entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2), entry(5, 3)});
  ASSERT_TRUE(s.create_snapshot(snapshot_at(4, 2), 10).is_ok());  // keeps the whole log
  EXPECT_EQ(s.first_index(), 1u);
  s.compact(3);  // discards 1 and 2
  EXPECT_EQ(s.first_index(), 3u);
  EXPECT_EQ(s.last_index(), 5u);
  EXPECT_EQ(*s.term(2), 1u);
  EXPECT_EQ(s.term(1).code(), Code::kCompacted);
  EXPECT_EQ(s.entries(2, 4, kNoLimit).code(), Code::kCompacted);
  EXPECT_EQ(indexes(s, 3, 6, kNoLimit), (std::vector<Index>{3, 4, 5}));
  s.compact(2);  // already gone: no-op
  EXPECT_EQ(s.first_index(), 3u);
  s.compact(5);  // up to the snapshot index + 1
  EXPECT_EQ(s.first_index(), 5u);
  EXPECT_EQ(*s.term(4), 2u);
  EXPECT_EQ(*s.term(5), 3u);
}

TEST(MemoryStorageDeathTest, CompactBeyondTheSnapshotAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MemoryStorage s;
  s.append({entry(1, 1), entry(2, 1), entry(3, 1)});
  EXPECT_DEATH(s.compact(3), "covered by the snapshot");
}

TEST(MemoryStorageTest, CreateSnapshotKeepsTheRequestedEntries) {
  // keep_entries -> first index after a snapshot at 7 of the log 1..10.
  const struct {
    uint64_t keep;
    Index first;
  } table[] = {{0, 8}, {1, 7}, {3, 5}, {6, 2}, {7, 1}, {100, 1}};
  for (const auto& row : table) {
    MemoryStorage s;
    std::vector<Entry> log;
    for (Index i = 1; i <= 10; ++i) log.push_back(entry(i, (i + 1) / 2, "d"));
    s.append(log);
    ASSERT_TRUE(s.create_snapshot(snapshot_at(7, 4, "state@7"), row.keep).is_ok());
    EXPECT_EQ(s.first_index(), row.first) << "keep " << row.keep;
    EXPECT_EQ(s.last_index(), 10u);
    EXPECT_EQ(s.snapshot().meta.index, 7u);
    EXPECT_EQ(s.snapshot().data, "state@7");
    EXPECT_EQ(*s.term(s.first_index() - 1), (s.first_index() - 1 + 1) / 2) << row.keep;
    EXPECT_EQ(*s.term(7), 4u);
  }
}

TEST(MemoryStorageTest, CreateSnapshotRefusesOldBeyondOrMismatched) {
  MemoryStorage s;
  s.append({entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)});
  ASSERT_TRUE(s.create_snapshot(snapshot_at(3, 2), 0).is_ok());
  EXPECT_EQ(s.create_snapshot(snapshot_at(2, 1), 0).code(), Code::kInvalid);  // older
  EXPECT_EQ(s.create_snapshot(snapshot_at(5, 2), 0).code(), Code::kInvalid);  // beyond
  EXPECT_EQ(s.create_snapshot(snapshot_at(4, 1), 0).code(), Code::kInvalid);  // wrong term
  EXPECT_EQ(s.snapshot().meta.index, 3u);
  // The same index again is allowed (a newer image of the same applied state).
  ASSERT_TRUE(s.create_snapshot(snapshot_at(3, 2, "again"), 0).is_ok());
  EXPECT_EQ(s.snapshot().data, "again");
  ASSERT_TRUE(s.create_snapshot(snapshot_at(4, 2), 0).is_ok());
  EXPECT_EQ(s.first_index(), 5u);
  EXPECT_EQ(s.last_index(), 4u);
  EXPECT_EQ(*s.term(4), 2u);
}

TEST(MemoryStorageTest, ApplySnapshotReplacesTheLogAndIgnoresOlderOnes) {
  MemoryStorage s;
  s.append({entry(1, 1), entry(2, 1), entry(3, 2)});
  s.apply_snapshot(snapshot_at(10, 5, "ten"));
  EXPECT_EQ(s.first_index(), 11u);
  EXPECT_EQ(s.last_index(), 10u);
  EXPECT_EQ(*s.term(10), 5u);
  EXPECT_EQ(s.term(3).code(), Code::kCompacted);
  EXPECT_EQ(s.snapshot().data, "ten");
  EXPECT_EQ(s.snapshot().meta.config.voters, (std::vector<NodeId>{1, 2, 3}));

  // Older or equal: ignored.
  s.apply_snapshot(snapshot_at(8, 5, "eight"));
  s.apply_snapshot(snapshot_at(10, 5, "ten again"));
  EXPECT_EQ(s.snapshot().data, "ten");
  EXPECT_EQ(s.first_index(), 11u);

  // The log continues after the snapshot.
  s.append({entry(11, 6), entry(12, 6)});
  EXPECT_EQ(s.last_index(), 12u);
  // A newer snapshot drops entries even where they match.
  s.apply_snapshot(snapshot_at(11, 6, "eleven"));
  EXPECT_EQ(s.first_index(), 12u);
  EXPECT_EQ(s.last_index(), 11u);
  EXPECT_EQ(s.entries(12, 13, kNoLimit).code(), Code::kUnavailable);
}

TEST(MemoryStorageTest, SnapshotThenLongRunMatchesAModel) {
  // A scripted run: append, overwrite, snapshot, compact, checking every
  // index's term against a plain map after each step.
  MemoryStorage s;
  std::map<Index, Term> model;
  Index floor = 0;  // the index before the log: first_index() - 1
  auto verify = [&](int step) {
    ASSERT_EQ(s.first_index(), floor + 1) << step;
    ASSERT_EQ(s.last_index(), model.empty() ? floor : model.rbegin()->first) << step;
    for (const auto& [i, t] : model) {
      if (i < floor) continue;
      Result<Term> got = s.term(i);
      ASSERT_TRUE(got.ok()) << step << " index " << i;
      ASSERT_EQ(*got, t) << step << " index " << i;
    }
  };
  Term term = 1;
  for (int step = 0; step < 200; ++step) {
    const Index last = s.last_index();
    if (step % 7 == 3 && last > floor + 2) {
      // Overwrite the last two entries with a new term.
      ++term;
      s.append({entry(last - 1, term), entry(last, term), entry(last + 1, term)});
      model[last - 1] = model[last] = model[last + 1] = term;
    } else if (step % 11 == 10 && last > floor + 3) {
      const Index at = last - 2;
      ASSERT_TRUE(s.create_snapshot(snapshot_at(at, model[at]), 2).is_ok()) << step;
      floor = at - 2;
      for (auto it = model.begin(); it != model.end() && it->first < floor;) it = model.erase(it);
    } else {
      s.append({entry(last + 1, term)});
      model[last + 1] = term;
    }
    verify(step);
  }
}

}  // namespace
}  // namespace cset::raft
