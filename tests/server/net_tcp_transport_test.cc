// TcpTransport on 127.0.0.1 with ephemeral ports: raft exchange between two
// and three nodes, handshake refusals seen on both sides, reconnection after
// a restart, bounded queues under a peer that never reads, and the
// at-most-once rule for forwarded requests.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "net/frame.h"
#include "net/tcp_transport.h"
#include "net_test_util.h"

namespace cset::net {
namespace {

using namespace std::chrono_literals;
using testing::forward_request;
using testing::heartbeat;
using testing::identity;
using testing::Recorder;
using testing::validator;
using testing::wait_until;

std::string local(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

TcpTransportOptions options(LocalIdentity id, uint16_t port = 0) {
  TcpTransportOptions o;
  o.identity = std::move(id);
  o.listen_address = local(port);
  o.backoff_min = 10ms;
  o.backoff_max = 200ms;
  o.handshake_timeout = 2s;
  o.seed = o.identity.node_id;
  return o;
}

struct Node {
  Node(NodeId id, TransportCallbacks cb, uint16_t port = 0, TransportLimits limits = {}) {
    TcpTransportOptions o = options(identity(id), port);
    o.limits = limits;
    transport = std::make_unique<TcpTransport>(o, std::move(cb));
    Status s = transport->start();
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  std::string address() const { return local(transport->listen_port()); }
  std::unique_ptr<TcpTransport> transport;
};

ConnectionState state_of(const Transport& t, NodeId peer) {
  auto status = t.peer_status();
  return status.count(peer) ? status[peer].state : ConnectionState::kBackoff;
}

TEST(NetTcpTransport, SplitHostPort) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(split_host_port("127.0.0.1:7381", &host, &port).is_ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 7381);
  ASSERT_TRUE(split_host_port("[::1]:0", &host, &port).is_ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(split_host_port("localhost:65535", &host, &port).is_ok());
  for (const char* bad : {"", "host", ":80", "h:", "h:65536", "h:12a", "::1:80", "h:123456"}) {
    EXPECT_EQ(split_host_port(bad, &host, &port).code(), Code::kInvalid) << bad;
  }
}

TEST(NetTcpTransport, StartFailsOnAPortInUse) {
  Recorder ra, rb;
  Node a(1, ra.callbacks());
  TcpTransport b(options(identity(2), a.transport->listen_port()), rb.callbacks());
  Status s = b.start();
  EXPECT_EQ(s.code(), Code::kIo);
  EXPECT_NE(s.message().find(a.address()), std::string::npos) << s.message();
}

TEST(NetTcpTransport, TwoNodesExchangeRaftMessages) {
  Recorder ra, rb;
  Node a(1, ra.callbacks(validator("c1", "secret")));
  Node b(2, rb.callbacks(validator("c1", "secret")));
  a.transport->set_peers({{2, b.address()}});
  b.transport->set_peers({{1, a.address()}});
  ASSERT_TRUE(wait_until([&] {
    return state_of(*a.transport, 2) == ConnectionState::kConnected &&
           state_of(*b.transport, 1) == ConnectionState::kConnected;
  }));
  for (uint64_t i = 1; i <= 100; ++i) {
    a.transport->send_raft(heartbeat(1, 2, i, "from-a"));
    b.transport->send_raft(heartbeat(2, 1, i, "from-b"));
  }
  ASSERT_TRUE(wait_until([&] { return ra.received_count() == 100 && rb.received_count() == 100; }));
  const auto at_b = rb.received();
  for (uint64_t i = 0; i < 100; ++i) {
    ASSERT_EQ(at_b[i].from, 1u);
    Result<raft::Message> m = from_proto(at_b[i].frame.raft());
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->term, i + 1);  // in order
    EXPECT_EQ(m->context, "from-a");
  }
  EXPECT_EQ(ra.received()[99].from, 2u);
  auto status = a.transport->peer_status();
  EXPECT_TRUE(status[2].inbound_connected);
  EXPECT_EQ(status[2].sent_frames, 100u);
  EXPECT_EQ(status[2].received_frames, 100u);
  EXPECT_EQ(status[2].dropped_frames, 0u);
  EXPECT_EQ(a.transport->counters().frames_sent, 100u);
  EXPECT_EQ(b.transport->counters().frames_received, 100u);
  EXPECT_TRUE(ra.logged("connected to node 2"));
  EXPECT_TRUE(rb.logged("accepted peer connection from node 1"));
}

TEST(NetTcpTransport, ThreeNodesAllToAll) {
  Recorder r[3];
  std::vector<std::unique_ptr<Node>> nodes;
  for (NodeId id = 1; id <= 3; ++id)
    nodes.push_back(std::make_unique<Node>(id, r[id - 1].callbacks()));
  for (NodeId id = 1; id <= 3; ++id) {
    std::map<NodeId, std::string> peers;
    for (NodeId p = 1; p <= 3; ++p) peers[p] = nodes[p - 1]->address();  // self is ignored
    nodes[id - 1]->transport->set_peers(peers);
  }
  ASSERT_TRUE(wait_until([&] {
    for (NodeId id = 1; id <= 3; ++id) {
      for (NodeId p = 1; p <= 3; ++p) {
        if (p != id && state_of(*nodes[id - 1]->transport, p) != ConnectionState::kConnected) {
          return false;
        }
      }
    }
    return true;
  }));
  EXPECT_EQ(nodes[0]->transport->peer_status().size(), 2u);
  constexpr uint64_t kEach = 50;
  for (uint64_t i = 1; i <= kEach; ++i) {
    for (NodeId from = 1; from <= 3; ++from) {
      for (NodeId to = 1; to <= 3; ++to) {
        if (from != to) nodes[from - 1]->transport->send_raft(heartbeat(from, to, i));
      }
    }
  }
  ASSERT_TRUE(wait_until([&] {
    return r[0].received_count() == 2 * kEach && r[1].received_count() == 2 * kEach &&
           r[2].received_count() == 2 * kEach;
  }));
  for (NodeId id = 1; id <= 3; ++id) {
    std::map<NodeId, uint64_t> last_term;
    for (const auto& rec : r[id - 1].received()) {
      Result<raft::Message> m = from_proto(rec.frame.raft());
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->from, rec.from);
      EXPECT_EQ(m->to, id);
      EXPECT_EQ(m->term, last_term[rec.from] + 1);  // per-sender order
      last_term[rec.from] = m->term;
    }
  }
}

class NetTcpRefusal : public ::testing::TestWithParam<int> {};

TEST_P(NetTcpRefusal, ReasonSeenOnBothSides) {
  LocalIdentity bad = identity(1);
  std::string reason;
  switch (GetParam()) {
    case 0:
      bad.cluster_token = "wrong";
      reason = "cluster token mismatch";
      break;
    case 1:
      bad.cluster_id = "c2";
      reason = "cluster id mismatch";
      break;
    case 2:
      bad.incarnation = "wiped";
      reason = "data lost";
      break;
  }
  Recorder ra, rb;
  TcpTransport a(options(bad), ra.callbacks(validator("c1", "secret")));
  ASSERT_TRUE(a.start().is_ok());
  // B knows node 1 by its original incarnation.
  Node b(2, rb.callbacks(validator("c1", "secret", {{1, "inc-1"}})));
  a.set_peers({{2, b.address()}});
  ASSERT_TRUE(wait_until([&] { return state_of(a, 2) == ConnectionState::kRefused; }));
  a.send_raft(heartbeat(1, 2, 1));
  a.send(2, forward_request(9));
  ASSERT_TRUE(wait_until([&] { return !ra.refusals().empty() && !rb.refusals().empty(); }));
  const Refusal at_a = ra.refusals()[0];
  const Refusal at_b = rb.refusals()[0];
  EXPECT_FALSE(at_a.by_us);
  EXPECT_EQ(at_a.peer, 2u);
  EXPECT_NE(at_a.reason.find(reason), std::string::npos) << at_a.reason;
  EXPECT_TRUE(at_b.by_us);
  EXPECT_EQ(at_b.peer, 1u);
  EXPECT_EQ(at_b.reason, at_a.reason);
  EXPECT_NE(a.peer_status()[2].refused_reason.find(reason), std::string::npos);
  EXPECT_TRUE(ra.logged("refused by node 2"));
  EXPECT_TRUE(ra.logged(reason));
  EXPECT_TRUE(rb.logged("refused node 1"));
  EXPECT_TRUE(rb.logged(reason));
  // Nothing crosses a refused connection; the forward is reported.
  ASSERT_TRUE(wait_until([&] { return ra.dropped_count() == 1; }));
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kNotConnected);
  std::this_thread::sleep_for(300ms);  // a retry or two
  EXPECT_EQ(rb.received_count(), 0u);
  EXPECT_FALSE(b.transport->peer_status().count(1));
  EXPECT_EQ(state_of(a, 2), ConnectionState::kRefused);
  EXPECT_GE(a.counters().refusals, 1u);
}

std::string refusal_name(const ::testing::TestParamInfo<int>& info) {
  static const char* const kNames[] = {"ClusterToken", "ClusterId", "Incarnation"};
  return kNames[info.param];
}

INSTANTIATE_TEST_SUITE_P(Reasons, NetTcpRefusal, ::testing::Values(0, 1, 2), refusal_name);

TEST(NetTcpTransport, DialerRefusesTheResponder) {
  // B (the acceptor) accepts A, but A finds B's incarnation wrong.
  Recorder ra, rb;
  Node a(1, ra.callbacks(validator("c1", "secret", {{2, "old-disk"}})));
  Node b(2, rb.callbacks(validator("c1", "secret")));
  a.transport->set_peers({{2, b.address()}});
  ASSERT_TRUE(wait_until([&] { return !ra.refusals().empty() && !rb.refusals().empty(); }));
  EXPECT_TRUE(ra.refusals()[0].by_us);
  EXPECT_FALSE(rb.refusals()[0].by_us);
  EXPECT_EQ(rb.refusals()[0].peer, 1u);
  EXPECT_NE(rb.refusals()[0].reason.find("data lost"), std::string::npos);
  EXPECT_EQ(state_of(*a.transport, 2), ConnectionState::kRefused);
  a.transport->send_raft(heartbeat(1, 2, 1));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rb.received_count(), 0u);
}

