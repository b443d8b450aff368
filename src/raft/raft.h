// The consensus core: one Raft node as a deterministic state machine.
//
// Inputs: tick(), step(message), propose(batch), propose_conf_change(...),
// read_index(context), transfer_leadership(id), set_storage_failed(bool).
// Output: a Ready batch, acknowledged with advance(). Same inputs, same
// outputs: no I/O, no clock, no threads, no randomness of its own (the caller
// passes the seed of the election-timeout randomization). This is what lets
// one process simulate a whole cluster (sim/). Shape after etcd's raft
// package (rawnode.go); algorithm from the Raft paper and Ongaro's
// dissertation, cited per rule below.
//
// ## The caller's loop and the persistence contract
//   while (raft.has_ready()) {
//     Ready rd = raft.ready();
//     send(rd.leader_messages);        // may go before the batch is durable
//     persist(rd.snapshot, rd.entries, rd.hard_state);  // fsync if rd.must_sync
//     send(rd.messages);               // only after the batch is durable
//     apply(rd.snapshot); apply(rd.committed_entries);
//     serve(rd.read_states);           // once applied index >= read index
//     raft.advance(rd);                // "everything in rd is durable and applied"
//   }
// tick(), step(), propose(), read_index() and the other inputs may be called
// between ready() and advance() (a server can keep stepping messages while an
// fsync runs); ready() may not be called again before advance().
// - Only a leader's AppendEntries, heartbeats, snapshot chunks and TimeoutNow
//   may go before their batch is durable (dissertation §10.2.1): they are in
//   `leader_messages`. Every other message — vote and pre-vote replies,
//   append acknowledgements, a candidate's vote requests — is in `messages`
//   and must wait until the hard state and entries of the same Ready are
//   durable.
// - The leader counts itself toward commitment only up to its own durable
//   index (what advance() confirmed), and a candidate counts its own vote
//   only once advance() confirmed its term and vote durable.
// - If persisting fails, the caller must not send `messages`, must not call
//   advance(), and calls set_storage_failed(true): the node then neither votes
//   nor acknowledges appends, a leader hands leadership to the most
//   up-to-date voter, and nobody campaigns until set_storage_failed(false).
//   The failed Ready is produced again (its entries re-sent) once storage is
//   back: call ready() again after set_storage_failed(false).
// - A Ready whose only durable change is the commit index has must_sync
//   false: its hard state may be written without an fsync (etcd's MustSync).
//   Raft needs the term, the vote and the log on disk before answering, not
//   the commit index: a node that loses it learns it again from the leader,
//   and load() raises it to the applied index. Written in order before the
//   state machine's writes, it is never behind what they survive with.
//
// ## Configuration
// Configurations live in the log as kConfig entries holding the whole
// Configuration (raft/codec.h) and take effect when committed, on every node
// (etcd's rule, safe with one change in flight at a time). Every change to
// the voter set goes through a joint configuration (dissertation §4.3;
// weighted quorums make single-server changes unsafe, DESIGN.md); the leader
// proposes the final configuration automatically once the joint one commits.
//
// Thread-safety: none; one thread owns a Raft.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cset/status.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace cset::raft {

/// Deliberately broken variants, compiled in only with CSET_TEST_HOOKS, so the
/// simulator can show that its checkers catch them (issue 3). All false by
/// default; a production build has no way to set them.
struct InjectedBugs {
  bool commit_on_minority = false;             // commit with fewer than a quorum
  bool commit_old_term = false;                // count old-term entries (Figure 8)
  bool vote_without_log_check = false;         // grant without the up-to-date check
  bool leader_counts_unsynced = false;         // self match = last index, not durable
  bool read_index_before_term_commit = false;  // ReadIndex before own-term commit
  bool quorum_half_inclusive = false;          // >= half the weight instead of >
  bool tiebreaker_from_reachable = false;      // tie-breaker = lowest reachable id
  bool single_server_change = false;           // voter changes without joint consensus
};

