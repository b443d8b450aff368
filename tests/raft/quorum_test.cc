// Weighted quorums (raft/quorum.h, DESIGN.md "Quorums"): the exact table for
// 1..9 voters, exhaustive intersection checks for single sets and for the
// joint configurations that single changes produce, committed indexes and
// vote counting.
#include "raft/quorum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace cset::raft {
namespace {

constexpr QuorumMode kModes[] = {QuorumMode::kTiebreak, QuorumMode::kMajority};
constexpr Index kMax = std::numeric_limits<Index>::max();

const char* name(QuorumMode mode) {
  return mode == QuorumMode::kTiebreak ? "tiebreak" : "majority";
}

std::vector<NodeId> range(NodeId lo, NodeId hi) {  // [lo, hi]
  std::vector<NodeId> out;
  for (NodeId id = lo; id <= hi; ++id) out.push_back(id);
  return out;
}

// Subsets of ids 1..n as bit masks: bit (id - 1).
std::vector<NodeId> members_of_uncached(uint32_t mask) {
  std::vector<NodeId> out;
  for (NodeId id = 1; mask != 0; ++id, mask >>= 1) {
    if (mask & 1) out.push_back(id);
  }
  return out;
}

// The ids of every subset of 1..10, built once (the exhaustive tests ask for
// millions of them).
const std::vector<NodeId>& members_of(uint32_t mask) {
  static const std::vector<std::vector<NodeId>> table = [] {
    std::vector<std::vector<NodeId>> t(1u << 10);
    for (uint32_t m = 0; m < t.size(); ++m) t[m] = members_of_uncached(m);
    return t;
  }();
  return table.at(mask);
}

uint32_t mask_of(const std::vector<NodeId>& ids) {
  uint32_t mask = 0;
  for (NodeId id : ids) mask |= 1u << (id - 1);
  return mask;
}

// Every subset of `universe_mask` that `set` accepts as a quorum.
template <typename QuorumLike>
std::vector<uint32_t> quorums(const QuorumLike& set, uint32_t universe_mask) {
  std::vector<uint32_t> out;
  for (uint32_t s = universe_mask;; s = (s - 1) & universe_mask) {
    if (set.is_quorum(members_of(s))) out.push_back(s);
    if (s == 0) break;
  }
  return out;
}

// Independent statement of the rule, by set size only: the oracle the
// implementation's weights are checked against.
bool rule_says_quorum(size_t n, size_t size, bool holds_tiebreaker, QuorumMode mode) {
  if (2 * size > n) return true;  // a majority is always a quorum
  const bool tiebreak = mode == QuorumMode::kTiebreak && n % 2 == 0 && n >= 4;
  return tiebreak && 2 * size == n && holds_tiebreaker;
}

TEST(QuorumWeights, TotalWeightTable) {
  // n:                        1  2  3  4  5  6  7  8  9
  const unsigned tiebreak[] = {1, 2, 3, 5, 5, 7, 7, 9, 9};
  const unsigned majority[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (NodeId n = 1; n <= 9; ++n) {
    EXPECT_EQ(VoterSet(range(1, n), 1, QuorumMode::kTiebreak).total_weight(), tiebreak[n - 1]) << n;
    EXPECT_EQ(VoterSet(range(1, n), 1, QuorumMode::kMajority).total_weight(), majority[n - 1]) << n;
  }
  EXPECT_EQ(VoterSet().total_weight(), 0u);
}

TEST(QuorumWeights, OnlyTheTiebreakerOfAnEvenSetOfFourOrMoreWeighsTwo) {
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 9; ++n) {
      for (NodeId tb = 1; tb <= n; ++tb) {
        VoterSet set(range(1, n), tb, mode);
        const bool doubled = mode == QuorumMode::kTiebreak && n % 2 == 0 && n >= 4;
        for (NodeId id = 1; id <= n; ++id) {
          EXPECT_EQ(set.weight(id), (id == tb && doubled) ? 2u : 1u)
              << name(mode) << " n=" << n << " tb=" << tb << " id=" << id;
        }
        EXPECT_EQ(set.weight(n + 1), 0u);
        EXPECT_EQ(set.weight(kNoNode), 0u);
      }
    }
  }
  // A tie-breaker that is not a voter doubles nobody (all weigh 1).
  VoterSet stray({1, 2, 3, 4}, 9, QuorumMode::kTiebreak);
  EXPECT_EQ(stray.total_weight(), 4u);
  EXPECT_FALSE(stray.is_quorum({1, 2}));
}

TEST(QuorumTable, EverySubsetOfOneToNineVotersFollowsTheRule) {
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 9; ++n) {
      for (NodeId tb = 1; tb <= n; ++tb) {
        VoterSet set(range(1, n), tb, mode);
        const uint32_t all = (1u << n) - 1;
        for (uint32_t s = 0; s <= all; ++s) {
          const std::vector<NodeId> ids = members_of(s);
          const bool holds_tb = (s >> (tb - 1)) & 1;
          EXPECT_EQ(set.is_quorum(ids), rule_says_quorum(n, ids.size(), holds_tb, mode))
              << name(mode) << " n=" << n << " tb=" << tb << " subset mask=" << s;
        }
      }
    }
  }
}

