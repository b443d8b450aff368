// Weighted quorums (DESIGN.md "Quorums: majority, plus a tie-breaker").
//
// A voter set carries a weight per voter; a subset is a quorum when its
// weight is more than half the total. In `kTiebreak` mode, when the number of
// voters is even and at least 4, the configuration's tie-breaker weighs 2 and
// every other voter 1; otherwise (and always in `kMajority` mode) every voter
// weighs 1. Any two quorums of one voter set intersect (each holds more than
// half the weight), which is all Raft's election safety and leader
// completeness need; every majority is still a quorum.
//
// A joint configuration (dissertation §4.3) needs a quorum of each half, each
// counted with its own weights. Elections, pre-vote, check-quorum, ReadIndex
// confirmation and commitment all use these functions and nothing else.
//
// Pure functions of their arguments; thread-compatible.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "raft/types.h"

namespace cset::raft {

/// One half of a configuration: sorted voter ids, the tie-breaker and the mode.
class VoterSet {
 public:
  VoterSet() = default;
  /// `voters` is sorted and deduplicated (kNoNode dropped) here. A tie-breaker
  /// that is not among the voters doubles nobody.
  VoterSet(std::vector<NodeId> voters, NodeId tiebreaker, QuorumMode mode);

  bool empty() const { return voters_.empty(); }
  const std::vector<NodeId>& voters() const { return voters_; }
  bool contains(NodeId id) const;
  /// Vote weight of `id`: 0 for a non-voter, 2 for the tie-breaker of an even
  /// tiebreak set of >= 4 voters, else 1.
  unsigned weight(NodeId id) const;
  unsigned total_weight() const;
  /// True when the weight of `ids` (non-voters ignored, duplicates counted
  /// once) exceeds half the total.
  /// An empty voter set accepts anything (it places no constraint).
  bool is_quorum(const std::vector<NodeId>& ids) const;
  /// The largest index that a quorum has reached: `match(id)` for each voter.
  /// An empty voter set returns UINT64_MAX (no constraint).
  Index committed_index(const std::function<Index(NodeId)>& match) const;

#ifdef CSET_TEST_HOOKS
  /// Test hook (InjectedBugs::quorum_half_inclusive): when set, a weight of
  /// exactly half the total also counts as a quorum, so two disjoint halves
  /// can both "win". Only the simulator's checker tests turn it on.
  void set_half_inclusive_bug(bool on) { half_inclusive_bug_ = on; }
#endif

 private:
  // The tie-breaker weighs 2 (tiebreak mode, even voter count >= 4, and the
  // tie-breaker is one of the voters).
  bool tiebreaker_doubled() const;
  // Whether `weight` (of some subset of the voters) is a quorum.
  bool is_quorum_weight(unsigned weight) const;

  std::vector<NodeId> voters_;
  NodeId tiebreaker_ = kNoNode;
  QuorumMode mode_ = QuorumMode::kTiebreak;
  // Present in every build so the class layout never depends on the macro;
  // only settable with CSET_TEST_HOOKS, so always false in production.
  bool half_inclusive_bug_ = false;
};

enum class VoteResult { kPending, kLost, kWon };

/// Both halves of a (possibly joint) configuration.
class JointQuorum {
 public:
  JointQuorum() = default;
  explicit JointQuorum(const Configuration& config);

  const VoterSet& incoming() const { return incoming_; }
  const VoterSet& outgoing() const { return outgoing_; }
  bool is_voter(NodeId id) const { return incoming_.contains(id) || outgoing_.contains(id); }
  bool is_quorum(const std::vector<NodeId>& ids) const;
  /// The smaller of the two halves' committed indexes (UINT64_MAX when both
  /// halves are empty). Raft paper §5.3/§5.4.2; dissertation §4.3.
  Index committed_index(const std::function<Index(NodeId)>& match) const;
  /// votes: id -> granted; ids that vote in neither half are ignored. Won when the granted voters
  /// are a quorum of both halves; lost when some half can no longer reach a quorum even if every
  /// voter yet to answer grants. An empty half counts as won (no constraint).
  VoteResult vote_result(const std::map<NodeId, bool>& votes) const;

#ifdef CSET_TEST_HOOKS
  /// Test hook: sets VoterSet::set_half_inclusive_bug on both halves.
  void set_half_inclusive_bug(bool on) {
    incoming_.set_half_inclusive_bug(on);
    outgoing_.set_half_inclusive_bug(on);
  }
#endif

 private:
  VoterSet incoming_;
  VoterSet outgoing_;
};

/// The tie-breaker a voter set gets when it has none (bootstrap, or the old
/// tie-breaker left): its lowest id. kNoNode for an empty list.
NodeId default_tiebreaker(const std::vector<NodeId>& sorted_voters);

}  // namespace cset::raft
