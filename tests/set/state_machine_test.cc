#include "set/state_machine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "set/command.h"
#include "set/memory_kv.h"
#include "tests/set/kv_dump.h"

namespace cset::set {
namespace {

using namespace std::string_literals;
using raft::Entry;
using raft::EntryType;
using Strings = std::vector<std::string>;

Entry normal(raft::Index index, const Command& command) {
  return Entry{1, index, EntryType::kNormal, encode_command(command)};
}

// A state machine over its own MemoryKv, with helpers that append entries.
class Node {
 public:
  explicit Node(MemoryKv::Options options = {}) : kv(options), sm(&kv) {
    EXPECT_TRUE(sm.load().is_ok());
  }

  // Applies one command at the next index; returns its result.
  ApplyResult run(const Command& command) {
    auto results = sm.apply({normal(sm.applied_index() + 1, command)}, true);
    EXPECT_TRUE(results.ok()) << results.status().to_string();
    EXPECT_EQ(results->size(), 1u);
    return results->at(0);
  }
  uint64_t add(std::string key, Strings members) {
    return run(Command::add(std::move(key), std::move(members))).count;
  }
  uint64_t rem(std::string key, Strings members) {
    return run(Command::rem(std::move(key), std::move(members))).count;
  }
  Strings members(std::string_view key) {
    auto m = sm.members(key, 1000000);
    EXPECT_TRUE(m.ok());
    return *m;
  }
  uint64_t size(std::string_view key) { return *sm.size(key); }
  bool contains(std::string_view key, std::string_view member) { return *sm.contains(key, member); }