TEST(NetTcpTransport, WrongNodeAtTheAddressIsRefused) {
  Recorder ra, rb;
  Node a(1, ra.callbacks());
  Node b(2, rb.callbacks());
  a.transport->set_peers({{3, b.address()}});  // A believes node 3 lives there
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 3) == ConnectionState::kRefused; }));
  EXPECT_NE(a.transport->peer_status()[3].refused_reason.find("is node 2, not node 3"),
            std::string::npos);
}

TEST(NetTcpTransport, SelfConnectionIsRefused) {
  Recorder ra;
  Node a(1, ra.callbacks());
  a.transport->set_peers({{2, a.address()}});  // misconfigured: node 2's address is ours
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kRefused; }));
  EXPECT_NE(a.transport->peer_status()[2].refused_reason.find("connected to itself"),
            std::string::npos);
}

// A node with our own id is not always ourselves: another cluster's node 1, or
// a second node started with the same --id, is named as such.
TEST(NetTcpTransport, SameIdElsewhereIsNotCalledItself) {
  for (bool other_cluster : {true, false}) {
    Recorder ra, rb;
    Node a(1, ra.callbacks());
    LocalIdentity twin = identity(1, "secret", other_cluster ? "c2" : "c1");
    twin.incarnation = "inc-of-another-data-directory";
    TcpTransport b(options(twin, 0), rb.callbacks());
    ASSERT_TRUE(b.start().is_ok());
    a.transport->set_peers({{2, local(b.listen_port())}});
    ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kRefused; }));
    const std::string reason = a.transport->peer_status()[2].refused_reason;
    EXPECT_EQ(reason.find("connected to itself"), std::string::npos) << reason;
    EXPECT_NE(reason.find(other_cluster ? "of another cluster" : "with the same --id"),
              std::string::npos)
        << reason;
  }
}

