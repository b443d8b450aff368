// The simulator's own tests (issue 3): seeds pass with faults really
// exercised, injected bugs are caught, and runs are deterministic.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "sim/simulation.h"

namespace cset::sim {
namespace {

SimOptions options_for(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = default_nodes_for_seed(seed);
  o.ops = 150;
  return o;
}

// Bug hunts run longer histories (500 operations) than the clean batches,
// with the plain clients they were tuned on (no sessions, no lost replies:
// a rare bug such as read-index-before-term-commit shows in 3 of 300 seeds,
// and another workload moves those seeds), except the session bug, which
// needs sessions and lost replies.
SimOptions bug_options_for(uint64_t seed, const std::string& bug) {
  SimOptions o = options_for(seed);
  o.ops = 500;
  if (bug != "reapply-session-retry") {
    o.sessions = false;
    o.lost_replies = 0;
  }
  return o;
}

// 1,000 seeds in ten batches (ten ctest cases, so they run in parallel).
class SimSeeds : public ::testing::TestWithParam<int> {};

TEST_P(SimSeeds, HundredSeedsPassWithFaultsExercised) {
  uint64_t first = 1 + static_cast<uint64_t>(GetParam()) * 100;
  SimStats total;
  std::set<int> sizes;
  for (uint64_t seed = first; seed < first + 100; ++seed) {
    SimOptions o = options_for(seed);
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << " (" << o.nodes << " nodes): " << r.property << " ["
                      << r.checker << "]\n"
                      << r.explanation << "\nreproduce: cset-sim --seed " << seed << " --nodes "
                      << o.nodes << " --steps " << o.ops;
    total.add(r.stats);
    sizes.insert(o.nodes);
  }
  // The seeds must really have exercised the faults they claim to.
  EXPECT_GT(total.crashes, 0u);
  EXPECT_GT(total.partitions, 0u);
  EXPECT_GT(total.lost_unsynced_writes, 0u);
  EXPECT_GT(total.snapshots_taken, 0u);
  EXPECT_GT(total.snapshots_installed, 0u);
  EXPECT_GT(total.conf_changes, 0u);
  EXPECT_GT(total.messages_dropped, 0u);
  EXPECT_GT(total.messages_duplicated, 0u);
  EXPECT_GT(total.leader_elections, 100u);
  // Client sessions and lost replies (SimOptions::sessions, lost_replies):
  // replies were lost, session requests retried, retries answered from the
  // session table, among them CSET.ADD answered OK for its own first attempt.
  EXPECT_GT(total.sessions_opened, 0u);
  EXPECT_GT(total.session_requests, 0u);
  EXPECT_GT(total.lost_replies, 0u);
  EXPECT_GT(total.retries_sent, 0u);
  EXPECT_GT(total.retries_deduplicated, 0u);
  EXPECT_GT(total.strict_add_retries_ok, 0u);
  // Most operations succeed: a simulation where nothing works proves nothing.
  EXPECT_GT(total.ops_ok, 3 * (total.ops_failed + total.ops_unknown));
  // DESIGN.md's 2-, 3- and 4-node cases are in every batch.
  EXPECT_TRUE(sizes.count(2) && sizes.count(3) && sizes.count(4));
}

INSTANTIATE_TEST_SUITE_P(Batches, SimSeeds, ::testing::Range(0, 10));

// Seeds that once broke a safety property, replayed as found.
TEST(SimRegressions, SeedsThatFoundBugsPass) {
  struct Found {
    uint64_t seed;
    int nodes;
    int ops;
    const char* what;
  };
  const Found found[] = {
      // Leader completeness, under a rule tried and reverted in session 7
      // (C_new's quorums from its log entry, votes by the committed
      // configuration): node 1 won by C_old {1, 4} without an entry {2, 3}
      // had committed under C_new.
      {9439, 4, 300, "C_new commitment vs C_old votes"},
  };
  for (const Found& f : found) {
    SimOptions o;
    o.seed = f.seed;
    o.nodes = f.nodes;
    o.ops = f.ops;
    SimResult r = run_simulation(o);
    EXPECT_TRUE(r.ok) << "seed " << f.seed << " (" << f.what << "): " << r.property << " ["
                      << r.checker << "]\n"
                      << r.explanation;
  }
}

TEST(SimTrace, SameSeedSameTraceDifferentSeedsDiffer) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    SimOptions o = options_for(seed);
    o.ops = 30;
    SimResult a = run_simulation(o);
    SimResult b = run_simulation(o);
    EXPECT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed << " is not deterministic";
    hashes.insert(a.trace_hash);
  }
  EXPECT_EQ(hashes.size(), 100u);
}

