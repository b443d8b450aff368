// The replica's streams: creation, the handshake, frames in and out, closing
// (include/cset/consistent_set.h, ReplicaStream).
//
// Wire: both ends send PeerFrame{handshake} (net/peer.proto) first, framed
// as every later frame (net/frame.h). Each end checks the other's protocol
// version, cluster id, node id (a member of its configuration, not itself)
// and data incarnation (the one it saw before from that node, if any); a
// refusal is answered with PeerFrame{handshake_reply accepted=false reason}
// and closes the stream on both ends. Then PeerFrame{raft} messages (their
// `from` must be the handshake's node id) and forwarded writes
// (forward_request / forward_reply) flow both ways on the one stream.
#include "embed/core.h"
#include "net/convert.h"

namespace cset::embed {

using raft::NodeId;

net::PeerFrame Core::handshake_frame() const {
  net::PeerFrame f;
  auto* h = f.mutable_handshake();
  h->set_protocol_version(net::kProtocolVersion);
  h->set_cluster_id(opt_.cluster_id);
  h->set_node_id(opt_.id);
  h->set_incarnation(incarnation_);
  return f;
}

std::shared_ptr<ReplicaStream> Core::create_stream() {
  auto st = std::make_shared<StreamState>(next_stream_id_++);
  // The handshake waits in the pull buffer until the reader takes it (or
  // set_output delivers it).
  Status s = net::append_frame(handshake_frame(), net::kDefaultMaxFrameBytes, &st->pull_buffer);
  (void)s;  // a handshake is a few dozen bytes
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_[st->id] = st;
  }
  return std::shared_ptr<ReplicaStream>(new ReplicaStream(st, weak_from_this()));
}

bool Core::mark_closed(StreamState& st, const std::string& reason) {
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.closed) return false;
  st.reason = reason;
  st.closed = true;
  return true;
}

void Core::notify_closed(StreamState& st) {
  ReplicaStream::OnClose on_close;
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.notified) return;
    st.notified = true;
    on_close = std::move(st.on_close);
    st.on_close = nullptr;
    reason = st.reason;
  }
  if (on_close) on_close(reason);
}

void Core::stream_input(const std::shared_ptr<StreamState>& st, std::string bytes) {
  if (st->closed || bytes.empty()) return;
  const size_t n = bytes.size();
  if (st->inbound_pending.fetch_add(n) + n > opt_.max_stream_buffer_bytes) {
    stream_close(st, "more than max_stream_buffer_bytes written and not yet processed");
    return;
  }
  asio::post(io_, [this, st, bytes = std::move(bytes)] {
    st->inbound_pending -= bytes.size();
    if (!stopped_) on_input(st, bytes);
  });
}

void Core::stream_set_output(const std::shared_ptr<StreamState>& st, ReplicaStream::Output output) {
  asio::post(io_, [this, st, output = std::move(output)]() mutable {
    if (stopped_) return;
    std::string waiting;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      waiting.swap(st->pull_buffer);
    }
    // A stream closed before its output was set still delivers what it had
    // to say (its handshake, a refusal), so the other end learns why.
    if (!waiting.empty()) output(waiting);
    if (st->closed) return;
    st->push = true;
    st->output = std::move(output);
  });
}

void Core::stream_close(const std::shared_ptr<StreamState>& st, std::string reason) {
  if (!mark_closed(*st, reason)) return;
  asio::post(io_, [this, st, reason = std::move(reason)] { close_on_loop(st, reason); });
}

void Core::close_on_loop(const std::shared_ptr<StreamState>& st, const std::string& reason) {
  mark_closed(*st, reason);
  if (auto it = links_.find(st->peer); it != links_.end() && it->second == st) {
    links_.erase(it);
    log("stream to node " + std::to_string(st->peer) + " closed: " + reason);
  }
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_.erase(st->id);
  }
  st->output = nullptr;  // may hold the other end of an in-memory link
  notify_closed(*st);
}

bool Core::emit(StreamState& st, const net::PeerFrame& frame) {
  if (st.closed) return false;
  std::string bytes;
  if (!net::append_frame(frame, net::kDefaultMaxFrameBytes, &bytes)) return false;
  if (st.push) {
    st.output(bytes);
    return true;
  }
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.pull_buffer.size() + bytes.size() > opt_.max_stream_buffer_bytes) return false;
  st.pull_buffer += bytes;
  return true;
}

bool Core::send_to(NodeId to, const net::PeerFrame& frame) {
  auto it = links_.find(to);
  if (it == links_.end()) return false;
  return emit(*it->second, frame);
}

