// Leader election (Raft paper §5.2, §5.4.1; dissertation §9.6 pre-vote, §6.2
// check-quorum, §4.2.3 leader stickiness), on the harness of harness.h.
#include <gtest/gtest.h>

#include <set>

#include "harness.h"

namespace cset::raft::test {
namespace {

Message vote_request(MessageType type, NodeId from, NodeId to, Term term, Index index,
                     Term log_term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  m.index = index;
  m.log_term = log_term;
  return m;
}

// The answers `to` produced for its pending messages, without sending them.
std::vector<Message> answers(Cluster& c, NodeId id) {
  Ready rd = c.raft(id).ready();
  c.persist(id, rd);
  c.apply(id, rd);
  c.advance(id, rd);
  std::vector<Message> out = rd.leader_messages;
  out.insert(out.end(), rd.messages.begin(), rd.messages.end());
  return out;
}

void no_pre_vote(Options& o) { o.pre_vote = false; }

TEST(RaftElection, PreVoteThenVoteTranscript) {
  Cluster c({1, 2, 3});
  c.stabilize();  // apply the bootstrap configuration everywhere
  c.trace(true);
  EXPECT_TRUE(c.campaign(1));
  // Pre-vote asks in term 2 without changing anyone's term; only once a
  // quorum granted does 1 become a candidate, persist term 2 and its vote,
  // and send the real requests. The new leader's first act is a no-op of its
  // term, whose commitment commits everything before it.
  EXPECT_EQ(c.take_transcript(), expected(R"(
1 becomes PreCandidate term=1
> 1 ready
  messages:
    1->2 PreVote term=2 index=1 log_term=1
    1->3 PreVote term=2 index=1 log_term=1
> 2 ready
  messages:
    2->1 PreVoteResponse term=2
> 3 ready
  messages:
    3->1 PreVoteResponse term=2
1 becomes Candidate term=2
> 1 ready
  hard_state term=2 vote=1 commit=1
  messages:
    1->2 Vote term=2 index=1 log_term=1
    1->3 Vote term=2 index=1 log_term=1
2 becomes Follower term=2
3 becomes Follower term=2
> 2 ready
  hard_state term=2 vote=1 commit=1
  messages:
    2->1 VoteResponse term=2
> 3 ready
  hard_state term=2 vote=1 commit=1
  messages:
    3->1 VoteResponse term=2
1 becomes Leader term=2
> 1 ready
  entries: 2@2 noop
  leader_messages:
    1->2 Append term=2 index=1 log_term=1 commit=1 entries=[2@2 noop]
    1->3 Append term=2 index=1 log_term=1 commit=1 entries=[2@2 noop]
> 2 ready
  entries: 2@2 noop
  messages:
    2->1 AppendResponse term=2 index=2
> 3 ready
  entries: 2@2 noop
  messages:
    3->1 AppendResponse term=2 index=2
> 1 ready
  hard_state term=2 vote=1 commit=2
  leader_messages:
    1->2 Append term=2 index=2 log_term=2 commit=2
  committed: 2@2 noop
> 2 ready
  hard_state term=2 vote=1 commit=2
  messages:
    2->1 AppendResponse term=2 index=2
  committed: 2@2 noop)"));
}

TEST(RaftElection, RandomizedTimeoutsStayInRangeAndDiffer) {
  // Each node times out after a draw from [election_ticks, 2*election_ticks),
  // from its own seed: different nodes (and seeds) draw different timeouts,
  // which is what makes split votes rare (paper §5.2).
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Cluster c({1, 2, 3, 4, 5}, [seed](Options& o) { o.random_seed = seed; });
    for (NodeId id : c.ids()) {
      int ticks = 0;
      while (c.raft(id).role() == Role::kFollower && ticks < 100) {
        c.tick(id);
        ++ticks;
      }
      EXPECT_GE(ticks, 10) << "seed " << seed << " node " << id;
      EXPECT_LT(ticks, 20) << "seed " << seed << " node " << id;
      seen.insert(ticks);
    }
  }
  EXPECT_GE(seen.size(), 5u) << "timeouts are not randomized";
}

TEST(RaftElection, OneLeaderPerTermFromManySeeds) {
  // Everyone ticks at once; randomized timeouts make one node win, and no
  // term ever has two leaders (election safety, paper Figure 3).
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Cluster c({1, 2, 3, 4, 5}, [seed](Options& o) { o.random_seed = seed; });
    std::map<Term, NodeId> leader_of_term;
    int ticks = 0;
    for (; ticks < 200 && c.leader() == kNoNode; ++ticks) {
      c.run(1);
      for (NodeId id : c.ids()) {
        if (c.raft(id).role() != Role::kLeader) continue;
        auto [it, inserted] = leader_of_term.emplace(c.raft(id).term(), id);
        EXPECT_EQ(it->second, id) << "two leaders in term " << it->first << ", seed " << seed;
      }
    }
    ASSERT_NE(c.leader(), kNoNode) << "no leader after " << ticks << " ticks, seed " << seed;
    EXPECT_LT(ticks, 40) << "seed " << seed;
    NodeId l = c.leader();
    for (NodeId id : c.ids()) {
      EXPECT_EQ(c.raft(id).leader_id(), l) << "seed " << seed;
      EXPECT_EQ(c.raft(id).term(), c.raft(l).term()) << "seed " << seed;
    }
  }
}

TEST(RaftElection, PartitionedNodeRejoinsWithoutDisruptingLeader) {
  // Dissertation §9.6: an isolated node keeps failing its pre-vote instead of
  // bumping its term, so when it rejoins the healthy leader stays.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  c.isolate(3);
  c.run(100);  // several election timeouts of node 3
  EXPECT_EQ(c.raft(3).term(), term);
  EXPECT_NE(c.raft(3).role(), Role::kLeader);
  ASSERT_TRUE(c.propose(1, {"while-3-was-away"}).ok());
  c.heal();
  c.run(30);
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(3).term(), term);
  EXPECT_EQ(c.raft(3).leader_id(), 1u);
  EXPECT_EQ(c.node(3).sm.values(), std::vector<std::string>{"while-3-was-away"});
}