  MemoryKv kv;
  StateMachine sm;
};

using test_util::dump;

TEST(StateMachineTest, AddCountsNewlyAddedMembers) {
  Node n;
  EXPECT_EQ(n.add("k", {"a", "b"}), 2u);
  EXPECT_EQ(n.add("k", {"b", "c", "c"}), 1u);  // a repeated member counts once
  EXPECT_EQ(n.add("k", {"a"}), 0u);
  EXPECT_EQ(n.size("k"), 3u);
  EXPECT_EQ(n.members("k"), (Strings{"a", "b", "c"}));
  EXPECT_TRUE(*n.sm.exists("k"));
  EXPECT_FALSE(*n.sm.exists("other"));
  EXPECT_EQ(n.size("other"), 0u);
}

TEST(StateMachineTest, StrictAddRefusesAPresentMember) {
  Node n;
  ApplyResult first = n.run(Command::add_strict("k", "a"));
  EXPECT_TRUE(first.status.is_ok());
  EXPECT_EQ(first.count, 1u);
  ApplyResult second = n.run(Command::add_strict("k", "a"));
  EXPECT_EQ(second.status.code(), Code::kExists);
  EXPECT_EQ(second.count, 0u);
  EXPECT_EQ(n.size("k"), 1u);
  EXPECT_EQ(n.sm.applied_index(), 2u);
}

TEST(StateMachineTest, RemCountsRemovedMembersAndEmptySetsVanish) {
  Node n;
  n.add("k", {"a", "b", "c"});
  EXPECT_EQ(n.rem("k", {"a", "x", "a"}), 1u);
  EXPECT_EQ(n.rem("k", {"a"}), 0u);
  EXPECT_EQ(n.rem("absent", {"a"}), 0u);
  EXPECT_EQ(n.size("k"), 2u);
  EXPECT_EQ(n.rem("k", {"b", "c"}), 2u);
  EXPECT_EQ(n.size("k"), 0u);
  EXPECT_FALSE(*n.sm.exists("k"));
  EXPECT_TRUE(dump(n.kv, Space::kData).empty());
  auto keys = n.sm.scan_keys("", 10);
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->items.empty());
}

TEST(StateMachineTest, DelRemovesWholeSetsOnly) {
  Node n;
  // "a" with member "b..." and "ab" share leading bytes; the length prefix
  // keeps them apart.
  n.add("a", {"b", "bc"});
  n.add("ab", {"", "c"});
  n.add("", {"x"});
  ApplyResult r = n.run(Command::del({"a", "a", "missing", ""}));
  EXPECT_EQ(r.count, 2u);
  EXPECT_EQ(n.size("a"), 0u);
  EXPECT_EQ(n.members("a"), Strings{});
  EXPECT_EQ(n.size(""), 0u);
  EXPECT_EQ(n.members("ab"), (Strings{"", "c"}));
  EXPECT_EQ(n.run(Command::del({"a"})).count, 0u);
}

TEST(StateMachineTest, BatchSeesItsOwnEarlierCommands) {
  Node n;
  auto results =
      n.sm.apply({normal(1, Command::add("k", {"a"})), normal(2, Command::add("k", {"a", "b"})),
                  normal(3, Command::add_strict("k", "b")), normal(4, Command::del({"k"})),
                  normal(5, Command::add("k", {"c"}))},
                 true);
  ASSERT_TRUE(results.ok());
  std::vector<uint64_t> counts;
  for (const ApplyResult& r : *results) counts.push_back(r.count);
  EXPECT_EQ(counts, (std::vector<uint64_t>{1, 1, 0, 1, 1}));
  EXPECT_EQ(results->at(2).status.code(), Code::kExists);
  EXPECT_EQ(n.members("k"), (Strings{"c"}));
  EXPECT_EQ(n.size("k"), 1u);
}

TEST(StateMachineTest, ReplayedEntriesAreSkipped) {
  Node n;
  std::vector<Entry> log = {normal(1, Command::add("k", {"a"})),
                            normal(2, Command::rem("k", {"a"})),
                            normal(3, Command::add("k", {"b"}))};
  ASSERT_TRUE(n.sm.apply(log, true).ok());
  auto before = dump(n.kv, Space::kData);
  auto again = n.sm.apply(log, true);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(dump(n.kv, Space::kData), before);
  log.push_back(normal(4, Command::add("k", {"c"})));
  auto tail = n.sm.apply({log[1], log[2], log[3]}, true);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ(tail->at(0).index, 4u);
  EXPECT_EQ(n.members("k"), (Strings{"b", "c"}));
}

TEST(StateMachineTest, GapsAndDisorderAreRefusedWholesale) {
  Node n;
  n.add("k", {"a"});
  auto gap = n.sm.apply({normal(3, Command::add("k", {"b"}))}, true);
  EXPECT_EQ(gap.code(), Code::kInvalid);
  auto disorder =
      n.sm.apply({normal(2, Command::add("k", {"b"})), normal(2, Command::add("k", {"c"}))}, true);
  EXPECT_EQ(disorder.code(), Code::kInvalid);
  EXPECT_EQ(n.sm.applied_index(), 1u);
  EXPECT_EQ(n.members("k"), (Strings{"a"}));
}

TEST(StateMachineTest, FailedWriteAppliesNothing) {
  Node n;
  n.add("k", {"a"});
  n.kv.set_write_error(Status(Code::kNoSpace, "disk full"));
  auto r = n.sm.apply({normal(2, Command::add("k", {"b"}))}, true);
  EXPECT_EQ(r.code(), Code::kNoSpace);
  EXPECT_EQ(n.sm.applied_index(), 1u);
  EXPECT_EQ(n.members("k"), (Strings{"a"}));
  n.kv.set_write_error(Status::ok());
  EXPECT_EQ(n.add("k", {"b"}), 1u);
  EXPECT_EQ(n.sm.applied_index(), 2u);
}

// The applied index lives in the same batch as the mutations: after a power
// cut the state machine is either before or after a batch, and replaying the
// log from its applied index rebuilds exactly the lost part.
TEST(StateMachineTest, AppliedIndexIsAtomicWithMutations) {
  Node n(MemoryKv::Options{.model_power_loss = true});
  std::vector<Entry> log = {normal(1, Command::add("k", {"a"})),
                            normal(2, Command::add("k", {"b"})),
                            normal(3, Command::rem("k", {"a"}))};
  ASSERT_TRUE(n.sm.apply({log[0]}, true).ok());
  ASSERT_TRUE(n.sm.apply({log[1], log[2]}, false).ok());  // not synced
  ASSERT_TRUE(n.kv.drop_unsynced().is_ok());
  StateMachine restarted(&n.kv);
  ASSERT_TRUE(restarted.load().is_ok());
  EXPECT_EQ(restarted.applied_index(), 1u);
  EXPECT_EQ(*restarted.members("k", 10), (Strings{"a"}));
  EXPECT_EQ(*restarted.size("k"), 1u);
  auto replay = restarted.apply(log, true);
  ASSERT_TRUE(replay.ok());
  ASSERT_EQ(replay->size(), 2u);
  EXPECT_EQ(replay->at(0).count, 1u);  // "b" newly added, as the first time
  EXPECT_EQ(replay->at(1).count, 1u);
  EXPECT_EQ(*restarted.members("k", 10), (Strings{"b"}));
  ASSERT_TRUE(n.kv.drop_unsynced().is_ok());
  StateMachine again(&n.kv);
  ASSERT_TRUE(again.load().is_ok());
  EXPECT_EQ(again.applied_index(), 3u);
}

TEST(StateMachineTest, NoopAndConfigEntries) {
  Node n;
  auto results = n.sm.apply({Entry{2, 1, EntryType::kNoop, ""},
                             Entry{2, 2, EntryType::kConfig,
                                   "\x01"
                                   "config-v1"s},
                             Entry{2, 3, EntryType::kConfig, "\x01\0config-v2"s}},
                            true);
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 3u);
  for (const ApplyResult& r : *results) {
    EXPECT_TRUE(r.status.is_ok());
    EXPECT_EQ(r.count, 0u);
  }
  EXPECT_EQ(results->at(0).type, EntryType::kNoop);
  EXPECT_EQ(n.sm.applied_index(), 3u);
  EXPECT_EQ(n.sm.config_bytes(), "\x01\0config-v2"s);
  EXPECT_EQ(n.sm.config_index(), 3u);
  EXPECT_TRUE(dump(n.kv, Space::kData).empty());
  StateMachine restarted(&n.kv);
  ASSERT_TRUE(restarted.load().is_ok());
  EXPECT_EQ(restarted.applied_index(), 3u);
  EXPECT_EQ(restarted.config_bytes(), "\x01\0config-v2"s);
  EXPECT_EQ(restarted.config_index(), 3u);
}