TEST(NetTcpTransport, ReconnectsAfterTheListenerRestarts) {
  Recorder ra, rb1, rb2;
  Node a(1, ra.callbacks());
  auto b = std::make_unique<Node>(2, rb1.callbacks());
  const uint16_t port = b->transport->listen_port();
  EXPECT_FALSE(a.transport->connected(2));  // no peer yet
  a.transport->set_peers({{2, local(port)}});
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  EXPECT_TRUE(a.transport->connected(2));
  a.transport->send(2, forward_request(7));
  a.transport->send_raft(heartbeat(1, 2, 1));
  ASSERT_TRUE(wait_until([&] { return rb1.received_count() == 2; }));

  b.reset();  // stop: sockets closed
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) != ConnectionState::kConnected; }));
  EXPECT_FALSE(a.transport->connected(2));
  auto b2 = std::make_unique<Node>(2, rb2.callbacks(), port);
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  EXPECT_TRUE(a.transport->connected(2));
  a.transport->send_raft(heartbeat(1, 2, 2));
  a.transport->send(2, forward_request(8));
  ASSERT_TRUE(wait_until([&] { return rb2.forwards_received(8) == 1; }));
  std::this_thread::sleep_for(100ms);
  // Nothing from before the restart is sent again.
  EXPECT_EQ(rb1.forwards_received(7), 1u);
  EXPECT_EQ(rb2.forwards_received(7), 0u);
  EXPECT_EQ(rb2.received_count(), 2u);
  EXPECT_GE(a.transport->counters().connections_established, 2u);
}

