// Configuration helpers and the names of messages and roles (raft/types.h).
#include "raft/types.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace cset::raft {
namespace {

// C_old = {1,2,3}, C_new = {2,3,4} (1 leaving, 4 joining), learner 5, removed 9.
Configuration joint_example() {
  Configuration c;
  c.voters = {2, 3, 4};
  c.tiebreaker = 2;
  c.outgoing_voters = {1, 2, 3};
  c.outgoing_tiebreaker = 1;
  c.learners = {5};
  c.members = {{1, "a1"}, {2, "a2"}, {3, "a3"}, {4, "a4"}, {5, "a5"}};
  c.removed = {9};
  return c;
}

TEST(ConfigurationTest, VotersOfEitherHalfLearnersAndMembers) {
  const Configuration c = joint_example();
  EXPECT_TRUE(c.joint());
  for (NodeId id : {1, 2, 3, 4}) EXPECT_TRUE(c.is_voter(id)) << id;
  EXPECT_FALSE(c.is_voter(5));
  EXPECT_FALSE(c.is_voter(9));
  EXPECT_FALSE(c.is_voter(kNoNode));
  EXPECT_TRUE(c.is_learner(5));
  EXPECT_FALSE(c.is_learner(4));
  EXPECT_TRUE(c.contains(1));  // still a voter of C_old while joint
  EXPECT_TRUE(c.contains(5));
  EXPECT_FALSE(c.contains(9));  // removed ids are not members

  ASSERT_NE(c.member(4), nullptr);
  EXPECT_EQ(c.member(4)->context, "a4");
  EXPECT_EQ(c.member(9), nullptr);
  EXPECT_EQ(c.member(kNoNode), nullptr);

  Configuration simple;
  simple.voters = {1};
  simple.tiebreaker = 1;
  EXPECT_FALSE(simple.joint());
  EXPECT_TRUE(simple.is_voter(1));
  EXPECT_EQ(simple.member(1), nullptr);  // no member record given
}

TEST(ConfigurationTest, AllNodesIsSortedAndUnique) {
  EXPECT_EQ(joint_example().all_nodes(), (std::vector<NodeId>{1, 2, 3, 4, 5}));
  Configuration c;
  c.voters = {7, 3};  // unsorted on purpose: all_nodes sorts
  c.outgoing_voters = {3, 8};
  c.learners = {1};
  EXPECT_EQ(c.all_nodes(), (std::vector<NodeId>{1, 3, 7, 8}));
  EXPECT_TRUE(Configuration().all_nodes().empty());
}

TEST(NamesTest, EveryMessageTypeAndRoleHasItsOwnName) {
  std::set<std::string> names;
  for (int t = 0; t <= static_cast<int>(MessageType::kReadIndexResponse); ++t) {
    const std::string name = to_string(static_cast<MessageType>(t));
    EXPECT_NE(name, "Unknown") << t;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
  }
  EXPECT_EQ(names.size(), 13u);
  EXPECT_STREQ(to_string(MessageType::kAppendResponse), "AppendResponse");
  EXPECT_STREQ(to_string(MessageType::kTimeoutNow), "TimeoutNow");

  std::set<std::string> roles;
  for (Role r :
       {Role::kFollower, Role::kPreCandidate, Role::kCandidate, Role::kLeader, Role::kLearner}) {
    EXPECT_TRUE(roles.insert(to_string(r)).second);
  }
  EXPECT_STREQ(to_string(Role::kLeader), "Leader");
  EXPECT_STREQ(to_string(Role::kPreCandidate), "PreCandidate");
}

}  // namespace
}  // namespace cset::raft
