// Leadership transfer (dissertation §3.10): TimeoutNow, catching the target
// up first, refusing proposals meanwhile, aborting after an election timeout.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

TEST(RaftTransfer, ToAnUpToDateFollowerTranscript) {
  // The target is up to date, so TimeoutNow goes at once; the target skips
  // pre-vote and campaigns with the transfer flag, which the other follower
  // honours although it heard from the leader a moment ago. (Node 3 had not
  // yet heard that 2@2 committed: commit indexes travel with the next append
  // or heartbeat.)
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.trace(true);
  ASSERT_TRUE(c.raft(1).transfer_leadership(2).is_ok());
  c.stabilize();
  // A heartbeat precedes TimeoutNow so the target knows the commit index
  // (it matters when the leader hands over after its own removal, C05).
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 1 ready
  leader_messages:
    1->2 Heartbeat term=2 commit=2
    1->2 TimeoutNow term=2
2 becomes Candidate term=3
> 2 ready
  hard_state term=3 vote=2 commit=2
  messages:
    2->1 HeartbeatResponse term=2
    2->1 Vote term=3 index=2 log_term=2 transfer
    2->3 Vote term=3 index=2 log_term=2 transfer
1 becomes Follower term=3
3 becomes Follower term=3
> 1 ready
  hard_state term=3 vote=2 commit=2
  messages:
    1->2 VoteResponse term=3
> 3 ready
  hard_state term=3 vote=2 commit=1
  messages:
    3->2 VoteResponse term=3
2 becomes Leader term=3
> 2 ready
  entries: 3@3 noop
  leader_messages:
    2->1 Append term=3 index=2 log_term=2 commit=2 entries=[3@3 noop]
    2->3 Append term=3 index=2 log_term=2 commit=2 entries=[3@3 noop]
> 1 ready
  entries: 3@3 noop
  messages:
    1->2 AppendResponse term=3 index=3
> 3 ready
  hard_state term=3 vote=2 commit=2
  entries: 3@3 noop
  messages:
    3->2 AppendResponse term=3 index=3
  committed: 2@2 noop
> 2 ready
  hard_state term=3 vote=2 commit=3
  leader_messages:
    2->1 Append term=3 index=3 log_term=3 commit=3
  committed: 3@3 noop
> 1 ready
  hard_state term=3 vote=2 commit=3
  messages:
    1->2 AppendResponse term=3 index=3
  committed: 3@3 noop)"));
  EXPECT_EQ(c.leader(), 2u);
}

TEST(RaftTransfer, TargetBehindIsCaughtUpBeforeTimeoutNow) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.isolate(2);
  ASSERT_TRUE(c.propose(1, {"a", "b"}).ok());
  c.stabilize();
  c.heal();
  const Index last = c.raft(1).last_index();
  ASSERT_LT(c.raft(2).last_index(), last);
  ASSERT_TRUE(c.raft(1).transfer_leadership(2).is_ok());
  // Watch the order of what reaches 2: entries first, TimeoutNow only when
  // 2 holds the leader's whole log.
  std::vector<std::string> to_2;
  c.set_drop_filter([&](const Message& m) {
    if (m.to == 2 && m.from == 1) {
      to_2.push_back(to_string(m.type));
      if (m.type == MessageType::kTimeoutNow) {
        EXPECT_EQ(c.raft(2).last_index(), last);
      }
    }
    return false;
  });
  c.run(3);
  EXPECT_EQ(c.leader(), 2u);
  ASSERT_GE(to_2.size(), 2u);
  EXPECT_EQ(to_2.front(), "Append");
  EXPECT_EQ(std::count(to_2.begin(), to_2.end(), "TimeoutNow"), 1);
  EXPECT_EQ(c.node(2).sm.values(), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftTransfer, ProposalsAndChangesRefusedDuringTransfer) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.isolate(2);
  ASSERT_TRUE(c.propose(1, {"a"}).ok());
  c.stabilize();
  ASSERT_TRUE(c.raft(1).transfer_leadership(2).is_ok());
  EXPECT_EQ(c.raft(1).transfer_target(), 2u);
  auto p = c.propose(1, {"during"});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kNotLeader);
  auto cc = c.raft(1).propose_conf_change({{ConfChange::Type::kAddLearner, 4, ""}});
  ASSERT_FALSE(cc.ok());
  EXPECT_EQ(cc.status().code(), Code::kNotLeader);
}

TEST(RaftTransfer, AbortedAfterAnElectionTimeout) {
  // The target never answers: after an election timeout the leader gives up
  // and accepts proposals again, still leader of the same term.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  c.isolate(2);
  ASSERT_TRUE(c.propose(1, {"a"}).ok());
  c.stabilize();
  ASSERT_TRUE(c.raft(1).transfer_leadership(2).is_ok());
  c.run(9);
  EXPECT_EQ(c.raft(1).transfer_target(), 2u);
  c.run(1);
  EXPECT_EQ(c.raft(1).transfer_target(), kNoNode);
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_TRUE(c.propose(1, {"after"}).ok());
}

TEST(RaftTransfer, InvalidRequests) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  EXPECT_EQ(c.raft(1).transfer_leadership(1).code(), Code::kInvalid);
  EXPECT_EQ(c.raft(1).transfer_leadership(9).code(), Code::kInvalid);
  EXPECT_EQ(c.raft(2).transfer_leadership(3).code(), Code::kNotLeader);
  EXPECT_EQ(c.raft(1).transfer_target(), kNoNode);
}

TEST(RaftTransfer, StaleTimeoutNowOfAnOldTermIsIgnored) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.from = 1;
  m.to = 3;
  m.term = 1;  // older than the current term 2
  c.step(m);
  EXPECT_EQ(c.raft(3).role(), Role::kFollower);
  EXPECT_EQ(c.raft(3).term(), 2u);
}

}  // namespace
}  // namespace cset::raft::test