TEST(NetTcpTransport, NonRaftFramesToUnreachablePeersAreReported) {
  Recorder ra;
  Node a(1, ra.callbacks());
  // A port with nobody listening: bind a listener, note its port, stop it.
  uint16_t dead_port;
  {
    Recorder rx;
    Node x(9, rx.callbacks());
    dead_port = x.transport->listen_port();
  }
  a.transport->send(5, forward_request(1));  // not a peer at all
  a.transport->set_peers({{2, local(dead_port)}});
  ASSERT_TRUE(wait_until([&] { return a.transport->peer_status()[2].last_error.size() > 0; }));
  for (uint64_t id = 2; id < 12; ++id) {
    a.transport->send(2, forward_request(id));
    a.transport->send_raft(heartbeat(1, 2, id));
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(wait_until([&] { return ra.dropped_count() == 11; }));
  const auto dropped = ra.dropped();
  EXPECT_EQ(dropped[0].to, 5u);
  EXPECT_EQ(dropped[0].cause, DropCause::kUnknownPeer);
  for (size_t i = 1; i < dropped.size(); ++i) {
    EXPECT_EQ(dropped[i].cause, DropCause::kNotConnected);
    EXPECT_EQ(dropped[i].frame.forward_request().request_id(), i + 1);
  }
  EXPECT_EQ(a.transport->counters().other_frames_dropped, 11u);
  EXPECT_EQ(a.transport->counters().raft_frames_dropped, 10u);
}

TEST(NetTcpTransport, TooBigFramesAreDropped) {
  Recorder ra, rb;
  TransportLimits limits;
  limits.max_frame_bytes = 1000;
  Node a(1, ra.callbacks(), 0, limits);
  Node b(2, rb.callbacks());
  a.transport->set_peers({{2, b.address()}});
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  a.transport->send(2, forward_request(1, std::string(2000, 'x')));
  ASSERT_TRUE(wait_until([&] { return ra.dropped_count() == 1; }));
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kTooBig);
}

