// InMemoryTransport: the same promises as the TCP transport (handshake both
// ways, at-most-once, bounded queues, reported drops), plus the hub's link
// controls.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>

#include "net/in_memory_transport.h"
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

struct Cluster {
  explicit Cluster(int n, TransportLimits limits = {}) : recorders(n) {
    for (int i = 0; i < n; ++i) {
      const NodeId id = static_cast<NodeId>(i + 1);
      nodes.push_back(
          hub.create(identity(id), recorders[i].callbacks(validator("c1", "secret")), limits));
      EXPECT_TRUE(nodes.back()->start().is_ok());
    }
    for (int i = 0; i < n; ++i) {
      std::map<NodeId, std::string> peers;
      for (int j = 0; j < n; ++j)
        peers[static_cast<NodeId>(j + 1)] = "mem:" + std::to_string(j + 1);
      nodes[i]->set_peers(peers);
    }
  }
  InMemoryTransport& node(NodeId id) { return *nodes[id - 1]; }
  Recorder& rec(NodeId id) { return recorders[id - 1]; }

  InMemoryHub hub{42};
  std::vector<Recorder> recorders;
  std::vector<std::unique_ptr<InMemoryTransport>> nodes;
};

TEST(NetInMemoryTransport, DeliversInOrderAndReportsStatus) {
  Cluster c(3);
  for (uint64_t i = 1; i <= 50; ++i) {
    c.node(1).send_raft(heartbeat(1, 2, i));
    c.node(1).send_raft(heartbeat(1, 3, i));
    c.node(2).send_raft(heartbeat(2, 1, i));
  }
  c.hub.wait_idle();
  ASSERT_EQ(c.rec(2).received_count(), 50u);
  ASSERT_EQ(c.rec(3).received_count(), 50u);
  ASSERT_EQ(c.rec(1).received_count(), 50u);
  const auto at2 = c.rec(2).received();
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(at2[i].frame.raft().term(), i + 1);
  auto status = c.node(1).peer_status();
  EXPECT_EQ(status.size(), 2u);
  EXPECT_EQ(status[2].state, ConnectionState::kConnected);
  EXPECT_TRUE(status[2].inbound_connected);
  EXPECT_EQ(status[3].state, ConnectionState::kConnected);
  EXPECT_FALSE(status[3].inbound_connected);  // 3 never sent anything to 1
  EXPECT_EQ(status[2].sent_frames, 50u);
  EXPECT_EQ(c.node(1).counters().frames_sent, 100u);
}

TEST(NetInMemoryTransport, HandshakeRefusalSeenOnBothSides) {
  InMemoryHub hub(1);
  Recorder ra, rb;
  LocalIdentity bad = identity(1, "wrong-token");
  auto a = hub.create(bad, ra.callbacks(validator("c1", "secret")));
  auto b = hub.create(identity(2), rb.callbacks(validator("c1", "secret")));
  ASSERT_TRUE(a->start().is_ok());
  ASSERT_TRUE(b->start().is_ok());
  a->set_peers({{2, "b"}});
  a->send_raft(heartbeat(1, 2, 1));
  a->send(2, forward_request(5));
  hub.wait_idle();
  EXPECT_EQ(rb.received_count(), 0u);
  ASSERT_EQ(ra.refusals().size(), 1u);
  ASSERT_EQ(rb.refusals().size(), 1u);
  EXPECT_FALSE(ra.refusals()[0].by_us);
  EXPECT_TRUE(rb.refusals()[0].by_us);
  EXPECT_EQ(ra.refusals()[0].reason, "cluster token mismatch");
  EXPECT_EQ(rb.refusals()[0].peer, 1u);
  EXPECT_TRUE(ra.logged("cluster token mismatch"));
  EXPECT_TRUE(rb.logged("cluster token mismatch"));
  EXPECT_EQ(a->peer_status()[2].state, ConnectionState::kRefused);
  ASSERT_EQ(ra.dropped_count(), 1u);
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kNotConnected);
  // Fixing the identity resets the refusal.
  a->set_identity(identity(1));
  a->send_raft(heartbeat(1, 2, 2));
  hub.wait_idle();
  EXPECT_EQ(rb.received_count(), 1u);
  EXPECT_EQ(a->peer_status()[2].state, ConnectionState::kConnected);
}

TEST(NetInMemoryTransport, PartitionLosesRaftSilentlyAndReportsForwards) {
  Cluster c(3);
  c.hub.partition({1}, {2, 3});
  c.node(1).send_raft(heartbeat(1, 2, 1));
  c.node(1).send(2, forward_request(10));
  c.node(2).send(3, forward_request(11));  // same side: delivered
  c.hub.wait_idle();
  EXPECT_EQ(c.rec(2).received_count(), 0u);
  EXPECT_EQ(c.rec(3).forwards_received(11), 1u);
  ASSERT_EQ(c.rec(1).dropped_count(), 1u);
  EXPECT_EQ(c.rec(1).dropped()[0].frame.forward_request().request_id(), 10u);
  EXPECT_NE(c.node(1).peer_status()[2].state, ConnectionState::kConnected);
  c.hub.heal_all();
  c.node(1).send(2, forward_request(12));
  c.hub.wait_idle();
  EXPECT_EQ(c.rec(2).forwards_received(12), 1u);
  EXPECT_EQ(c.rec(2).forwards_received(10), 0u);  // never re-sent
}

