// Internal: the replica behind cset::ConsistentSet (include/cset/consistent_set.h).
//
// One Raft node (raft/raft.h) with the set state machine (set/state_machine.h)
// on RocksDB (storage/rocks_store.h) or in memory (raft::MemoryStorage +
// set::MemoryKv), driven by one loop thread (an asio::io_context) that owns
// every member below unless marked otherwise. Its ready loop is csetd's
// (server/server.cc) reduced to what an embedded replica needs: persist
// before sending what depends on it, apply committed entries in order, serve
// ReadIndex reads once applied, take snapshots; peers are reached only
// through ReplicaStreams (handshake, then net/frame.h frames).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cset/consistent_set.h"
#include "net/frame.h"
#include "raft/raft.h"
#include "raft/storage.h"
#include "set/memory_kv.h"
#include "set/state_machine.h"
#include "storage/rocks_store.h"

namespace cset::embed {

/// The shared state of one ReplicaStream: the user's handle and the loop
/// both hold it.
struct StreamState {
  explicit StreamState(uint64_t stream_id) : id(stream_id) {}
  const uint64_t id;
  std::atomic<bool> closed{false};
  std::atomic<uint64_t> peer{0};
  // Bytes handed to write() and not yet processed by the loop (bounded).
  std::atomic<size_t> inbound_pending{0};

  std::mutex mu;            // guards the four fields below
  std::string pull_buffer;  // bytes for the remote replica, pull mode
  std::string reason;       // why it closed
  ReplicaStream::OnClose on_close;
  bool notified = false;  // on_close has been (or is being) called

  // Loop thread only.
  bool push = false;
  ReplicaStream::Output output;
  net::FrameDecoder decoder;
  bool handshake_received = false;
};

using WriteCallback = std::function<void(const Status&, const set::ApplyResult&)>;
using ReadCallback = std::function<void(const Status&)>;

class Core : public std::enable_shared_from_this<Core> {
 public:
  using Options = ConsistentSet::Options;

  /// Opens the storage and builds the raft node; start() runs the thread.
  static Result<std::shared_ptr<Core>> open(Options options);
  ~Core();

  void start();
  /// Fails pending requests, closes every stream and joins the thread.
  /// REQUIRES: not on the loop thread.
  void shutdown();

  // Thread-safe entry points (they post to the loop).
  /// `command` is validated; `done` gets ok with the apply result, or
  /// NOQUORUM / TIMEOUT / NOSPACE.
  void submit_write(set::Command command, WriteCallback done);
  /// `done` runs on the loop thread once a linearizable read point is
  /// applied (then read sm()), or with NOQUORUM.
  void submit_read(ReadCallback done);
  std::shared_ptr<ReplicaStream> create_stream();
  /// Runs `fn` on the loop thread (or, once shut down, during shutdown()).
  void post(std::function<void()> fn) { asio::post(io_, std::move(fn)); }
  void stream_input(const std::shared_ptr<StreamState>& st, std::string bytes);
  void stream_set_output(const std::shared_ptr<StreamState>& st, ReplicaStream::Output output);
  void stream_close(const std::shared_ptr<StreamState>& st, std::string reason);

  /// Loop thread only (inside a ReadCallback).
  const set::StateMachine& sm() const { return *sm_; }
  const Options& options() const { return opt_; }

  // Published by the loop thread; readable from any thread.
  std::atomic<uint64_t> leader_{0};
  std::atomic<size_t> voters_{0};
  std::atomic<uint64_t> applied_{0};

  /// Marks `st` closed with `reason` (first caller wins); true if it did.
  static bool mark_closed(StreamState& st, const std::string& reason);
  /// Calls the on-close callback once.
  static void notify_closed(StreamState& st);

 private:
  struct PendingWrite {
    std::string command;  // encoded; for a session write, with its (session, sequence)
    WriteCallback done;
    uint64_t deadline_ms = 0;
    bool queued = false;     // waiting in proposal_queue_
    bool proposed = false;   // in this leader's log: past the point of no return
    bool forwarded = false;  // handed to a stream: past the point of no return
    raft::NodeId forwarded_to = 0;
    uint64_t forwarded_stream = 0;  // the stream it was handed to
    // Client session (Raft dissertation §6.3): a user's write runs in this
    // replica's session, so it may be sent again (lost reply, cut stream,
    // new leader) and still take effect once, answered as the first time.
    std::optional<set::Command> original;  // the user's command, before numbering
    bool unsequenced = false;              // waiting for the session or the window
    uint64_t sequence = 0;                 // 0: not a session write
    uint64_t session = 0;                  // the session it was numbered in
    bool maybe_applied = false;            // an earlier attempt's outcome is unknown
    uint64_t resend_ms = 0;                // forwarded and unanswered: sent again then
  };
  struct RemoteWrite {
    raft::NodeId origin;
    uint64_t origin_request_id;
    std::string command;
  };
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

