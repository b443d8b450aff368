#include "net/in_memory_transport.h"

#include "net/frame.h"

namespace cset::net {

// ---------------------------------------------------------------------------
// The hub.

InMemoryHub::InMemoryHub(uint64_t seed) : rng_(seed) {
  thread_ = std::thread([this] { run(); });
}

InMemoryHub::~InMemoryHub() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

std::unique_ptr<InMemoryTransport> InMemoryHub::create(LocalIdentity identity,
                                                       TransportCallbacks callbacks,
                                                       TransportLimits limits) {
  return std::unique_ptr<InMemoryTransport>(
      new InMemoryTransport(this, std::move(identity), std::move(callbacks), limits));
}

void InMemoryHub::cut(NodeId from, NodeId to) {
  std::lock_guard lock(mu_);
  cut_.insert({from, to});
  reset_link_locked({from, to}, false);
}

void InMemoryHub::heal(NodeId from, NodeId to) {
  std::lock_guard lock(mu_);
  cut_.erase({from, to});
  reset_link_locked({from, to}, true);
}

void InMemoryHub::partition(const std::vector<NodeId>& side_a, const std::vector<NodeId>& side_b) {
  std::lock_guard lock(mu_);
  for (NodeId a : side_a) {
    for (NodeId b : side_b) {
      cut_.insert({a, b});
      cut_.insert({b, a});
      reset_link_locked({a, b}, false);
      reset_link_locked({b, a}, false);
    }
  }
}

void InMemoryHub::isolate(NodeId node) {
  std::lock_guard lock(mu_);
  isolated_.insert(node);
  reset_links_locked(node, false);
}

void InMemoryHub::heal_all() {
  std::lock_guard lock(mu_);
  cut_.clear();
  isolated_.clear();
  for (auto& [link, state] : links_) reset_link_locked(link, true);
}

void InMemoryHub::set_raft_loss(double probability) {
  std::lock_guard lock(mu_);
  raft_loss_ = probability;
}

void InMemoryHub::wait_idle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

bool InMemoryHub::link_up_locked(NodeId from, NodeId to) const {
  return !cut_.count({from, to}) && !isolated_.count(from) && !isolated_.count(to);
}

void InMemoryHub::reset_link_locked(const Link& link, bool refused_only) {
  LinkState& state = links_[link];
  if (refused_only && state.refused_reason.empty()) return;
  state.established = false;
  state.refused_reason.clear();
  ++state.generation;
}

void InMemoryHub::reset_links_locked(NodeId node, bool refused_only) {
  for (auto& [link, state] : links_) {
    if (link.first == node || link.second == node) reset_link_locked(link, refused_only);
  }
}

void InMemoryHub::enqueue_locked(Item item) {
  queue_.push_back(std::move(item));
  work_cv_.notify_one();
}

void InMemoryHub::run() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return quit_ || !queue_.empty(); });
    if (quit_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    ++items_started_;
    process(std::move(item), &lock);
    ++items_finished_;
    busy_ = false;
    idle_cv_.notify_all();
  }
}

// Runs `from`'s and `to`'s checks with the lock released; records the outcome
// unless the link was reset meanwhile. Returns true when established.
bool InMemoryHub::handshake(InMemoryTransport* from, InMemoryTransport* to, const Link& link,
                            std::unique_lock<std::mutex>* lock) {
  const Handshake from_hs = make_handshake(from->identity_);
  const Handshake to_hs = make_handshake(to->identity_);
  const uint64_t generation = links_[link].generation;
  lock->unlock();
  std::optional<std::string> reason =
      check_peer_handshake(from_hs, to->identity_, 0, to->callbacks_);
  const bool by_to = reason.has_value();
  if (!reason) reason = check_peer_handshake(to_hs, from->identity_, to->id_, from->callbacks_);
  if (reason) {
    const Refusal at_from{to->id_, to_hs.peer_address(), *reason, !by_to};
    const Refusal at_to{from->id_, from_hs.peer_address(), *reason, by_to};
    for (auto [t, r] : {std::pair{from, &at_from}, std::pair{to, &at_to}}) {
      t->log(LogLevel::kWarn, "node " + std::to_string(t->id_) +
                                  (r->by_us ? ": refused node " : ": refused by node ") +
                                  std::to_string(r->peer) + ": " + r->reason);
      if (t->callbacks_.on_refused) t->callbacks_.on_refused(*r);
    }
  }
  lock->lock();
  LinkState& state = links_[link];
  if (state.generation != generation) return false;
  if (reason) {
    state.refused_reason = *reason;
    ++from->counters_.refusals;
    ++to->counters_.refusals;
    return false;
  }
  state.established = true;
  ++from->counters_.connections_established;
  ++to->counters_.connections_established;
  return true;
}

