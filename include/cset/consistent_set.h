// ConsistentSet: an embeddable replica of a consistent set, with the API of
// the original design (issue 9; docs/library.md):
//
//   auto set = cset::ConsistentSet::create(options).value();    // new ConsistentSet()
//   set->add("alice", [](std::error_code ec) { ... });          // set.add(str, cb)
//   set->rem("alice", [](std::error_code ec) { ... });          // set.rem(str, cb)
//   set->cluster_size();                                        // set.clusterSize()
//   auto stream = set->create_stream();                         // set.createStream()
//   // stream.pipe(net.connect(3000)).pipe(stream):
//   stream->set_output([&](std::string_view bytes) { socket_write(bytes); });
//   on_socket_bytes([&](std::string_view bytes) { stream->write(bytes); });
//
// Each replica is one Raft node (src/raft) with the set state machine
// (src/set) on its own storage: a data directory (RocksDB, durable across
// restarts) or memory. Replicas talk to each other only through the duplex
// byte streams of create_stream(), so any transport carries them: TCP, a
// pipe, TLS, or an in-memory link in a test.
//
// ## Guarantees
// - Linearizable: add/rem commit through the replicated log (a quorum of
//   voters has them durable before the callback says ok); contains, members
//   and size confirm a read point with the leader (ReadIndex, Raft
//   dissertation §6.4) and answer from the local state once it has applied
//   that point. Any replica accepts any request; followers forward writes to
//   the leader over the stream to it.
// - The original design queues updates "while the cluster is too small".
//   Here a request waits for a quorum (DESIGN.md "Quorums": a majority of the
//   voters, or with an even count >= 4 the half holding the lowest id) for at
//   most Options::write_timeout_ms, then fails with one of two errors:
//     no_quorum (Code::kNoQuorum): it never left this replica nor entered a
//       leader's log; nothing changed, retrying is safe.
//     timeout (Code::kTimeout): it passed the point of no return (a forward
//       frame was handed to a stream, or it is in this leader's log) and its
//       commit was not confirmed in time; it may still apply later.
//   Writes run in this replica's client session (Options::session_timeout_ms,
//   Raft dissertation §6.3): a write whose answer is lost (cut stream, new
//   leader, silence) is sent again with the same (session, sequence) until
//   the write timeout, and the state machine applies it once and answers the
//   repeat as the first time; nothing else is ever re-sent.
// - Errors are std::error_code values of cset::error_category(), whose
//   values are the cset::Code numbers (include/cset/status.h) and whose
//   messages start with the SPEC.md code word: kExists ("EXISTS", the
//   original design's "already present", also as cset::kAlreadyPresent),
//   kNoQuorum, kTimeout, kNoSpace (this replica cannot persist; nothing
//   changed), kTooBig (key or member over its limit; nothing sent), kRemoved.
//   A default (false) error_code is success.
//
// ## Threads, callbacks and lifetimes
// - Every public method is thread-safe and never blocks on the network or
//   the disk (it hands the request to the replica's own thread), except
//   create() (opens storage) and the destructor (stops the thread).
// - Every callback runs on the replica's own loop thread, one at a time. It
//   must not block for long (it stalls replication) and must not destroy the
//   replica (the destructor would wait for itself: it aborts the process
//   with a message instead). It may call any other method.
// - The destructor fails every pending callback before it returns, on the
//   loop thread: kNoQuorum for requests that never left this replica,
//   kTimeout for those past the point of no return. After it returns no
//   callback of this replica runs. Streams may outlive the replica: they are
//   closed (their on-close callback runs during the destructor) and writes
//   into them are ignored.
// - Membership is fixed at creation (Options::members): cluster_size() is
//   the number of voters. Changing the voter set at runtime is csetd's
//   CSET.NODE (joint consensus); the library does not expose it yet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cset/status.h"