struct Options {
  NodeId id = kNoNode;
  /// Durable storage this node reads its state from. Not owned; outlives Raft.
  Storage* storage = nullptr;
  /// The state machine's durable applied index (>= the snapshot index). Entries
  /// after it and up to the durable commit index are handed out again.
  Index applied = 0;
  /// Election timeout is drawn from [election_ticks, 2 * election_ticks).
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  /// Seed of the node's election-timeout randomization.
  uint64_t random_seed = 1;
  bool pre_vote = true;      // dissertation §9.6
  bool check_quorum = true;  // dissertation §6.2: leader steps down without a quorum
  /// Bytes of entries in one AppendEntries (at least one entry is sent).
  uint64_t max_append_bytes = 1 << 20;
  /// Flow control per follower in replicate state: messages and bytes in flight.
  size_t max_inflight_messages = 256;
  uint64_t max_inflight_bytes = 32 << 20;
  /// Bytes of committed entries handed out in one Ready (at least one entry).
  uint64_t max_committed_bytes_per_ready = 16 << 20;
  /// Bytes of proposed but uncommitted entries a leader accepts; beyond it
  /// propose() answers kUnavailable. 0 = unbounded.
  uint64_t max_uncommitted_bytes = 256 << 20;
  /// InstallSnapshot chunk size in bytes (dissertation §5.3).
  uint64_t snapshot_chunk_bytes = 1 << 20;
  InjectedBugs bugs;  // honoured only with CSET_TEST_HOOKS
};

/// One change of a configuration change request.
struct ConfChange {
  enum class Type : uint8_t {
    kAddLearner,  // add a new node as a learner
    kAddVoter,    // add a new node directly as a voter (through joint consensus)
    kPromote,     // make a learner a voter
    kRemove,      // remove a voter or learner; its id is never reused
    // Replace a member's record (`context`) and nothing else: the voter set
    // and weights do not change, so no joint configuration is needed (the
    // old and new configurations have the same quorums). The server records
    // an initial member's incarnation this way once it is known.
    kUpdate,
  };
  Type type = Type::kAddLearner;
  NodeId id = kNoNode;
  std::string context;  // the member's opaque record (addresses, incarnation)
};

/// Ready: what the caller must persist, send and apply (see the loop above).
struct Ready {
  std::optional<HardState> hard_state;   // persist when set
  std::vector<Entry> entries;            // persist: append, truncating from entries[0].index
  std::optional<Snapshot> snapshot;      // persist, then restore the state machine from it
  std::vector<Message> leader_messages;  // may be sent before persisting
  std::vector<Message> messages;         // send only after persisting
  std::vector<Entry> committed_entries;  // apply in order after the snapshot
  std::vector<ReadState> read_states;    // serve once applied >= index
  /// Whether persisting this Ready needs an fsync before `messages` go out
  /// and advance() is called: true when it holds entries, a snapshot, or a
  /// new term or vote; false when only the commit index changed (above).
  bool must_sync = false;
  bool empty() const;
};

/// Replication status of one peer, as the leader sees it.
struct PeerStatus {
  NodeId id = kNoNode;
  Index match = 0;
  Index next = 0;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;
  bool voter = false;
};

class Raft {
 public:
  /// Loads the durable state from options.storage. Errors are fatal
  /// configuration mistakes (missing storage, id 0, applied beyond commit):
  /// kInvalid, or a storage error (kCorrupt) while reading the log.
  static Result<std::unique_ptr<Raft>> create(const Options& options);

  /// The first log entry every member of a new cluster starts from: index 1,
  /// term 1, the initial configuration. Every initial member persists this
  /// entry and HardState{term 1, no vote, commit 1} before create(); equal on
  /// every node, so their logs match.
  static Entry bootstrap_entry(const Configuration& config);
  /// The initial configuration: `voters`, the lowest id as tie-breaker.
  static Configuration initial_configuration(std::vector<Member> voters, QuorumMode mode);

