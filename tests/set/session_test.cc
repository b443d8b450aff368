// Client sessions in the state machine (Raft dissertation §6.3): exactly-once
// application of retried writes, log-derived time, expiry, the cap, and
// persistence through snapshots and restarts.
#include <gtest/gtest.h>

#include <algorithm>

#include "set/command.h"
#include "set/encoding.h"
#include "set/memory_kv.h"
#include "set/state_machine.h"
#include "tests/set/kv_dump.h"

namespace cset::set {
namespace {

using namespace std::string_literals;
using raft::Entry;
using raft::EntryType;
using Strings = std::vector<std::string>;

// A state machine over its own MemoryKv; every entry is stamped with `now`.
class Node {
 public:
  explicit Node(SessionLimits limits = {}) : sm(&kv, limits) { EXPECT_TRUE(sm.load().is_ok()); }

  ApplyResult run(Command command) {
    command.time_ms = now;
    Entry e{1, sm.applied_index() + 1, EntryType::kNormal, encode_command(command)};
    auto results = sm.apply({e}, true);
    EXPECT_TRUE(results.ok()) << results.status().to_string();
    EXPECT_EQ(results->size(), 1u);
    return results->at(0);
  }
  uint64_t open(uint64_t timeout_ms = 0) {
    ApplyResult r = run(Command::register_session(timeout_ms));
    EXPECT_TRUE(r.status.is_ok()) << r.status.to_string();
    return r.index;
  }
  ApplyResult in_session(Command command, uint64_t session, uint64_t sequence,
                         uint64_t lowest_unacked) {
    command.session = SessionHeader{session, sequence, lowest_unacked};
    return run(std::move(command));
  }
  Strings members(std::string_view key) { return *sm.members(key, 1000); }
  size_t stored_results() {
    size_t n = 0;
    EXPECT_TRUE(kv.scan(Space::kMeta, "SR", "SS", [&](std::string_view, std::string_view) {
                    ++n;
                    return true;
                  }).is_ok());
    return n;
  }

