// Log replication and commitment (Raft paper §5.3, §5.4.2, Figures 7 and 8;
// dissertation §10.2 pipelining), on the harness of harness.h.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

std::vector<Term> log_terms(MemoryStorage& s) {
  std::vector<Term> out;
  for (Index i = s.first_index(); i <= s.last_index(); ++i) out.push_back(*s.term(i));
  return out;
}

size_t count_queued(Cluster& c, MessageType type, NodeId from, NodeId to) {
  size_t n = 0;
  for (const auto& m : c.queue()) n += m.type == type && m.from == from && m.to == to;
  return n;
}

Message append(NodeId from, NodeId to, Term term, Index index, Term log_term, Index commit,
               std::vector<Entry> entries) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = from;
  m.to = to;
  m.term = term;
  m.index = index;
  m.log_term = log_term;
  m.commit = commit;
  m.entries = std::move(entries);
  return m;
}

TEST(RaftReplication, AppendEntriesConsistencyCheck) {
  // Paper Figure 2, AppendEntries receiver: reject when the log has no entry
  // at prevLogIndex with prevLogTerm (with a hint, §5.3); on a match, delete a
  // conflicting suffix and append; an old duplicate changes nothing.
  // Node 2's log: 1@1 (bootstrap), 2@2, 3@2.
  Cluster c({1, 2, 3}, {}, QuorumMode::kTiebreak, {{2, {2, 2}}});
  c.stabilize();
  c.trace(true);
  c.step(append(1, 2, 3, 3, 3, 1, {}));  // term differs at 3
  c.handle_ready(2);
  c.step(append(1, 2, 3, 5, 3, 1, {}));  // beyond the log
  c.handle_ready(2);
  c.step(
      append(1, 2, 3, 2, 2, 1, {{3, 3, EntryType::kNormal, "x"}, {3, 4, EntryType::kNormal, "y"}}));
  c.handle_ready(2);
  c.step(append(1, 2, 3, 1, 1, 1, {{2, 2, EntryType::kNormal, "2@2"}}));  // stale duplicate
  c.handle_ready(2);
  EXPECT_EQ(c.take_transcript(), expected(R"(
2 becomes Follower term=3
> 2 ready
  hard_state term=3 vote=0 commit=1
  messages:
    2->1 AppendResponse term=3 index=3 reject hint=3 hint_term=2
> 2 ready
  messages:
    2->1 AppendResponse term=3 index=5 reject hint=3 hint_term=2
> 2 ready
  entries: 3@3 "x", 4@3 "y"
  messages:
    2->1 AppendResponse term=3 index=4
> 2 ready
  messages:
    2->1 AppendResponse term=3 index=2)"));
  EXPECT_EQ(log_terms(c.storage(2)), (std::vector<Term>{1, 2, 3, 3}));
}

TEST(RaftReplication, CommittedEntriesAreNeverTruncated) {
  // An append that would conflict at or below the commit index is answered
  // with the commit index instead of being applied (it is stale).
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  ASSERT_TRUE(c.propose(1, {"a"}).ok());
  c.stabilize();
  ASSERT_EQ(c.raft(2).commit_index(), 3u);
  c.trace(true);
  c.step(append(1, 2, 2, 1, 1, 1, {{2, 2, EntryType::kNoop, ""}}));
  c.handle_ready(2);
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 2 ready
  messages:
    2->1 AppendResponse term=2 index=3)"));
  EXPECT_EQ(c.raft(2).last_index(), 3u);
}

struct Figure7Case {
  const char* name;
  std::vector<Term> follower;  // terms of entries 2.. (entry 1 is the bootstrap, term 1)
  int rejections;              // round trips lost to conflicts, with hints
};

class Figure7 : public ::testing::TestWithParam<Figure7Case> {};