TEST(StateMachineTest, UndecodableCommandFailsButAdvances) {
  Node n;
  n.add("k", {"a"});
  auto before = dump(n.kv, Space::kData);
  auto results = n.sm.apply(
      {Entry{1, 2, EntryType::kNormal, "\x07garbage"}, Entry{1, 3, EntryType::kNormal, ""}}, true);
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ(results->at(0).status.code(), Code::kCorrupt);
  EXPECT_EQ(results->at(1).status.code(), Code::kCorrupt);
  EXPECT_EQ(n.sm.applied_index(), 3u);
  EXPECT_EQ(dump(n.kv, Space::kData), before);
}

// Field case C12: binary members and keys survive byte for byte and stay distinct.
TEST(StateMachineTest, C12BinaryMembersAreExactAndDistinct) {
  Node n;
  const Strings members = {""s,         "\0"s, "a\0b"s, "\r\n"s, "*1\r\n$3\r\nfoo"s,
                           "\xff\xfe"s, "1"s,  "01"s,   "1.0"s,  std::string(65536, 'm')};
  for (std::string key : {"k"s, ""s, "\0"s, "\xff\xfe"s}) {
    for (const std::string& m : members) {
      EXPECT_EQ(n.add(key, {m}), 1u) << key << "/" << m;
      EXPECT_EQ(n.add(key, {m}), 0u) << key << "/" << m;
    }
    Strings sorted = members;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(n.members(key), sorted);
    EXPECT_EQ(n.size(key), members.size());
    for (const std::string& m : members) EXPECT_TRUE(n.contains(key, m));
    EXPECT_FALSE(n.contains(key, "a"));
    EXPECT_FALSE(n.contains(key, "\0\0"s));
    EXPECT_FALSE(n.contains(key, "1.00"));
  }
  EXPECT_EQ(n.rem("k", {"01"}), 1u);
  EXPECT_TRUE(n.contains("k", "1"));
  EXPECT_TRUE(n.contains("k", "1.0"));
}

