// Helpers shared by the net_* tests: a thread-safe recorder of transport
// callbacks, a polling wait with a deadline, and message builders.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/convert.h"
#include "net/transport.h"

namespace cset::net::testing {

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

struct Received {
  NodeId from;
  PeerFrame frame;
};

struct Dropped {
  NodeId to;
  PeerFrame frame;
  DropCause cause;
};

/// Records every callback of one transport.
class Recorder {
 public:
  /// Callbacks feeding this recorder; `validate` is the handshake check.
  TransportCallbacks callbacks(
      std::function<std::optional<std::string>(const Handshake&)> validate = nullptr) {
    TransportCallbacks cb;
    cb.on_frame = [this](NodeId from, PeerFrame&& frame) {
      std::lock_guard lock(mu_);
      received_.push_back(Received{from, std::move(frame)});
    };
    cb.validate_handshake = std::move(validate);
    cb.on_refused = [this](const Refusal& r) {
      std::lock_guard lock(mu_);
      refusals_.push_back(r);
    };
    cb.on_dropped = [this](NodeId to, const PeerFrame& frame, DropCause cause) {
      std::lock_guard lock(mu_);
      dropped_.push_back(Dropped{to, frame, cause});
    };
    cb.log = [this](LogLevel level, const std::string& line) {
      std::lock_guard lock(mu_);
      logs_.push_back(std::string(to_string(level)) + " " + line);
    };
    return cb;
  }

  std::vector<Received> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  size_t received_count() const {
    std::lock_guard lock(mu_);
    return received_.size();
  }
  std::vector<Refusal> refusals() const {
    std::lock_guard lock(mu_);
    return refusals_;
  }
  std::vector<Dropped> dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }
  size_t dropped_count() const {
    std::lock_guard lock(mu_);
    return dropped_.size();
  }
  bool logged(const std::string& needle) const {
    std::lock_guard lock(mu_);
    for (const std::string& l : logs_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  /// How many forward_request frames with this id arrived.
  size_t forwards_received(uint64_t request_id) const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const Received& r : received_) {
      if (r.frame.has_forward_request() && r.frame.forward_request().request_id() == request_id) {
        ++n;
      }
    }
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Received> received_;
  std::vector<Refusal> refusals_;
  std::vector<Dropped> dropped_;
  std::vector<std::string> logs_;
};

inline raft::Message heartbeat(NodeId from, NodeId to, uint64_t term, std::string context = "") {
  raft::Message m;
  m.type = raft::MessageType::kHeartbeat;
  m.from = from;
  m.to = to;
  m.term = term;
  m.commit = term * 10;
  m.context = std::move(context);
  return m;
}

inline PeerFrame forward_request(uint64_t id, std::string command = "cmd") {
  PeerFrame f;
  f.mutable_forward_request()->set_request_id(id);
  f.mutable_forward_request()->set_kind(FORWARD_WRITE);
  f.mutable_forward_request()->set_command(std::move(command));
  return f;
}

/// An identity for node `id` of cluster "c1" with token "secret".
inline LocalIdentity identity(NodeId id, std::string token = "secret", std::string cluster = "c1") {
  LocalIdentity i;
  i.node_id = id;
  i.cluster_id = std::move(cluster);
  i.cluster_token = std::move(token);
  i.incarnation = "inc-" + std::to_string(id);
  i.peer_address = "127.0.0.1:" + std::to_string(7000 + id);
  i.client_address = "127.0.0.1:" + std::to_string(6000 + id);
  return i;
}

/// The server's kind of check: same cluster id and token, and the incarnation
/// recorded for that node id (when one is recorded).
inline std::function<std::optional<std::string>(const Handshake&)> validator(
    std::string cluster_id, std::string token,
    std::vector<std::pair<NodeId, std::string>> incarnations = {}) {
  return [=](const Handshake& h) -> std::optional<std::string> {
    if (h.cluster_id() != cluster_id) return "cluster id mismatch";
    if (h.cluster_token() != token) return "cluster token mismatch";
    for (const auto& [id, inc] : incarnations) {
      if (id == h.node_id() && inc != h.incarnation()) {
        return "data lost: remove this node and add it back under a new id";
      }
    }
    return std::nullopt;
  };
}

}  // namespace cset::net::testing