TEST_P(Figure7, LeaderOfTerm8BringsFollowerIntoLine) {
  // Paper Figure 7: the leader's log is 1 1 1 4 4 5 5 6 6 6 (indexes 1-10);
  // as leader of term 8 it appends its no-op at 11 and must make each of the
  // follower logs (a)-(f) identical to its own, deleting uncommitted
  // conflicting entries, with at most one rejected probe thanks to the
  // conflict hints (§5.3) where one-by-one backtracking would need up to 7.
  const Figure7Case& tc = GetParam();
  const std::vector<Term> leader_log = {1, 1, 4, 4, 5, 5, 6, 6, 6};
  Term follower_term = 1;
  for (Term t : tc.follower) follower_term = std::max(follower_term, t);
  // Node 3 holds the leader's log too, so node 1 can be elected while the
  // follower under test (node 2) is cut off.
  Cluster c({1, 2, 3}, {}, QuorumMode::kTiebreak,
            {{1, leader_log}, {2, tc.follower}, {3, leader_log}},
            {{1, 7}, {2, follower_term}, {3, 7}});
  c.isolate(2);
  ASSERT_TRUE(c.campaign(1));
  ASSERT_EQ(c.raft(1).term(), 8u);
  ASSERT_EQ(c.raft(1).commit_index(), 11u);
  c.heal();
  int rejections = 0;
  c.set_drop_filter([&](const Message& m) {
    rejections += m.type == MessageType::kAppendResponse && m.from == 2 && m.reject;
    return false;
  });
  c.run(3);
  EXPECT_EQ(rejections, tc.rejections);
  EXPECT_EQ(log_terms(c.storage(2)), log_terms(c.storage(1)));
  EXPECT_EQ(log_terms(c.storage(2)), (std::vector<Term>{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8}));
  EXPECT_EQ(c.raft(2).commit_index(), 11u);
  EXPECT_EQ(c.node(2).sm.applied, 11u);
}