TEST(QuorumTable, QuorumCountsAndSmallestQuorums) {
  // How many of the 2^n subsets of n voters are quorums, and the size of the
  // smallest one. Tiebreak mode with an even n >= 4 adds exactly the halves
  // holding the tie-breaker: C(n-1, n/2-1) of them.
  struct Row {
    NodeId n;
    size_t tiebreak_quorums, majority_quorums, tiebreak_smallest, majority_smallest;
  };
  // clang-format off
  const Row table[] = {
      // n  quorums: tiebreak majority   smallest: tiebreak majority
      {1,            1,       1,                   1,       1},
      {2,            1,       1,                   2,       2},
      {3,            4,       4,                   2,       2},
      {4,            8,       5,                   2,       3},
      {5,           16,      16,                   3,       3},
      {6,           32,      22,                   3,       4},
      {7,           64,      64,                   4,       4},
      {8,          128,      93,                   4,       5},
      {9,          256,     256,                   5,       5},
  };
  // clang-format on
  for (const Row& row : table) {
    for (QuorumMode mode : kModes) {
      VoterSet set(range(1, row.n), 1, mode);
      const std::vector<uint32_t> qs = quorums(set, (1u << row.n) - 1);
      size_t smallest = 99;
      for (uint32_t q : qs) smallest = std::min<size_t>(smallest, members_of(q).size());
      const bool tb = mode == QuorumMode::kTiebreak;
      EXPECT_EQ(qs.size(), tb ? row.tiebreak_quorums : row.majority_quorums)
          << name(mode) << " n=" << row.n;
      EXPECT_EQ(smallest, tb ? row.tiebreak_smallest : row.majority_smallest)
          << name(mode) << " n=" << row.n;
    }
  }
}

TEST(QuorumTable, DesignPartitionScenarios) {
  // DESIGN.md: 2 voters split 1/1 -> both halt; 3 split 2/1 -> the 2 go on;
  // 4 split 2/2 -> exactly the half holding the tie-breaker (lowest id) goes on.
  VoterSet two({1, 2}, 1, QuorumMode::kTiebreak);
  EXPECT_FALSE(two.is_quorum({1}));
  EXPECT_FALSE(two.is_quorum({2}));
  EXPECT_TRUE(two.is_quorum({1, 2}));

  VoterSet three({1, 2, 3}, 1, QuorumMode::kTiebreak);
  EXPECT_TRUE(three.is_quorum({2, 3}));
  EXPECT_FALSE(three.is_quorum({1}));

  VoterSet four({1, 2, 3, 4}, 1, QuorumMode::kTiebreak);
  for (uint32_t s = 0; s < 16; ++s) {
    if (members_of(s).size() != 2) continue;
    const std::vector<NodeId> half = members_of(s);
    const std::vector<NodeId> other = members_of(15 & ~s);
    EXPECT_NE(four.is_quorum(half), four.is_quorum(other)) << "split mask " << s;
    EXPECT_EQ(four.is_quorum(half), (s & 1) != 0) << "the half with node 1 continues";
  }

  VoterSet four_majority({1, 2, 3, 4}, 1, QuorumMode::kMajority);
  EXPECT_FALSE(four_majority.is_quorum({1, 2}));
  EXPECT_FALSE(four_majority.is_quorum({3, 4}));
}

TEST(QuorumTable, EverySplitLeavesAtMostOneSideAndTiebreakLeavesExactlyOne) {
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 9; ++n) {
      for (NodeId tb = 1; tb <= n; ++tb) {
        VoterSet set(range(1, n), tb, mode);
        const uint32_t all = (1u << n) - 1;
        for (uint32_t s = 0; s <= all; ++s) {
          const int sides = set.is_quorum(members_of(s)) + set.is_quorum(members_of(all & ~s));
          EXPECT_LE(sides, 1) << name(mode) << " n=" << n << " mask=" << s;
          // Tiebreak mode never deadlocks a clean split, except with 2 voters
          // (by design: a lone node must not acknowledge writes).
          if (mode == QuorumMode::kTiebreak && n != 2) {
            EXPECT_EQ(sides, 1) << "n=" << n << " tb=" << tb << " mask=" << s;
          }
        }
      }
    }
  }
}