  /// Advances logical time by one tick (heartbeat_ticks per heartbeat,
  /// election_ticks per election timeout).
  void tick();
  /// Handles a message from a peer. Messages from stale terms are answered or
  /// dropped as the paper says; nothing here fails.
  void step(const Message& message);
  /// Leader only: appends each element of `batch` as one kNormal entry.
  /// Returns the index of the last entry (entries are consecutive, in the
  /// current term()). Errors: kNotLeader (not leader, or a leadership
  /// transfer is in progress), kUnavailable (uncommitted bytes over the
  /// limit). Nothing is appended on error.
  Result<Index> propose(std::vector<std::string> batch);
  /// Leader only: proposes a configuration change (all `changes` at once).
  /// Changes to the voter set go through joint consensus. Errors: kNotLeader;
  /// kBusy when a change is still in flight or the leader has not yet
  /// committed an entry of its term (the 2015 single-server bug); kInvalid
  /// for an unknown, duplicate or removed id, promoting a non-learner,
  /// or a change leaving no voter; kNoQuorum when the voters recently heard
  /// from would not be a quorum of the new configuration.
  /// Returns the index of the configuration entry.
  Result<Index> propose_conf_change(const std::vector<ConfChange>& changes);
  /// Requests a linearizable read point (dissertation §6.4). On the leader it
  /// is confirmed by a heartbeat round to a quorum, and only after the leader
  /// has committed an entry of its current term; on a follower it is forwarded
  /// to the leader. The answer arrives as a ReadState with the same context
  /// in a later Ready. Errors: kNotLeader when no leader is known.
  /// Requests are batched: one heartbeat round confirms every pending context.
  Status read_index(std::string context);
  /// Leader only: hands leadership to `target` (dissertation §3.10): brings it
  /// up to date, then sends TimeoutNow. Proposals are refused meanwhile; the
  /// transfer is abandoned after an election timeout.
  /// Errors: kNotLeader, kInvalid (target is not a voter or is self).
  Status transfer_leadership(NodeId target);
  /// Reports that the caller cannot persist (true) or can again (false).
  void set_storage_failed(bool failed);

  bool has_ready() const;
  /// Collects the pending batch. Must be followed by advance(ready) (or, after
  /// a persistence failure, by set_storage_failed(true)) before the next call.
  Ready ready();
  /// Confirms that everything in `ready` is durable and applied.
  void advance(const Ready& ready);
  /// The leader's messages produced since the last ready() (appends,
  /// heartbeats, snapshot chunks, TimeoutNow), which may be sent before the
  /// entries they carry are durable (§10.2.1). Callable at any time, also
  /// between ready() and advance(), so a leader keeps replicating while its
  /// own fsync runs. Everything else waits for the next ready().
  std::vector<Message> take_leader_messages();

  // Observers.
  NodeId id() const { return id_; }
  Role role() const;
  Term term() const { return term_; }
  NodeId leader_id() const { return leader_; }
  NodeId vote() const { return vote_; }
  Index commit_index() const { return log_.committed(); }
  Index applied_index() const { return log_.applied(); }
  Index last_index() const { return log_.last_index(); }
  Index first_index() const { return log_.first_index(); }
  const Configuration& configuration() const { return config_; }
  const JointQuorum& quorum() const { return quorum_; }
  bool storage_failed() const { return storage_failed_; }
  /// Why ready() could not read committed entries from Storage (ok while it
  /// could): entries the log counts as stored are not there, or cannot be
  /// read. Committed entries are then no longer handed out and has_ready()
  /// stops reporting them (never an empty batch forever); the caller must
  /// treat it as fatal (restart: the log is loaded again from storage).
  const Status& log_read_error() const { return log_read_error_; }
  NodeId transfer_target() const { return transfer_target_; }
  /// Leader: whether a configuration change is proposed but not yet committed.
  bool conf_change_pending() const;
  /// Leader: whether the latest configuration in its log (committed or not)
  /// no longer has it as a voter; it then refuses proposals and hands over.
  bool leaving() const;
  /// Leader: replication status of every member; empty on other roles.
  std::vector<PeerStatus> peers() const;
  /// The durable index this node counts for itself (leader).
  Index durable_index() const { return durable_index_; }
  const RaftLog& log() const { return log_; }

 private:
  explicit Raft(const Options& options);
  Status load();