void Core::send_messages(std::vector<raft::Message>& msgs) {
  // A message to a peer without a stream is lost; raft retransmits.
  for (const auto& m : msgs) send_to(m.to, net::make_raft_frame(m));
  msgs.clear();
}

void Core::on_input(const std::shared_ptr<StreamState>& st, const std::string& bytes) {
  if (st->closed) return;
  st->decoder.feed(bytes);
  net::PeerFrame f;
  while (!st->closed && st->decoder.next(&f) == net::FrameDecoder::Next::kFrame) on_frame(st, f);
  if (st->decoder.failed() && !st->closed)
    close_on_loop(st, "malformed input: " + st->decoder.error().to_string());
  kick();
}

void Core::on_frame(const std::shared_ptr<StreamState>& st, net::PeerFrame& f) {
  if (f.has_handshake_reply() && !f.handshake_reply().accepted()) {
    log("node " + std::to_string(f.handshake_reply().responder().node_id()) +
        " refused our stream: " + f.handshake_reply().reason());
    close_on_loop(st, "refused by the remote replica: " + f.handshake_reply().reason());
    return;
  }
  if (!st->handshake_received) {
    if (f.has_handshake()) {
      on_handshake(st, f.handshake());
    } else {
      close_on_loop(st, std::string("protocol error: a ") + net::frame_kind(f) +
                            " frame before the handshake");
    }
    return;
  }
  const NodeId peer = st->peer;
  if (f.has_raft()) {
    auto m = net::from_proto(f.raft());
    if (!m.ok()) {
      close_on_loop(st, "bad raft message: " + m.status().to_string());
    } else if (m->from != peer || m->to != opt_.id) {
      close_on_loop(st, "a raft message from " + std::to_string(m->from) + " to " +
                            std::to_string(m->to) + " on the stream of node " +
                            std::to_string(peer));
    } else {
      raft_->step(*m);
    }
  } else if (f.has_forward_request()) {
    on_forward_request(peer, f.forward_request());
  } else if (f.has_forward_reply()) {
    on_forward_reply(peer, f.forward_reply());
  } else {
    close_on_loop(st,
                  std::string("protocol error: an unexpected ") + net::frame_kind(f) + " frame");
  }
}

std::optional<std::string> Core::validate_handshake(const net::Handshake& h) const {
  if (h.protocol_version() != net::kProtocolVersion)
    return "protocol version " + std::to_string(h.protocol_version()) + ", ours " +
           std::to_string(net::kProtocolVersion);
  if (h.cluster_id() != opt_.cluster_id)
    return "another cluster (cluster id " + h.cluster_id() + ", ours " + opt_.cluster_id + ")";
  if (h.node_id() == opt_.id)
    return "a stream from node " + std::to_string(h.node_id()) + " to itself";
  const raft::Configuration& cfg = raft_->configuration();
  if (std::binary_search(cfg.removed.begin(), cfg.removed.end(), h.node_id()))
    return "node " + std::to_string(h.node_id()) + " was removed from this cluster";
  if (!cfg.contains(h.node_id()))
    return "node " + std::to_string(h.node_id()) + " is not a member of this cluster";
  if (auto it = incarnations_.find(h.node_id());
      it != incarnations_.end() && it->second != h.incarnation()) {
    return "data lost: node " + std::to_string(h.node_id()) +
           " came back with other storage (incarnation mismatch); it may have voted twice in "
           "one term, so it is refused";
  }
  return std::nullopt;
}

void Core::on_handshake(const std::shared_ptr<StreamState>& st, const net::Handshake& h) {
  if (auto why = validate_handshake(h)) {
    net::PeerFrame r;
    auto* rep = r.mutable_handshake_reply();
    rep->set_accepted(false);
    rep->set_reason(*why);
    *rep->mutable_responder() = handshake_frame().handshake();
    emit(*st, r);
    log("refused a stream from node " + std::to_string(h.node_id()) + ": " + *why);
    close_on_loop(st, "refused: " + *why);
    return;
  }
  const NodeId peer = h.node_id();
  st->handshake_received = true;
  st->peer = peer;
  incarnations_[peer] = h.incarnation();
  if (auto it = links_.find(peer); it != links_.end() && it->second != st) {
    std::shared_ptr<StreamState> old = it->second;
    links_.erase(it);
    close_on_loop(old, "replaced by a newer stream to node " + std::to_string(peer));
  }
  links_[peer] = st;
  log("stream to node " + std::to_string(peer) + " up");
}

}  // namespace cset::embed
