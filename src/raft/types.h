// The consensus core's vocabulary: log entries, hard state, configurations,
// snapshots and the messages nodes exchange (Raft paper §5, dissertation
// chapters 3, 4, 5 and 6).
//
// Plain values; no I/O. The wire encoding of messages lives in net/; the
// encoding of a Configuration inside a log entry or snapshot is in
// raft/codec.h so every layer reads it the same way.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cset::raft {

using NodeId = uint64_t;  // 1..2^63-1; 0 means "none".
using Term = uint64_t;
using Index = uint64_t;

inline constexpr NodeId kNoNode = 0;

enum class EntryType : uint8_t {
  kNormal = 0,  // state machine command (opaque to raft)
  kNoop = 1,    // appended by a new leader (Raft paper §8); data empty
  kConfig = 2,  // data is an encoded Configuration (raft/codec.h)
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

/// What must be durable before a node votes or acknowledges (Raft paper
/// Figure 2 "persistent state"), plus the commit index (an optimisation that
/// lets a restarted node apply without waiting for a leader).
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;

  bool operator==(const HardState&) const = default;
};

enum class QuorumMode : uint8_t {
  kTiebreak = 0,  // DESIGN.md: with an even voter count >= 4, the tie-breaker weighs 2
  kMajority = 1,  // every voter weighs 1
};

/// One member of the configuration. `context` is opaque to raft: the server
/// stores addresses and the data-directory incarnation there, so the
/// configuration at every log index is the cluster's registry.
struct Member {
  NodeId id = kNoNode;
  std::string context;

  bool operator==(const Member&) const = default;
};

/// A cluster configuration (dissertation §4.3). When `outgoing` is non-empty
/// the configuration is joint (C_old,new): decisions need a quorum of
/// `incoming` (C_new) and of `outgoing` (C_old), each with its own weights and
/// tie-breaker. Learners receive the log but neither vote nor count.
///
/// Invariants: ids sorted and unique within each list; a learner is not a
/// voter in `incoming`; each non-empty voter list holds its tie-breaker.
struct Configuration {
  QuorumMode mode = QuorumMode::kTiebreak;
  std::vector<NodeId> voters;            // C_new (or the only configuration)
  NodeId tiebreaker = kNoNode;           // of `voters`
  std::vector<NodeId> outgoing_voters;   // C_old while joint, else empty
  NodeId outgoing_tiebreaker = kNoNode;  // of `outgoing_voters`
  std::vector<NodeId> learners;
  std::vector<Member> members;  // every voter and learner, sorted by id
  std::vector<NodeId> removed;  // ids never to be reused, sorted

  bool joint() const { return !outgoing_voters.empty(); }
  bool is_voter(NodeId id) const;  // in either half
  bool is_learner(NodeId id) const;
  bool contains(NodeId id) const { return is_voter(id) || is_learner(id); }
  const Member* member(NodeId id) const;
  /// Every id that receives the log: voters of both halves and learners, sorted.
  std::vector<NodeId> all_nodes() const;

  bool operator==(const Configuration&) const = default;
};

/// A snapshot's metadata: the last entry it covers and the configuration in
/// force at that entry (dissertation §5.1). Never the sender's hard state.
struct SnapshotMeta {
  Index index = 0;
  Term term = 0;
  Configuration config;

  bool operator==(const SnapshotMeta&) const = default;
};

/// A whole snapshot: metadata plus the state machine image (opaque to raft).
struct Snapshot {
  SnapshotMeta meta;
  std::string data;

  bool empty() const { return meta.index == 0; }
};

/// A part of a snapshot's image (Storage::snapshot_chunk).
struct SnapshotChunk {
  SnapshotMeta meta;
  uint64_t total_bytes = 0;  // the whole image's size
  std::string bytes;
};

enum class MessageType : uint8_t {
  kPreVote,  // dissertation §9.6; term = the term the sender would campaign in
  kPreVoteResponse,
  kVote,  // RequestVote
  kVoteResponse,
  kAppend,  // AppendEntries with entries (possibly none: a probe)
  kAppendResponse,
  kHeartbeat,  // AppendEntries carrying only commit and a ReadIndex context
  kHeartbeatResponse,
  kSnapshot,  // one InstallSnapshot chunk (dissertation §5.3)
  kSnapshotResponse,
  kTimeoutNow,  // leadership transfer (dissertation §3.10)
  kReadIndex,   // a follower asks the leader for a read index (§6.4)
  kReadIndexResponse,
};

const char* to_string(MessageType type);

/// One message between nodes. Which fields mean what, by type:
/// - kPreVote/kVote: term, index/log_term = candidate's last entry; `transfer`
///   set when campaigning after TimeoutNow.
/// - k*VoteResponse: term, reject.
/// - kAppend: index/log_term = entry preceding `entries`; commit.
/// - kAppendResponse: index = last index matched (accept) or the rejected
///   index (reject); reject_hint/reject_hint_term = the follower's conflict
///   hint (Raft paper §5.3 optimisation); `index` of an accept is also how far
///   the follower has made the entries durable.
/// - kHeartbeat: commit (capped at the follower's match), context.
/// - kHeartbeatResponse: context.
/// - kSnapshot: snapshot_meta, snapshot_offset (bytes), snapshot_chunk,
///   snapshot_done (last chunk).
/// - kSnapshotResponse: reject set when a chunk arrived out of order;
///   index = snapshot index; snapshot_offset = bytes received so far.
/// - kReadIndex: context. kReadIndexResponse: index (the read index), context.
struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  Term log_term = 0;
  Index index = 0;
  Index commit = 0;
  std::vector<Entry> entries;
  bool reject = false;
  Index reject_hint = 0;
  Term reject_hint_term = 0;
  bool transfer = false;
  std::string context;
  SnapshotMeta snapshot_meta;
  uint64_t snapshot_offset = 0;
  std::string snapshot_chunk;
  bool snapshot_done = false;
};

/// A linearizable read point (dissertation §6.4): once the local applied index
/// reaches `index`, a read for `context` may be served from local state.
struct ReadState {
  Index index = 0;
  std::string context;

  bool operator==(const ReadState&) const = default;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader, kLearner };
const char* to_string(Role role);

}  // namespace cset::raft