namespace cset {

/// The category of every error this library reports. value() is a cset::Code
/// number; message() is "<CODE WORD>: <meaning>" (SPEC.md codes).
const std::error_category& error_category();
/// The error_code for `code` (Code::kOk gives a success value).
std::error_code make_error_code(Code code);
/// The original design's "already present" (CSET.ADD's EXISTS).
inline constexpr Code kAlreadyPresent = Code::kExists;

namespace embed {
class Core;
struct StreamState;
}  // namespace embed

/// One end of a replication link to one other replica (create_stream()).
///
/// Bytes the remote replica sent go in through write(); bytes for the remote
/// replica come out through the output callback (push) or read() (pull).
/// The first bytes out are a handshake (protocol version, cluster id, node
/// id, storage incarnation); then net/frame.h frames carrying raft messages
/// and forwarded writes. Once both handshakes are accepted the stream is
/// the replica's link to that peer; a newer stream to the same peer replaces
/// it (the older one is closed). A stream that is cut just stops: raft
/// retransmits whatever was lost once a new stream is piped.
///
/// Thread-safety: all methods are thread-safe. write() calls must be made in
/// stream order (one reader per stream, as a socket has). Destroying the last
/// shared_ptr closes the stream.
class ReplicaStream {
 public:
  using Output = std::function<void(std::string_view bytes)>;
  using OnClose = std::function<void(const std::string& reason)>;

  ~ReplicaStream();
  ReplicaStream(const ReplicaStream&) = delete;
  ReplicaStream& operator=(const ReplicaStream&) = delete;

  /// Feeds bytes received from the remote replica (any chunking). Ignored
  /// once closed. A malformed frame or a refused handshake closes the stream.
  void write(std::string_view bytes);
  /// Push mode: `output` receives every byte for the remote replica, in
  /// order, on the replica's loop thread (bytes produced before it was set
  /// are delivered first). It must not block; queue the bytes for your
  /// transport. Replaces pull mode for good.
  void set_output(Output output);
  /// Pull mode: takes up to max_bytes of the bytes waiting for the remote
  /// replica (none when empty; never blocks). At most
  /// Options::max_stream_buffer_bytes wait: beyond that raft frames are
  /// dropped (raft retransmits) and forwarded writes are not sent (they stay
  /// before the point of no return).
  std::string read(size_t max_bytes = SIZE_MAX);
  /// Called once, on the replica's loop thread, when the stream closes for any
  /// reason (close(), a refused handshake, a malformed frame, replaced by a
  /// newer stream to the same peer, the replica destroyed). If the stream is
  /// already closed it is called at once on the calling thread.
  void set_on_close(OnClose on_close);
  /// Stops the stream: nothing more is read or emitted. Idempotent.
  void close();
  bool closed() const;
  /// The remote replica's node id once its handshake was accepted, else 0.
  uint64_t peer_id() const;
  /// Why the stream closed ("" while open).
  std::string close_reason() const;

