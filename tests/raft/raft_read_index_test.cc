// Linearizable reads by ReadIndex (dissertation §6.4), on the harness of
// harness.h: batched confirmation, the first-commit-of-the-term rule, leader
// changes and forwarding from followers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

bool has_read(Cluster& c, NodeId id, const std::string& context) {
  for (const auto& r : c.node(id).read_states) {
    if (r.context == context) return true;
  }
  return false;
}

TEST(RaftReadIndex, SeveralReadsShareOneHeartbeatRound) {
  // Reads that arrive together are confirmed by one heartbeat round to a
  // quorum; every one is answered with the commit index at arrival.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  ASSERT_TRUE(c.propose(1, {"a"}).ok());
  c.stabilize();
  c.trace(true);
  ASSERT_TRUE(c.read_index(1, "r1").is_ok());
  ASSERT_TRUE(c.read_index(1, "r2").is_ok());
  ASSERT_TRUE(c.read_index(1, "r3").is_ok());
  c.stabilize();
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 1 read_index "r1"
> 1 read_index "r2"
> 1 read_index "r3"
> 1 ready
  leader_messages:
    1->2 Heartbeat term=2 commit=3 context="r3"
    1->3 Heartbeat term=2 commit=3 context="r3"
> 2 ready
  messages:
    2->1 HeartbeatResponse term=2 context="r3"
> 3 ready
  messages:
    3->1 HeartbeatResponse term=2 context="r3"
> 1 ready
  read_states: 3 "r1" 3 "r2" 3 "r3")"));
}

TEST(RaftReadIndex, NeedsAQuorumOfAcknowledgements) {
  // A leader cut off from everyone cannot confirm it is still leader, so its
  // reads never complete (and it steps down by check-quorum).
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.isolate(1);
  ASSERT_TRUE(c.read_index(1, "lonely").is_ok());
  c.run(30);
  EXPECT_FALSE(has_read(c, 1, "lonely"));
  EXPECT_NE(c.raft(1).role(), Role::kLeader);
}

TEST(RaftReadIndex, OneAcknowledgementOfThreeIsEnough) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.cut(1, 3);
  ASSERT_TRUE(c.read_index(1, "r").is_ok());
  c.stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0], (ReadState{2, "r"}));
}

TEST(RaftReadIndex, QueuedUntilTheLeaderCommitsInItsTerm) {
  // A new leader does not know the latest commit index until its own no-op
  // commits (§6.4 step 1): a read is held (no heartbeat round, no answer)
  // and then answered with an index that covers the no-op.
  Cluster c({1, 2, 3});
  c.stabilize();
  c.set_drop_filter([](const Message& m) { return m.type == MessageType::kAppend; });
  ASSERT_TRUE(c.campaign(1));
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  ASSERT_EQ(c.raft(1).commit_index(), 1u);
  c.trace(true);
  ASSERT_TRUE(c.read_index(1, "early").is_ok());
  c.process_readies();
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 1 read_index "early")"));
  c.run(2);
  EXPECT_FALSE(has_read(c, 1, "early"));
  c.heal();
  c.run(3);
  ASSERT_EQ(c.raft(1).commit_index(), 2u);
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0], (ReadState{2, "early"}));
}

TEST(RaftReadIndex, PendingReadsOfADeposedLeaderNeverComplete) {
  // Reads waiting for confirmation when the leader loses its leadership are
  // dropped: a stale index must never be answered. The new leader answers
  // with its own, later commit index.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  ASSERT_TRUE(c.read_index(1, "stale").is_ok());
  ASSERT_TRUE(c.read_index(3, "forwarded").is_ok());  // 3 forwards it to 1
  c.process_readies();
  c.deliver([](const Message& m) { return m.type == MessageType::kReadIndex; });
  c.process_readies();
  // The confirming heartbeats are lost with the leader's connectivity.
  c.isolate(1);
  c.run(40);  // 2 and 3 elect a new leader, which commits more
  NodeId l = c.leader();
  ASSERT_TRUE(l == 2 || l == 3);
  ASSERT_TRUE(c.propose(l, {"after"}).ok());
  c.stabilize();
  c.heal();
  c.run(10);  // 1 learns the new term
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_FALSE(has_read(c, 1, "stale"));
  EXPECT_FALSE(has_read(c, 3, "forwarded"));
  ASSERT_TRUE(c.read_index(1, "fresh").is_ok());
  c.stabilize();
  ASSERT_TRUE(has_read(c, 1, "fresh"));
  EXPECT_EQ(c.node(1).read_states.back().index, c.raft(l).commit_index());
  EXPECT_GE(c.node(1).read_states.back().index, 4u);
}

TEST(RaftReadIndex, ForwardedFromAFollower) {
  // A follower forwards the request; the leader confirms it and answers with
  // its commit index; the follower serves the read once it has applied that
  // far.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  ASSERT_TRUE(c.propose(1, {"x"}).ok());
  c.stabilize();
  c.trace(true);
  ASSERT_TRUE(c.read_index(2, "f").is_ok());
  c.stabilize();
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 2 read_index "f"
> 2 ready
  messages:
    2->1 ReadIndex term=2 context="f"
> 1 ready
  leader_messages:
    1->2 Heartbeat term=2 commit=3 context="f"
    1->3 Heartbeat term=2 commit=3 context="f"
> 2 ready
  messages:
    2->1 HeartbeatResponse term=2 context="f"
> 3 ready
  messages:
    3->1 HeartbeatResponse term=2 context="f"
> 1 ready
  messages:
    1->2 ReadIndexResponse term=2 index=3 context="f"
> 2 ready
  read_states: 3 "f")"));
  EXPECT_GE(c.node(2).sm.applied, 3u);
}

TEST(RaftReadIndex, RefusedWithoutAKnownLeader) {
  Cluster c({1, 2, 3});
  Status s = c.read_index(2, "nobody");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kNotLeader);
}

TEST(RaftReadIndex, SingleNodeAnswersAtOnce) {
  Cluster c({1});
  ASSERT_TRUE(c.campaign(1));
  ASSERT_TRUE(c.read_index(1, "solo").is_ok());
  c.stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0], (ReadState{2, "solo"}));
}

TEST(RaftReadIndex, ReadIndexIsTheCommitIndexAtArrival) {
  // A read that arrives after a write was committed must see it: its index is
  // at least the write's; a write proposed after the read does not hold it up.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  auto w = c.propose(1, {"w"});
  ASSERT_TRUE(w.ok());
  c.stabilize();
  ASSERT_TRUE(c.read_index(1, "after-w").is_ok());
  ASSERT_TRUE(c.propose(1, {"later"}).ok());
  c.stabilize();
  ASSERT_TRUE(has_read(c, 1, "after-w"));
  EXPECT_EQ(c.node(1).read_states.back().index, *w);
}

}  // namespace
}  // namespace cset::raft::test