TEST(QuorumTable, DuplicatesNonVotersAndEmptySets) {
  VoterSet three({1, 2, 3}, 1, QuorumMode::kTiebreak);
  EXPECT_FALSE(three.is_quorum({1, 1, 1}));  // one voter, however often named
  EXPECT_FALSE(three.is_quorum({1, 7, 8, 9}));
  EXPECT_TRUE(three.is_quorum({9, 3, 1}));
  EXPECT_FALSE(three.is_quorum({}));

  VoterSet empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.is_quorum({}));  // no constraint
  EXPECT_TRUE(empty.is_quorum({5}));

  // Unsorted or duplicated input to the constructor is normalised.
  VoterSet messy({3, 1, 2, 3}, 1, QuorumMode::kTiebreak);
  EXPECT_EQ(messy.voters(), (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(messy.total_weight(), 3u);
}

TEST(QuorumTable, SupersetOfAQuorumIsAQuorum) {
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 8; ++n) {
      VoterSet set(range(1, n), n / 2 + 1, mode);
      const uint32_t all = (1u << n) - 1;
      for (uint32_t s = 0; s <= all; ++s) {
        if (!set.is_quorum(members_of(s))) continue;
        for (NodeId add = 1; add <= n + 1; ++add) {
          std::vector<NodeId> bigger = members_of(s);
          bigger.push_back(add);
          EXPECT_TRUE(set.is_quorum(bigger)) << name(mode) << " n=" << n << " mask=" << s;
        }
      }
    }
  }
}

TEST(QuorumIntersection, AnyTwoQuorumsOfOneVoterSetIntersect) {
  size_t pairs = 0;
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 9; ++n) {
      for (NodeId tb = 1; tb <= n; ++tb) {
        const std::vector<uint32_t> qs = quorums(VoterSet(range(1, n), tb, mode), (1u << n) - 1);
        for (uint32_t a : qs) {
          for (uint32_t b : qs) {
            ASSERT_NE(a & b, 0u) << name(mode) << " n=" << n << " tb=" << tb;
            ++pairs;
          }
        }
      }
    }
  }
  EXPECT_GT(pairs, 1000000u);  // the enumeration really ran
}

// One configuration change from `old_voters` (1..n): add (or promote) node
// n+1, or remove one voter. The new tie-breaker may be any new voter: the
// joint rule must be safe whatever weights the new half carries.
struct Change {
  std::vector<NodeId> old_voters, new_voters;
  NodeId old_tb, new_tb;
};

std::vector<Change> single_changes(NodeId n) {
  std::vector<Change> out;
  const std::vector<NodeId> old_voters = range(1, n);
  std::vector<std::vector<NodeId>> targets = {range(1, n + 1)};  // add or promote n+1
  for (NodeId removed = 1; n >= 2 && removed <= n; ++removed) {
    std::vector<NodeId> rest;
    for (NodeId id : old_voters) {
      if (id != removed) rest.push_back(id);
    }
    targets.push_back(rest);
  }
  for (const auto& new_voters : targets) {
    for (NodeId old_tb : old_voters) {
      for (NodeId new_tb : new_voters) out.push_back({old_voters, new_voters, old_tb, new_tb});
    }
  }
  return out;
}

// The tie-breaker the design's rule gives the new half: kept if it stays,
// else the lowest remaining id.
bool follows_rule(const Change& c) {
  const bool kept =
      std::find(c.new_voters.begin(), c.new_voters.end(), c.old_tb) != c.new_voters.end();
  return c.new_tb == (kept ? c.old_tb : default_tiebreaker(c.new_voters));
}

Configuration joint_config(const Change& c, QuorumMode mode) {
  Configuration config;
  config.mode = mode;
  config.voters = c.new_voters;
  config.tiebreaker = c.new_tb;
  config.outgoing_voters = c.old_voters;
  config.outgoing_tiebreaker = c.old_tb;
  return config;
}

// accepts[mask]: whether `q` accepts the subset `mask` of ids 1..bits. Also
// checks that the accepted subsets are closed upwards (adding a node to a
// quorum keeps it one), which makes the disjointness test below exact.
template <typename QuorumLike>
std::vector<char> acceptance(const QuorumLike& q, NodeId bits) {
  const uint32_t all = (1u << bits) - 1;
  std::vector<char> accepts(all + 1);
  for (uint32_t s = 0; s <= all; ++s) accepts[s] = q.is_quorum(members_of(s));
  uint32_t not_closed_at = 0;
  bool closed = true;
  for (uint32_t s = 0; s <= all; ++s) {
    for (NodeId b = 0; accepts[s] && b < bits; ++b) {
      if (!accepts[s | (1u << b)] && closed) {
        closed = false;
        not_closed_at = s;
      }
    }
  }
  EXPECT_TRUE(closed) << "a superset of quorum mask " << not_closed_at << " is no quorum";
  return accepts;
}

