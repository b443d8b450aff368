// The peer transport: how a node's raft messages and request-forwarding
// frames reach the other nodes (DESIGN.md "Layers": net/).
//
// `Transport` is the seam; `TcpTransport` (net/tcp_transport.h) is the real
// one, `InMemoryTransport` (net/in_memory_transport.h) connects endpoints in
// one process for tests. Both keep the same promises:
//
// - Identity first: frames flow only on connections whose handshake both
//   sides accepted (cluster id, cluster token, node id, data-directory
//   incarnation, protocol version; the check itself is the server's
//   `validate_handshake`). A refusal is logged and reported on both sides
//   with its reason.
// - At most once: a frame is delivered at most once. The transport never
//   re-sends anything after a reconnect. Raft frames may be lost silently
//   (raft retransmits). Every other frame (forward_request, forward_reply)
//   that is not sent is reported through `on_dropped`, and a reported frame
//   certainly never reached the peer and never will: it was refused before it
//   was queued, or it had not been handed whole to the socket when the
//   connection broke (a partial frame fails the receiver's length/checksum
//   check). A frame handed whole to the socket is not reported: it may or
//   may not arrive, and the server treats that as "outcome unknown".
// - Bounded: each peer's send queue holds at most `max_queue_frames` frames
//   and `max_queue_bytes` bytes (frames being written included); past that,
//   new frames are dropped and counted, so a slow or dead peer cannot grow
//   memory without limit. While a peer is not connected (backing off after a
//   failure or refused), frames to it are dropped at once; frames sent while
//   a connection attempt is in progress wait in the queue for it.
// - Order: frames to one peer are delivered in the order send() accepted
//   them, as long as one connection lasts.
// - Threads: send(), set_peers(), set_identity() and peer_status() are
//   thread-safe and never block on the network. Every callback runs on the
//   transport's own thread, one at a time, and must not block for long: hand
//   work to your own thread. A callback may call send(), set_peers(),
//   set_identity() and peer_status(); it must not call stop(). After stop()
//   returns, no callback runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "cset/status.h"
#include "net/peer.pb.h"
#include "raft/types.h"

namespace cset::net {

using NodeId = raft::NodeId;

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };
const char* to_string(LogLevel level);

/// What this node says about itself in every handshake.
struct LocalIdentity {
  NodeId node_id = raft::kNoNode;
  std::string cluster_id;  // empty while a joining node does not know it
  std::string cluster_token;
  std::string incarnation;     // the data directory's random id
  std::string peer_address;    // advertised peer host:port
  std::string client_address;  // advertised client host:port
};

/// The Handshake frame body for `identity`, with kProtocolVersion.
Handshake make_handshake(const LocalIdentity& identity);

/// A refused handshake. `by_us`: this node refused the peer (its
/// validate_handshake or the transport's own checks said no); otherwise the
/// peer refused this node. `peer` is the id the peer claimed (inbound) or the
/// id this node expected at that address (outbound).
struct Refusal {
  NodeId peer = raft::kNoNode;
  std::string address;
  std::string reason;
  bool by_us = false;
};

enum class DropCause : uint8_t {
  kUnknownPeer,     // `to` is not in the peer map
  kNotConnected,    // the peer is backing off or refused, or the attempt failed
  kQueueFull,       // the peer's queue is at its frame or byte limit
  kConnectionLost,  // the connection broke before the frame was written whole
  kTooBig,          // the frame is over max_frame_bytes
};
const char* to_string(DropCause cause);

struct TransportCallbacks {
  /// A frame from an authenticated peer. `from` is the handshake's node id;
  /// a raft frame whose `from` differs closes the connection instead.
  /// Handshake frames are never delivered.
  std::function<void(NodeId from, PeerFrame&& frame)> on_frame;
  /// Decides whether a peer may talk to this node: nullopt to accept, or the
  /// refusal reason ("cluster token mismatch", "data lost: remove this node
  /// and add it back under a new id", ...). Called for both directions: the
  /// acceptor checks the dialer's handshake, the dialer the acceptor's. The
  /// transport itself refuses first: another protocol version, node id 0, a
  /// node connecting to itself, and (dialing) a node that is not the one
  /// expected at that address. Empty function: accept.
  std::function<std::optional<std::string>(const Handshake& peer)> validate_handshake;
  /// A handshake was refused (either side); also logged (at warn the first
  /// time a reason is seen, then at debug). Repeats on every retry.
  std::function<void(const Refusal& refusal)> on_refused;
  /// A non-raft frame that was not sent (see the header comment): the peer
  /// never saw it, so a forwarded request it carried changed nothing. It may
  /// arrive after the caller gave up waiting (ignore unknown request ids).
  std::function<void(NodeId to, const PeerFrame& frame, DropCause cause)> on_dropped;
  /// Log lines (the server plugs spdlog in). Empty function: no logs.
  std::function<void(LogLevel level, const std::string& line)> log;
};