TEST(RaftElection, WithoutPreVoteARejoiningNodeForcesANewTerm) {
  // The contrast that shows what pre-vote buys: without it, the isolated node
  // raises its term on every timeout, and when it rejoins the leader learns
  // the higher term and has to step down.
  Cluster c({1, 2, 3}, no_pre_vote);
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  c.isolate(3);
  c.run(100);
  EXPECT_GT(c.raft(3).term(), term + 3);
  c.heal();
  c.run(60);
  ASSERT_NE(c.leader(), kNoNode);
  EXPECT_GT(c.raft(c.leader()).term(), term + 3);
}

TEST(RaftElection, CheckQuorumLeaderStepsDown) {
  // Dissertation §6.2: a leader that has not heard from a quorum within an
  // election timeout steps down; the majority side elects a new leader.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  c.isolate(1);
  int ticks = 0;
  while (c.raft(1).role() == Role::kLeader && ticks < 100) {
    c.tick(1);
    c.process_readies();
    ++ticks;
  }
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_LE(ticks, 20);  // at most two check rounds of election_ticks
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(1).leader_id(), kNoNode);
  // Meanwhile the other side elects a new leader in a higher term.
  c.run(40);
  NodeId l = c.leader();
  ASSERT_TRUE(l == 2 || l == 3);
  EXPECT_GT(c.raft(l).term(), term);
}

TEST(RaftElection, CheckQuorumKeepsAHealthyLeader) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  c.run(200);
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raft(1).term(), term);
  for (NodeId id : {2, 3}) EXPECT_EQ(c.raft(id).leader_id(), 1u);
}