 private:
  friend class embed::Core;
  ReplicaStream(std::shared_ptr<embed::StreamState> state, std::weak_ptr<embed::Core> core);
  std::shared_ptr<embed::StreamState> state_;
  std::weak_ptr<embed::Core> core_;
};

class ConsistentSet {
 public:
  struct Options {
    /// This replica's node id (1..2^63-1); unique in the cluster.
    uint64_t id = 0;
    /// The voters of the cluster, this id included. Used to bootstrap new
    /// storage; storage that already holds state keeps its own configuration.
    std::vector<uint64_t> members;
    /// Durable storage in this directory (RocksDB; created when missing).
    /// Empty: in memory, lost when the replica is destroyed (a replica
    /// restarted on empty memory is a new incarnation: its peers refuse it).
    std::string data_dir;
    /// Identity every replica of the cluster shares, checked in the stream
    /// handshake. Empty: derived from the sorted member ids.
    std::string cluster_id;
    /// How long a request waits for a quorum and its commit (see above), ms.
    uint64_t write_timeout_ms = 5000;
    /// Writes run in this replica's client session (Raft dissertation §6.3,
    /// docs/sessions.md), registered through the log on the first write: a
    /// write whose reply was lost (a cut stream, a new leader, a silent
    /// peer) is sent again and still takes effect once, answered as the first
    /// time — an add is never refused as "already present" for its own
    /// earlier attempt. The session expires after this long without a write
    /// (ms; 0 = the longest, one hour); the next write then opens a new one.
    uint64_t session_timeout_ms = 0;
    /// Election timeout (the randomized one is in [E, 2E)) and heartbeat
    /// interval (the raft tick), ms. REQUIRES heartbeat_ms < election_timeout_ms.
    uint64_t election_timeout_ms = 1000;
    uint64_t heartbeat_ms = 100;
    /// The set the one-argument add/rem/contains/members/size use.
    std::string default_set = "default";
    /// Quorum rule at bootstrap: false = DESIGN.md's tie-breaker for even
    /// voter counts >= 4; true = plain majority.
    bool majority_quorum = false;
    /// A snapshot is taken every snapshot_entries applied entries; the log
    /// keeps snapshot_keep_entries behind it for lagging followers.
    uint64_t snapshot_entries = 10000;
    uint64_t snapshot_keep_entries = 1000;
    /// Limits (SPEC.md TOOBIG), bytes; members() refuses larger sets.
    size_t max_key_bytes = 4096;
    size_t max_member_bytes = 64 * 1024;
    uint64_t max_reply_members = 1000000;
    /// Bytes a pull-mode stream holds for its reader, and bytes written into
    /// a stream not yet processed, at most (a stream over the latter closes).
    size_t max_stream_buffer_bytes = size_t{64} << 20;
    /// Seed of the election-timeout randomization; 0 = std::random_device.
    uint64_t random_seed = 0;
    /// Warnings (refused handshakes, closed streams, storage failures), on the
    /// loop thread; null = silent.
    std::function<void(const std::string&)> log;
  };

  using Callback = std::function<void(std::error_code)>;
  using ContainsCallback = std::function<void(std::error_code, bool present)>;
  using MembersCallback = std::function<void(std::error_code, std::vector<std::string>)>;
  using SizeCallback = std::function<void(std::error_code, uint64_t size)>;

  /// Opens (or creates) the storage and starts the replica's thread.
  /// Errors: kInvalid (bad options: id 0, id not in members, timings),
  /// kCorrupt / kInvalid / kIo from the data directory (another node's or
  /// cluster's, damaged, locked by another process).
  static Result<std::unique_ptr<ConsistentSet>> create(Options options);
  /// Fails pending callbacks (see above), closes every stream, stops the
  /// thread, closes the storage. REQUIRES: not called from a callback.
  ~ConsistentSet();
  ConsistentSet(const ConsistentSet&) = delete;
  ConsistentSet& operator=(const ConsistentSet&) = delete;

  /// CSET.ADD on the default set / on set `key`: ok when added,
  /// kAlreadyPresent when the member was there (nothing changed), or
  /// kNoQuorum / kTimeout / kNoSpace / kTooBig.
  void add(std::string member, Callback done);
  void add(std::string key, std::string member, Callback done);
  /// CSET.REM: ok whether or not the member was present; errors as add.
  void rem(std::string member, Callback done);
  void rem(std::string key, std::string member, Callback done);
  /// Linearizable reads (ReadIndex). Errors: kNoQuorum (the read point could
  /// not be confirmed within the write timeout), kTooBig (members() of a set
  /// over max_reply_members).
  void contains(std::string member, ContainsCallback done);
  void contains(std::string key, std::string member, ContainsCallback done);
  void members(MembersCallback done);
  void members(std::string key, MembersCallback done);
  void size(SizeCallback done);
  void size(std::string key, SizeCallback done);

  /// The number of voters in the committed configuration.
  size_t cluster_size() const;
  uint64_t id() const;
  /// The leader this replica knows of, 0 when none.
  uint64_t leader_id() const;
  /// The index of the last entry applied to this replica's state.
  uint64_t applied_index() const;

  /// A new stream to be piped to exactly one other replica's stream.
  std::shared_ptr<ReplicaStream> create_stream();

 private:
  explicit ConsistentSet(std::shared_ptr<embed::Core> core);
  std::shared_ptr<embed::Core> core_;
};

}  // namespace cset
