// Internal: the state of one node runtime (see server.h for the contract).
// Everything here runs on the loop thread unless marked otherwise.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/convert.h"
#include "net/tcp_transport.h"
#include "raft/raft.h"
#include "resp/limits.h"
#include "resp/writer.h"
#include "server/server.h"
#include "set/state_machine.h"
#include "storage/rocks_store.h"

namespace httplib {
class Server;
}

namespace cset::server {

/// What the configuration records per member (raft::Member::context).
struct MemberRecord {
  std::string peer_address;
  std::string client_address;
  std::string incarnation;
  // Written through the log by a leader that knew the incarnation (CSET.NODE
  // ADD, or a kUpdate of an initial member's record). An initial member's
  // record starts unconfirmed: each node's bootstrap entry knows only its own
  // incarnation, so until the leader confirms the record, a peer cannot tell
  // that node's wiped data directory from the original.
  bool confirmed = false;
};
std::string encode_member_context(const MemberRecord& record);
std::string hex(const std::string& bytes);
MemberRecord decode_member_context(const std::string& context);

class Connection;

/// Counters for /metrics and INFO.
struct Metrics {
  uint64_t writes = 0;
  uint64_t reads = 0;
  uint64_t proposals = 0;
  uint64_t proposal_batches = 0;
  uint64_t forwarded_writes = 0;   // ForwardRequests for writes this node sent
  uint64_t forwards_accepted = 0;  // of those, answered from this node's apply
  uint64_t snapshots_taken = 0;
  uint64_t snapshot_images_built = 0;  // images encoded for followers
  uint64_t snapshots_installed = 0;
  uint64_t storage_failures = 0;
  uint64_t leader_changes = 0;
  uint64_t connections_total = 0;
  // Error replies to clients by code word (every resp::ReplyWriter of a
  // client connection counts into it).
  resp::ReplyWriter::ErrorCounts errors;
  // fsync latency histogram, upper bounds in microseconds.
  static constexpr uint64_t kBucketsUs[] = {100,  250,   500,   1000,   2500,
                                            5000, 10000, 25000, 100000, 1000000};
  uint64_t fsync_buckets[11] = {};
  uint64_t fsync_count = 0;
  double fsync_sum_s = 0;
  void observe_fsync(std::chrono::steady_clock::duration d) {
    uint64_t us =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    size_t i = 0;
    while (i < 10 && us > kBucketsUs[i]) ++i;
    fsync_buckets[i]++;
    fsync_count++;
    fsync_sum_s += static_cast<double>(us) / 1e6;
  }
};

/// A copy of the node's state for the admin thread (published by the loop).
struct StatusSnapshot {
  std::string info_raft;                      // INFO's "# Raft" section body
  std::string status_json;                    // /status
  std::string metrics;                        // /metrics
  bool healthy = false;                       // has a leader and is caught up
  std::string unhealthy_reason = "starting";  // /health's body when not healthy
};

using WriteCallback = std::function<void(const Status&, const set::ApplyResult&)>;
using ReadCallback = std::function<void(const Status&)>;

class Server::Impl {
 public:
  explicit Impl(const ServerOptions& options);
  ~Impl();

  bool open(StartError* error);
  Status run();
  void stop();