void InMemoryHub::process(Item item, std::unique_lock<std::mutex>* lock) {
  const auto find = [&](NodeId id) -> InMemoryTransport* {
    auto it = started_.find(id);
    return it == started_.end() ? nullptr : it->second;
  };
  const Link link{item.from, item.to};
  if (!item.report_only) {
    LinkState& pending = links_[link];
    pending.pending_frames -= 1;
    pending.pending_bytes -= item.bytes;
  }
  InMemoryTransport* src = find(item.from);
  if (src == nullptr) return;  // the sender stopped: its frames are discarded
  if (item.report_only) {
    if (src->callbacks_.on_dropped) {
      lock->unlock();
      src->callbacks_.on_dropped(item.to, item.frame, item.cause);
      lock->lock();
    }
    return;
  }
  LinkState* state = &links_[link];
  const bool raft = item.frame.has_raft();
  std::optional<DropCause> cause;
  InMemoryTransport* dst = find(item.to);
  if (dst == nullptr || !link_up_locked(item.from, item.to)) {
    cause = DropCause::kConnectionLost;
  } else if (!state->refused_reason.empty()) {
    cause = DropCause::kNotConnected;
  } else if (!state->established && !handshake(src, dst, link, lock)) {
    cause = DropCause::kNotConnected;
  } else if (raft && raft_loss_ > 0 &&
             std::uniform_real_distribution<double>(0, 1)(rng_) < raft_loss_) {
    cause = DropCause::kConnectionLost;
  }
  // handshake() released the lock: either side may have stopped meanwhile.
  src = find(item.from);
  dst = find(item.to);
  if (src == nullptr) return;
  if (!cause && dst == nullptr) cause = DropCause::kConnectionLost;
  if (!cause && raft && item.frame.raft().from() != item.from) {
    ++dst->counters_.protocol_errors;
    cause = DropCause::kConnectionLost;
  }
  if (cause) {
    ++src->stats_[item.to].dropped_frames;
    ++(raft ? src->counters_.raft_frames_dropped : src->counters_.other_frames_dropped);
    if (raft || !src->callbacks_.on_dropped) return;
    lock->unlock();
    src->callbacks_.on_dropped(item.to, item.frame, *cause);
    lock->lock();
    return;
  }
  ++src->stats_[item.to].sent_frames;
  ++src->counters_.frames_sent;
  ++dst->stats_[item.from].received_frames;
  ++dst->counters_.frames_received;
  if (!dst->callbacks_.on_frame) return;
  lock->unlock();
  dst->callbacks_.on_frame(item.from, std::move(item.frame));
  lock->lock();
}

// ---------------------------------------------------------------------------
// An endpoint.

InMemoryTransport::InMemoryTransport(InMemoryHub* hub, LocalIdentity identity,
                                     TransportCallbacks callbacks, TransportLimits limits)
    : hub_(hub),
      id_(identity.node_id),
      callbacks_(std::move(callbacks)),
      limits_(limits),
      identity_(std::move(identity)) {}

InMemoryTransport::~InMemoryTransport() { stop(); }

Status InMemoryTransport::start() {
  std::lock_guard lock(hub_->mu_);
  if (started_ || stopped_) return Status(Code::kInvalid, "in-memory transport already started");
  if (hub_->started_.count(id_)) {
    return Status(Code::kInvalid, "node " + std::to_string(id_) + " already on the hub");
  }
  started_ = true;
  hub_->started_[id_] = this;
  hub_->reset_links_locked(id_, false);
  return Status::ok();
}