TEST(StateMachineTest, MembersOverTheLimitIsTooBig) {
  Node n;
  n.add("k", {"a", "b", "c"});
  EXPECT_EQ(n.sm.members("k", 2).code(), Code::kTooBig);
  auto ok = n.sm.members("k", 3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 3u);
  EXPECT_TRUE(n.sm.members("absent", 0).ok());
}

// Collects every member of `key` by SSCAN pages of `count`.
Strings scan_all(const StateMachine& sm, std::string_view key, size_t count) {
  Strings out;
  std::string cursor;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = sm.scan_members(key, cursor, count);
    EXPECT_TRUE(page.ok());
    EXPECT_LE(page->items.size(), count);
    out.insert(out.end(), page->items.begin(), page->items.end());
    if (!page->next_cursor) return out;
    cursor = *page->next_cursor;
  }
  ADD_FAILURE() << "scan did not end";
  return out;
}

TEST(StateMachineTest, ScanMembersPagesThroughInOrder) {
  Node n;
  Strings members = {"", "\0"s, "a", "b", "c", "d", "e"};
  n.add("k", members);
  n.add("k2", {"zz"});
  for (size_t count : {1u, 2u, 3u, 7u, 100u}) EXPECT_EQ(scan_all(n.sm, "k", count), members);
  EXPECT_EQ(scan_all(n.sm, "absent", 2), Strings{});
  EXPECT_EQ(n.sm.scan_members("k", "", 0).code(), Code::kInvalid);
}

// A cursor is a position in the data: a scan started on one node continues on
// another that applied the same log, and members present throughout the scan
// are returned exactly once despite inserts and removals in between.
TEST(StateMachineTest, ScanCursorsSurviveWritesAndNodes) {
  Node a;
  Node b;
  auto both = [&](const Command& c) {
    a.run(c);
    b.run(c);
  };
  both(Command::add("k", {"b", "d", "f", "h"}));
  auto first = a.sm.scan_members("k", "", 2);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->items, (Strings{"b", "d"}));
  ASSERT_TRUE(first->next_cursor.has_value());
  both(Command::add("k", {"a", "c", "e", "g"}));
  both(Command::rem("k", {"f"}));
  Strings rest;
  std::optional<std::string> cursor = first->next_cursor;
  while (cursor) {
    auto page = b.sm.scan_members("k", *cursor, 2);  // continued on the other node
    ASSERT_TRUE(page.ok());
    rest.insert(rest.end(), page->items.begin(), page->items.end());
    cursor = page->next_cursor;
  }
  // "h" was present throughout: returned. "f" was removed: not returned. Of
  // the members added mid-scan, "g" lies after the cursor ("f") and is seen;
  // "e" lies before it and is not (Redis's SSCAN guarantees allow either).
  EXPECT_EQ(rest, (Strings{"g", "h"}));
}