TEST(NetTcpTransport, PeerRemovalAndAddressChange) {
  Recorder ra, rb, rc;
  Node a(1, ra.callbacks());
  Node b(2, rb.callbacks());
  Node c(2, rc.callbacks());  // the same node id, moved to another address
  a.transport->set_peers({{2, b.address()}});
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  a.transport->set_peers({{2, c.address()}});
  EXPECT_EQ(a.transport->peer_status()[2].address, c.address());
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  a.transport->send_raft(heartbeat(1, 2, 1));
  ASSERT_TRUE(wait_until([&] { return rc.received_count() == 1; }));
  EXPECT_EQ(rb.received_count(), 0u);
  a.transport->set_peers({});
  EXPECT_TRUE(a.transport->peer_status().empty());
  a.transport->send(2, forward_request(3));
  ASSERT_TRUE(wait_until([&] { return ra.dropped_count() == 1; }));
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kUnknownPeer);
}

// ---------------------------------------------------------------------------
// A hand-written peer on raw sockets: it answers the handshake as node
// `node_id` and then reads only when told to.

class FakePeer {
 public:
  explicit FakePeer(NodeId node_id) : node_id_(node_id) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~FakePeer() {
    close_connection();
    ::close(listen_fd_);
  }
  std::string address() const { return local(port_); }

  /// Accepts one connection and answers its handshake. False on timeout.
  bool accept_and_handshake() {
    if (!poll_in(listen_fd_, 5000)) return false;
    close_connection();
    conn_fd_ = ::accept(listen_fd_, nullptr, nullptr);
    if (conn_fd_ < 0) return false;
    decoder_ = FrameDecoder();
    PeerFrame hello;
    if (!read_frame(&hello, 5000) || !hello.has_handshake()) return false;
    PeerFrame reply;
    reply.mutable_handshake_reply()->set_accepted(true);
    *reply.mutable_handshake_reply()->mutable_responder() =
        make_handshake(testing::identity(node_id_));
    std::string bytes;
    EXPECT_TRUE(append_frame(reply, kDefaultMaxFrameBytes, &bytes).is_ok());
    return ::send(conn_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  /// Reads frames for up to `ms` (or until the connection ends).
  std::vector<PeerFrame> read_for(int ms) {
    std::vector<PeerFrame> frames;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    PeerFrame f;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!read_frame(&f, 20)) {
        if (decoder_.failed() || eof_) break;
        continue;
      }
      frames.push_back(f);
    }
    return frames;
  }

  /// Closes with unread data pending, which resets the connection.
  void close_connection() {
    if (conn_fd_ >= 0) ::close(conn_fd_);
    conn_fd_ = -1;
    eof_ = false;
  }