TEST(NetInMemoryTransport, IsolateAndOneWayCut) {
  Cluster c(2);
  c.hub.cut(1, 2);
  c.node(1).send_raft(heartbeat(1, 2, 1));
  c.node(2).send_raft(heartbeat(2, 1, 1));
  c.hub.wait_idle();
  EXPECT_EQ(c.rec(2).received_count(), 0u);
  EXPECT_EQ(c.rec(1).received_count(), 1u);
  c.hub.heal(1, 2);
  c.hub.isolate(2);
  c.node(1).send_raft(heartbeat(1, 2, 2));
  c.node(2).send_raft(heartbeat(2, 1, 2));
  c.hub.wait_idle();
  EXPECT_EQ(c.rec(2).received_count(), 0u);
  EXPECT_EQ(c.rec(1).received_count(), 1u);
  EXPECT_EQ(c.node(1).counters().raft_frames_dropped, 2u);
}

// Holds the hub's thread inside node 2's first on_frame until released.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<bool> entered{false};
  void wait() {
    entered = true;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

TEST(NetInMemoryTransport, QueueIsBoundedWhileTheReceiverIsStuck) {
  InMemoryHub hub(3);
  Gate gate;
  Recorder ra;
  std::atomic<int> received{0};
  TransportCallbacks cb;
  cb.on_frame = [&](NodeId, PeerFrame&&) {
    if (received++ == 0) gate.wait();
  };
  TransportLimits limits;
  limits.max_queue_frames = 10;
  auto a = hub.create(identity(1), ra.callbacks(), limits);
  auto b = hub.create(identity(2), cb);
  ASSERT_TRUE(a->start().is_ok());
  ASSERT_TRUE(b->start().is_ok());
  a->set_peers({{2, "b"}});
  a->send_raft(heartbeat(1, 2, 0));
  ASSERT_TRUE(wait_until([&] { return gate.entered.load(); }));
  for (uint64_t i = 1; i <= 100; ++i) a->send_raft(heartbeat(1, 2, i));
  a->send(2, forward_request(1));
  EXPECT_EQ(a->peer_status()[2].queued_frames, 10u);
  EXPECT_EQ(a->counters().raft_frames_dropped, 90u);
  gate.release();
  hub.wait_idle();
  EXPECT_EQ(received.load(), 11);
  ASSERT_EQ(ra.dropped_count(), 1u);
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kQueueFull);
}

TEST(NetInMemoryTransport, QueuedForwardIsReportedWhenTheLinkBreaks) {
  InMemoryHub hub(4);
  Gate gate;
  Recorder ra;
  std::atomic<int> forwards{0};
  std::atomic<int> frames{0};
  TransportCallbacks cb;
  cb.on_frame = [&](NodeId, PeerFrame&& f) {
    if (f.has_forward_request()) ++forwards;
    if (frames++ == 0) gate.wait();
  };
  auto a = hub.create(identity(1), ra.callbacks());
  auto b = hub.create(identity(2), cb);
  ASSERT_TRUE(a->start().is_ok());
  ASSERT_TRUE(b->start().is_ok());
  a->set_peers({{2, "b"}});
  a->send_raft(heartbeat(1, 2, 0));
  ASSERT_TRUE(wait_until([&] { return gate.entered.load(); }));
  a->send(2, forward_request(42));  // queued behind the stuck delivery
  hub.cut(1, 2);
  gate.release();
  hub.wait_idle();
  EXPECT_EQ(forwards.load(), 0);
  ASSERT_EQ(ra.dropped_count(), 1u);
  EXPECT_EQ(ra.dropped()[0].cause, DropCause::kConnectionLost);
  hub.heal(1, 2);
  a->send_raft(heartbeat(1, 2, 1));
  hub.wait_idle();
  EXPECT_EQ(forwards.load(), 0);  // not re-sent after the link came back
  EXPECT_EQ(frames.load(), 2);
}

TEST(NetInMemoryTransport, StoppedEndpointGetsNothingAndSenderIsTold) {
  Cluster c(2);
  c.node(2).stop();
  c.node(1).send(2, forward_request(1));
  c.node(1).send_raft(heartbeat(1, 2, 1));
  c.hub.wait_idle();
  EXPECT_EQ(c.rec(2).received_count(), 0u);
  ASSERT_EQ(c.rec(1).dropped_count(), 1u);
  EXPECT_EQ(c.rec(1).dropped()[0].cause, DropCause::kNotConnected);
  // A new endpoint with the same id takes over.
  Recorder r2;
  auto again = c.hub.create(identity(2), r2.callbacks());
  ASSERT_TRUE(again->start().is_ok());
  c.node(1).send_raft(heartbeat(1, 2, 2));
  c.hub.wait_idle();
  EXPECT_EQ(r2.received_count(), 1u);
  // Two started endpoints cannot share an id.
  auto dup = c.hub.create(identity(2), TransportCallbacks{});
  EXPECT_EQ(dup->start().code(), Code::kInvalid);
}

TEST(NetInMemoryTransport, ForgedRaftSenderIsNotDelivered) {
  Cluster c(2);
  c.node(1).send_raft(heartbeat(3, 2, 1));  // claims to come from node 3
  c.hub.wait_idle();
  EXPECT_EQ(c.rec(2).received_count(), 0u);
  EXPECT_EQ(c.node(2).counters().protocol_errors, 1u);
}

TEST(NetInMemoryTransport, RaftLossIsSeededAndPartial) {
  Cluster c(2);
  c.hub.set_raft_loss(0.5);
  for (uint64_t i = 0; i < 1000; ++i) c.node(1).send_raft(heartbeat(1, 2, i));
  for (uint64_t i = 0; i < 20; ++i) c.node(1).send(2, forward_request(i));
  c.hub.wait_idle();
  const size_t got = c.rec(2).received_count();
  EXPECT_GT(got, 20u + 350u);
  EXPECT_LT(got, 20u + 650u);
  for (uint64_t i = 0; i < 20; ++i) EXPECT_EQ(c.rec(2).forwards_received(i), 1u);
}

}  // namespace
}  // namespace cset::net