  uint64_t now = 1'700'000'000'000;
  MemoryKv kv;
  StateMachine sm;
};

using test_util::dump;

TEST(SessionTest, RegisterOpensASessionNamedByItsLogIndex) {
  Node n;
  n.run(Command::add("k", {"a"}));
  const uint64_t id = n.open();
  EXPECT_EQ(id, 2u);
  ASSERT_TRUE(n.sm.session(id).has_value());
  EXPECT_EQ(n.sm.session(id)->last_active_ms, n.now);
  EXPECT_EQ(n.sm.session(id)->timeout_ms, SessionLimits{}.default_timeout_ms);
  EXPECT_EQ(n.sm.session_count(), 1u);
  EXPECT_FALSE(n.sm.session(1).has_value());
  // A timeout over the default is cut to it; a shorter one is kept.
  EXPECT_EQ(n.sm.session(n.open(5000))->timeout_ms, 5000u);
  EXPECT_EQ(n.sm.session(n.open(~0ull))->timeout_ms, SessionLimits{}.default_timeout_ms);
}

TEST(SessionTest, RetryGetsTheStoredResultAndAppliesOnce) {
  Node n;
  const uint64_t s = n.open();
  ApplyResult first = n.in_session(Command::add_strict("k", "m"), s, 1, 1);
  EXPECT_TRUE(first.status.is_ok());
  EXPECT_EQ(first.count, 1u);
  EXPECT_FALSE(first.duplicate);
  // Someone else removes m; the retry of (s, 1) must not add it again, and
  // must answer "added" (its own first attempt), not EXISTS.
  n.run(Command::rem("k", {"m"}));
  ApplyResult retry = n.in_session(Command::add_strict("k", "m"), s, 1, 1);
  EXPECT_TRUE(retry.status.is_ok()) << retry.status.to_string();
  EXPECT_EQ(retry.count, 1u);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_TRUE(n.members("k").empty());
  // SADD's count is replayed the same way.
  ApplyResult sadd = n.in_session(Command::add("k", {"a", "b"}), s, 2, 1);
  EXPECT_EQ(sadd.count, 2u);
  ApplyResult sadd_retry = n.in_session(Command::add("k", {"a", "b"}), s, 2, 1);
  EXPECT_EQ(sadd_retry.count, 2u);
  EXPECT_TRUE(sadd_retry.duplicate);
  EXPECT_EQ(n.members("k"), (Strings{"a", "b"}));
}

TEST(SessionTest, RetryOfARefusedAddIsStillRefused) {
  Node n;
  n.run(Command::add("k", {"m"}));  // present before the client's first attempt
  const uint64_t s = n.open();
  ApplyResult first = n.in_session(Command::add_strict("k", "m"), s, 1, 1);
  EXPECT_EQ(first.status.code(), Code::kExists);
  n.run(Command::rem("k", {"m"}));
  ApplyResult retry = n.in_session(Command::add_strict("k", "m"), s, 1, 1);
  EXPECT_EQ(retry.status.code(), Code::kExists);
  EXPECT_EQ(retry.status.message(), first.status.message());
  EXPECT_TRUE(retry.duplicate);
  EXPECT_TRUE(n.members("k").empty());  // not added by the retry
}

TEST(SessionTest, ATrueDuplicateWithANewSequenceIsStillRefused) {
  Node n;
  const uint64_t s = n.open();
  EXPECT_TRUE(n.in_session(Command::add_strict("k", "m"), s, 1, 1).status.is_ok());
  ApplyResult again = n.in_session(Command::add_strict("k", "m"), s, 2, 2);
  EXPECT_EQ(again.status.code(), Code::kExists);
  EXPECT_FALSE(again.duplicate);
  ApplyResult sadd = n.in_session(Command::add("k", {"m"}), s, 3, 3);
  EXPECT_EQ(sadd.count, 0u);
  EXPECT_FALSE(sadd.duplicate);
}

TEST(SessionTest, ResultsBelowLowestUnackedAreDropped) {
  Node n;
  const uint64_t s = n.open();
  n.in_session(Command::add("k", {"a"}), s, 1, 1);
  n.in_session(Command::add("k", {"b"}), s, 2, 1);
  n.in_session(Command::add("k", {"c"}), s, 3, 1);
  EXPECT_EQ(n.stored_results(), 3u);
  // The client has seen the replies to 1 and 2.
  n.in_session(Command::add("k", {"d"}), s, 4, 3);
  EXPECT_EQ(n.stored_results(), 2u);
  EXPECT_EQ(n.sm.session(s)->lowest_unacked, 3u);
  // A late copy of request 1 is refused and changes nothing.
  n.run(Command::rem("k", {"a"}));
  ApplyResult late = n.in_session(Command::add("k", {"a"}), s, 1, 1);
  EXPECT_EQ(late.status.code(), Code::kErr);
  EXPECT_EQ(n.members("k"), (Strings{"b", "c", "d"}));
  // lowest_unacked never goes back: 3 is still answered from its result.
  EXPECT_TRUE(n.in_session(Command::add("k", {"c"}), s, 3, 1).duplicate);
}

TEST(SessionTest, TheWindowOfUnacknowledgedRequestsIsBounded) {
  Node n(SessionLimits{.max_unacked = 4});
  const uint64_t s = n.open();
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    EXPECT_TRUE(n.in_session(Command::add("k", {std::to_string(seq)}), s, seq, 1).status.is_ok());
  }
  ApplyResult over = n.in_session(Command::add("k", {"5"}), s, 5, 1);
  EXPECT_EQ(over.status.code(), Code::kErr);
  EXPECT_FALSE(*n.sm.contains("k", "5"));
  EXPECT_EQ(n.stored_results(), 4u);
  // Once 1 is acknowledged there is room for 5.
  EXPECT_EQ(n.in_session(Command::add("k", {"5"}), s, 5, 2).count, 1u);
  EXPECT_EQ(n.stored_results(), 4u);
}

TEST(SessionTest, ASequenceReusedForAnotherRequestIsRefused) {
  Node n;
  const uint64_t s = n.open();
  n.in_session(Command::add("k", {"a"}), s, 1, 1);
  ApplyResult other = n.in_session(Command::add("k", {"zzz"}), s, 1, 1);
  EXPECT_EQ(other.status.code(), Code::kErr);
  EXPECT_FALSE(*n.sm.contains("k", "zzz"));
}

TEST(SessionTest, SessionsExpireByLogTime) {
  Node n;
  const uint64_t s = n.open(500);
  n.now += 400;
  EXPECT_TRUE(n.in_session(Command::add("k", {"a"}), s, 1, 1).status.is_ok());
  n.now += 500;  // exactly last activity + timeout: still alive
  EXPECT_TRUE(n.in_session(Command::add("k", {"b"}), s, 2, 1).status.is_ok());
  EXPECT_EQ(n.sm.session(s)->last_active_ms, n.now);
  n.now += 501;
  n.run(Command::add("other", {"x"}));  // any stamped entry moves the clock
  EXPECT_FALSE(n.sm.session(s).has_value());
  EXPECT_EQ(n.sm.session_count(), 0u);
  EXPECT_EQ(n.stored_results(), 0u);
  // The retry of 2 is refused, not answered from a result nor applied.
  n.run(Command::rem("k", {"b"}));
  auto data = dump(n.kv, Space::kData);
  ApplyResult retry = n.in_session(Command::add("k", {"b"}), s, 2, 1);
  EXPECT_EQ(retry.status.code(), Code::kSessionExpired);
  EXPECT_EQ(retry.count, 0u);
  EXPECT_EQ(dump(n.kv, Space::kData), data);
  EXPECT_FALSE(*n.sm.contains("k", "b"));
}

TEST(SessionTest, TheRequestThatPassesTheDeadlineIsItselfRefused) {
  Node n;
  const uint64_t s = n.open(500);
  n.now += 501;  // no entry in between: the request's own stamp expires it
  ApplyResult r = n.in_session(Command::add_strict("k", "a"), s, 1, 1);
  EXPECT_EQ(r.status.code(), Code::kSessionExpired);
  EXPECT_TRUE(n.members("k").empty());
}

TEST(SessionTest, UnknownSessionIsRefusedAndChangesNothing) {
  Node n;
  n.run(Command::add("k", {"a"}));
  auto data = dump(n.kv, Space::kData);
  ApplyResult r = n.in_session(Command::del({"k"}), 99, 1, 1);
  EXPECT_EQ(r.status.code(), Code::kSessionExpired);
  EXPECT_EQ(dump(n.kv, Space::kData), data);
  EXPECT_EQ(n.sm.session_count(), 0u);
}

TEST(SessionTest, TheClockNeverGoesBackwards) {
  Node n;
  const uint64_t t0 = n.now;
  const uint64_t s = n.open(1000);
  // A later leader with a slow clock stamps an earlier time: the clock stays.
  n.now = t0 - 60'000;
  EXPECT_TRUE(n.in_session(Command::add("k", {"a"}), s, 1, 1).status.is_ok());
  EXPECT_EQ(n.sm.clock_ms(), t0);
  EXPECT_EQ(n.sm.session(s)->last_active_ms, t0);
  // Unstamped entries (version 1, noop, config) do not move it either.
  ASSERT_TRUE(n.sm.apply({Entry{2, n.sm.applied_index() + 1, EntryType::kNoop, ""}}, true).ok());
  EXPECT_EQ(n.sm.clock_ms(), t0);
  // Expiry counts from the clock, not from the earlier stamp.
  n.now = t0 + 1000;
  EXPECT_TRUE(n.in_session(Command::add("k", {"b"}), s, 2, 1).status.is_ok());
  n.now = t0 + 2001;
  EXPECT_EQ(n.in_session(Command::add("k", {"c"}), s, 3, 1).status.code(), Code::kSessionExpired);
  // The clock is durable.
  StateMachine reopened(&n.kv);
  ASSERT_TRUE(reopened.load().is_ok());
  EXPECT_EQ(reopened.clock_ms(), t0 + 2001);
}

TEST(SessionTest, TheCapExpiresTheLeastRecentlyActive) {
  Node n(SessionLimits{.max_sessions = 3});
  const uint64_t a = n.open();
  n.now += 1;
  const uint64_t b = n.open();
  n.now += 1;
  const uint64_t c = n.open();
  n.now += 1;
  n.in_session(Command::add("k", {"x"}), a, 1, 1);  // a is now the most recent
  n.now += 1;
  const uint64_t d = n.open();
  EXPECT_EQ(n.sm.session_count(), 3u);
  EXPECT_TRUE(n.sm.session(a).has_value());
  EXPECT_FALSE(n.sm.session(b).has_value());
  EXPECT_TRUE(n.sm.session(c).has_value());
  EXPECT_TRUE(n.sm.session(d).has_value());
  EXPECT_EQ(n.in_session(Command::add("k", {"y"}), b, 1, 1).status.code(), Code::kSessionExpired);
  // c is now the least recently active.
  const uint64_t e = n.open();  // same `now` as d
  EXPECT_FALSE(n.sm.session(c).has_value());
  EXPECT_TRUE(n.sm.session(d).has_value());
  EXPECT_TRUE(n.sm.session(e).has_value());
  // Equal activity (a, d, e all at `now`): the lowest id goes first.
  n.in_session(Command::add("k", {"z"}), a, 2, 2);
  ASSERT_EQ(n.sm.session(a)->last_active_ms, n.sm.session(d)->last_active_ms);
  const uint64_t f = n.open();
  EXPECT_FALSE(n.sm.session(a).has_value());
  EXPECT_TRUE(n.sm.session(d).has_value());
  EXPECT_TRUE(n.sm.session(e).has_value());
  EXPECT_TRUE(n.sm.session(f).has_value());
}

TEST(SessionTest, SessionsSurviveASnapshotAndARestart) {
  Node source;
  const uint64_t s = source.open(10'000);
  source.in_session(Command::add_strict("k", "m"), s, 1, 1);
  source.in_session(Command::add_strict("k", "m"), s, 2, 1);  // EXISTS, stored
  auto image = source.sm.encode_snapshot();
  ASSERT_TRUE(image.ok());
  EXPECT_EQ((*image)[8], '\x02');  // snapshot image version 2

  Node target;
  target.open();  // replaced by the image
  ASSERT_TRUE(target.sm.restore_snapshot(*image, source.sm.applied_index()).is_ok());
  EXPECT_EQ(target.sm.clock_ms(), source.sm.clock_ms());
  EXPECT_EQ(target.sm.session_count(), 1u);
  EXPECT_EQ(target.sm.session(s), source.sm.session(s));
  EXPECT_EQ(dump(target.kv, Space::kMeta), dump(source.kv, Space::kMeta));
  target.now = source.now;
  ApplyResult retry = target.in_session(Command::add_strict("k", "m"), s, 1, 1);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_TRUE(retry.status.is_ok());
  EXPECT_EQ(target.in_session(Command::add_strict("k", "m"), s, 2, 1).status.code(), Code::kExists);

  StateMachine reopened(&source.kv);
  ASSERT_TRUE(reopened.load().is_ok());
  EXPECT_EQ(reopened.session(s), source.sm.session(s));
  EXPECT_EQ(reopened.clock_ms(), source.sm.clock_ms());
  Command again = Command::add_strict("k", "m");
  again.session = SessionHeader{s, 1, 1};
  again.time_ms = source.now;
  auto r = reopened.apply(
      {Entry{1, reopened.applied_index() + 1, EntryType::kNormal, encode_command(again)}}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->at(0).duplicate);
  EXPECT_TRUE(r->at(0).status.is_ok());
}

TEST(SessionTest, SnapshotWithABrokenSessionRecordIsRejected) {
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"SC", "short"},
           {"SS" + std::string(8, '\0'), "not 24 bytes"},
           {"SR" + std::string(16, '\0'), "\x09\x01\0\0\0\0"s},  // unknown code
           {"SR" + std::string(16, '\0'), "\x00\x01\0\0\0\0"s},  // result of no session
           {"SX", ""}}) {
    MemoryKv bogus;
    WriteBatch b;
    b.put(Space::kMeta, key, value);
    ASSERT_TRUE(bogus.write(b, false).is_ok());
    StateMachine encoder(&bogus);
    auto image = encoder.encode_snapshot();
    ASSERT_TRUE(image.ok());
    Node target;
    EXPECT_EQ(target.sm.restore_snapshot(*image, 0).code(), Code::kCorrupt) << key;
    EXPECT_EQ(target.sm.session_count(), 0u);
  }
}