  void send_raw(const std::string& bytes) {
    ::send(conn_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

 private:
  static bool poll_in(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  }

  bool read_frame(PeerFrame* out, int ms) {
    while (true) {
      FrameDecoder::Next n = decoder_.next(out);
      if (n == FrameDecoder::Next::kFrame) return true;
      if (n == FrameDecoder::Next::kError || eof_) return false;
      if (!poll_in(conn_fd_, ms)) return false;
      char buf[65536];
      const ssize_t got = ::recv(conn_fd_, buf, sizeof buf, 0);
      if (got <= 0) {
        eof_ = true;
        return false;
      }
      decoder_.feed(buf, static_cast<size_t>(got));
    }
  }

  NodeId node_id_;
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  uint16_t port_ = 0;
  bool eof_ = false;
  FrameDecoder decoder_;
};

raft::Message big_append(NodeId from, NodeId to, uint64_t term, size_t bytes) {
  raft::Message m = heartbeat(from, to, term);
  m.type = raft::MessageType::kAppend;
  m.entries.push_back(raft::Entry{term, term, raft::EntryType::kNormal, std::string(bytes, 'e')});
  return m;
}

TEST(NetTcpTransport, BoundedQueueUnderAPeerThatNeverReads) {
  FakePeer fake(2);
  Recorder ra;
  TransportLimits limits;
  limits.max_queue_bytes = size_t{1} << 20;
  limits.max_queue_frames = 1000;
  Node a(1, ra.callbacks(), 0, limits);
  a.transport->set_peers({{2, fake.address()}});
  ASSERT_TRUE(fake.accept_and_handshake());
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  // 5000 x 16 KiB = 80 MiB offered to a peer that reads nothing.
  size_t max_seen_bytes = 0;
  for (uint64_t i = 1; i <= 5000; ++i) {
    a.transport->send_raft(big_append(1, 2, i, 16 * 1024));
    if (i % 100 == 0) {
      auto s = a.transport->peer_status()[2];
      max_seen_bytes = std::max(max_seen_bytes, s.queued_bytes);
      EXPECT_LE(s.queued_frames, limits.max_queue_frames);
    }
  }
  // Room is left for less than one more 16 KiB frame: a 32 KiB forward cannot fit.
  a.transport->send(2, forward_request(77, std::string(32 * 1024, 'f')));
  const PeerStatus s = a.transport->peer_status()[2];
  EXPECT_LE(max_seen_bytes, limits.max_queue_bytes);
  EXPECT_LE(s.queued_bytes, limits.max_queue_bytes);
  EXPECT_GT(s.dropped_frames, 4000u);  // the kernel buffers hold at most a few MiB
  EXPECT_EQ(a.transport->counters().raft_frames_dropped, s.dropped_frames - 1);
  ASSERT_TRUE(wait_until([&] { return ra.dropped_count() == 1; }));
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kQueueFull);
  EXPECT_EQ(ra.dropped()[0].frame.forward_request().request_id(), 77u);
  EXPECT_EQ(state_of(*a.transport, 2), ConnectionState::kConnected);
}

TEST(NetTcpTransport, QueuedForwardIsReportedWhenTheConnectionBreaksAndNeverSent) {
  FakePeer fake(2);
  Recorder ra;
  Node a(1, ra.callbacks());  // default limits: 32 MiB per peer
  a.transport->set_peers({{2, fake.address()}});
  ASSERT_TRUE(fake.accept_and_handshake());
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  // Fill the socket buffers and queue far more than one write batch behind.
  for (uint64_t i = 1; i <= 400; ++i) a.transport->send_raft(big_append(1, 2, i, 64 * 1024));
  a.transport->send(2, forward_request(42));
  ASSERT_TRUE(wait_until([&] {
    const auto before = a.transport->peer_status()[2].sent_frames;
    std::this_thread::sleep_for(200ms);
    return a.transport->peer_status()[2].sent_frames == before;
  }));
  ASSERT_GT(a.transport->peer_status()[2].queued_frames, 100u);  // the forward is far back
  EXPECT_EQ(ra.dropped_count(), 0u);

  fake.close_connection();  // unread data: the connection is reset
  ASSERT_TRUE(wait_until([&] { return ra.dropped_count() == 1; }));
  const auto dropped = ra.dropped();
  EXPECT_EQ(dropped[0].frame.forward_request().request_id(), 42u);
  EXPECT_EQ(dropped[0].cause, DropCause::kConnectionLost);
  EXPECT_EQ(a.transport->peer_status()[2].queued_frames, 0u);

  // The transport reconnects; the forward never goes out again.
  ASSERT_TRUE(fake.accept_and_handshake());
  ASSERT_TRUE(wait_until([&] { return state_of(*a.transport, 2) == ConnectionState::kConnected; }));
  a.transport->send(2, forward_request(43));
  size_t seen42 = 0, seen43 = 0;
  for (const PeerFrame& f : fake.read_for(500)) {
    if (f.has_forward_request() && f.forward_request().request_id() == 42) ++seen42;
    if (f.has_forward_request() && f.forward_request().request_id() == 43) ++seen43;
  }
  EXPECT_EQ(seen42, 0u);
  EXPECT_EQ(seen43, 1u);
  EXPECT_EQ(ra.dropped_count(), 1u);
}

TEST(NetTcpTransport, HostileInboundBytesCloseOnlyThatConnection) {
  Recorder ra, rb;
  Node a(1, ra.callbacks());
  Node b(2, rb.callbacks());
  b.transport->set_peers({{1, a.address()}});
  ASSERT_TRUE(wait_until([&] { return state_of(*b.transport, 1) == ConnectionState::kConnected; }));

  auto connect_raw = [&]() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(a.transport->listen_port());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  };
  // Garbage instead of a handshake; an absurd length; a forged raft sender.
  const std::string garbage = "GET / HTTP/1.1\r\n\r\n";
  const std::string absurd("\x7f\xff\xff\xff\0\0\0\0", 8);
  std::string forged;
  {
    PeerFrame hello;
    *hello.mutable_handshake() = make_handshake(identity(3));
    ASSERT_TRUE(append_frame(hello, kDefaultMaxFrameBytes, &forged).is_ok());
    ASSERT_TRUE(
        append_frame(make_raft_frame(heartbeat(2, 1, 5)), kDefaultMaxFrameBytes, &forged).is_ok());
  }
  for (const std::string* bytes : std::vector<const std::string*>{&garbage, &absurd, &forged}) {
    int fd = connect_raw();
    ::send(fd, bytes->data(), bytes->size(), MSG_NOSIGNAL);
    // The node closes the connection: recv ends (after the handshake reply, if any).
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    bool closed = false;
    for (int i = 0; i < 100 && !closed; ++i) {
      if (::poll(&p, 1, 50) == 1 && ::recv(fd, buf, sizeof buf, 0) <= 0) closed = true;
    }
    EXPECT_TRUE(closed);
    ::close(fd);
  }
  EXPECT_EQ(a.transport->counters().protocol_errors, 3u);
  EXPECT_EQ(ra.received_count(), 0u);
  // The real peer's connection is untouched.
  b.transport->send_raft(heartbeat(2, 1, 1));
  ASSERT_TRUE(wait_until([&] { return ra.received_count() == 1; }));
}