struct TransportLimits {
  size_t max_frame_bytes = size_t{64} << 20;  // per frame, both directions
  size_t max_queue_frames = 4096;             // per peer
  size_t max_queue_bytes = size_t{32} << 20;  // per peer, encoded bytes
};

enum class ConnectionState : uint8_t {
  kConnecting,  // an attempt (dial + handshake) is in progress
  kConnected,   // handshake accepted both ways; frames flow
  kBackoff,     // the last attempt failed; waiting to retry
  kRefused,     // the last handshake was refused (by either side); retrying slowly
};
const char* to_string(ConnectionState state);

/// One peer as seen by this node's transport, for status output and metrics.
struct PeerStatus {
  NodeId id = raft::kNoNode;
  std::string address;
  ConnectionState state = ConnectionState::kConnecting;
  std::string refused_reason;      // the last refusal, until a handshake succeeds
  std::string last_error;          // the last connection failure, for humans
  bool inbound_connected = false;  // the peer's own connection to us is up
  size_t queued_frames = 0;        // waiting or being written
  size_t queued_bytes = 0;
  uint64_t sent_frames = 0;      // handed whole to the socket
  uint64_t received_frames = 0;  // delivered through on_frame
  uint64_t dropped_frames = 0;   // raft and non-raft, every cause
};

/// Totals since start, for /metrics.
struct TransportCounters {
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
  uint64_t raft_frames_dropped = 0;
  uint64_t other_frames_dropped = 0;     // reported through on_dropped
  uint64_t connections_established = 0;  // both directions
  uint64_t refusals = 0;                 // both directions, either side refusing
  uint64_t protocol_errors = 0;          // malformed frames, unexpected frames
};

class Transport {
 public:
  virtual ~Transport() = default;

  /// Starts listening and the transport's thread. Call once, after which the
  /// callbacks may run. Errors: kIo (cannot listen; names the address).
  virtual Status start() = 0;
  /// Closes every connection and joins the transport's thread; queued frames
  /// are discarded without on_dropped (the caller is shutting down and fails
  /// its own requests). Idempotent. REQUIRES: not called from a callback.
  virtual void stop() = 0;

  /// Replaces the peer map (node id -> peer host:port). New peers are dialed,
  /// peers whose address changed are redialed, removed peers are closed (their
  /// queued non-raft frames reported kUnknownPeer). This node's own id is
  /// ignored. Takes effect for send() at once.
  virtual void set_peers(std::map<NodeId, std::string> peers) = 0;
  /// Replaces what this node says in handshakes from now on (e.g. a joining
  /// node that learned the cluster id). Existing connections are kept. The
  /// node id cannot change: the one given at construction stays.
  virtual void set_identity(LocalIdentity identity) = 0;

  /// Queues `frame` for peer `to` and returns at once (see the header comment
  /// for what can happen to it). Serializes on the caller's thread. After
  /// stop() frames are discarded silently.
  virtual void send(NodeId to, PeerFrame frame) = 0;
  /// send(message.to, make_raft_frame(message)).
  void send_raft(const raft::Message& message);

  virtual std::map<NodeId, PeerStatus> peer_status() const = 0;
  virtual TransportCounters counters() const = 0;
};

}  // namespace cset::net

namespace cset::net {

/// For Transport implementations: the whole handshake check, transport rules
/// first (protocol version, node id 0, this node's own id — told apart as
/// itself, another cluster's node, or a second node given the same id — and
/// when `expected` is not kNoNode the id expected at the dialed address), then
/// `callbacks.validate_handshake`. nullopt = accept, else the reason.
std::optional<std::string> check_peer_handshake(const Handshake& peer, const LocalIdentity& self,
                                                NodeId expected,
                                                const TransportCallbacks& callbacks);

}  // namespace cset::net
