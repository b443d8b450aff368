#include "raft/types.h"

#include <algorithm>

namespace cset::raft {

namespace {

// Configurations hold a handful of ids, so a linear scan is as fast as a
// binary search and stays correct even for a list that breaks the sorted
// invariant (a bug elsewhere must not turn into a wrong membership answer).
bool holds(const std::vector<NodeId>& ids, NodeId id) {
  return id != kNoNode && std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

bool Configuration::is_voter(NodeId id) const {
  return holds(voters, id) || holds(outgoing_voters, id);
}

bool Configuration::is_learner(NodeId id) const { return holds(learners, id); }

const Member* Configuration::member(NodeId id) const {
  if (id == kNoNode) return nullptr;
  for (const Member& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

std::vector<NodeId> Configuration::all_nodes() const {
  std::vector<NodeId> out;
  out.reserve(voters.size() + outgoing_voters.size() + learners.size());
  out.insert(out.end(), voters.begin(), voters.end());
  out.insert(out.end(), outgoing_voters.begin(), outgoing_voters.end());
  out.insert(out.end(), learners.begin(), learners.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  out.erase(std::remove(out.begin(), out.end(), kNoNode), out.end());
  return out;
}

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kSnapshot:
      return "Snapshot";
    case MessageType::kSnapshotResponse:
      return "SnapshotResponse";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResponse:
      return "ReadIndexResponse";
  }
  return "Unknown";
}

const char* to_string(Role role) {
  switch (role) {
    case Role::kFollower:
      return "Follower";
    case Role::kPreCandidate:
      return "PreCandidate";
    case Role::kCandidate:
      return "Candidate";
    case Role::kLeader:
      return "Leader";
    case Role::kLearner:
      return "Learner";
  }
  return "Unknown";
}

}  // namespace cset::raft
