#include "net/tcp_transport.h"

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "net/convert.h"
#include "net/frame.h"
#include "net/stream.h"

namespace cset::net {
namespace {

using asio::ip::tcp;
using std::chrono::milliseconds;

constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kMaxWriteBatchBytes = size_t{1} << 20;
constexpr size_t kMaxWriteBatchFrames = 256;
constexpr milliseconds kAcceptRetryDelay{100};

class TcpStream final : public Stream {
 public:
  explicit TcpStream(tcp::socket socket) : socket_(std::move(socket)) {
    std::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    const tcp::endpoint remote = socket_.remote_endpoint(ec);
    if (!ec) remote_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  void async_read_some(char* data, size_t size, Handler handler) override {
    socket_.async_read_some(asio::buffer(data, size), std::move(handler));
  }

  void async_write(std::vector<std::string_view> pieces, Handler handler) override {
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(pieces.size());
    for (std::string_view p : pieces) buffers.emplace_back(p.data(), p.size());
    asio::async_write(socket_, std::move(buffers), std::move(handler));
  }

  void close() override {
    std::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  std::string remote_address() const override { return remote_; }

 private:
  tcp::socket socket_;
  std::string remote_ = "?";
};

// One frame waiting for, or in, a write. `frame` is kept only for frames that
// on_dropped must report (everything but raft).
struct Outgoing {
  std::string bytes;
  std::unique_ptr<PeerFrame> frame;
};

struct Connection;

struct Peer {
  Peer(NodeId id_in, std::string address_in) : id(id_in), address(std::move(address_in)) {}

  const NodeId id;
  // Guarded by Impl::mu_.
  std::string address;
  ConnectionState state = ConnectionState::kConnecting;
  std::string refused_reason;
  std::string last_error;
  std::deque<Outgoing> queue;
  size_t queue_bytes = 0;
  size_t inflight_frames = 0;  // taken by a connection's write
  size_t inflight_bytes = 0;
  bool removed = false;
  bool write_posted = false;
  std::shared_ptr<Connection> conn;  // the attempt in progress or the live connection
  uint64_t sent_frames = 0;
  uint64_t received_frames = 0;
  uint64_t dropped_frames = 0;
  // Transport thread only.
  std::unique_ptr<asio::steady_timer> retry_timer;
  uint64_t retry_token = 0;  // invalidates a retry that is no longer wanted
  milliseconds backoff{0};
  std::string last_logged_refusal;
};

enum class Direction : uint8_t { kOutbound, kInbound };

// Touched only on the transport thread.
struct Connection {
  Connection(asio::io_context& io, Direction d, size_t max_frame_bytes)
      : timer(io), resolver(io), decoder(max_frame_bytes), direction(d) {}

  asio::steady_timer timer;  // dial + handshake deadline
  tcp::resolver resolver;
  std::optional<tcp::socket> dial_socket;
  std::unique_ptr<Stream> stream;
  FrameDecoder decoder;
  std::vector<char> read_buffer = std::vector<char>(kReadChunkBytes);
  Direction direction;
  NodeId peer_id = raft::kNoNode;  // outbound: expected; inbound: once the handshake is read
  std::string peer_address;        // for logs
  std::shared_ptr<Peer> peer;      // outbound only
  bool established = false;
  bool closed = false;
  bool close_after_write = false;  // a refusal reply is being written
  bool writing = false;
  std::vector<Outgoing> inflight;
  std::deque<std::string> control;  // handshake frames to write, front in flight
};

struct Drop {
  NodeId to;
  std::unique_ptr<PeerFrame> frame;
  DropCause cause;
};

}  // namespace

class TcpTransport::Impl {
 public:
  Impl(TcpTransportOptions options, TransportCallbacks callbacks)
      : options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        acceptor_(io_),
        accept_timer_(io_),
        rng_(options_.seed),
        identity_(options_.identity) {}

  Status start();
  void stop();
  uint16_t listen_port() const { return port_.load(); }
  void set_peers(std::map<NodeId, std::string> peers);
  void set_identity(LocalIdentity identity);
  void send(NodeId to, PeerFrame frame);
  std::map<NodeId, PeerStatus> peer_status() const;
  bool connected(NodeId to) const;
  TransportCounters counters() const;

 private:
  using ConnPtr = std::shared_ptr<Connection>;