TEST(SessionTest, AFailedWriteLeavesTheSessionTableUnchanged) {
  Node n;
  const uint64_t s = n.open(1000);
  n.in_session(Command::add("k", {"a"}), s, 1, 1);
  const SessionInfo before = *n.sm.session(s);
  const uint64_t clock = n.sm.clock_ms();
  n.kv.set_write_error(Status(Code::kNoSpace, "disk full"));
  n.now += 5000;  // would expire s
  Command c = Command::register_session(0);
  c.time_ms = n.now;
  auto r =
      n.sm.apply({Entry{1, n.sm.applied_index() + 1, EntryType::kNormal, encode_command(c)}}, true);
  EXPECT_EQ(r.code(), Code::kNoSpace);
  EXPECT_EQ(n.sm.clock_ms(), clock);
  EXPECT_EQ(n.sm.session_count(), 1u);
  EXPECT_EQ(n.sm.session(s), before);
  n.kv.set_write_error(Status::ok());
  n.now = clock;
  EXPECT_TRUE(n.in_session(Command::add("k", {"a"}), s, 1, 1).duplicate);
}

// A state written by the previous format version (no "S" keys, F = 1) is
// read and upgraded by the next apply; a version-1 snapshot image restores.
TEST(SessionTest, Version1StateAndImagesAreStillRead) {
  MemoryKv kv;
  WriteBatch b;
  b.put(Space::kMeta, "F", "\x01");
  b.put(Space::kMeta, "A", std::string("\0\0\0\0\0\0\0\x04", 8));
  ASSERT_TRUE(kv.write(b, false).is_ok());
  StateMachine old_state(&kv);
  ASSERT_TRUE(old_state.load().is_ok());
  EXPECT_EQ(old_state.clock_ms(), 0u);
  auto v1_image = old_state.encode_snapshot();
  ASSERT_TRUE(v1_image.ok());
  Command c = Command::register_session(0);
  c.time_ms = 1000;
  ASSERT_TRUE(old_state.apply({Entry{1, 5, EntryType::kNormal, encode_command(c)}}, true).ok());
  EXPECT_EQ(**kv.get(Space::kMeta, "F"), "\x02");
  EXPECT_EQ(old_state.session_count(), 1u);

  // The image as the previous version wrote it: version byte 1, F = 1.
  std::string image = *v1_image;
  ASSERT_EQ(image[8], '\x02');
  image[8] = '\x01';
  image.resize(image.size() - 4);
  detail::put_fixed32(image, detail::crc32c(image));
  Node target;
  target.open();
  ASSERT_TRUE(target.sm.restore_snapshot(image, 4).is_ok());
  EXPECT_EQ(target.sm.applied_index(), 4u);
  EXPECT_EQ(target.sm.session_count(), 0u);
  EXPECT_EQ(**target.kv.get(Space::kMeta, "F"), "\x01");
  EXPECT_TRUE(target.open() == 5u);
  EXPECT_EQ(**target.kv.get(Space::kMeta, "F"), "\x02");
  // An unknown image version is refused.
  image[8] = '\x03';
  image.resize(image.size() - 4);
  detail::put_fixed32(image, detail::crc32c(image));
  EXPECT_EQ(target.sm.restore_snapshot(image, 5).code(), Code::kCorrupt);
}

