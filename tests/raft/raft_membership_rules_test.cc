// Why configurations take effect on commit for every quorum decision, or
// from their log entry for every one, never a mix: a tried rule (votes by the
// latest configuration in the log, commitment by C_new once C_old,new had
// committed and C_new was in the log, otherwise by the committed one) lost a
// committed write in this scenario, found by a reviewing helper (session 7,
// issue 7's note). It passes with the rule in force (all on commit).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

using Type = ConfChange::Type;

bool is_append_or_heartbeat(const Message& m) {
  return m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// C_old = {1,2,3}, C_new = {2,3,4,5,6} (remove 1, promote learners 4,5,6).
// Leader 1 commits C_old,new (J, by C_old {1,2}) and appends the leave entry
// L; only node 4 receives L (and hears that J committed). 1 dies.
// Node 2 holds J but does not know it committed: it wins by J ({2,3} of C_old,
// {2,3,5} of C_new; 4 refuses, its log is longer) and then commits its no-op
// and a client write by its committed configuration, C_old, with {2,3} alone.
// Node 4 holds the stale, uncommitted L; had it counted its votes by C_new
// alone, {4,5,6} (5 and 6 never received node 2's entries) would elect it
// without the committed write. It must count by C_old,new.
TEST(RaftMembershipRules, StaleLeaveEntryNeverElectsWithoutAWriteCommittedByCOld) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  for (NodeId id : {4, 5, 6}) c.add_node(id);
  ASSERT_TRUE(c.raft(1)
                  .propose_conf_change({{Type::kAddLearner, 4, "node4"},
                                        {Type::kAddLearner, 5, "node5"},
                                        {Type::kAddLearner, 6, "node6"}})
                  .ok());
  c.run(3);
  auto j = c.raft(1).propose_conf_change({{Type::kRemove, 1, ""},
                                          {Type::kPromote, 4, ""},
                                          {Type::kPromote, 5, ""},
                                          {Type::kPromote, 6, ""}});
  ASSERT_TRUE(j.ok()) << j.status().to_string();
  const Index J = *j, L = J + 1;
  // Everything node 1 sends that says J committed reaches node 4 only.
  c.set_drop_filter([J](const Message& m) { return m.from == 1 && m.to != 4 && m.commit >= J; });
  c.stabilize();
  ASSERT_GE(c.raft(1).commit_index(), J);
  ASSERT_EQ(c.raft(1).last_index(), L);
  ASSERT_EQ(c.raft(4).last_index(), L);
  ASSERT_GE(c.raft(4).commit_index(), J);
  for (NodeId id : {2, 3, 5, 6}) {
    ASSERT_EQ(c.raft(id).last_index(), J) << id;
    ASSERT_LT(c.raft(id).commit_index(), J) << id;
  }
  c.crash(1);
  c.queue().clear();

  // Node 2 campaigns; its appends reach node 3 only, and 3's first append
  // response is lost so the write below goes out with the no-op.
  c.set_drop_filter([](const Message& m) {
    if (m.from == 2 && m.to != 3 && is_append_or_heartbeat(m)) return true;
    if (m.from == 3 && m.to == 2 && m.type == MessageType::kAppendResponse) return true;
    return false;
  });
  // Leader stickiness: let 3, 5 and 6 forget node 1 (5 and 6 are learners in
  // their committed configuration and do not campaign).
  for (NodeId id : {3, 5, 6}) c.tick(id, 10);
  ASSERT_EQ(c.raft(3).role(), Role::kFollower);
  c.trace(true);
  bool won = c.campaign(2);
  ASSERT_TRUE(won) << c.take_transcript();
  c.trace(false);
  const Term t2 = c.raft(2).term();
  auto w = c.propose(2, {"w"});
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  c.set_drop_filter(
      [](const Message& m) { return m.from == 2 && m.to != 3 && is_append_or_heartbeat(m); });
  c.tick(2);
  c.stabilize();
  // Node 2 commits by its committed configuration, C_old: {2,3} suffices.
  ASSERT_GE(c.raft(2).commit_index(), *w);
  ASSERT_TRUE(has(c.node(2).sm.values(), "w"));
  // Committed at index L by term t2; node 4 holds L (of the earlier term) there.
  ASSERT_EQ(c.raft(2).log().term_or_zero(L), t2);

  // {2,3} | {4,5,6}: node 4 campaigns.
  c.heal();
  c.partition({{2, 3}, {4, 5, 6}});
  c.run(80);
  NodeId l4 = kNoNode;
  for (NodeId id : {4, 5, 6})
    if (c.raft(id).role() == Role::kLeader) l4 = id;
  if (l4 != kNoNode) {
    EXPECT_EQ(c.raft(l4).log().term_or_zero(*w), t2)
        << "leader " << l4 << " of term " << c.raft(l4).term()
        << " lacks the write committed by node 2 at index " << *w << " in term " << t2
        << " (its entry there has term " << c.raft(l4).log().term_or_zero(*w) << ")";
  }
  // Whatever happened, after healing every node ends up with w applied.
  c.heal();
  c.run(80);
  NodeId l = c.leader();
  ASSERT_NE(l, kNoNode);
  ASSERT_TRUE(c.propose(l, {"x"}).ok());
  c.stabilize();
  for (NodeId id : {2, 3, 4, 5, 6}) {
    EXPECT_TRUE(has(c.node(id).sm.values(), "w")) << "node " << id << " lost the committed write w";
    EXPECT_TRUE(has(c.node(id).sm.values(), "x")) << "node " << id;
  }
}

}  // namespace
}  // namespace cset::raft::test