  // For connections (loop thread).
  /// Proposes an encoded set::Command (through the leader). `done` gets ok
  /// with the apply result, or NOQUORUM / TIMEOUT / NOSPACE.
  /// `arrival_ms` (now_ms() clock; 0 = now) is when the command reached the
  /// node: one that already waited a whole write timeout in its connection's
  /// queue while the node knows no leader fails at once with NOQUORUM,
  /// instead of each queued command waiting a full timeout in turn (C11).
  void submit_write(std::string command, WriteCallback done, uint64_t arrival_ms = 0);
  /// Confirms a linearizable read point; `done` runs once the local state
  /// machine has applied it (then read sm()). `arrival_ms` as submit_write.
  void submit_read(ReadCallback done, uint64_t arrival_ms = 0);
  /// True when a command that arrived at `arrival_ms` has waited out the
  /// write timeout and no leader is known (see submit_write).
  bool expired_without_leader(uint64_t arrival_ms) const;
  set::StateMachine& sm() { return *sm_; }
  const ServerOptions& options() const { return opt_; }
  const resp::Limits& limits() const { return limits_; }
  resp::ReplyWriter::ErrorCounts* error_counts() { return &metrics_.errors; }
  // Whether open() got as far as opening (and locking) the store.
  bool store_opened() const { return store_ != nullptr; }
  std::string info_text(const std::vector<std::string>& sections, size_t clients);
  std::string memory_section();
  void cset_nodes(std::string* out, int protocol);
  void cset_status(std::string* out, int protocol);
  /// A membership command (SPEC.md: CSET.NODE ADD/PROMOTE/REMOVE, CSET.LEADER
  /// TRANSFER; `what` is "add", "promote", "remove" or "transfer"). On the
  /// leader it is proposed; on a follower it is forwarded once to the leader
  /// (never re-sent after it left, except when the leader refused it without
  /// proposing). `done` runs once the change has committed (a joint change:
  /// once its final configuration has), or with the refusal: BUSY (another
  /// change in flight), ERR (unknown/duplicate/removed id, bad target),
  /// NOQUORUM (no leader, or the change would leave no reachable quorum;
  /// nothing changed), TIMEOUT (sent but not confirmed in time: unknown),
  /// REMOVED (this node was removed).
  void admin_command(const std::string& what, uint64_t id, const std::string& address, bool voter,
                     std::function<void(const Status&)> done);
  bool removed() const { return removed_; }
  /// Started with --join and not yet in any committed configuration.
  bool waiting_to_join() const { return !member_ && !removed_; }
  void forget(Connection* c);
  void close_connections();
  Metrics& metrics() { return metrics_; }

 private:
  friend class Connection;
  struct PendingWrite {
    std::string command;
    WriteCallback done;
    uint64_t deadline_ms = 0;
    bool queued = false;     // waiting in proposal_queue_
    bool proposed = false;   // in this leader's log: past the point of no return
    bool forwarded = false;  // handed to the transport: past the point of no return
    raft::NodeId forwarded_to = 0;
  };
  struct RemoteWrite {
    raft::NodeId origin;
    uint64_t origin_request_id;
    std::string command;
    bool answer_on_apply = false;  // ForwardRequest.answer_on_apply
  };
  // A log entry this node waits to apply to answer a write: its own
  // proposal as leader, or, on the node a write was forwarded from, where
  // the leader put it (ForwardAccepted). Answered when that index is
  // applied: with the result if the entry there has this term, else "not
  // applied" (another leader's entry holds the index).
  struct Proposal {
    raft::Term term;
    uint64_t request_id;
  };
  struct PendingRead {
    ReadCallback done;
    uint64_t deadline_ms = 0;
    uint64_t retry_ms = 0;
    std::string context;
    raft::Index read_index = 0;
  };
  struct AdminOp {
    std::string what;  // add | promote | remove | transfer
    raft::NodeId id = 0;
    std::string address;  // add: the new node's peer address
    bool voter = false;   // add: as a voter
  };
  using AdminDone = std::function<void(const Status&)>;
  /// A membership command this leader works on.
  struct PendingAdmin {
    enum class Kind : uint8_t {
      kAwaitHandshake,  // add: waiting for the new node's handshake, nothing proposed yet
      kChange,          // proposed at (index, term); done when it (and its final half) applied
      kTransfer,        // done when `target` leads
    };
    Kind kind = Kind::kChange;
    raft::Index index = 0;
    raft::Term term = 0;
    raft::NodeId target = 0;
    AdminOp op;
    AdminDone done;
    uint64_t deadline_ms = 0;
    // kAwaitHandshake: give up waiting (a certain "nothing changed") at half
    // the budget, so that the answer reaches a forwarding follower before
    // its own deadline turns it into an unknown outcome.
    uint64_t handshake_deadline_ms = 0;
  };
  /// A membership command this follower forwarded (or will forward) to the leader.
  struct AdminForward {
    AdminOp op;
    AdminDone done;
    uint64_t deadline_ms = 0;
    bool forwarded = false;  // handed to the transport: past the point of no return
    raft::NodeId forwarded_to = 0;
  };