  // Transport thread.
  void do_accept();
  void on_accepted(tcp::socket socket);
  void dial(const std::shared_ptr<Peer>& peer);
  void on_dialed(const ConnPtr& conn);
  void read_loop(const ConnPtr& conn);
  void on_read(const ConnPtr& conn, std::error_code ec, size_t n);
  void handle_frame(const ConnPtr& conn, PeerFrame&& frame);
  void on_inbound_handshake(const ConnPtr& conn, const Handshake& hs);
  void on_handshake_reply(const ConnPtr& conn, const HandshakeReply& reply);
  void on_inbound_data(const ConnPtr& conn, PeerFrame&& frame);
  void established_outbound(const ConnPtr& conn);
  void refuse(const ConnPtr& conn, Refusal refusal, bool send_reply);
  void write_control(const ConnPtr& conn, const PeerFrame& frame);
  void write_next_control(const ConnPtr& conn);
  void start_write(const ConnPtr& conn);
  void on_write_done(const ConnPtr& conn, std::error_code ec, size_t n);
  void close(const ConnPtr& conn, const std::string& reason);
  void protocol_error(const ConnPtr& conn, const std::string& what);
  void schedule_retry(const std::shared_ptr<Peer>& peer, bool refused);
  void shutdown_on_thread();
  void report(std::vector<Drop> drops);
  void log(LogLevel level, const std::string& line) const {
    if (callbacks_.log) callbacks_.log(level, line);
  }
  LocalIdentity current_identity() const {
    std::lock_guard lock(mu_);
    return identity_;
  }
  std::string self_name() const { return "node " + std::to_string(options_.identity.node_id); }

  // Any thread.
  void drop_queue_locked(Peer& peer, DropCause cause, std::vector<Drop>* drops);
  void post_report(std::vector<Drop> drops);

  const TcpTransportOptions options_;
  const TransportCallbacks callbacks_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<uint16_t> port_{0};

  // Transport thread only.
  tcp::acceptor acceptor_;
  asio::steady_timer accept_timer_;
  std::mt19937_64 rng_;
  bool stopping_ = false;
  std::map<NodeId, ConnPtr> inbound_;                       // established, by peer id
  std::vector<std::weak_ptr<Connection>> pending_inbound_;  // handshake not read yet
  std::map<NodeId, std::string> last_inbound_refusal_;      // log each reason once at warn

  mutable std::mutex mu_;
  // Guarded by mu_.
  bool started_ = false;
  bool stopped_ = false;
  LocalIdentity identity_;
  std::map<NodeId, std::shared_ptr<Peer>> peers_;
  std::map<NodeId, int> inbound_count_;
  TransportCounters counters_;
};

// ---------------------------------------------------------------------------
// Lifecycle.

Status TcpTransport::Impl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return Status(Code::kInvalid, "peer transport already started");
    started_ = true;
  }
  std::string host;
  uint16_t port = 0;
  if (Status s = split_host_port(options_.listen_address, &host, &port); !s.is_ok()) return s;
  std::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) {
    return Status(Code::kIo, "cannot resolve peer listen address " + options_.listen_address +
                                 ": " + ec.message());
  }
  const tcp::endpoint endpoint = *endpoints.begin();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::error_code ignored;
    acceptor_.close(ignored);
    return Status(Code::kIo,
                  "cannot listen on peer address " + options_.listen_address + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  work_.emplace(io_.get_executor());
  asio::post(io_, [this] { do_accept(); });
  thread_ = std::thread([this] { io_.run(); });
  log(LogLevel::kInfo,
      self_name() + ": peer transport listening on " + host + ":" + std::to_string(port_.load()));
  return Status::ok();
}

void TcpTransport::Impl::stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopped_) {
      stopped_ = true;
      return;
    }
    stopped_ = true;
  }
  asio::post(io_, [this] { shutdown_on_thread(); });
  work_.reset();
  if (thread_.joinable()) thread_.join();
}

void TcpTransport::Impl::shutdown_on_thread() {
  stopping_ = true;
  std::error_code ec;
  acceptor_.close(ec);
  accept_timer_.cancel();
  std::vector<ConnPtr> conns;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, peer] : peers_) {
      if (peer->conn) conns.push_back(peer->conn);
      peer->removed = true;
    }
  }
  for (auto& [id, peer] : peers_) {
    if (peer->retry_timer) peer->retry_timer->cancel();
  }
  for (auto& [id, conn] : inbound_) conns.push_back(conn);
  for (auto& weak : pending_inbound_) {
    if (ConnPtr c = weak.lock()) conns.push_back(c);
  }
  for (const ConnPtr& c : conns) close(c, "transport stopped");
  inbound_.clear();
  pending_inbound_.clear();
}