// Whether some quorum of `a` and some quorum of `b` share no node. With `b`
// upward closed, such a pair exists iff `b` accepts the complement of some
// quorum of `a` (that complement contains the disjoint quorum of `b`).
// Returns the pair through `qa`/`qb`.
bool some_disjoint(const std::vector<char>& a, const std::vector<char>& b, uint32_t* qa,
                   uint32_t* qb) {
  const uint32_t all = static_cast<uint32_t>(a.size() - 1);
  for (uint32_t s = 0; s <= all; ++s) {
    if (a[s] && b[all & ~s]) {
      *qa = s;
      *qb = all & ~s;
      return true;
    }
  }
  return false;
}

std::vector<char> both(const std::vector<char>& a, const std::vector<char>& b) {
  std::vector<char> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] && b[i];
  return out;
}

TEST(QuorumIntersection, DisjointnessShortcutAgreesWithPairwiseSearch) {
  // some_disjoint() is the exact pairwise search, made linear; check it on
  // every single change from 1..4 voters against the plain O(Q^2) search.
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 4; ++n) {
      const uint32_t universe = (1u << (n + 1)) - 1;
      for (const Change& c : single_changes(n)) {
        VoterSet a(c.old_voters, c.old_tb, mode), b(c.new_voters, c.new_tb, mode);
        bool pairwise = false;
        for (uint32_t x : quorums(a, universe)) {
          for (uint32_t y : quorums(b, universe)) pairwise = pairwise || (x & y) == 0;
        }
        uint32_t qa = 0, qb = 0;
        EXPECT_EQ(some_disjoint(acceptance(a, n + 1), acceptance(b, n + 1), &qa, &qb), pairwise);
      }
    }
  }
}

TEST(QuorumIntersection, JointQuorumsFromSingleChangesIntersectOldNewAndJoint) {
  size_t configs = 0;
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 8; ++n) {
      // Acceptance tables of the halves, by (voters, tie-breaker).
      std::map<std::pair<std::vector<NodeId>, NodeId>, std::vector<char>> cache;
      auto table = [&](const std::vector<NodeId>& voters, NodeId tb) -> const std::vector<char>& {
        auto [it, fresh] = cache.try_emplace({voters, tb});
        if (fresh) it->second = acceptance(VoterSet(voters, tb, mode), n + 1);
        return it->second;
      };
      for (const Change& c : single_changes(n)) {
        const std::vector<char>& old_q = table(c.old_voters, c.old_tb);
        const std::vector<char>& new_q = table(c.new_voters, c.new_tb);
        const std::vector<char> joint_q = acceptance(JointQuorum(joint_config(c, mode)), n + 1);
        uint32_t qa = 0, qb = 0;
        for (const std::vector<char>* other : {&old_q, &new_q, &joint_q}) {
          ASSERT_FALSE(some_disjoint(joint_q, *other, &qa, &qb))
              << name(mode) << " old n=" << n << " new=" << c.new_voters.size()
              << " old_tb=" << c.old_tb << " new_tb=" << c.new_tb << ": joint quorum mask " << qa
              << " misses mask " << qb;
        }
        // And the joint quorum really is "a quorum of each half".
        ASSERT_EQ(joint_q, both(old_q, new_q));
        ++configs;
      }
    }
  }
  EXPECT_EQ(configs, 2u * 1332u);  // sum over n of n * ((n+1) + n * (n-1))
}

TEST(QuorumIntersection, WithoutJointConsensusTiebreakQuorumsCanMiss) {
  // DESIGN.md's example of why every voter change goes through joint
  // consensus: {1,2,3} -> {1,2,3,4}, tie-breaker 1 throughout.
  VoterSet old_set({1, 2, 3}, 1, QuorumMode::kTiebreak);
  VoterSet new_set({1, 2, 3, 4}, 1, QuorumMode::kTiebreak);
  EXPECT_TRUE(old_set.is_quorum({2, 3}));
  EXPECT_TRUE(new_set.is_quorum({1, 4}));  // weight 3 of 5
  // The two quorums share nobody: two leaders could be elected in one term.
  EXPECT_EQ(mask_of({2, 3}) & mask_of({1, 4}), 0u);
  // The joint configuration accepts neither on its own.
  JointQuorum joint(joint_config({{1, 2, 3}, {1, 2, 3, 4}, 1, 1}, QuorumMode::kTiebreak));
  EXPECT_FALSE(joint.is_quorum({2, 3}));
  EXPECT_FALSE(joint.is_quorum({1, 4}));

  // Over every single change from 1..8 voters (tie-breaker per the design's
  // rule): a direct change is unsafe exactly when the old or the new voter
  // set is even and >= 4, i.e. has a tie-breaker weighing 2.
  std::ostringstream transcript;
  for (NodeId n = 1; n <= 8; ++n) {
    std::map<size_t, std::pair<int, int>> unsafe_of_total;  // by new size
    for (const Change& c : single_changes(n)) {
      if (!follows_rule(c)) continue;
      VoterSet a(c.old_voters, c.old_tb, QuorumMode::kTiebreak);
      VoterSet b(c.new_voters, c.new_tb, QuorumMode::kTiebreak);
      uint32_t qa = 0, qb = 0;
      const bool unsafe = some_disjoint(acceptance(a, n + 1), acceptance(b, n + 1), &qa, &qb);
      auto doubled = [](size_t k) { return k >= 4 && k % 2 == 0; };
      EXPECT_EQ(unsafe, doubled(c.old_voters.size()) || doubled(c.new_voters.size()))
          << n << " voters, tb " << c.old_tb << " -> " << c.new_voters.size() << ", tb "
          << c.new_tb;
      auto& [bad, total] = unsafe_of_total[c.new_voters.size()];
      bad += unsafe;
      total += 1;
    }
    for (const auto& [size, counts] : unsafe_of_total) {
      transcript << n << "->" << size << ":" << counts.first << "/" << counts.second << " ";
    }
  }
  // old->new: unsafe changes / changes, over every old tie-breaker.
  EXPECT_EQ(transcript.str(),
            "1->2:0/1 2->1:0/4 2->3:0/2 3->2:0/9 3->4:3/3 4->3:16/16 4->5:4/4 5->4:25/25 "
            "5->6:5/5 6->5:36/36 6->7:6/6 7->6:49/49 7->8:7/7 8->7:64/64 8->9:8/8 ");
}

