#include "raft/quorum.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace cset::raft {

namespace {

constexpr Index kNoConstraint = std::numeric_limits<Index>::max();

// What one half of a configuration says about an election.
VoteResult half_vote_result(const VoterSet& set, const std::map<NodeId, bool>& votes) {
  if (set.empty()) return VoteResult::kWon;
  std::vector<NodeId> granted;
  std::vector<NodeId> possible;  // granted plus voters yet to answer
  for (NodeId id : set.voters()) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      possible.push_back(id);
    } else if (it->second) {
      granted.push_back(id);
      possible.push_back(id);
    }
  }
  if (set.is_quorum(granted)) return VoteResult::kWon;
  if (!set.is_quorum(possible)) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace

VoterSet::VoterSet(std::vector<NodeId> voters, NodeId tiebreaker, QuorumMode mode)
    : voters_(std::move(voters)), tiebreaker_(tiebreaker), mode_(mode) {
  // Sorted and unique by contract; normalise anyway so a duplicate can never
  // be counted twice.
  std::sort(voters_.begin(), voters_.end());
  voters_.erase(std::unique(voters_.begin(), voters_.end()), voters_.end());
  voters_.erase(std::remove(voters_.begin(), voters_.end(), kNoNode), voters_.end());
}

bool VoterSet::contains(NodeId id) const {
  return std::binary_search(voters_.begin(), voters_.end(), id);
}

bool VoterSet::tiebreaker_doubled() const {
  const size_t n = voters_.size();
  return mode_ == QuorumMode::kTiebreak && n >= 4 && n % 2 == 0 && contains(tiebreaker_);
}

unsigned VoterSet::weight(NodeId id) const {
  if (!contains(id)) return 0;
  return (id == tiebreaker_ && tiebreaker_doubled()) ? 2 : 1;
}

unsigned VoterSet::total_weight() const {
  return static_cast<unsigned>(voters_.size()) + (tiebreaker_doubled() ? 1 : 0);
}

bool VoterSet::is_quorum_weight(unsigned weight) const {
  // weight > total / 2, in integers.
  const unsigned total = total_weight();
  if (half_inclusive_bug_) return 2 * weight >= total;
  return 2 * weight > total;
}

bool VoterSet::is_quorum(const std::vector<NodeId>& ids) const {
  if (voters_.empty()) return true;
  // Walk the voters, not `ids`, so a duplicate id is counted once and a
  // non-voter not at all. Both lists hold a handful of ids.
  unsigned sum = 0;
  for (NodeId voter : voters_) {
    if (std::find(ids.begin(), ids.end(), voter) != ids.end()) sum += weight(voter);
  }
  return is_quorum_weight(sum);
}

Index VoterSet::committed_index(const std::function<Index(NodeId)>& match) const {
  if (voters_.empty()) return kNoConstraint;
  // Walk voters from the highest match down, adding weights; the first match
  // at which the accumulated weight is a quorum is held by a quorum (every
  // voter counted so far has reached it), and no higher index is.
  std::vector<std::pair<Index, NodeId>> by_match;
  by_match.reserve(voters_.size());
  for (NodeId id : voters_) by_match.emplace_back(match(id), id);
  std::sort(by_match.begin(), by_match.end(), std::greater<>());
  unsigned sum = 0;
  for (const auto& [index, id] : by_match) {
    sum += weight(id);
    if (is_quorum_weight(sum)) return index;
  }
  // Unreachable: all voters together are a quorum. Be safe anyway.
  return 0;
}

JointQuorum::JointQuorum(const Configuration& config)
    : incoming_(config.voters, config.tiebreaker, config.mode),
      outgoing_(config.outgoing_voters, config.outgoing_tiebreaker, config.mode) {}

bool JointQuorum::is_quorum(const std::vector<NodeId>& ids) const {
  return incoming_.is_quorum(ids) && outgoing_.is_quorum(ids);
}

Index JointQuorum::committed_index(const std::function<Index(NodeId)>& match) const {
  return std::min(incoming_.committed_index(match), outgoing_.committed_index(match));
}

VoteResult JointQuorum::vote_result(const std::map<NodeId, bool>& votes) const {
  const VoteResult in = half_vote_result(incoming_, votes);
  const VoteResult out = half_vote_result(outgoing_, votes);
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  if (in == VoteResult::kWon && out == VoteResult::kWon) return VoteResult::kWon;
  return VoteResult::kPending;
}

NodeId default_tiebreaker(const std::vector<NodeId>& sorted_voters) {
  NodeId lowest = kNoNode;
  for (NodeId id : sorted_voters) {
    if (id != kNoNode && (lowest == kNoNode || id < lowest)) lowest = id;
  }
  return lowest;
}

}  // namespace cset::raft