TEST(NetTcpTransport, SilentAcceptedConnectionIsClosedAfterTheHandshakeTimeout) {
  Recorder ra;
  TcpTransportOptions o = options(identity(1));
  o.handshake_timeout = 100ms;
  TcpTransport a(o, ra.callbacks());
  ASSERT_TRUE(a.start().is_ok());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(a.listen_port());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  pollfd p{fd, POLLIN, 0};
  char buf[16];
  ASSERT_EQ(::poll(&p, 1, 3000), 1);
  EXPECT_LE(::recv(fd, buf, sizeof buf, 0), 0);  // closed by the node
  ::close(fd);
}

TEST(NetTcpTransport, StopIsPromptWithPeersDownAndIdempotent) {
  Recorder ra;
  auto a = std::make_unique<Node>(1, ra.callbacks());
  a->transport->set_peers({{2, "127.0.0.1:1"}, {3, "127.0.0.1:2"}});
  for (int i = 0; i < 100; ++i) a->transport->send(2, forward_request(i));
  std::this_thread::sleep_for(50ms);
  const auto start = std::chrono::steady_clock::now();
  a->transport->stop();
  a->transport->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  const size_t dropped = ra.dropped_count();
  a->transport->send(2, forward_request(1000));  // after stop: discarded, no callback
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(ra.dropped_count(), dropped);
}

}  // namespace
}  // namespace cset::net