TEST(QuorumIntersection, WithoutJointConsensusMajorityQuorumsAlwaysMeet) {
  // Majority mode is the classic case (dissertation §4.1): one server added
  // or removed, any old majority meets any new one, whatever tie-breakers.
  for (NodeId n = 1; n <= 8; ++n) {
    for (const Change& c : single_changes(n)) {
      if (c.old_tb != 1 || c.new_tb != c.new_voters.front()) continue;  // weights all 1
      uint32_t qa = 0, qb = 0;
      VoterSet a(c.old_voters, c.old_tb, QuorumMode::kMajority);
      VoterSet b(c.new_voters, c.new_tb, QuorumMode::kMajority);
      ASSERT_FALSE(some_disjoint(acceptance(a, n + 1), acceptance(b, n + 1), &qa, &qb))
          << "n=" << n << " " << qa << " vs " << qb;
    }
  }
}

TEST(JointQuorumTest, NeedsAQuorumOfBothHalves) {
  Configuration c;
  c.voters = {1, 2, 3, 4};  // tie-breaker 1 weighs 2
  c.tiebreaker = 1;
  c.outgoing_voters = {1, 2, 3};
  c.outgoing_tiebreaker = 1;
  JointQuorum q(c);
  EXPECT_TRUE(q.is_voter(4));
  EXPECT_FALSE(q.is_voter(5));
  EXPECT_TRUE(q.is_quorum({1, 2}));   // 3/5 of new, 2/3 of old
  EXPECT_FALSE(q.is_quorum({1, 4}));  // 3/5 of new, 1/3 of old
  EXPECT_FALSE(q.is_quorum({2, 3}));  // 2/5 of new, 2/3 of old
  EXPECT_TRUE(q.is_quorum({2, 3, 4}));

  // Not joint: the outgoing half is empty and places no constraint.
  Configuration simple;
  simple.voters = {1, 2, 3};
  simple.tiebreaker = 1;
  JointQuorum s(simple);
  EXPECT_TRUE(s.outgoing().empty());
  EXPECT_TRUE(s.is_quorum({2, 3}));
  EXPECT_FALSE(s.is_quorum({3}));
}

// The committed index by brute force: the largest value v among the matches
// such that the voters with match >= v are a quorum.
Index brute_committed(const VoterSet& set, const std::map<NodeId, Index>& match) {
  Index best = 0;
  for (const auto& [id, v] : match) {
    std::vector<NodeId> reached;
    for (const auto& [other, w] : match) {
      if (w >= v) reached.push_back(other);
    }
    if (set.is_quorum(reached)) best = std::max(best, v);
  }
  return best;
}