  bool open_sockets(StartError* error);
  std::optional<std::string> validate_handshake(const net::Handshake& h);  // transport thread
  void update_peers();
  void start_accept();
  void schedule_tick();
  void kick();
  void process_ready();
  void send_messages(std::vector<raft::Message>& msgs);
  void on_tick();
  /// True when the leader's progress shows `id` acknowledged an append.
  bool acknowledged(raft::NodeId id) const;
  void confirm_member_records();
  void on_storage_failure(const Status& s);
  uint64_t now_ms() const;
  void start_write(uint64_t id);
  void flush_proposals();
  void apply(const std::vector<raft::Entry>& entries);
  void complete_proposal(uint64_t id, const Status& s, const set::ApplyResult& r);
  void on_forward_accepted(raft::NodeId from, const net::ForwardAccepted& accepted);
  void on_forward_request(raft::NodeId from, net::ForwardRequest& request);
  void flush_forwards();
  void finish_write(uint64_t id, const Status& s, const set::ApplyResult& r);
  void on_forward_dropped(uint64_t id);
  void refuse_remote(uint64_t id, const Status& why);
  void on_frame(raft::NodeId from, net::PeerFrame&& f);
  void start_read(uint64_t id);
  void on_read_state(const raft::ReadState& rs);
  void serve_ready_reads();
  void finish_read(uint64_t id, const Status& s);
  void fail_all_pending();
  void maybe_snapshot();
  // Compacts the log behind a snapshot's metadata (no image).
  void take_snapshot();
  // Leader only: whether a follower is being sent a snapshot image.
  bool snapshot_transfer_in_progress() const;
  // How many snapshot intervals of log a transfer in progress may defer the
  // next snapshot by (maybe_snapshot()): with the defaults, 1,000,000
  // entries (about 100 MiB of log) while an image is sent.
  static constexpr uint64_t kMaxDeferredSnapshots = 100;
  // The metadata of a snapshot at the state machine's applied index: that
  // index, its term and the configuration applied there. Io thread only.
  Result<raft::SnapshotMeta> applied_snapshot_meta() const;
  // The state machine's image at its applied index, for a follower
  // (RocksStore::set_snapshot_source). Io thread only.
  Result<raft::Snapshot> snapshot_image();
  void on_config_applied();
  // Compares the core's leader, role and term with what was last seen and
  // logs a change; on a new leader, waiting requests try it (on_leader_change).
  // Called after every step, tick and Ready.
  void observe_leadership();
  void on_leader_change();
  void check_admin();
  void leader_admin(const AdminOp& op, uint64_t deadline_ms, AdminDone done);
  void propose_admin(PendingAdmin pending);
  void forward_admin(uint64_t id);
  void finish_admin_forward(uint64_t id, const Status& s);
  void on_admin_forward(raft::NodeId from, const net::ForwardRequest& req);
  void end_join_wait(raft::NodeId id);
  bool force_new_cluster(bool fresh, StartError* error);
  bool start_admin(StartError* error);
  void stop_admin();
  void publish_status();
  std::string raft_section();

  ServerOptions opt_;
  resp::Limits limits_;
  asio::io_context io_{1};
  asio::ip::tcp::acceptor acceptor_{io_};
  asio::steady_timer tick_timer_{io_};
  asio::signal_set signals_{io_, SIGTERM, SIGINT};
  std::unique_ptr<storage::RocksStore> store_;
  std::unique_ptr<set::StateMachine> sm_;
  std::unique_ptr<raft::Raft> raft_;
  std::unique_ptr<net::TcpTransport> transport_;
  std::set<std::shared_ptr<Connection>> connections_;
  uint64_t next_connection_id_ = 1;