TEST(StateMachineTest, ScanKeysListsNonEmptySets) {
  Node n;
  for (std::string k : {"b"s, "a"s, ""s, "c"s, "\0"s}) n.add(k, {"m"});
  n.rem("c", {"m"});
  Strings keys;
  std::string cursor;
  while (true) {
    auto page = n.sm.scan_keys(cursor, 2);
    ASSERT_TRUE(page.ok());
    keys.insert(keys.end(), page->items.begin(), page->items.end());
    if (!page->next_cursor) break;
    n.add("a0", {"m"});  // inserted after the cursor's position: seen
    cursor = *page->next_cursor;
  }
  EXPECT_EQ(keys, (Strings{""s, "\0"s, "a"s, "a0"s, "b"s}));
}

// ---- snapshots ----

void populate(Node& n) {
  n.add("k", {"a", "b", "\0"s});
  n.add("", {""});
  n.add("other", {"x"});
  n.rem("other", {"x"});
  EXPECT_TRUE(n.sm.apply({Entry{3, 5, EntryType::kConfig,
                                "\x01"
                                "cfg"s}},
                         true)
                  .ok());
  n.add("\r\n"s, {"\xff"s});
}

TEST(StateMachineTest, SnapshotRoundTrip) {
  Node source;
  populate(source);
  auto image = source.sm.encode_snapshot();
  ASSERT_TRUE(image.ok());
  Node target;
  target.add("stale", {"gone"});
  ASSERT_TRUE(target.sm.restore_snapshot(*image, source.sm.applied_index()).is_ok());
  EXPECT_EQ(target.sm.applied_index(), 6u);
  EXPECT_EQ(target.sm.config_bytes(),
            "\x01"
            "cfg"s);
  EXPECT_EQ(target.sm.config_index(), 5u);
  EXPECT_EQ(dump(target.kv, Space::kData), dump(source.kv, Space::kData));
  EXPECT_EQ(dump(target.kv, Space::kMeta), dump(source.kv, Space::kMeta));
  EXPECT_EQ(target.size("stale"), 0u);
  EXPECT_EQ(target.members("k"), (Strings{"\0"s, "a", "b"}));
  // The restored node carries on from the snapshot's index.
  EXPECT_EQ(target.add("k", {"c"}), 1u);
  EXPECT_EQ(target.sm.applied_index(), 7u);
  // Same state, same image: snapshots are deterministic.
  auto again = source.sm.encode_snapshot();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *image);
}

TEST(StateMachineTest, EmptySnapshotRoundTrip) {
  Node source;
  auto image = source.sm.encode_snapshot();
  ASSERT_TRUE(image.ok());
  Node target;
  ASSERT_TRUE(target.sm.restore_snapshot(*image, 0).is_ok());
  EXPECT_EQ(target.sm.applied_index(), 0u);
}

void expect_rejected_unchanged(Node& target, std::string_view image, raft::Index index, Code code) {
  auto data = dump(target.kv, Space::kData);
  auto meta = dump(target.kv, Space::kMeta);
  raft::Index applied = target.sm.applied_index();
  EXPECT_EQ(target.sm.restore_snapshot(image, index).code(), code);
  EXPECT_EQ(dump(target.kv, Space::kData), data);
  EXPECT_EQ(dump(target.kv, Space::kMeta), meta);
  EXPECT_EQ(target.sm.applied_index(), applied);
}

TEST(StateMachineTest, CorruptSnapshotIsRejectedWithoutChangingState) {
  Node source;
  populate(source);
  std::string image = *source.sm.encode_snapshot();
  const raft::Index index = source.sm.applied_index();
  Node target;
  target.add("mine", {"kept"});
  for (size_t n = 0; n < image.size(); ++n) {
    expect_rejected_unchanged(target, image.substr(0, n), index, Code::kCorrupt);
  }
  for (size_t pos = 0; pos < image.size(); ++pos) {
    for (int bit : {0, 3, 7}) {
      std::string flipped = image;
      flipped[pos] = static_cast<char>(flipped[pos] ^ (1 << bit));
      expect_rejected_unchanged(target, flipped, index, Code::kCorrupt);
    }
  }
  expect_rejected_unchanged(target, image + "x", index, Code::kCorrupt);
  expect_rejected_unchanged(target, image, index + 1, Code::kCorrupt);  // wrong index
  EXPECT_EQ(target.members("mine"), (Strings{"kept"}));
}

