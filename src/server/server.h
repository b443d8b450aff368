// The node runtime: one csetd process (DESIGN.md "server/").
//
// One thread (the loop) owns the Raft core, the state machine and every
// client connection, and runs the ready loop: persist (one fsync per batch)
// before sending the messages that depend on it, apply committed entries in
// order, answer clients. Proposals from all connections that arrive while the
// loop is busy go into one batch. The peer transport (net/) and the admin
// HTTP server (/health, /metrics, /status) run on their own threads and talk
// to the loop only through posted tasks and a published status snapshot.
//
// Client requests (SPEC.md): any node accepts any command. A write on the
// leader is proposed; on a follower it is forwarded once to the leader. The
// point of no return is the forward frame handed to the transport (unless the
// transport reports it undelivered) or the entry appended to the leader's
// log: before it a request that times out answers NOQUORUM (nothing
// changed), after it TIMEOUT (outcome unknown). Nothing is ever re-sent on a
// client's behalf, except a forward that the leader explicitly refused
// without proposing it. Reads use ReadIndex (dissertation §6.4) and are
// served once the local applied index reaches the read index. Commands on
// one connection are executed one at a time, in the order sent. Membership
// commands (CSET.NODE, CSET.LEADER TRANSFER) are forwarded the same way and
// answered once the change has committed (docs/operations.md); a node
// started with `join` accepts peers before it is a member, and
// `force_new_cluster` rewrites the configuration to this node alone before
// the Raft core starts.
//
// Thread-safety: create() and run() on one thread; stop() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cset/status.h"
#include "raft/types.h"

namespace cset::server {

struct ServerOptions {
  raft::NodeId id = 0;
  std::string data_dir;
  std::string peer_listen;                                            // host:port
  std::string client_listen;                                          // host:port
  std::string advertise_peer;                                         // default: peer_listen
  std::string advertise_client;                                       // default: client_listen
  std::vector<std::pair<raft::NodeId, std::string>> initial_cluster;  // id, peer address
  bool join = false;
  std::string cluster_token;
  raft::QuorumMode quorum = raft::QuorumMode::kTiebreak;
  bool quorum_given = false;
  uint64_t write_timeout_ms = 5000;
  uint64_t election_timeout_ms = 1000;  // the randomized timeout is in [E, 2E)
  uint64_t heartbeat_ms = 100;
  uint64_t snapshot_entries = 10000;
  uint64_t block_cache_mb = 64;
  /// RocksDB write buffer (memtable) size of the log and set families, MiB;
  /// the others get a quarter. Also bounds the WAL's preallocation (1.1x).
  uint64_t write_buffer_mb = 16;
  uint64_t max_key_bytes = 4096;
  uint64_t max_member_bytes = 65536;
  uint64_t max_request_bytes = 1536 * 1024;
  uint64_t max_reply_members = 1000000;
  std::string requirepass;
  std::string admin_listen;  // empty: no admin HTTP server
  bool force_new_cluster = false;
  /// TEST BUILDS ONLY (CSET_TEST_HOOKS; the flag does not exist otherwise):
  /// serve reads from local state without ReadIndex, a deliberately unsafe
  /// mode that the chaos tests' checker must flag as stale reads.
  bool unsafe_local_reads = false;
  /// TEST BUILDS ONLY (CSET_TEST_HOOKS): as leader, hold every InstallSnapshot
  /// chunk after the first (offset > 0) for this many ms before sending it,
  /// on a timer (the loop keeps running), so that tests can kill a follower
  /// in the middle of a transfer. 0: no delay. Keep it below the election
  /// timeout, or the Raft core re-sends the chunk it thinks went unanswered.
  uint64_t test_snapshot_chunk_delay_ms = 0;
  /// TEST BUILDS ONLY (CSET_TEST_HOOKS): abort() (a core file, for a
  /// backtrace) once a stall of the event loop that the watchdog reported
  /// (Server::Impl::watchdog_main: at least max(5000, 3 x election timeout,
  /// 2 x write timeout) ms, a SIGSTOP excluded) has lasted this many ms. The
  /// stall is logged in every build. 0: never abort.
  uint64_t test_abort_on_stall_ms = 0;
};

/// Why a server could not start; `exit_code` is SPEC.md's (2 flags or
/// config, 3 data directory unusable).
struct StartError {
  int exit_code = 1;
  std::string message;
};

class Server {
 public:
  /// Opens (or creates and bootstraps) the data directory and binds the
  /// listening sockets. On error returns the exit code and a message naming
  /// the offending file or flag.
  static std::unique_ptr<Server> create(const ServerOptions& options, StartError* error);
  ~Server();

  /// Serves until stop(); then finishes or fails in-flight requests, flushes
  /// and returns. Returns ok, or the error that stopped the node.
  Status run();
  /// Thread-safe and async-signal-tolerant (posts to the loop).
  void stop();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cset::server