TEST(CommittedIndex, WeightedTable) {
  struct Case {
    std::vector<NodeId> voters;
    NodeId tb;
    QuorumMode mode;
    std::map<NodeId, Index> match;
    Index want;
  };
  const QuorumMode T = QuorumMode::kTiebreak, M = QuorumMode::kMajority;
  const Case cases[] = {
      {{1}, 1, T, {{1, 7}}, 7},
      {{1, 2}, 1, T, {{1, 5}, {2, 9}}, 5},  // both needed
      {{1, 2, 3}, 1, T, {{1, 10}, {2, 20}, {3, 30}}, 20},
      {{1, 2, 3}, 1, M, {{1, 10}, {2, 20}, {3, 30}}, 20},
      // 4 voters, tie-breaker 1 (weight 2 of 5).
      {{1, 2, 3, 4}, 1, T, {{1, 10}, {2, 20}, {3, 30}, {4, 40}}, 20},  // {2,3,4}
      {{1, 2, 3, 4}, 4, T, {{1, 10}, {2, 20}, {3, 30}, {4, 40}}, 30},  // {3,4} = 3/5
      {{1, 2, 3, 4}, 4, M, {{1, 10}, {2, 20}, {3, 30}, {4, 40}}, 20},  // 3 of 4 needed
      {{1, 2, 3, 4}, 1, T, {{1, 40}, {2, 30}, {3, 0}, {4, 0}}, 30},    // {1,2} = 3/5
      {{1, 2, 3, 4}, 1, M, {{1, 40}, {2, 30}, {3, 0}, {4, 0}}, 0},
      // 6 voters, tie-breaker 3: {3 (w2), 5} = 3 of 7 is not enough; {3,5,6} is.
      {{1, 2, 3, 4, 5, 6}, 3, T, {{1, 1}, {2, 2}, {3, 9}, {4, 3}, {5, 8}, {6, 7}}, 7},
      {{1, 2, 3, 4, 5, 6}, 6, T, {{1, 1}, {2, 2}, {3, 9}, {4, 3}, {5, 8}, {6, 7}}, 7},
      {{1, 2, 3, 4, 5, 6}, 1, T, {{1, 1}, {2, 2}, {3, 9}, {4, 3}, {5, 8}, {6, 7}}, 3},
      {{1, 2, 3, 4, 5, 6}, 1, M, {{1, 1}, {2, 2}, {3, 9}, {4, 3}, {5, 8}, {6, 7}}, 3},
      // Equal matches.
      {{1, 2, 3, 4, 5}, 1, T, {{1, 4}, {2, 4}, {3, 4}, {4, 4}, {5, 4}}, 4},
  };
  for (const Case& c : cases) {
    VoterSet set(c.voters, c.tb, c.mode);
    const Index got = set.committed_index([&](NodeId id) { return c.match.at(id); });
    EXPECT_EQ(got, c.want) << name(c.mode) << " n=" << c.voters.size() << " tb=" << c.tb;
    EXPECT_EQ(got, brute_committed(set, c.match));
  }
}

TEST(CommittedIndex, MatchesBruteForceOnRandomMatches) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 3000; ++round) {
    const NodeId n = 1 + rng() % 9;
    const NodeId tb = 1 + rng() % n;
    const QuorumMode mode = kModes[rng() % 2];
    std::map<NodeId, Index> match;
    for (NodeId id = 1; id <= n; ++id) match[id] = rng() % 6;
    VoterSet set(range(1, n), tb, mode);
    ASSERT_EQ(set.committed_index([&](NodeId id) { return match.at(id); }),
              brute_committed(set, match))
        << "round " << round;
  }
}

TEST(CommittedIndex, AsksOnlyVotersAndEmptyMeansNoConstraint) {
  VoterSet set({2, 4, 6}, 2, QuorumMode::kTiebreak);
  std::vector<NodeId> asked;
  set.committed_index([&](NodeId id) {
    asked.push_back(id);
    return Index{1};
  });
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<NodeId>{2, 4, 6}));
  EXPECT_EQ(VoterSet().committed_index([](NodeId) { return Index{3}; }), kMax);
  EXPECT_EQ(JointQuorum().committed_index([](NodeId) { return Index{3}; }), kMax);
}

TEST(CommittedIndex, JointIsTheMinimumOfTheHalves) {
  Configuration c;
  c.voters = {1, 2, 3, 4};
  c.tiebreaker = 1;
  c.outgoing_voters = {1, 2, 3};
  c.outgoing_tiebreaker = 1;
  JointQuorum q(c);
  std::map<NodeId, Index> match = {{1, 50}, {2, 10}, {3, 20}, {4, 40}};
  auto m = [&](NodeId id) { return match.at(id); };
  // new {1..4}, tb 1: {1,4} = 3/5 reach 40. old {1,2,3}: {1,3} reach 20.
  EXPECT_EQ(q.incoming().committed_index(m), 40u);
  EXPECT_EQ(q.outgoing().committed_index(m), 20u);
  EXPECT_EQ(q.committed_index(m), 20u);
  match[2] = 45;  // old: {1,2} reach 45; new: {1,2} = 3/5 reach 45
  EXPECT_EQ(q.committed_index(m), 45u);
  match[1] = 0;  // new: {2,4} = 2/5 at 40, {2,3,4} at 20; old: {2,3} at 20
  EXPECT_EQ(q.committed_index(m), 20u);

  Configuration simple;
  simple.voters = {1, 2, 3};
  simple.tiebreaker = 1;
  EXPECT_EQ(JointQuorum(simple).committed_index(m), 20u);
}

const char* result_name(VoteResult r) {
  switch (r) {
    case VoteResult::kPending:
      return "pending";
    case VoteResult::kLost:
      return "lost";
    case VoteResult::kWon:
      return "won";
  }
  return "?";
}