// ---------------------------------------------------------------------------
// Accepting.

void TcpTransport::Impl::do_accept() {
  if (stopping_) return;
  acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
    if (stopping_) return;
    if (!ec) {
      on_accepted(std::move(socket));
      do_accept();
      return;
    }
    log(LogLevel::kWarn, self_name() + ": accepting a peer connection failed: " + ec.message());
    accept_timer_.expires_after(kAcceptRetryDelay);
    accept_timer_.async_wait([this](std::error_code wait_ec) {
      if (!wait_ec) do_accept();
    });
  });
}

void TcpTransport::Impl::on_accepted(tcp::socket socket) {
  auto conn =
      std::make_shared<Connection>(io_, Direction::kInbound, options_.limits.max_frame_bytes);
  conn->stream = std::make_unique<TcpStream>(std::move(socket));
  conn->peer_address = conn->stream->remote_address();
  std::erase_if(pending_inbound_, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
  pending_inbound_.push_back(conn);
  conn->timer.expires_after(options_.handshake_timeout);
  conn->timer.async_wait([this, conn](std::error_code ec) {
    if (!ec && !conn->established) close(conn, "no handshake within the timeout");
  });
  read_loop(conn);
}

// ---------------------------------------------------------------------------
// Dialing.

void TcpTransport::Impl::dial(const std::shared_ptr<Peer>& peer) {
  if (stopping_) return;
  ++peer->retry_token;
  std::string address;
  auto conn =
      std::make_shared<Connection>(io_, Direction::kOutbound, options_.limits.max_frame_bytes);
  {
    std::lock_guard lock(mu_);
    if (peer->removed || peer->conn) return;
    if (peer->state != ConnectionState::kRefused) peer->state = ConnectionState::kConnecting;
    peer->conn = conn;
    address = peer->address;
  }
  conn->peer = peer;
  conn->peer_id = peer->id;
  conn->peer_address = address;
  std::string host;
  uint16_t port = 0;
  if (Status s = split_host_port(address, &host, &port); !s.is_ok()) {
    close(conn, s.message());
    return;
  }
  conn->timer.expires_after(options_.handshake_timeout);
  conn->timer.async_wait([this, conn](std::error_code ec) {
    if (!ec && !conn->established) close(conn, "connect and handshake timed out");
  });
  conn->resolver.async_resolve(
      host, std::to_string(port),
      [this, conn](std::error_code ec, tcp::resolver::results_type results) {
        if (conn->closed) return;
        if (ec) return close(conn, "cannot resolve: " + ec.message());
        conn->dial_socket.emplace(io_);
        asio::async_connect(*conn->dial_socket, results,
                            [this, conn](std::error_code connect_ec, const tcp::endpoint&) {
                              if (conn->closed) return;
                              if (connect_ec) return close(conn, connect_ec.message());
                              on_dialed(conn);
                            });
      });
}

void TcpTransport::Impl::on_dialed(const ConnPtr& conn) {
  conn->stream = std::make_unique<TcpStream>(std::move(*conn->dial_socket));
  conn->dial_socket.reset();
  PeerFrame hello;
  {
    std::lock_guard lock(mu_);
    *hello.mutable_handshake() = make_handshake(identity_);
  }
  write_control(conn, hello);
  read_loop(conn);
}

void TcpTransport::Impl::schedule_retry(const std::shared_ptr<Peer>& peer, bool refused) {
  if (stopping_) return;
  {
    std::lock_guard lock(mu_);
    if (peer->removed) return;
  }
  const milliseconds min = std::max(options_.backoff_min, milliseconds(1));
  const milliseconds max = std::max(options_.backoff_max, min);
  if (peer->backoff < min) peer->backoff = min;
  const milliseconds delay = refused ? max : peer->backoff;
  peer->backoff = std::min(peer->backoff * 2, max);
  std::uniform_int_distribution<int64_t> jitter(delay.count() / 2, delay.count());
  if (!peer->retry_timer) peer->retry_timer = std::make_unique<asio::steady_timer>(io_);
  const uint64_t token = ++peer->retry_token;
  peer->retry_timer->expires_after(milliseconds(jitter(rng_)));
  peer->retry_timer->async_wait([this, peer, token](std::error_code ec) {
    if (ec || stopping_ || token != peer->retry_token) return;
    dial(peer);
  });
}

// ---------------------------------------------------------------------------
// Reading and the handshake.

void TcpTransport::Impl::read_loop(const ConnPtr& conn) {
  if (conn->closed) return;
  conn->stream->async_read_some(
      conn->read_buffer.data(), conn->read_buffer.size(),
      [this, conn](std::error_code ec, size_t n) { on_read(conn, ec, n); });
}

void TcpTransport::Impl::on_read(const ConnPtr& conn, std::error_code ec, size_t n) {
  if (conn->closed) return;
  if (ec) {
    close(conn, ec == asio::error::eof ? std::string("closed by the peer") : ec.message());
    return;
  }
  conn->decoder.feed(conn->read_buffer.data(), n);
  PeerFrame frame;
  while (!conn->closed) {
    const FrameDecoder::Next next = conn->decoder.next(&frame);
    if (next == FrameDecoder::Next::kNeedMore) break;
    if (next == FrameDecoder::Next::kError) {
      protocol_error(conn, conn->decoder.error().message());
      return;
    }
    handle_frame(conn, std::move(frame));
    frame = PeerFrame();
  }
  read_loop(conn);
}

void TcpTransport::Impl::handle_frame(const ConnPtr& conn, PeerFrame&& frame) {
  const bool inbound = conn->direction == Direction::kInbound;
  if (inbound && !conn->established) {
    if (!frame.has_handshake()) return protocol_error(conn, "first frame is not a handshake");
    return on_inbound_handshake(conn, frame.handshake());
  }
  if (!inbound && !conn->established) {
    if (!frame.has_handshake_reply()) {
      return protocol_error(conn,
                            "expected a handshake reply, got " + std::string(frame_kind(frame)));
    }
    return on_handshake_reply(conn, frame.handshake_reply());
  }
  if (!inbound) {
    return protocol_error(
        conn, std::string("unexpected ") + frame_kind(frame) + " frame on an outbound connection");
  }
  on_inbound_data(conn, std::move(frame));
}

void TcpTransport::Impl::on_inbound_handshake(const ConnPtr& conn, const Handshake& hs) {
  conn->peer_id = hs.node_id();
  if (!hs.peer_address().empty()) conn->peer_address = hs.peer_address();
  if (std::optional<std::string> reason =
          check_peer_handshake(hs, current_identity(), raft::kNoNode, callbacks_)) {
    refuse(conn, Refusal{hs.node_id(), conn->peer_address, *reason, true}, true);
    return;
  }
  conn->established = true;
  conn->timer.cancel();
  last_inbound_refusal_.erase(hs.node_id());
  PeerFrame reply;
  reply.mutable_handshake_reply()->set_accepted(true);
  {
    std::lock_guard lock(mu_);
    *reply.mutable_handshake_reply()->mutable_responder() = make_handshake(identity_);
    ++counters_.connections_established;
    ++inbound_count_[hs.node_id()];
  }
  write_control(conn, reply);
  auto [it, inserted] = inbound_.try_emplace(hs.node_id(), conn);
  if (!inserted) {
    ConnPtr old = it->second;
    it->second = conn;
    close(old, "replaced by a newer connection from the same node");
  }
  log(LogLevel::kInfo, self_name() + ": accepted peer connection from node " +
                           std::to_string(hs.node_id()) + " (" + conn->peer_address + ")");
}

void TcpTransport::Impl::on_handshake_reply(const ConnPtr& conn, const HandshakeReply& reply) {
  if (!reply.accepted()) {
    // The responder refused us, and said who it is. Our own objection to it
    // comes first: a wiped node that refuses its old peers (its fresh
    // configuration does not list them) must still be reported on this
    // side, the healthy cluster's, as "data lost".
    if (reply.has_responder() && reply.responder().node_id() != raft::kNoNode) {
      if (std::optional<std::string> ours = check_peer_handshake(
              reply.responder(), current_identity(), conn->peer_id, callbacks_)) {
        refuse(conn,
               Refusal{conn->peer_id, conn->peer_address,
                       *ours + " (and it refused us: " + reply.reason() + ")", true},
               false);
        return;
      }
    }
    refuse(conn, Refusal{conn->peer_id, conn->peer_address, reply.reason(), false}, false);
    return;
  }
  if (std::optional<std::string> reason =
          check_peer_handshake(reply.responder(), current_identity(), conn->peer_id, callbacks_)) {
    refuse(conn, Refusal{conn->peer_id, conn->peer_address, *reason, true}, true);
    return;
  }
  established_outbound(conn);
}

void TcpTransport::Impl::established_outbound(const ConnPtr& conn) {
  conn->established = true;
  conn->timer.cancel();
  const std::shared_ptr<Peer>& peer = conn->peer;
  peer->backoff = options_.backoff_min;
  peer->last_logged_refusal.clear();
  {
    std::lock_guard lock(mu_);
    peer->state = ConnectionState::kConnected;
    peer->refused_reason.clear();
    peer->last_error.clear();
    ++counters_.connections_established;
  }
  log(LogLevel::kInfo, self_name() + ": connected to node " + std::to_string(conn->peer_id) +
                           " at " + conn->peer_address);
  start_write(conn);
}

void TcpTransport::Impl::on_inbound_data(const ConnPtr& conn, PeerFrame&& frame) {
  switch (frame.body_case()) {
    case PeerFrame::kRaft:
      if (frame.raft().from() != conn->peer_id) {
        return protocol_error(conn, "raft message from node " +
                                        std::to_string(frame.raft().from()) + " on node " +
                                        std::to_string(conn->peer_id) + "'s connection");
      }
      break;
    case PeerFrame::kForwardRequest:
    case PeerFrame::kForwardReply:
    case PeerFrame::kForwardAccepted:
    case PeerFrame::kForwardBatch:
      break;
    case PeerFrame::kHandshakeReply:
      if (!frame.handshake_reply().accepted()) {
        // The dialer checked our reply and refused us.
        refuse(conn,
               Refusal{conn->peer_id, conn->peer_address, frame.handshake_reply().reason(), false},
               false);
        return;
      }
      return protocol_error(conn, "unexpected handshake reply");
    default:
      return protocol_error(conn, std::string("unexpected ") + frame_kind(frame) + " frame");
  }
  {
    std::lock_guard lock(mu_);
    ++counters_.frames_received;
    auto it = peers_.find(conn->peer_id);
    if (it != peers_.end()) ++it->second->received_frames;
  }
  if (callbacks_.on_frame) callbacks_.on_frame(conn->peer_id, std::move(frame));
}

void TcpTransport::Impl::refuse(const ConnPtr& conn, Refusal refusal, bool send_reply) {
  const bool outbound = conn->direction == Direction::kOutbound;
  std::string* last_logged =
      outbound ? &conn->peer->last_logged_refusal : &last_inbound_refusal_[refusal.peer];
  const bool first = *last_logged != refusal.reason;
  *last_logged = refusal.reason;
  log(first ? LogLevel::kWarn : LogLevel::kDebug,
      self_name() + (refusal.by_us ? ": refused node " : ": refused by node ") +
          std::to_string(refusal.peer) + " at " + refusal.address + ": " + refusal.reason);
  {
    std::lock_guard lock(mu_);
    ++counters_.refusals;
    if (outbound) {
      conn->peer->state = ConnectionState::kRefused;
      conn->peer->refused_reason = refusal.reason;
    }
  }
  if (callbacks_.on_refused) callbacks_.on_refused(refusal);
  if (!send_reply || conn->closed) return close(conn, "refused: " + refusal.reason);
  PeerFrame reply;
  reply.mutable_handshake_reply()->set_accepted(false);
  reply.mutable_handshake_reply()->set_reason(refusal.reason);
  {
    std::lock_guard lock(mu_);
    *reply.mutable_handshake_reply()->mutable_responder() = make_handshake(identity_);
  }
  conn->close_after_write = true;
  write_control(conn, reply);
}

void TcpTransport::Impl::protocol_error(const ConnPtr& conn, const std::string& what) {
  {
    std::lock_guard lock(mu_);
    ++counters_.protocol_errors;
  }
  log(LogLevel::kWarn,
      self_name() + ": protocol error on the connection " +
          (conn->direction == Direction::kInbound ? "from " : "to ") +
          (conn->peer_id ? "node " + std::to_string(conn->peer_id) + " at " : std::string()) +
          conn->peer_address + ": " + what);
  close(conn, "protocol error: " + what);
}

// ---------------------------------------------------------------------------
// Writing.

// The handshake and its replies bypass the queue: they are the only frames
// written before a connection is established (at most two: a handshake, then
// a refusal of the reply).
void TcpTransport::Impl::write_control(const ConnPtr& conn, const PeerFrame& frame) {
  std::string bytes;
  if (Status s = append_frame(frame, options_.limits.max_frame_bytes, &bytes); !s.is_ok()) {
    return close(conn, s.message());
  }
  conn->control.push_back(std::move(bytes));
  if (!conn->writing) write_next_control(conn);
}

void TcpTransport::Impl::write_next_control(const ConnPtr& conn) {
  conn->writing = true;
  conn->stream->async_write({conn->control.front()}, [this, conn](std::error_code ec, size_t) {
    conn->writing = false;
    conn->control.pop_front();
    if (conn->closed) return;
    if (ec) return close(conn, "write failed: " + ec.message());
    if (!conn->control.empty()) return write_next_control(conn);
    if (conn->close_after_write) return close(conn, "refused");
    if (conn->established && conn->direction == Direction::kOutbound) start_write(conn);
  });
}

void TcpTransport::Impl::start_write(const ConnPtr& conn) {
  if (conn->closed || conn->writing || !conn->established ||
      conn->direction != Direction::kOutbound) {
    return;
  }
  Peer& peer = *conn->peer;
  size_t batch_bytes = 0;
  {
    std::lock_guard lock(mu_);
    peer.write_posted = false;
    while (!peer.queue.empty() && conn->inflight.size() < kMaxWriteBatchFrames &&
           (conn->inflight.empty() ||
            batch_bytes + peer.queue.front().bytes.size() <= kMaxWriteBatchBytes)) {
      batch_bytes += peer.queue.front().bytes.size();
      conn->inflight.push_back(std::move(peer.queue.front()));
      peer.queue.pop_front();
    }
    peer.queue_bytes -= batch_bytes;
    peer.inflight_frames += conn->inflight.size();
    peer.inflight_bytes += batch_bytes;
  }
  if (conn->inflight.empty()) return;
  std::vector<std::string_view> pieces;
  pieces.reserve(conn->inflight.size());
  for (const Outgoing& o : conn->inflight) pieces.emplace_back(o.bytes);
  conn->writing = true;
  conn->stream->async_write(std::move(pieces), [this, conn](std::error_code ec, size_t n) {
    on_write_done(conn, ec, n);
  });
}

void TcpTransport::Impl::on_write_done(const ConnPtr& conn, std::error_code ec, size_t n) {
  conn->writing = false;
  size_t whole = 0;  // frames handed whole to the socket
  size_t offset = 0;
  for (const Outgoing& o : conn->inflight) {
    if (offset + o.bytes.size() > n) break;
    offset += o.bytes.size();
    ++whole;
  }
  if (!ec) whole = conn->inflight.size();
  std::vector<Drop> drops;
  size_t bytes = 0;
  for (const Outgoing& o : conn->inflight) bytes += o.bytes.size();
  {
    std::lock_guard lock(mu_);
    Peer& peer = *conn->peer;
    peer.inflight_frames -= conn->inflight.size();
    peer.inflight_bytes -= bytes;
    peer.sent_frames += whole;
    counters_.frames_sent += whole;
    for (size_t i = whole; i < conn->inflight.size(); ++i) {
      ++peer.dropped_frames;
      if (conn->inflight[i].frame) {
        ++counters_.other_frames_dropped;
        drops.push_back(
            Drop{peer.id, std::move(conn->inflight[i].frame), DropCause::kConnectionLost});
      } else {
        ++counters_.raft_frames_dropped;
      }
    }
  }
  conn->inflight.clear();
  report(std::move(drops));
  if (ec) return close(conn, "write failed: " + ec.message());
  start_write(conn);
}

// ---------------------------------------------------------------------------
// Closing.

void TcpTransport::Impl::close(const ConnPtr& conn, const std::string& reason) {
  if (conn->closed) return;
  conn->closed = true;
  conn->timer.cancel();
  conn->resolver.cancel();
  std::error_code ignored;
  if (conn->dial_socket) conn->dial_socket->close(ignored);
  if (conn->stream) conn->stream->close();
  if (conn->direction == Direction::kInbound) {
    if (conn->established) {
      auto it = inbound_.find(conn->peer_id);
      if (it != inbound_.end() && it->second == conn) inbound_.erase(it);
      std::lock_guard lock(mu_);
      if (--inbound_count_[conn->peer_id] <= 0) inbound_count_.erase(conn->peer_id);
    }
    if (conn->established && !stopping_) {
      log(LogLevel::kInfo, self_name() + ": connection from node " + std::to_string(conn->peer_id) +
                               " closed: " + reason);
    }
    return;
  }
  const std::shared_ptr<Peer>& peer = conn->peer;
  std::vector<Drop> drops;
  bool refused = false;
  {
    std::lock_guard lock(mu_);
    if (peer->conn != conn) return;
    peer->conn.reset();
    peer->write_posted = false;
    drop_queue_locked(
        *peer, conn->established ? DropCause::kConnectionLost : DropCause::kNotConnected, &drops);
    refused = peer->state == ConnectionState::kRefused;
    if (!refused) peer->state = ConnectionState::kBackoff;
    if (!refused) peer->last_error = reason;
  }
  if (stopping_) return;
  if (conn->established) {
    log(LogLevel::kInfo, self_name() + ": connection to node " + std::to_string(peer->id) + " at " +
                             conn->peer_address + " closed: " + reason);
  } else if (!refused) {
    log(LogLevel::kDebug, self_name() + ": cannot connect to node " + std::to_string(peer->id) +
                              " at " + conn->peer_address + ": " + reason);
  }
  report(std::move(drops));
  schedule_retry(peer, refused);
}

void TcpTransport::Impl::drop_queue_locked(Peer& peer, DropCause cause, std::vector<Drop>* drops) {
  for (Outgoing& o : peer.queue) {
    ++peer.dropped_frames;
    if (o.frame) {
      ++counters_.other_frames_dropped;
      drops->push_back(Drop{peer.id, std::move(o.frame), cause});
    } else {
      ++counters_.raft_frames_dropped;
    }
  }
  peer.queue.clear();
  peer.queue_bytes = 0;
}

void TcpTransport::Impl::report(std::vector<Drop> drops) {
  if (stopping_ || !callbacks_.on_dropped) return;
  for (Drop& d : drops) callbacks_.on_dropped(d.to, *d.frame, d.cause);
}

void TcpTransport::Impl::post_report(std::vector<Drop> drops) {
  if (drops.empty() || !callbacks_.on_dropped) return;
  asio::post(io_, [this, drops = std::make_shared<std::vector<Drop>>(std::move(drops))] {
    report(std::move(*drops));
  });
}

// ---------------------------------------------------------------------------
// The thread-safe API.

void TcpTransport::Impl::set_peers(std::map<NodeId, std::string> peers) {
  peers.erase(options_.identity.node_id);
  std::vector<std::shared_ptr<Peer>> removed, redial, added;
  std::vector<Drop> drops;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    for (auto it = peers_.begin(); it != peers_.end();) {
      if (peers.count(it->first)) {
        ++it;
        continue;
      }
      it->second->removed = true;
      drop_queue_locked(*it->second, DropCause::kUnknownPeer, &drops);
      removed.push_back(it->second);
      it = peers_.erase(it);
    }
    for (auto& [id, address] : peers) {
      auto it = peers_.find(id);
      if (it == peers_.end()) {
        auto peer = std::make_shared<Peer>(id, address);
        peers_.emplace(id, peer);
        added.push_back(peer);
      } else if (it->second->address != address) {
        it->second->address = address;
        it->second->state = ConnectionState::kConnecting;
        it->second->refused_reason.clear();
        drop_queue_locked(*it->second, DropCause::kNotConnected, &drops);
        redial.push_back(it->second);
      }
    }
  }
  post_report(std::move(drops));
  asio::post(io_, [this, removed, redial, added] {
    if (stopping_) return;
    for (const auto& peer : removed) {
      if (peer->retry_timer) peer->retry_timer->cancel();
      ++peer->retry_token;
      ConnPtr conn;
      {
        std::lock_guard lock(mu_);
        conn = peer->conn;
      }
      if (conn) close(conn, "no longer a peer");
    }
    for (const auto& peer : redial) {
      ConnPtr conn;
      {
        std::lock_guard lock(mu_);
        conn = peer->conn;
      }
      if (conn) close(conn, "address changed");
      {
        std::lock_guard lock(mu_);
        peer->state = ConnectionState::kConnecting;  // close() may have set kBackoff
      }
      peer->backoff = options_.backoff_min;
      dial(peer);  // supersedes the retry close() scheduled
    }
    for (const auto& peer : added) dial(peer);
  });
}

