// Weighted quorums in action (DESIGN.md "Quorums"): whole clusters split by a
// partition, showing which side elects and commits. The quorum function
// itself is tested exhaustively in quorum_test.cc.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

// Runs `ticks` ticks and reports every node that was leader at some point,
// by side.
std::set<NodeId> leaders_during(Cluster& c, int ticks) {
  std::set<NodeId> out;
  for (int i = 0; i < ticks; ++i) {
    c.run(1);
    for (NodeId id : c.ids()) {
      if (c.up(id) && c.raft(id).role() == Role::kLeader) out.insert(id);
    }
  }
  return out;
}

TEST(RaftWeightedQuorum, FourNodesTheTiebreakerHalfElectsAndCommits) {
  // {1, 2} holds the tie-breaker (1 weighs 2): weight 3 of 5. The leader 3
  // in the other half (2 of 5) steps down; {1, 2} elects and commits.
  Cluster c({1, 2, 3, 4});
  ASSERT_TRUE(c.campaign(3));
  const Index commit = c.raft(3).commit_index();
  c.partition({{1, 2}, {3, 4}});
  auto leaders = leaders_during(c, 60);
  EXPECT_NE(c.raft(3).role(), Role::kLeader);
  NodeId l = c.leader();
  ASSERT_TRUE(l == 1 || l == 2) << l;
  auto idx = c.propose(l, {"tiebreak-side"});
  ASSERT_TRUE(idx.ok());
  c.stabilize();
  EXPECT_EQ(c.raft(l).commit_index(), *idx);
  EXPECT_EQ(c.node(l == 1 ? 2 : 1).sm.values(), std::vector<std::string>{"tiebreak-side"});
  for (NodeId id : {3, 4}) {
    EXPECT_EQ(c.raft(id).commit_index(), commit) << id;
    EXPECT_NE(c.raft(id).role(), Role::kLeader) << id;
  }
  EXPECT_EQ(leaders.count(4), 0u);
}

TEST(RaftWeightedQuorum, FourNodesTheHalfWithoutTheTiebreakerCannot) {
  // The leader 1 keeps the cluster with node 2; 3 and 4 can neither elect
  // nor commit even when they try for a long time.
  Cluster c({1, 2, 3, 4});
  ASSERT_TRUE(c.campaign(1));
  c.partition({{1, 2}, {3, 4}});
  auto leaders = leaders_during(c, 100);
  EXPECT_EQ(leaders, std::set<NodeId>{1});
  auto idx = c.propose(1, {"x"});
  ASSERT_TRUE(idx.ok());
  c.stabilize();
  EXPECT_EQ(c.raft(1).commit_index(), *idx);
  EXPECT_TRUE(c.node(3).sm.values().empty());
}

TEST(RaftWeightedQuorum, FourNodesTheTiebreakerAloneIsNotAQuorum) {
  // Weight 2 of 5 for node 1 alone; {2, 3, 4} (3 of 5) elects.
  Cluster c({1, 2, 3, 4});
  ASSERT_TRUE(c.campaign(1));
  c.isolate(1);
  leaders_during(c, 60);
  EXPECT_NE(c.raft(1).role(), Role::kLeader);
  NodeId l = c.leader();
  ASSERT_TRUE(l == 2 || l == 3 || l == 4) << l;
  auto idx = c.propose(l, {"y"});
  ASSERT_TRUE(idx.ok());
  c.stabilize();
  EXPECT_EQ(c.raft(l).commit_index(), *idx);
}

TEST(RaftWeightedQuorum, FourNodesInMajorityModeNeitherHalf) {
  // --quorum majority: every voter weighs 1, 2 of 4 is no majority: the
  // cluster stops on both sides rather than risk two histories.
  Cluster c({1, 2, 3, 4}, {}, QuorumMode::kMajority);
  ASSERT_TRUE(c.campaign(1));
  std::map<NodeId, Index> commit;
  for (NodeId id : {1, 2, 3, 4}) commit[id] = c.raft(id).commit_index();
  c.partition({{1, 2}, {3, 4}});
  auto p = c.propose(1, {"lost"});
  ASSERT_TRUE(p.ok());
  leaders_during(c, 30);
  EXPECT_EQ(c.leader(), kNoNode);
  leaders_during(c, 100);
  EXPECT_EQ(c.leader(), kNoNode);
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.raft(id).commit_index(), commit[id]) << id;
  EXPECT_LT(commit[1], *p);
}

TEST(RaftWeightedQuorum, TwoNodesSplitNeitherSide) {
  // Two voters weigh 1 each: a lone node never acknowledges a write held on
  // one disk only, and neither elects.
  Cluster c({1, 2});
  ASSERT_TRUE(c.campaign(1));
  const Index commit = c.raft(1).commit_index();
  c.partition({{1}, {2}});
  ASSERT_TRUE(c.propose(1, {"alone"}).ok());
  auto leaders = leaders_during(c, 100);
  EXPECT_EQ(c.leader(), kNoNode);
  EXPECT_EQ(leaders.count(2), 0u);
  EXPECT_EQ(c.raft(1).commit_index(), commit);
  EXPECT_EQ(c.raft(2).commit_index(), commit);
  // Healed, they agree again.
  c.heal();
  leaders_during(c, 60);
  ASSERT_NE(c.leader(), kNoNode);
  c.stabilize();
  EXPECT_EQ(c.raft(1).commit_index(), c.raft(2).commit_index());
}

TEST(RaftWeightedQuorum, FiveNodesTheTiebreakerDoesNotMatter) {
  // With an odd count every voter weighs 1: {1, 2} holds the lowest id but
  // only 2 of 5; {3, 4, 5} elects.
  Cluster c({1, 2, 3, 4, 5});
  ASSERT_TRUE(c.campaign(1));
  c.partition({{1, 2}, {3, 4, 5}});
  leaders_during(c, 60);
  NodeId l = c.leader();
  ASSERT_TRUE(l >= 3) << l;
  EXPECT_NE(c.raft(1).role(), Role::kLeader);
}

}  // namespace
}  // namespace cset::raft::test