  // Role changes.
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(Term term);
  void campaign(bool pre_vote, bool transfer);
  bool promotable() const;
  void reset_randomized_timeout();
  uint64_t next_random();
  void poll_votes();

  // Quorums (with the test-only broken variants).
  JointQuorum make_quorum(const Configuration& config) const;
  JointQuorum vote_quorum() const;
  JointQuorum reachable_tiebreak_quorum(const std::vector<NodeId>& heard) const;
  bool quorum_active();
  bool bug(bool InjectedBugs::*flag) const;

  // Ticks.
  void tick_election();
  void tick_heartbeat();

  // Message handling.
  void send(Message m);
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot_chunk(const Message& m);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);
  void handle_snapshot_response(const Message& m, Progress& pr);
  bool restore_snapshot(Snapshot snapshot);

  // Replication and commitment (leader).
  void sync_progress();
  Index self_match() const;
  bool maybe_commit();
  void commit_to(Index index);
  /// A rejected (pre-)vote carries the responder's commit index and its
  /// term there, so a candidate can learn that entries it holds committed.
  void attach_commit_point(Message& resp) const;
  void learn_commit_point(const Message& m);
  bool committed_current_term() const;
  bool send_append(NodeId to, bool send_if_empty = true);
  void send_snapshot_chunk(NodeId to, Progress& pr);
  void send_heartbeat(NodeId to, const std::string& context);
  void send_timeout_now(NodeId to);
  void broadcast_append();
  void broadcast_heartbeat(const std::string& context);

  // Configuration.
  Result<Configuration> next_config(const std::vector<ConfChange>& changes) const;
  Index append_config(const Configuration& config);
  void maybe_auto_leave();
  void remember_configs(const std::vector<Entry>& entries);
  void truncate_pending_configs(Index from);
  void apply_committed_configs();
  void activate_config(const Configuration& config);

  // ReadIndex.
  struct PendingRead {
    std::string context;
    NodeId from;  // kNoNode for a local request
    Index index;
    std::set<NodeId> acks;
  };
  void read_index_from(std::string context, NodeId from);
  void serve_read(std::string context, NodeId from);
  void ack_read(const std::string& context, NodeId from);
  void release_read(const PendingRead& read);

  // Leadership transfer.
  void abort_transfer();
  NodeId best_transfer_target() const;

  HardState hard_state() const;

  NodeId id_;
  Options opts_;
  Storage* storage_;
  RaftLog log_;

  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId leader_ = kNoNode;
  Role role_ = Role::kFollower;
  HardState prev_hard_state_;

  Configuration config_;
  JointQuorum quorum_;
  Index config_index_ = 0;        // index of the entry holding config_
  Index pending_conf_index_ = 0;  // leader: last configuration entry proposed
  // Configuration entries in the log, not yet committed (they take effect
  // when committed; dropped when truncated).
  std::map<Index, Configuration> pending_configs_;

  std::map<NodeId, Progress> progress_;
  std::map<NodeId, bool> votes_;
  Index durable_index_ = 0;  // last index confirmed durable by advance()
  Term durable_term_ = 0;    // term confirmed durable by advance()
  NodeId durable_vote_ = kNoNode;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_ticks_ = 0;
  uint64_t rng_state_;

  NodeId transfer_target_ = kNoNode;
  bool removal_stepdown_ = false;  // removed leader handing over (C05)
  int transfer_elapsed_ = 0;
  bool storage_failed_ = false;
  Status log_read_error_;  // see log_read_error()
  uint64_t uncommitted_bytes_ = 0;

  // ReadIndex (§6.4), leader side: requests waiting for the first commit of
  // this term, then requests waiting for a quorum of heartbeat acks.
  std::vector<std::pair<std::string, NodeId>> reads_waiting_commit_;
  std::deque<PendingRead> reads_pending_;
  bool read_broadcast_needed_ = false;
  std::vector<ReadState> read_states_;

  // InstallSnapshot being received (follower): only whole snapshots are
  // ever installed.
  std::optional<Snapshot> receiving_snapshot_;

  std::vector<Message> msgs_;
  std::vector<Message> leader_msgs_;
};

}  // namespace cset::raft