// Determinism with sessions: the same log in differently sized batches gives
// the same bytes, including the session table.
TEST(SessionTest, BatchingDoesNotChangeTheOutcome) {
  std::vector<Entry> log;
  raft::Index i = 0;
  uint64_t now = 1000;
  auto push = [&](Command c) {
    c.time_ms = now;
    log.push_back(Entry{1, ++i, EntryType::kNormal, encode_command(c)});
  };
  std::vector<uint64_t> sessions;
  for (int round = 0; round < 40; ++round) {
    now += (round % 3) * 400;
    if (round % 6 == 0) {
      push(Command::register_session(round % 12 == 0 ? 900 : 0));
      sessions.push_back(i);
    }
    Command c = round % 2 ? Command::add_strict("k", std::to_string(round % 5))
                          : Command::rem("k", {std::to_string(round % 4)});
    c.session = SessionHeader{sessions[round % sessions.size()], uint64_t(round / 2 + 1),
                              uint64_t(std::max(1, round / 2 - 1))};
    push(c);
    if (round % 4 == 0) push(c);  // a retry
  }
  Node one(SessionLimits{.max_sessions = 4});
  auto all = one.sm.apply(log, true);
  ASSERT_TRUE(all.ok());
  size_t duplicates = 0;
  size_t expired = 0;
  for (const auto& r : *all) {
    duplicates += r.duplicate;
    expired += r.status.code() == Code::kSessionExpired;
  }
  EXPECT_GT(duplicates, 0u);
  EXPECT_GT(expired, 0u);
  for (size_t batch : {1u, 3u, 7u}) {
    Node other(SessionLimits{.max_sessions = 4});
    std::vector<ApplyResult> results;
    for (size_t at = 0; at < log.size(); at += batch) {
      std::vector<Entry> part(log.begin() + at, log.begin() + std::min(log.size(), at + batch));
      auto r = other.sm.apply(part, true);
      ASSERT_TRUE(r.ok());
      results.insert(results.end(), r->begin(), r->end());
    }
    EXPECT_EQ(results, *all) << batch;
    EXPECT_EQ(dump(other.kv, Space::kMeta), dump(one.kv, Space::kMeta)) << batch;
    EXPECT_EQ(dump(other.kv, Space::kData), dump(one.kv, Space::kData)) << batch;
  }
}

}  // namespace
}  // namespace cset::set