void TcpTransport::Impl::set_identity(LocalIdentity identity) {
  std::lock_guard lock(mu_);
  identity.node_id = options_.identity.node_id;  // fixed for the transport's life
  identity_ = std::move(identity);
}

void TcpTransport::Impl::send(NodeId to, PeerFrame frame) {
  Outgoing out;
  const bool raft = frame.has_raft();
  const Status encoded = append_frame(frame, options_.limits.max_frame_bytes, &out.bytes);
  if (!raft) out.frame = std::make_unique<PeerFrame>(std::move(frame));
  std::optional<DropCause> cause;
  ConnPtr kick;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    auto it = peers_.find(to);
    Peer* peer = it == peers_.end() ? nullptr : it->second.get();
    if (!encoded.is_ok()) {
      cause = DropCause::kTooBig;
    } else if (peer == nullptr) {
      cause = DropCause::kUnknownPeer;
    } else if (peer->state != ConnectionState::kConnecting &&
               peer->state != ConnectionState::kConnected) {
      cause = DropCause::kNotConnected;
    } else if (peer->queue.size() + peer->inflight_frames >= options_.limits.max_queue_frames ||
               peer->queue_bytes + peer->inflight_bytes + out.bytes.size() >
                   options_.limits.max_queue_bytes) {
      cause = DropCause::kQueueFull;
    } else {
      peer->queue_bytes += out.bytes.size();
      peer->queue.push_back(std::move(out));
      if (peer->state == ConnectionState::kConnected && peer->conn && !peer->write_posted) {
        peer->write_posted = true;
        kick = peer->conn;
      }
    }
    if (cause) {
      if (peer != nullptr) ++peer->dropped_frames;
      ++(raft ? counters_.raft_frames_dropped : counters_.other_frames_dropped);
    }
  }
  if (kick) asio::post(io_, [this, kick] { start_write(kick); });
  if (cause && !raft) {
    std::vector<Drop> drops;
    drops.push_back(Drop{to, std::move(out.frame), *cause});
    post_report(std::move(drops));
  }
}