void InMemoryTransport::stop() {
  std::unique_lock lock(hub_->mu_);
  if (stopped_) return;
  stopped_ = true;
  if (!started_) return;
  hub_->started_.erase(id_);
  hub_->reset_links_locked(id_, false);
  // Wait for a callback that may be running for this endpoint right now.
  if (std::this_thread::get_id() != hub_->thread_.get_id() && hub_->busy_) {
    const uint64_t running = hub_->items_started_;
    hub_->idle_cv_.wait(lock, [&] { return hub_->items_finished_ >= running; });
  }
}

void InMemoryTransport::set_peers(std::map<NodeId, std::string> peers) {
  std::lock_guard lock(hub_->mu_);
  peers.erase(id_);
  for (auto& [id, address] : peers) hub_->reset_link_locked({id_, id}, true);
  peers_ = std::move(peers);
}

void InMemoryTransport::set_identity(LocalIdentity identity) {
  std::lock_guard lock(hub_->mu_);
  identity.node_id = id_;
  identity_ = std::move(identity);
  hub_->reset_links_locked(id_, true);
}

void InMemoryTransport::send(NodeId to, PeerFrame frame) {
  const bool raft = frame.has_raft();
  const size_t payload_bytes = frame.ByteSizeLong();
  const size_t bytes = payload_bytes + kFrameHeaderBytes;
  std::lock_guard lock(hub_->mu_);
  if (!started_ || stopped_) return;
  InMemoryHub::LinkState& link = hub_->links_[{id_, to}];
  std::optional<DropCause> cause;
  if (payload_bytes > limits_.max_frame_bytes) {
    cause = DropCause::kTooBig;
  } else if (!peers_.count(to)) {
    cause = DropCause::kUnknownPeer;
  } else if (!link.refused_reason.empty() || !hub_->started_.count(to) ||
             !hub_->link_up_locked(id_, to)) {
    cause = DropCause::kNotConnected;
  } else if (link.pending_frames >= limits_.max_queue_frames ||
             link.pending_bytes + bytes > limits_.max_queue_bytes) {
    cause = DropCause::kQueueFull;
  }
  InMemoryHub::Item item;
  item.from = id_;
  item.to = to;
  item.frame = std::move(frame);
  if (cause) {
    if (peers_.count(to)) ++stats_[to].dropped_frames;
    ++(raft ? counters_.raft_frames_dropped : counters_.other_frames_dropped);
    if (raft) return;
    item.report_only = true;
    item.cause = *cause;
  } else {
    item.bytes = bytes;
    link.pending_frames += 1;
    link.pending_bytes += bytes;
  }
  hub_->enqueue_locked(std::move(item));
}

std::map<NodeId, PeerStatus> InMemoryTransport::peer_status() const {
  std::lock_guard lock(hub_->mu_);
  std::map<NodeId, PeerStatus> result;
  for (const auto& [id, address] : peers_) {
    PeerStatus s;
    auto counters = stats_.find(id);
    if (counters != stats_.end()) s = counters->second;
    s.id = id;
    s.address = address;
    const InMemoryHub::LinkState& out = hub_->links_[{id_, id}];
    const InMemoryHub::LinkState& in = hub_->links_[{id, id_}];
    const bool reachable =
        started_ && !stopped_ && hub_->started_.count(id) && hub_->link_up_locked(id_, id);
    if (!out.refused_reason.empty()) {
      s.state = ConnectionState::kRefused;
      s.refused_reason = out.refused_reason;
    } else if (!reachable) {
      s.state = ConnectionState::kBackoff;
    } else {
      s.state = out.established ? ConnectionState::kConnected : ConnectionState::kConnecting;
    }
    s.inbound_connected =
        in.established && hub_->started_.count(id) && hub_->link_up_locked(id, id_);
    s.queued_frames = out.pending_frames;
    s.queued_bytes = out.pending_bytes;
    result.emplace(id, std::move(s));
  }
  return result;
}

TransportCounters InMemoryTransport::counters() const {
  std::lock_guard lock(hub_->mu_);
  return counters_;
}

}  // namespace cset::net