// An image whose checksum is right but whose contents break the layout (a
// cardinality counter that disagrees with its members) is refused too.
TEST(StateMachineTest, InconsistentSnapshotIsRejected) {
  MemoryKv bogus;
  WriteBatch b;
  b.put(Space::kData, data_key("k", "a"), "");
  b.put(Space::kMeta, "Kk", std::string("\0\0\0\0\0\0\0\x02", 8));
  b.put(Space::kMeta, "A", std::string("\0\0\0\0\0\0\0\x09", 8));
  ASSERT_TRUE(bogus.write(b, false).is_ok());
  StateMachine encoder(&bogus);
  ASSERT_TRUE(encoder.load().is_ok());
  Node target;
  expect_rejected_unchanged(target, *encoder.encode_snapshot(), 9, Code::kCorrupt);

  MemoryKv unknown_meta;
  WriteBatch u;
  u.put(Space::kMeta, "Zzz", "?");
  ASSERT_TRUE(unknown_meta.write(u, false).is_ok());
  StateMachine encoder2(&unknown_meta);
  expect_rejected_unchanged(target, *encoder2.encode_snapshot(), 0, Code::kCorrupt);
}

TEST(StateMachineTest, SnapshotBehindTheAppliedIndexIsRefused) {
  Node source;
  source.add("k", {"a"});
  std::string image = *source.sm.encode_snapshot();
  Node target;
  target.add("k", {"b"});
  target.add("k", {"c"});
  expect_rejected_unchanged(target, image, 1, Code::kInvalid);
}

TEST(StateMachineTest, LoadRefusesAnUnknownFormat) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kMeta, "F", "\x03");
  ASSERT_TRUE(kv.write(b, false).is_ok());
  StateMachine sm(&kv);
  EXPECT_EQ(sm.load().code(), Code::kCorrupt);
  WriteBatch c;
  c.put(Space::kMeta, "F", "\x01");
  c.put(Space::kMeta, "A", "short");
  ASSERT_TRUE(kv.write(c, false).is_ok());
  EXPECT_EQ(sm.load().code(), Code::kCorrupt);
}

// Determinism: the same log applied in differently sized batches gives the
// same bytes everywhere.
TEST(StateMachineTest, BatchingDoesNotChangeTheOutcome) {
  std::vector<Entry> log;
  raft::Index i = 0;
  for (int round = 0; round < 30; ++round) {
    std::string m = std::to_string(round % 7);
    log.push_back(normal(++i, Command::add("k" + std::to_string(round % 3), {m, "x"})));
    log.push_back(normal(++i, Command::rem("k" + std::to_string(round % 2), {m})));
    if (round % 5 == 0) log.push_back(normal(++i, Command::del({"k1"})));
    if (round % 4 == 0) log.push_back(normal(++i, Command::add_strict("k2", m)));
  }
  Node one;
  auto all = one.sm.apply(log, true);
  ASSERT_TRUE(all.ok());
  for (size_t batch : {1u, 3u, 8u}) {
    Node other;
    std::vector<ApplyResult> results;
    for (size_t at = 0; at < log.size(); at += batch) {
      std::vector<Entry> part(log.begin() + at, log.begin() + std::min(log.size(), at + batch));
      auto r = other.sm.apply(part, batch % 2 == 0);
      ASSERT_TRUE(r.ok());
      results.insert(results.end(), r->begin(), r->end());
    }
    EXPECT_EQ(results, *all);
    EXPECT_EQ(*other.sm.encode_snapshot(), *one.sm.encode_snapshot());
  }
}

}  // namespace
}  // namespace cset::set