INSTANTIATE_TEST_SUITE_P(Raft, Figure7,
                         ::testing::Values(Figure7Case{"a", {1, 1, 4, 4, 5, 5, 6, 6}, 1},
                                           Figure7Case{"b", {1, 1, 4}, 1},
                                           Figure7Case{"c", {1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 0},
                                           Figure7Case{"d", {1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 0},
                                           Figure7Case{"e", {1, 1, 4, 4, 4, 4}, 1},
                                           Figure7Case{"f", {1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 1}),
                         [](const ::testing::TestParamInfo<Figure7Case>& info) {
                           return std::string("Follower_") + info.param.name;
                         });

TEST(RaftReplication, ConflictHintsSkipWholeTerms) {
  // The follower has 30 uncommitted entries of term 2 where the leader has 30
  // of term 3: one rejection with a (index, term) hint lets the leader jump
  // straight to the last common entry instead of 30 round trips.
  std::vector<Term> common(5, 2);
  std::vector<Term> follower = common, leader = common;
  follower.insert(follower.end(), 30, 2);
  leader.insert(leader.end(), 30, 3);
  Cluster c({1, 2, 3}, {}, QuorumMode::kTiebreak, {{1, leader}, {2, follower}, {3, leader}});
  c.isolate(2);
  ASSERT_TRUE(c.campaign(1));
  c.heal();
  int rejections = 0;
  int appends = 0;
  c.set_drop_filter([&](const Message& m) {
    rejections += m.type == MessageType::kAppendResponse && m.from == 2 && m.reject;
    appends += m.type == MessageType::kAppend && m.to == 2;
    return false;
  });
  c.run(2);
  EXPECT_EQ(rejections, 1);
  EXPECT_LE(appends, 4);
  EXPECT_EQ(log_terms(c.storage(2)), log_terms(c.storage(1)));
}

TEST(RaftReplication, ProbeStateSendsOneAppendAtATime) {
  // A follower whose position is unknown (probe state) gets one append at a
  // time; proposals meanwhile do not pile messages onto it.
  Cluster c({1, 2, 3});
  c.cut(1, 2);
  ASSERT_TRUE(c.campaign(1));  // its no-op append to 2 is lost
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.propose(1, {"p" + std::to_string(i)}).ok());
    c.process_readies();
    EXPECT_EQ(count_queued(c, MessageType::kAppend, 1, 2), 0u);
    c.stabilize();
  }
  auto peers = c.raft(1).peers();
  EXPECT_EQ(peers[1].id, 2u);
  EXPECT_EQ(peers[1].state, ProgressState::kProbe);
  EXPECT_EQ(peers[2].state, ProgressState::kReplicate);
  c.heal();
  c.run(2);  // a heartbeat response unblocks the probe
  EXPECT_EQ(c.raft(1).peers()[1].state, ProgressState::kReplicate);
  EXPECT_EQ(c.node(2).sm.values(), (std::vector<std::string>{"p0", "p1", "p2"}));
}

TEST(RaftReplication, PipelineStopsAtInflightLimitAndResumesOnAck) {
  // Replicate state pipelines appends, at most max_inflight_messages
  // unacknowledged per follower; an ack frees room and the leader sends the
  // rest at once.
  Cluster c({1, 2, 3}, [](Options& o) { o.max_inflight_messages = 2; });
  ASSERT_TRUE(c.campaign(1));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.propose(1, {"e" + std::to_string(i)}).ok());
    c.process_readies();
  }
  EXPECT_EQ(count_queued(c, MessageType::kAppend, 1, 2), 2u);
  EXPECT_EQ(count_queued(c, MessageType::kAppend, 1, 3), 2u);
  // Only node 2 answers, and only its first append.
  bool first = true;
  c.deliver([&](const Message& m) {
    bool take = first && m.type == MessageType::kAppend && m.to == 2;
    if (take) first = false;
    return take;
  });
  c.process_readies();
  c.deliver([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  c.trace(true);
  c.process_readies();
  // e0 committed (1 and 2); one slot freed: e2..e4 go in one append.
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 1 ready
  hard_state term=2 vote=1 commit=3
  leader_messages:
    1->2 Append term=2 index=4 log_term=2 commit=3 entries=[5@2 "e2", 6@2 "e3", 7@2 "e4"]
  committed: 3@2 "e0")"));
  c.trace(false);
  EXPECT_EQ(count_queued(c, MessageType::kAppend, 1, 3), 2u);  // 3 is still full
  c.stabilize();
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(c.node(id).sm.values(), (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"}))
        << id;
  }
}

TEST(RaftReplication, PipelineRecoversWhenEveryInflightAppendWasLost) {
  // Node 3 is cut off while the leader pipelines to it until its in-flight
  // window is full; all those appends are lost. Once the partition heals the
  // heartbeat responses must reopen the window (etcd frees the first
  // in-flight slot on a heartbeat response) so that 3 catches up.
  Cluster c({1, 2, 3}, [](Options& o) { o.max_inflight_messages = 2; });
  ASSERT_TRUE(c.campaign(1));
  ASSERT_EQ(c.raft(1).peers()[2].state, ProgressState::kReplicate);
  c.cut(1, 3);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.propose(1, {"p" + std::to_string(i)}).ok());
    c.stabilize();
  }
  c.heal();
  c.run(5);
  EXPECT_EQ(c.node(3).sm.values(), (std::vector<std::string>{"p0", "p1", "p2", "p3"}));
  EXPECT_EQ(c.raft(1).peers()[2].match, c.raft(1).last_index());
}

TEST(RaftReplication, InflightByteBudgetPausesToo) {
  // 40 bytes in flight at most; an entry counts its data plus 16 bytes.
  Cluster c({1, 2, 3}, [](Options& o) { o.max_inflight_bytes = 40; });
  ASSERT_TRUE(c.campaign(1));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.propose(1, {"b" + std::to_string(i)}).ok());
    c.process_readies();
  }
  // 18 + 18 = 36 < 40 still has room; the third reaches 54 and pauses.
  EXPECT_EQ(count_queued(c, MessageType::kAppend, 1, 2), 3u);
  c.stabilize();
  EXPECT_EQ(c.node(2).sm.values().size(), 5u);
}