bool TcpTransport::Impl::connected(NodeId to) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(to);
  return it != peers_.end() && it->second->state == ConnectionState::kConnected;
}

std::map<NodeId, PeerStatus> TcpTransport::Impl::peer_status() const {
  std::lock_guard lock(mu_);
  std::map<NodeId, PeerStatus> result;
  for (const auto& [id, peer] : peers_) {
    PeerStatus s;
    s.id = id;
    s.address = peer->address;
    s.state = peer->state;
    s.refused_reason = peer->refused_reason;
    s.last_error = peer->last_error;
    s.inbound_connected = inbound_count_.count(id) > 0;
    s.queued_frames = peer->queue.size() + peer->inflight_frames;
    s.queued_bytes = peer->queue_bytes + peer->inflight_bytes;
    s.sent_frames = peer->sent_frames;
    s.received_frames = peer->received_frames;
    s.dropped_frames = peer->dropped_frames;
    result.emplace(id, std::move(s));
  }
  return result;
}

TransportCounters TcpTransport::Impl::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

// ---------------------------------------------------------------------------

Status split_host_port(std::string_view address, std::string* host, uint16_t* port) {
  const auto bad = [&](const char* why) {
    return Status(Code::kInvalid,
                  "bad address '" + std::string(address) + "' (want host:port): " + why);
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view h = address.substr(0, colon);
  const std::string_view p = address.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) return bad("no host");
  if (h.find(':') != std::string_view::npos && address.front() != '[') {
    return bad("an IPv6 host needs brackets");
  }
  if (p.empty() || p.size() > 5) return bad("bad port");
  uint32_t value = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return bad("bad port");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return bad("port over 65535");
  *host = std::string(h);
  *port = static_cast<uint16_t>(value);
  return Status::ok();
}

TcpTransport::TcpTransport(TcpTransportOptions options, TransportCallbacks callbacks)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(callbacks))) {}
TcpTransport::~TcpTransport() { impl_->stop(); }
Status TcpTransport::start() { return impl_->start(); }
void TcpTransport::stop() { impl_->stop(); }
uint16_t TcpTransport::listen_port() const { return impl_->listen_port(); }
void TcpTransport::set_peers(std::map<NodeId, std::string> peers) {
  impl_->set_peers(std::move(peers));
}
void TcpTransport::set_identity(LocalIdentity identity) {
  impl_->set_identity(std::move(identity));
}
void TcpTransport::send(NodeId to, PeerFrame frame) { impl_->send(to, std::move(frame)); }
std::map<NodeId, PeerStatus> TcpTransport::peer_status() const { return impl_->peer_status(); }
bool TcpTransport::connected(NodeId to) const { return impl_->connected(to); }
TransportCounters TcpTransport::counters() const { return impl_->counters(); }

}  // namespace cset::net
