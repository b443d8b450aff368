// Randomized shrinks of a 2-voter cluster to 1 (chaos seed 9203, phase C:
// {2, 4} -> {4} reached its joint configuration and then had no leader).
// While the removal is in flight, nodes crash and restart, the link between
// them is cut and healed, and disks fail and recover. Once every fault has
// healed, a leader must exist within a bounded time, its configuration must
// not be stuck joint, the removed node must not lead the final one-voter
// configuration, and a proposal must commit. The core passes every seed; the
// test keeps it that way (liveness, I5 in cases.md, for the smallest shrink).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "harness.h"

namespace cset::raft::test {
namespace {

using Type = ConfChange::Type;

class ShrinkRun : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ShrinkRun, TwoVotersShrinkToOneAndALeaderFollows) {
  const uint64_t seed = GetParam();
  std::mt19937_64 rng(seed);
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  Cluster c({2, 4}, [seed](Options& o) { o.random_seed = seed; });
  ASSERT_TRUE(c.campaign(chance(50) ? 4 : 2));
  ASSERT_TRUE(c.propose(c.leader(), {"a"}).ok());
  c.stabilize();
  const NodeId gone = chance(50) ? 2 : 4;
  const NodeId stays = gone == 2 ? 4 : 2;
  bool proposed = false;
  auto propose_removal = [&] {
    NodeId l = c.leader();
    if (l == kNoNode) return;
    proposed = c.raft(l).propose_conf_change({{Type::kRemove, gone, ""}}).ok();
  };
  for (int t = 0; t < 300; ++t) {
    if (!proposed && chance(20)) propose_removal();
    if (chance(3)) {
      NodeId id = chance(50) ? 2 : 4;
      if (c.up(id)) {
        c.crash(id);
      } else {
        c.restart(id);
      }
    }
    if (chance(3)) {
      c.heal();
      if (chance(50)) c.cut(2, 4);
    }
    if (chance(2)) {
      NodeId id = chance(50) ? 2 : 4;
      c.break_disk(id, !c.node(id).disk_broken);
    }
    for (NodeId id : {2, 4}) {
      if (c.up(id)) c.tick(id);
    }
    for (int k = 0; k < 3; ++k) {
      c.process_readies();
      c.deliver();
    }
  }
  c.heal();
  for (NodeId id : {2, 4}) {
    if (!c.up(id)) c.restart(id);
    c.break_disk(id, false);
  }
  for (int t = 0; t < 100 && !proposed; ++t) {
    c.run(1);
    propose_removal();
  }
  ASSERT_TRUE(proposed) << "seed " << seed;
  c.run(300);
  const NodeId l = c.leader();
  ASSERT_NE(l, kNoNode) << "seed " << seed << ": no leader; node 2 " << to_string(c.raft(2).role())
                        << " joint " << c.raft(2).configuration().joint() << ", node 4 "
                        << to_string(c.raft(4).role()) << " joint "
                        << c.raft(4).configuration().joint();
  const Configuration& cfg = c.raft(l).configuration();
  EXPECT_FALSE(cfg.joint()) << "seed " << seed;
  // The removal may have been lost with an uncommitted tail; if it took
  // effect, only the remaining node can lead.
  if (cfg.voters.size() == 1) {
    EXPECT_EQ(l, stays) << "seed " << seed;
  }
  auto w = c.propose(l, {"after"});
  ASSERT_TRUE(w.ok()) << "seed " << seed << ": " << w.status().to_string();
  c.stabilize();
  EXPECT_EQ(c.raft(l).commit_index(), *w) << "seed " << seed;
}

INSTANTIATE_TEST_SUITE_P(Seeds, ShrinkRun, ::testing::Range<uint64_t>(1, 201));

}  // namespace
}  // namespace cset::raft::test