TEST(RaftReplication, ProposalBatchIsOneAppend) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.trace(true);
  auto last = c.propose(1, {"a", "b", "c"});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, 5u);
  c.process_readies();
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 1 propose "a","b","c" -> 5
> 1 ready
  entries: 3@2 "a", 4@2 "b", 5@2 "c"
  leader_messages:
    1->2 Append term=2 index=2 log_term=2 commit=2 entries=[3@2 "a", 4@2 "b", 5@2 "c"]
    1->3 Append term=2 index=2 log_term=2 commit=2 entries=[3@2 "a", 4@2 "b", 5@2 "c"])"));
  c.stabilize();
  EXPECT_EQ(c.raft(3).commit_index(), 5u);
}

TEST(RaftReplication, MaxAppendBytesSplitsAppends) {
  // At least one entry per message, and here no more: each append carries one
  // entry, the next ones follow as acknowledgements come back.
  Cluster c({1, 2, 3}, [](Options& o) { o.max_append_bytes = 1; });
  ASSERT_TRUE(c.campaign(1));
  std::vector<Index> sent;
  c.set_drop_filter([&](const Message& m) {
    if (m.type == MessageType::kAppend && m.to == 2 && !m.entries.empty()) {
      EXPECT_EQ(m.entries.size(), 1u);
      sent.push_back(m.entries.front().index);
    }
    return false;
  });
  ASSERT_TRUE(c.propose(1, {"a", "b", "c"}).ok());
  c.stabilize();
  EXPECT_EQ(sent, (std::vector<Index>{3, 4, 5}));
  EXPECT_EQ(c.node(2).sm.values(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(RaftReplication, ProposalsRefusedOnFollowers) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  auto r = c.propose(2, {"x"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotLeader);
  EXPECT_EQ(c.raft(2).last_index(), 2u);
}

TEST(RaftReplication, UncommittedByteLimit) {
  Cluster c({1, 2, 3}, [](Options& o) { o.max_uncommitted_bytes = 100; });
  ASSERT_TRUE(c.campaign(1));
  c.isolate(1);
  ASSERT_TRUE(c.propose(1, {std::string(50, 'a')}).ok());
  auto r = c.propose(1, {std::string(50, 'b')});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  c.heal();
  c.run(2);
  EXPECT_TRUE(c.propose(1, {std::string(50, 'b')}).ok());  // room again once committed
}

TEST(RaftReplication, NoopOnElectionCommitsEarlierTermEntries) {
  // Paper §8: a new leader appends a no-op of its term; committing it commits
  // the entries it inherited from earlier terms. (Check-quorum off, so node 3
  // does not ignore 2's pre-vote for having heard from 1 a moment ago.)
  Cluster c({1, 2, 3}, [](Options& o) { o.check_quorum = false; });
  ASSERT_TRUE(c.campaign(1));
  ASSERT_TRUE(c.propose(1, {"x"}).ok());
  c.process_readies();
  c.deliver([](const Message& m) { return m.to == 2; });  // only 2 receives "x"
  c.process_readies();
  c.queue().clear();  // 2's acknowledgement and the append to 3 are lost
  c.crash(1);
  ASSERT_EQ(c.raft(2).commit_index(), 2u);
  c.trace(true);
  c.tick(2, 20);
  c.stabilize();
  EXPECT_EQ(c.leader(), 2u);
  std::string t = c.take_transcript();
  EXPECT_NE(t.find("2 becomes Leader term=3\n> 2 ready\n  entries: 4@3 noop\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("committed: 3@2 \"x\", 4@3 noop"), std::string::npos) << t;
  EXPECT_EQ(c.node(3).sm.values(), std::vector<std::string>{"x"});
}

// Figure 8 with the bootstrap entry at index 1: index 2 plays the figure's
// index 2. S1 and S2 hold 2@2, S5 holds 2@3, everyone has seen term 3. S1 is
// elected in term 4 by S2, S3 and S4 and replicates 2@2 to S3; its no-op 3@4
// reaches only S2. Pre-vote and check-quorum are off, as in the paper.
Cluster figure8() {
  return Cluster({1, 2, 3, 4, 5},
                 [](Options& o) {
                   o.pre_vote = false;
                   o.check_quorum = false;
                   o.max_append_bytes = 1;  // one entry per append
                 },
                 QuorumMode::kTiebreak, {{1, {2}}, {2, {2}}, {5, {3}}},
                 {{1, 3}, {2, 3}, {3, 3}, {4, 3}, {5, 3}});
}

void figure8_c(Cluster& c) {
  c.isolate(5);
  c.set_drop_filter([&c](const Message& m) {
    if (m.type != MessageType::kAppend) return false;
    bool carries_3 = !m.entries.empty() && m.entries.back().index >= 3;
    if (m.to == 4) return true;
    // S3 receives the probe it must reject, then 2@2, but never 3@4.
    if (m.to == 3) return carries_3 && c.raft(3).last_index() >= 2;
    return false;
  });
  ASSERT_TRUE(c.campaign(1));
  ASSERT_EQ(c.raft(1).term(), 4u);
  c.run(3);
  ASSERT_EQ(c.raft(3).log().term_or_zero(2), 2u);
  ASSERT_EQ(c.raft(3).last_index(), 2u);
  ASSERT_EQ(c.raft(2).last_index(), 3u);
}

TEST(RaftReplication, Figure8OldTermEntryIsNotCommittedByCounting) {
  Cluster c = figure8();
  figure8_c(c);
  // 2@2 is stored on S1, S2 and S3 — a majority — yet it is not committed:
  // it is not of the leader's term (paper §5.4.2).
  EXPECT_EQ(c.raft(1).commit_index(), 1u);
  for (NodeId id : {1, 2, 3}) EXPECT_EQ(c.node(id).sm.applied, 1u) << id;
  // (d): S1 crashes; S5 (last entry 2@3) can win with S3 and S4 and
  // overwrite 2@2 everywhere. That is safe only because 2@2 was never
  // committed or applied.
  c.crash(1);
  c.heal();
  for (int i = 0; i < 3 && !c.campaign(5); ++i) {
  }
  ASSERT_EQ(c.leader(), 5u);
  c.run(3);
  for (NodeId id : {2, 3, 4, 5}) {
    EXPECT_EQ(c.raft(id).log().term_or_zero(2), 3u) << id;
    EXPECT_EQ(c.node(id).sm.values().front(), "2@3") << id;
  }
}

TEST(RaftReplication, Figure8CommittedOnceACurrentTermEntryIs) {
  Cluster c = figure8();
  figure8_c(c);
  // (e): the no-op 3@4 reaches S3 too; now an entry of term 4 is on a
  // majority, which commits it and 2@2 before it. S5 can no longer win.
  c.set_drop_filter([](const Message& m) { return m.type == MessageType::kAppend && m.to == 4; });
  c.run(2);
  EXPECT_EQ(c.raft(1).commit_index(), 3u);
  EXPECT_EQ(c.node(1).sm.values(), std::vector<std::string>{"2@2"});
  c.crash(1);
  c.heal();
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(c.campaign(5));
  c.run(60);
  NodeId l = c.leader();
  ASSERT_TRUE(l == 2 || l == 3) << l;
  for (NodeId id : {2, 3, 4, 5}) {
    EXPECT_EQ(c.raft(id).log().term_or_zero(2), 2u) << id;
    EXPECT_EQ(c.node(id).sm.values().front(), "2@2") << id;
  }
}

TEST(RaftReplication, HeartbeatCommitIsCappedAtTheFollowersMatch) {
  // A follower may hold different entries after its match index, so the
  // leader never tells it a commit index beyond what it knows matches.
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.cut(1, 3);
  ASSERT_TRUE(c.propose(1, {"a", "b"}).ok());
  c.stabilize();
  ASSERT_EQ(c.raft(1).commit_index(), 4u);
  c.heal();
  c.tick(1);
  c.process_readies();
  for (const auto& m : c.queue()) {
    if (m.type != MessageType::kHeartbeat) continue;
    EXPECT_EQ(m.commit, m.to == 2 ? 4u : 2u) << format_message(m);
  }
}

}  // namespace
}  // namespace cset::raft::test