// A retried session write is recorded once (invoked at its first attempt,
// completed at its definitive answer); plain clients' lost replies stay
// unknown; without sessions and lost replies nothing of the kind happens.
TEST(SimSessions, HistoryRecordsEachSessionRequestOnce) {
  SimStats total;
  uint64_t retried = 0;
  uint64_t deduplicated = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimOptions o = options_for(seed);
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << ": " << r.property << "\n" << r.explanation;
    total.add(r.stats);
    std::set<std::pair<uint64_t, uint64_t>> seen;
    uint64_t session_ops = 0;
    for (const SimOp& op : r.history) {
      EXPECT_NE(op.kind, SimOp::Kind::kOpenSession);
      EXPECT_LE(op.invoke_us, op.complete_us);
      if (op.session == 0) {
        EXPECT_EQ(op.attempts, 1) << "a plain request is never retried";
        EXPECT_FALSE(op.deduplicated);
        if (op.error == "connection lost") {
          EXPECT_EQ(op.outcome, SimOp::Outcome::kUnknown);
        }
        continue;
      }
      ++session_ops;
      EXPECT_TRUE(op.kind == SimOp::Kind::kAdd || op.kind == SimOp::Kind::kAddStrict ||
                  op.kind == SimOp::Kind::kRem);
      EXPECT_TRUE(seen.insert({op.session, op.seq}).second)
          << "session " << op.session << " seq " << op.seq << " recorded twice";
      EXPECT_GE(op.attempts, 1);
      EXPECT_LE(op.attempts, kSessionAttempts);
      EXPECT_LE(op.lowest_unacked, op.seq);
      if (op.attempts > 1) ++retried;
      if (op.deduplicated) {
        EXPECT_EQ(op.outcome, SimOp::Outcome::kOk);
        EXPECT_GT(op.attempts, 1) << "a first attempt is never a duplicate";
        ++deduplicated;
      }
    }
    EXPECT_EQ(session_ops, r.stats.session_requests) << "seed " << seed;
  }
  EXPECT_GT(retried, 0u);
  EXPECT_EQ(deduplicated, total.retries_deduplicated);
  EXPECT_GT(deduplicated, 0u);

  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SimOptions o = options_for(seed);
    o.sessions = false;
    o.lost_replies = 0.3;
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << seed << ": " << r.explanation;
    EXPECT_EQ(r.stats.sessions_opened + r.stats.session_requests + r.stats.retries_sent, 0u);
    uint64_t lost = 0;
    for (const SimOp& op : r.history) {
      EXPECT_EQ(op.session, 0u);
      if (op.error == "connection lost") {
        EXPECT_EQ(op.outcome, SimOp::Outcome::kUnknown);
        ++lost;
      }
    }
    EXPECT_EQ(lost, r.stats.lost_replies);
    EXPECT_GT(lost, 0u);
    o.lost_replies = 0;
    EXPECT_EQ(run_simulation(o).stats.lost_replies, 0u);
  }
}

#ifdef CSET_TEST_HOOKS
// A session retry applied again instead of answered from the session table
// (bug reapply-session-retry): every node does the same, so the Raft
// invariants hold, and only the linearizability checker can see it.
TEST(SimSessions, ReappliedSessionRetryIsNotLinearizable) {
  int caught = 0;
  for (uint64_t seed = 1; seed <= 100 && caught < 3; ++seed) {
    SimOptions o = options_for(seed);
    ASSERT_TRUE(enable_bug("reapply-session-retry", &o));
    SimResult r = run_simulation(o);
    if (r.ok) continue;
    ++caught;
    EXPECT_EQ(r.checker, "linearizability") << r.property << "\n" << r.explanation;
    // The excerpt shows a retried session request.
    EXPECT_NE(r.explanation.find(" attempts) "), std::string::npos) << r.explanation;
    SimOptions clean = options_for(seed);
    EXPECT_TRUE(run_simulation(clean).ok) << "seed " << seed << " fails without the bug";
  }
  EXPECT_EQ(caught, 3) << "reapply-session-retry caught in fewer than 3 of 100 seeds";
}

TEST(SimTrace, EveryBugChangesTheTrace) {
  // Some bugs only change anything under particular faults: for each, find a
  // seed among the bug-hunt seeds whose trace differs from the clean run.
  for (const std::string& bug : bug_names()) {
    bool differs = false;
    for (uint64_t seed = 1; seed <= 300 && !differs; ++seed) {
      SimOptions base = bug_options_for(seed, bug);
      SimOptions o = base;
      ASSERT_TRUE(enable_bug(bug, &o));
      differs = run_simulation(o).trace_hash != run_simulation(base).trace_hash;
    }
    EXPECT_TRUE(differs) << bug;
  }
}

// Every injected bug is caught within 300 seeds, and the report names the
// checker that caught it.
class SimBugs : public ::testing::TestWithParam<std::string> {};

TEST_P(SimBugs, CaughtWithin300Seeds) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimOptions o = bug_options_for(seed, GetParam());
    ASSERT_TRUE(enable_bug(GetParam(), &o));
    SimResult r = run_simulation(o);
    if (!r.ok) {
      EXPECT_FALSE(r.checker.empty());
      EXPECT_FALSE(r.property.empty());
      std::printf("%s caught at seed %llu by %s: %s\n", GetParam().c_str(),
                  static_cast<unsigned long long>(seed), r.checker.c_str(), r.property.c_str());
      return;
    }
  }
  FAIL() << "bug " << GetParam() << " was not caught within 300 seeds";
}

INSTANTIATE_TEST_SUITE_P(Injected, SimBugs, ::testing::ValuesIn(bug_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  return n;
});

// The linearizability checker alone catches the bugs that only it can see.
TEST(SimBugs, LinearizabilityCheckerAloneCatchesStaleReadsAndLostWrites) {
  for (const char* bug : {"stale-local-read", "apply-before-commit", "ack-before-fsync"}) {
    bool caught = false;
    for (uint64_t seed = 1; seed <= 300 && !caught; ++seed) {
      SimOptions o = bug_options_for(seed, bug);
      ASSERT_TRUE(enable_bug(bug, &o));
      o.invariants = false;  // only the client history is checked
      SimResult r = run_simulation(o);
      // A seed where the bug first shows as a liveness failure (lost
      // acknowledged entries can leave no electable node) ends before the
      // history is checked: look on.
      if (!r.ok && r.checker == "linearizability") caught = true;
    }
    EXPECT_TRUE(caught) << bug << " not caught by the linearizability checker alone";
  }
}
#endif

}  // namespace
}  // namespace cset::sim
