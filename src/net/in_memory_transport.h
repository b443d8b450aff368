// An in-process peer transport for tests: a hub connecting several
// endpoints, each a Transport with the promises of net/transport.h (handshake
// validation both ways, at-most-once delivery, bounded queues, on_dropped for
// non-raft frames that certainly never arrived, callbacks on a transport
// thread), plus controls a test needs: cut and heal links, partition,
// isolate, and random loss of raft frames (seeded).
//
// Model: the hub owns one thread that delivers every endpoint's frames in the
// order they were sent, and runs every callback of every endpoint. A "connection"
// from A to B is established by the first frame A sends B once both are
// started: B's callbacks validate A's handshake and A's validate B's (no
// frame moves before). It breaks when the link is cut or either endpoint
// stops or changes identity; frames still queued on a broken link are lost
// (raft silently, others through on_dropped with kConnectionLost). A refused
// pair stays refused until one of those events resets it.
//
// Addresses in set_peers() are recorded for peer_status() only; routing is by
// node id among the hub's started endpoints.
//
// Thread-safety: every method of both classes may be called from any thread,
// except stop() and ~InMemoryTransport from a callback. The hub must outlive
// its endpoints.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "net/transport.h"

namespace cset::net {

class InMemoryTransport;

class InMemoryHub {
 public:
  explicit InMemoryHub(uint64_t seed = 1);
  ~InMemoryHub();  // REQUIRES: every endpoint destroyed

  InMemoryHub(const InMemoryHub&) = delete;
  InMemoryHub& operator=(const InMemoryHub&) = delete;

  /// A new endpoint for node identity.node_id (not started).
  std::unique_ptr<InMemoryTransport> create(LocalIdentity identity, TransportCallbacks callbacks,
                                            TransportLimits limits = {});

  /// Frames from `from` to `to` are lost until heal(from, to); one direction.
  void cut(NodeId from, NodeId to);
  void heal(NodeId from, NodeId to);
  /// Cuts every link between a node of `side_a` and one of `side_b`, both ways.
  void partition(const std::vector<NodeId>& side_a, const std::vector<NodeId>& side_b);
  /// Cuts every link to and from `node`.
  void isolate(NodeId node);
  void heal_all();
  /// Each raft frame is lost with this probability (0 by default).
  void set_raft_loss(double probability);
  /// Blocks until every frame sent so far has been delivered or dropped and
  /// its callbacks have returned. REQUIRES: not called from a callback.
  void wait_idle();

 private:
  friend class InMemoryTransport;
  using Link = std::pair<NodeId, NodeId>;  // (from, to)

  struct Item {
    NodeId from = 0;
    NodeId to = 0;
    bool report_only = false;  // an on_dropped for `from`, decided at send()
    DropCause cause = DropCause::kUnknownPeer;
    size_t bytes = 0;
    PeerFrame frame;
  };
  struct LinkState {
    size_t pending_frames = 0;
    size_t pending_bytes = 0;
    bool established = false;
    std::string refused_reason;  // non-empty: refused
    uint64_t generation = 0;     // bumped by every reset
  };

  void run();
  void process(Item item, std::unique_lock<std::mutex>* lock);
  bool link_up_locked(NodeId from, NodeId to) const;
  void reset_link_locked(const Link& link, bool refused_only);
  void reset_links_locked(NodeId node, bool refused_only);
  bool handshake(InMemoryTransport* from, InMemoryTransport* to, const Link& link,
                 std::unique_lock<std::mutex>* lock);
  void enqueue_locked(Item item);

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  bool quit_ = false;
  bool busy_ = false;  // the hub thread is processing an item (maybe in a callback)
  uint64_t items_started_ = 0;
  uint64_t items_finished_ = 0;
  std::deque<Item> queue_;
  std::map<NodeId, InMemoryTransport*> started_;
  std::set<Link> cut_;
  std::set<NodeId> isolated_;
  std::map<Link, LinkState> links_;
  double raft_loss_ = 0;
  std::mt19937_64 rng_;
  std::thread thread_;
};

class InMemoryTransport final : public Transport {
 public:
  ~InMemoryTransport() override;  // stop()

  Status start() override;  // Errors: kInvalid if another started endpoint has this id
  void stop() override;
  void set_peers(std::map<NodeId, std::string> peers) override;
  void set_identity(LocalIdentity identity) override;
  void send(NodeId to, PeerFrame frame) override;
  std::map<NodeId, PeerStatus> peer_status() const override;
  TransportCounters counters() const override;

 private:
  friend class InMemoryHub;
  InMemoryTransport(InMemoryHub* hub, LocalIdentity identity, TransportCallbacks callbacks,
                    TransportLimits limits);
  void log(LogLevel level, const std::string& line) const {
    if (callbacks_.log) callbacks_.log(level, line);
  }

  InMemoryHub* const hub_;
  const NodeId id_;
  const TransportCallbacks callbacks_;
  const TransportLimits limits_;
  // Guarded by hub_->mu_.
  LocalIdentity identity_;
  bool started_ = false;
  bool stopped_ = false;
  std::map<NodeId, std::string> peers_;
  std::map<NodeId, PeerStatus> stats_;  // counters per peer (state fields unused)
  TransportCounters counters_;
};

}  // namespace cset::net