TEST(RaftElection, SplitVoteInMajorityModeElectsNobodyThenRetries) {
  // Two simultaneous candidates in a 4-node majority cluster each win one
  // other vote: 2 of 4 is not a majority, both lose, and a later randomized
  // timeout resolves it in a higher term.
  Cluster c({1, 2, 3, 4}, no_pre_vote, QuorumMode::kMajority);
  c.stabilize();
  c.tick(1, 20);
  c.tick(2, 20);
  ASSERT_EQ(c.raft(1).role(), Role::kCandidate);
  ASSERT_EQ(c.raft(2).role(), Role::kCandidate);
  ASSERT_EQ(c.raft(1).term(), 2u);
  ASSERT_EQ(c.raft(2).term(), 2u);
  c.process_readies();
  // 3 hears from 1 first, 4 from 2 first.
  c.deliver(
      [](const Message& m) { return (m.from == 1 && m.to == 3) || (m.from == 2 && m.to == 4); });
  c.stabilize();
  EXPECT_EQ(c.leader(), kNoNode);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  EXPECT_EQ(c.raft(3).vote(), 1u);
  EXPECT_EQ(c.raft(4).vote(), 2u);
  c.run(60);
  ASSERT_NE(c.leader(), kNoNode);
  EXPECT_GE(c.raft(c.leader()).term(), 3u);
}

TEST(RaftElection, SplitVoteInTiebreakModeGoesToTheTiebreakerHalf) {
  // The same split with weights: node 1 (the tie-breaker) weighs 2, so
  // {1, 3} holds 3 of 5 and wins in term 2; {2, 4} (2 of 5) loses.
  Cluster c({1, 2, 3, 4}, no_pre_vote);
  c.stabilize();
  c.tick(1, 20);
  c.tick(2, 20);
  c.process_readies();
  c.deliver(
      [](const Message& m) { return (m.from == 1 && m.to == 3) || (m.from == 2 && m.to == 4); });
  c.stabilize();
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raft(1).term(), 2u);
  for (NodeId id : {2, 3, 4}) EXPECT_EQ(c.raft(id).leader_id(), 1u) << id;
}

TEST(RaftElection, SimultaneousCandidatesOfThreeOneWins) {
  Cluster c({1, 2, 3}, no_pre_vote);
  c.stabilize();
  c.tick(1, 20);
  c.tick(2, 20);
  c.stabilize();
  // 3 hears 1's request first (FIFO): 1 wins term 2, 2 follows it.
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  EXPECT_EQ(c.raft(2).term(), 2u);
  EXPECT_EQ(c.raft(2).leader_id(), 1u);
  EXPECT_EQ(c.raft(2).vote(), 2u);  // its own vote of term 2 stands
}