// A vote script: "1y 2n" = node 1 granted, node 2 rejected.
std::map<NodeId, bool> votes(const std::string& script) {
  std::map<NodeId, bool> out;
  std::istringstream in(script);
  std::string token;
  while (in >> token) out[std::stoull(token.substr(0, token.size() - 1))] = token.back() == 'y';
  return out;
}

Configuration config(std::vector<NodeId> voters, NodeId tb, std::vector<NodeId> old = {},
                     NodeId old_tb = kNoNode, QuorumMode mode = QuorumMode::kTiebreak) {
  Configuration c;
  c.mode = mode;
  c.voters = std::move(voters);
  c.tiebreaker = tb;
  c.outgoing_voters = std::move(old);
  c.outgoing_tiebreaker = old_tb;
  return c;
}

TEST(VoteResultTest, SingleConfigurationTranscript) {
  const QuorumMode M = QuorumMode::kMajority;
  struct Step {
    Configuration config;
    const char* votes;
    const char* want;
  };
  const Step steps[] = {
      {config({1}, 1), "", "pending"},
      {config({1}, 1), "1y", "won"},
      {config({1}, 1), "1n", "lost"},
      {config({1, 2}, 1), "1y", "pending"},
      {config({1, 2}, 1), "1n", "lost"},
      {config({1, 2}, 1), "1y 2y", "won"},
      {config({1, 2, 3}, 1), "1y 2n", "pending"},
      {config({1, 2, 3}, 1), "2y 3y", "won"},
      {config({1, 2, 3}, 1), "1n 3n", "lost"},
      // 4 voters, tie-breaker 1 weighs 2 of 5.
      {config({1, 2, 3, 4}, 1), "1y 2y", "won"},
      {config({1, 2, 3, 4}, 1), "3y 4y", "pending"},
      {config({1, 2, 3, 4}, 1), "3y 4y 1n", "pending"},  // 2 could still make 3/5
      {config({1, 2, 3, 4}, 1), "3y 4y 1n 2n", "lost"},
      {config({1, 2, 3, 4}, 1), "1n 2n", "lost"},
      {config({1, 2, 3, 4}, 1), "3n 4n", "pending"},
      {config({1, 2, 3, 4}, 1), "3n 4n 1y", "pending"},
      {config({1, 2, 3, 4}, 1), "3n 4n 1y 2y", "won"},
      // Same in majority mode: a 2/2 split is lost for both sides.
      {config({1, 2, 3, 4}, 1, {}, kNoNode, M), "1y 2y", "pending"},
      {config({1, 2, 3, 4}, 1, {}, kNoNode, M), "1y 2y 3n 4n", "lost"},
      {config({1, 2, 3, 4}, 1, {}, kNoNode, M), "1n 2n", "lost"},
      {config({1, 2, 3, 4}, 1, {}, kNoNode, M), "1y 2y 3y", "won"},
      // Votes from non-voters count for nothing.
      {config({1, 2, 3}, 1), "1y 7y 8y 9y", "pending"},
      // No voters at all: nothing to win against.
      {config({}, kNoNode), "", "won"},
  };
  for (const Step& s : steps) {
    EXPECT_STREQ(result_name(JointQuorum(s.config).vote_result(votes(s.votes))), s.want)
        << "voters=" << s.config.voters.size() << " mode=" << name(s.config.mode)
        << " votes: " << s.votes;
  }
}

TEST(VoteResultTest, JointConfigurationTranscript) {
  // C_old = {1,2,3}; C_new = {1,2,3,4} (tie-breaker 1 weighs 2 of 5).
  const Configuration add4 = config({1, 2, 3, 4}, 1, {1, 2, 3}, 1);
  // C_old = {1,2,3,4} tie-breaker 1; C_new = {2,3,4} (1 removed).
  const Configuration remove1 = config({2, 3, 4}, 2, {1, 2, 3, 4}, 1);
  struct Step {
    const Configuration* config;
    const char* votes;
    const char* want;
  };
  const Step steps[] = {
      {&add4, "1y 4y", "pending"},     // new quorum, old 1/3
      {&add4, "1y 4y 2y", "won"},      // both
      {&add4, "2y 3y", "pending"},     // old quorum, new 2/5
      {&add4, "2y 3y 4y", "won"},      // new 3/5
      {&add4, "2n 3n", "lost"},        // old can reach only 1/3
      {&add4, "1n 2n", "lost"},        // both lost
      {&add4, "4n", "pending"},        // new can still reach 4/5
      {&add4, "1n 4n", "lost"},        // new can reach only 2/5
      {&add4, "1n 4n 2y 3y", "lost"},  // old won, new lost
      {&remove1, "2y 3y", "pending"},  // new 2/3, old 2/5
      {&remove1, "2y 3y 1y", "won"},   // old 4/5
      {&remove1, "2y 3y 4y", "won"},   // old 3/5
      {&remove1, "1y 2n 3n", "lost"},  // new can reach only 1/3
      {&remove1, "1n 2n", "lost"},     // old can reach only 2/5
  };
  for (const Step& s : steps) {
    EXPECT_STREQ(result_name(JointQuorum(*s.config).vote_result(votes(s.votes))), s.want)
        << "votes: " << s.votes;
  }
}