  explicit Core(Options options);
  Status open_storage();
  Status bootstrap_if_fresh();
  void log(const std::string& message) const;
  uint64_t now_ms() const;

  // Storage, either kind. `sync`: fsync before returning (Ready::must_sync).
  Status persist(const std::vector<raft::Entry>& entries,
                 const std::optional<raft::HardState>& hard_state, bool sync);
  Status install(const raft::Snapshot& snapshot);
  void take_snapshot(bool at_start);
  void maybe_snapshot();

  // The loop.
  void schedule_tick();
  void on_tick();
  void kick();
  void process_ready();
  void publish();
  void on_storage_failure(const Status& s);
  void apply(const std::vector<raft::Entry>& entries);
  void on_leader_change();

  // Writes.
  void start_write(uint64_t id);
  // The replica's client session: registered through the log on the first
  // write; writes wait for it (sequence numbers need the session id).
  void ensure_session();
  void sequence_waiting_writes();
  uint64_t lowest_unacked() const;
  /// A session write's attempt failed in a way that a resend may fix (lost
  /// reply, leadership change, the leader's own timeout): true when it was
  /// reset to be sent again (before its deadline) instead of finished.
  bool resend_later(uint64_t id, bool attempt_may_have_applied);
  /// SESSIONEXPIRED on a write no earlier attempt of which can have applied:
  /// numbered again in a new session (true); else false (the caller answers).
  bool renumber(uint64_t id);
  void flush_proposals();
  void complete_proposal(uint64_t id, const Status& s, const set::ApplyResult& r);
  void finish_write(uint64_t id, const Status& s, const set::ApplyResult& r);
  void expire_writes(uint64_t now);
  void refuse_remote(uint64_t id, const Status& why);
  void on_forward_request(raft::NodeId from, const net::ForwardRequest& req);
  void on_forward_reply(raft::NodeId from, const net::ForwardReply& rep);

  // Reads (ReadIndex, dissertation §6.4).
  void start_read(uint64_t id);
  void on_read_state(const raft::ReadState& rs);
  void serve_ready_reads();
  void finish_read(uint64_t id, const Status& s);
  void fail_all_pending(const char* why);

  // Streams.
  net::PeerFrame handshake_frame() const;
  /// Hands `frame` to the stream; false when it was not (closed, or the pull
  /// buffer is full): then it certainly never reaches the peer.
  bool emit(StreamState& st, const net::PeerFrame& frame);
  bool send_to(raft::NodeId to, const net::PeerFrame& frame);
  void send_messages(std::vector<raft::Message>& msgs);
  void on_input(const std::shared_ptr<StreamState>& st, const std::string& bytes);
  void on_frame(const std::shared_ptr<StreamState>& st, net::PeerFrame& frame);
  void on_handshake(const std::shared_ptr<StreamState>& st, const net::Handshake& h);
  std::optional<std::string> validate_handshake(const net::Handshake& h) const;
  void close_on_loop(const std::shared_ptr<StreamState>& st, const std::string& reason);

  Options opt_;
  std::string incarnation_;
  asio::io_context io_{1};
  asio::steady_timer tick_timer_{io_};
  std::thread thread_;
  std::atomic<bool> stopped_{false};

  std::unique_ptr<storage::RocksStore> rocks_;
  std::unique_ptr<raft::MemoryStorage> mem_log_;
  std::unique_ptr<set::MemoryKv> mem_kv_;
  raft::Storage* log_ = nullptr;
  set::Kv* kv_ = nullptr;
  std::unique_ptr<set::StateMachine> sm_;
  std::unique_ptr<raft::Raft> raft_;

  bool ready_posted_ = false;
  bool storage_failed_ = false;
  Status fatal_;
  raft::NodeId seen_leader_ = raft::kNoNode;  // the leader process_ready() saw last

  uint64_t session_id_ = 0;      // 0: none yet
  uint64_t registering_id_ = 0;  // the request registering it, if in flight
  uint64_t next_sequence_ = 1;
  size_t unsequenced_writes_ = 0;  // writes waiting for a sequence number
  uint64_t next_request_id_ = 1;
  uint64_t read_seq_ = 0;
  std::map<uint64_t, PendingWrite> writes_;
  std::map<uint64_t, RemoteWrite> remote_writes_;
  std::vector<uint64_t> proposal_queue_;
  std::map<raft::Index, Proposal> proposals_;
  std::map<uint64_t, PendingRead> reads_;
  std::map<std::string, uint64_t> read_contexts_;

  std::atomic<uint64_t> next_stream_id_{1};
  std::mutex streams_mu_;  // guards streams_ (create_stream runs on any thread)
  std::map<uint64_t, std::shared_ptr<StreamState>> streams_;
  std::map<raft::NodeId, std::shared_ptr<StreamState>> links_;  // the current stream per peer
  std::map<raft::NodeId, std::string> incarnations_;            // seen in handshakes
};

}  // namespace cset::embed