  bool stopping_ = false;
  bool ready_posted_ = false;
  bool storage_failed_ = false;
  bool removed_ = false;
  Status fatal_;

  uint64_t next_request_id_ = 1;
  uint64_t read_seq_ = 0;
  std::map<uint64_t, PendingWrite> writes_;
  std::map<uint64_t, RemoteWrite> remote_writes_;
  std::vector<uint64_t> proposal_queue_;
  // Writes to forward, per leader, gathered during one loop turn and sent
  // by flush_forwards (posted once per turn). A ForwardBatch frame holds
  // at most kForwardBatchBytes of commands, or one larger request alone.
  static constexpr size_t kForwardBatchBytes = 256 * 1024;
  std::map<raft::NodeId, std::vector<uint64_t>> forward_outbox_;
  bool forward_flush_posted_ = false;
  // Several proposals may wait at one index, each under its own term: two
  // leaders wrote there, and either entry may be the one that commits.
  std::multimap<raft::Index, Proposal> proposals_;
  std::map<uint64_t, PendingRead> reads_;
  std::map<std::string, uint64_t> read_contexts_;
  std::vector<PendingAdmin> admin_waiting_;
  // Index of this leader's own kUpdate confirming a member record
  // (confirm_member_records); an admin command arriving while it is
  // uncommitted waits for it instead of answering BUSY.
  raft::Index record_update_index_ = 0;
  std::map<uint64_t, AdminForward> admin_forwards_;
  Metrics metrics_;

  // Registry, read by the transport thread during handshakes.
  std::mutex registry_mu_;
  std::map<raft::NodeId, MemberRecord> registry_;
  std::set<raft::NodeId> removed_ids_;
  std::map<raft::NodeId, MemberRecord> learned_;             // from handshakes
  std::map<raft::NodeId, bool> takes_forward_batches_;       // from handshakes
  std::map<raft::NodeId, std::string> learned_cluster_ids_;  // from handshakes
  // Nodes a CSET.NODE ADD waits for (id -> peer address): dialed and accepted
  // before they are members, so that the leader learns their client address
  // and incarnation before it records them in the configuration.
  std::map<raft::NodeId, std::string> joining_;
  // The last handshake refusal per peer (loop thread), so that an ADD that
  // fails can say why (another cluster, a wiped disk, ...): C06.
  std::map<raft::NodeId, std::string> last_refusal_;
  std::map<raft::NodeId, std::string> dialed_peers_;  // the last set given to the transport
  // Whether this node is in its (applied) configuration; false while a
  // --join node waits to be added: it then accepts any peer with the token.
  bool member_ = false;
  // The loop watchdog (its own thread, watchdog_main): the loop stamps
  // loop_beat_ms_ (now_ms()) at every tick; a loop that has not stamped for
  // kLoopStallMs is logged (a blocking call on the loop thread: every client,
  // peer and timer waits behind it), and counted in cset_loop_stalls_total.
  void watchdog_main();
  uint64_t loop_stall_ms() const;
  std::atomic<uint64_t> loop_beat_ms_{0};
  std::atomic<uint64_t> loop_stalls_{0};
  std::atomic<bool> loop_stalled_{false};  // a reported stall has not ended yet
  std::thread watchdog_thread_;
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;  // under watchdog_mu_
  // What observe_leadership() saw last.
  raft::NodeId seen_leader_ = raft::kNoNode;
  raft::Role seen_role_ = raft::Role::kFollower;
  raft::Term seen_term_ = 0;

  // Admin HTTP server (its own thread).
  std::shared_ptr<httplib::Server> http_;  // shared: httplib.h stays out of this header
  std::thread http_thread_;
  std::mutex status_mu_;
  StatusSnapshot status_;
  uint64_t last_publish_ms_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace cset::server