TEST(VoteResultTest, AgreesWithIsQuorumOnEveryVoteAssignment) {
  // Won iff the granted voters are a quorum; lost iff granted plus unanswered
  // are not; every assignment of {granted, rejected, silent} to 1..6 voters.
  for (QuorumMode mode : kModes) {
    for (NodeId n = 1; n <= 6; ++n) {
      const Configuration c = config(range(1, n), 1, range(2, n + 1), n + 1, mode);
      JointQuorum q(c);
      int total = 1;
      for (NodeId i = 0; i <= n; ++i) total *= 3;  // ids 1..n+1
      for (int code = 0; code < total; ++code) {
        std::map<NodeId, bool> v;
        std::vector<NodeId> granted, possible;
        int rest = code;
        for (NodeId id = 1; id <= n + 1; ++id, rest /= 3) {
          if (rest % 3 == 1) v[id] = true;
          if (rest % 3 == 2) v[id] = false;
          if (rest % 3 == 1) granted.push_back(id);
          if (rest % 3 != 2) possible.push_back(id);
        }
        const VoteResult want = q.is_quorum(granted)     ? VoteResult::kWon
                                : !q.is_quorum(possible) ? VoteResult::kLost
                                                         : VoteResult::kPending;
        ASSERT_EQ(q.vote_result(v), want) << name(mode) << " n=" << n << " code=" << code;
      }
    }
  }
}

TEST(DefaultTiebreaker, IsTheLowestId) {
  EXPECT_EQ(default_tiebreaker({}), kNoNode);
  EXPECT_EQ(default_tiebreaker({7}), 7u);
  EXPECT_EQ(default_tiebreaker({2, 5, 9}), 2u);
  EXPECT_EQ(default_tiebreaker({9, 5, 2}), 2u);  // even when not sorted
}

TEST(InjectedBug, HalfInclusiveQuorumFlipsResults) {
#ifndef CSET_TEST_HOOKS
  GTEST_SKIP() << "built without CSET_TEST_HOOKS";
#else
  VoterSet two({1, 2}, 1, QuorumMode::kTiebreak);
  VoterSet four({1, 2, 3, 4}, 1, QuorumMode::kMajority);
  auto two_match = [](NodeId id) { return id == 1 ? Index{5} : Index{9}; };
  auto four_match = [](NodeId id) { return Index{10 * id}; };
  // Correct behaviour first.
  EXPECT_FALSE(two.is_quorum({1}));
  EXPECT_FALSE(four.is_quorum({3, 4}));
  EXPECT_EQ(two.committed_index(two_match), 5u);
  EXPECT_EQ(four.committed_index(four_match), 20u);

  two.set_half_inclusive_bug(true);
  four.set_half_inclusive_bug(true);
  EXPECT_TRUE(two.is_quorum({1}));
  EXPECT_TRUE(two.is_quorum({2}));  // both halves of a split "win"
  EXPECT_TRUE(four.is_quorum({1, 2}));
  EXPECT_TRUE(four.is_quorum({3, 4}));
  EXPECT_EQ(two.committed_index(two_match), 9u);  // commits on one node
  EXPECT_EQ(four.committed_index(four_match), 30u);

  // The intersection property is what breaks: the checker tests rely on it.
  const std::vector<uint32_t> qs = quorums(four, 15);
  bool disjoint = false;
  for (uint32_t a : qs) {
    for (uint32_t b : qs) disjoint = disjoint || (a & b) == 0;
  }
  EXPECT_TRUE(disjoint);

  // Odd total weight: "half inclusive" changes nothing (4-node tiebreak = 5).
  VoterSet four_tb({1, 2, 3, 4}, 1, QuorumMode::kTiebreak);
  four_tb.set_half_inclusive_bug(true);
  EXPECT_FALSE(four_tb.is_quorum({3, 4}));

  // JointQuorum sets both halves; vote counting follows.
  JointQuorum joint(config({1, 2}, 1, {1, 2, 3, 4}, 1, QuorumMode::kMajority));
  EXPECT_EQ(joint.vote_result(votes("1y")), VoteResult::kPending);
  EXPECT_EQ(joint.vote_result(votes("1y 2y")), VoteResult::kPending);
  joint.set_half_inclusive_bug(true);
  EXPECT_EQ(joint.vote_result(votes("1y 2y")), VoteResult::kWon);
  EXPECT_TRUE(joint.is_quorum({1, 2}));
  joint.set_half_inclusive_bug(false);
  EXPECT_FALSE(joint.is_quorum({1, 2}));
#endif
}

}  // namespace
}  // namespace cset::raft