TEST(RaftElection, LeaderStickinessIgnoresVoteRequestsWithinLease) {
  // Dissertation §4.2.3: a follower that heard from its leader within the
  // minimum election timeout ignores a vote request (no answer, no new
  // term) — unless the candidate campaigns on the leader's TimeoutNow.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  const Index last = c.raft(1).last_index();
  c.trace(true);
  c.step(vote_request(MessageType::kVote, 3, 2, term + 5, last, term));
  c.step(vote_request(MessageType::kPreVote, 3, 2, term + 5, last, term));
  EXPECT_FALSE(c.raft(2).has_ready());
  EXPECT_EQ(c.raft(2).term(), term);
  Message transfer = vote_request(MessageType::kVote, 3, 2, term + 1, last, term);
  transfer.transfer = true;
  c.step(transfer);
  c.handle_ready(2);
  EXPECT_EQ(c.take_transcript(), expected(R"(
2 becomes Follower term=3
> 2 ready
  hard_state term=3 vote=3 commit=2
  messages:
    2->3 VoteResponse term=3)"));
}

TEST(RaftElection, VoteRequestsAnsweredOnceTheLeaseExpires) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  const Term term = c.raft(1).term();
  const Index last = c.raft(1).last_index();
  c.tick(2, 9);  // still within the lease
  c.step(vote_request(MessageType::kVote, 3, 2, term + 1, last, term));
  EXPECT_FALSE(c.raft(2).has_ready());
  c.tick(2, 1);  // a whole election timeout without the leader
  c.step(vote_request(MessageType::kVote, 3, 2, term + 1, last, term));
  auto out = answers(c, 2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(format_message(out[0]), "2->3 VoteResponse term=3");
  EXPECT_EQ(c.raft(2).vote(), 3u);
}

struct UpToDateCase {
  Index candidate_index;
  Term candidate_term;
  bool granted;
};

TEST(RaftElection, VotesOnlyForLogsAtLeastAsUpToDate) {
  // Paper §5.4.1: the voter's last entry is 4@3 (log terms 1,2,3,3). A
  // candidate's log is at least as up to date when its last term is higher,
  // or equal with an index at least as large. Same rule for pre-votes.
  const UpToDateCase cases[] = {
      {4, 3, true},   // identical
      {5, 3, true},   // same term, longer
      {3, 3, false},  // same term, shorter
      {2, 4, true},   // higher term, shorter
      {9, 2, false},  // lower term, longer
      {1, 1, false},
  };
  for (MessageType type : {MessageType::kVote, MessageType::kPreVote}) {
    for (const auto& tc : cases) {
      Cluster c({1, 2, 3}, {}, QuorumMode::kTiebreak, {{2, {2, 3, 3}}});
      c.stabilize();
      ASSERT_EQ(c.raft(2).last_index(), 4u);
      c.step(vote_request(type, 1, 2, 5, tc.candidate_index, tc.candidate_term));
      auto out = answers(c, 2);
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(out[0].reject, !tc.granted)
          << to_string(type) << " candidate " << tc.candidate_index << "@" << tc.candidate_term;
      if (type == MessageType::kVote) {
        EXPECT_EQ(c.raft(2).vote(), tc.granted ? 1u : kNoNode);
        EXPECT_EQ(c.raft(2).term(), 5u);  // a vote request of a higher term is adopted
      } else {
        EXPECT_EQ(c.raft(2).term(), 3u);  // a pre-vote changes nothing
        EXPECT_EQ(c.raft(2).vote(), kNoNode);
      }
    }
  }
}

TEST(RaftElection, OneVotePerTerm) {
  Cluster c({1, 2, 3}, no_pre_vote);
  c.stabilize();
  c.step(vote_request(MessageType::kVote, 1, 2, 2, 1, 1));
  auto out = answers(c, 2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].reject);
  // Another candidate of the same term is refused; the same one again is
  // granted again (its response may have been lost).
  c.step(vote_request(MessageType::kVote, 3, 2, 2, 1, 1));
  out = answers(c, 2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
  c.step(vote_request(MessageType::kVote, 1, 2, 2, 1, 1));
  out = answers(c, 2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].reject);
  EXPECT_EQ(c.storage(2).hard_state().vote, 1u);
}

TEST(RaftElection, StaleNodeNeverBecomesCandidate) {
  // A node that missed committed entries cannot pass pre-vote (its log is
  // behind a quorum), so it never raises its term and never wins; the
  // up-to-date node becomes leader instead.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.isolate(3);
  ASSERT_TRUE(c.propose(1, {"a", "b"}).ok());
  c.stabilize();
  c.crash(1);
  c.heal();
  const Term term = c.raft(3).term();
  // 3 times out first: 2, which heard from the leader a moment ago, ignores
  // its pre-vote, so 3 stays a pre-candidate of the same term.
  c.tick(3, 20);
  c.stabilize();
  EXPECT_EQ(c.raft(3).role(), Role::kPreCandidate);
  EXPECT_EQ(c.raft(3).term(), term);
  for (int i = 0; i < 60 && c.leader() == kNoNode; ++i) {
    c.run(1);
    EXPECT_NE(c.raft(3).role(), Role::kCandidate);
    EXPECT_LE(c.raft(3).term(), term + 1);
  }
  EXPECT_EQ(c.leader(), 2u);
  EXPECT_EQ(c.raft(2).term(), term + 1);
  c.run(5);
  EXPECT_EQ(c.node(3).sm.values(), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftElection, NodeOutsideTheConfigurationNeverCampaigns) {
  Cluster c({1, 2, 3});
  c.add_node(4);  // empty storage: not in any configuration it knows
  c.tick(4, 100);
  EXPECT_EQ(c.raft(4).role(), Role::kFollower);
  EXPECT_EQ(c.raft(4).term(), 0u);
  EXPECT_FALSE(c.raft(4).has_ready());
}

}  // namespace
}  // namespace cset::raft::test
