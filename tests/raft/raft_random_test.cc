// Randomized runs of a 5-node cluster on the harness (partitions, message
// loss, reordering and duplication, crashes and restarts, compaction,
// proposals, reads), checking the
// Raft safety properties after every tick (paper Figure 3): election safety,
// log matching of committed entries, and state machine safety. A seeded
// generator drives each run, so a failure reproduces from its seed. The
// simulator (sim/) does this at scale; this is the core's own smoke check.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

class RandomRun : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RandomRun, SafetyHolds) {
  const uint64_t seed = GetParam();
  std::mt19937_64 rng(seed);
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  Cluster c({1, 2, 3, 4, 5}, [seed](Options& o) {
    o.random_seed = seed;
    o.snapshot_chunk_bytes = 16;
    o.max_inflight_messages = 4;
  });
  int loss_percent = 0;
  int chaos_percent = 0;  // reordering and duplication
  c.set_queue_hook([&](std::deque<Message>& q) {
    if (q.size() < 2 || !chance(chaos_percent)) return;
    std::swap(q[rng() % q.size()], q[rng() % q.size()]);
    if (chance(30)) q.push_back(q[rng() % q.size()]);
  });
  c.set_drop_filter([&](const Message&) { return chance(loss_percent); });
  std::map<Term, NodeId> leader_of_term;
  std::map<Index, std::string> applied;  // index -> data, the one history
  int proposals = 0;
  for (int tick = 0; tick < 400; ++tick) {
    // Faults.
    if (chance(3)) {
      c.heal();
      loss_percent = 0;
      c.set_drop_filter([&](const Message&) { return chance(loss_percent); });
      std::vector<NodeId> a, b;
      for (NodeId id = 1; id <= 5; ++id) (chance(50) ? a : b).push_back(id);
      c.partition({a, b});
    }
    if (chance(3)) {
      c.heal();
      loss_percent = chance(50) ? 10 : 0;
      chaos_percent = chance(50) ? 30 : 0;
      c.set_drop_filter([&](const Message&) { return chance(loss_percent); });
    }
    if (chance(2)) {
      NodeId id = 1 + rng() % 5;
      if (c.up(id)) {
        c.crash(id);
      } else {
        c.restart(id, chance(50));
      }
    }
    for (NodeId id = 1; id <= 5; ++id) {
      if (!c.up(id) && chance(5)) c.restart(id);
    }
    // Clients.
    NodeId l = c.leader();
    if (l != kNoNode && chance(40)) {
      c.propose(l, {"s" + std::to_string(seed) + "-" + std::to_string(proposals++)});
    }
    if (l != kNoNode && chance(10)) c.read_index(l, "r" + std::to_string(tick));
    if (chance(3)) {
      NodeId id = 1 + rng() % 5;
      if (c.up(id) && c.node(id).sm.applied > c.storage(id).snapshot().meta.index + 2) {
        c.compact(id, c.node(id).sm.applied, rng() % 3);
      }
    }
    c.run(1);
    // Election safety: one leader per term.
    for (NodeId id = 1; id <= 5; ++id) {
      if (!c.up(id) || c.raft(id).role() != Role::kLeader) continue;
      auto [it, fresh] = leader_of_term.emplace(c.raft(id).term(), id);
      ASSERT_EQ(it->second, id) << "two leaders in term " << it->first << ", seed " << seed;
    }
    // State machine safety: every node applies the same entry at an index.
    for (NodeId id = 1; id <= 5; ++id) {
      for (const auto& [index, data] : c.node(id).sm.data) {
        auto [it, fresh] = applied.emplace(index, data);
        ASSERT_EQ(it->second, data) << "index " << index << " node " << id << ", seed " << seed;
      }
    }
    // Committed entries still in a log match across nodes (log matching).
    for (NodeId a = 1; a <= 5; ++a) {
      for (NodeId b = a + 1; b <= 5; ++b) {
        if (!c.up(a) || !c.up(b)) continue;
        Index hi = std::min(c.raft(a).commit_index(), c.raft(b).commit_index());
        Index lo = std::max(c.raft(a).first_index(), c.raft(b).first_index());
        for (Index i = lo; i <= hi; ++i) {
          ASSERT_EQ(c.raft(a).log().term_or_zero(i), c.raft(b).log().term_or_zero(i))
              << "committed index " << i << " differs on " << a << " and " << b << ", seed "
              << seed;
        }
      }
    }
  }
  // Liveness once the faults stop: everyone up, connected, caught up.
  c.heal();
  chaos_percent = 0;
  for (NodeId id = 1; id <= 5; ++id) {
    if (!c.up(id)) c.restart(id);
  }
  c.run(60);
  NodeId l = c.leader();
  ASSERT_NE(l, kNoNode) << "seed " << seed;
  ASSERT_TRUE(c.propose(l, {"final"}).ok());
  c.run(5);
  for (NodeId id = 1; id <= 5; ++id) {
    EXPECT_EQ(c.node(id).sm.applied, c.node(l).sm.applied) << "node " << id << ", seed " << seed;
    EXPECT_EQ(c.node(id).sm.values(), c.node(l).sm.values()) << "node " << id << ", seed " << seed;
  }
  EXPECT_GT(proposals, 20);
}

INSTANTIATE_TEST_SUITE_P(Raft, RandomRun, ::testing::Range<uint64_t>(1, 9));

}  // namespace
}  // namespace cset::raft::test
