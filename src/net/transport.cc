#include "net/transport.h"

#include "net/convert.h"

namespace cset::net {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

const char* to_string(DropCause cause) {
  switch (cause) {
    case DropCause::kUnknownPeer:
      return "unknown peer";
    case DropCause::kNotConnected:
      return "not connected";
    case DropCause::kQueueFull:
      return "queue full";
    case DropCause::kConnectionLost:
      return "connection lost";
    case DropCause::kTooBig:
      return "frame too big";
  }
  return "?";
}

const char* to_string(ConnectionState state) {
  switch (state) {
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kBackoff:
      return "backoff";
    case ConnectionState::kRefused:
      return "refused";
  }
  return "?";
}

Handshake make_handshake(const LocalIdentity& identity) {
  Handshake h;
  h.set_protocol_version(kProtocolVersion);
  h.set_cluster_id(identity.cluster_id);
  h.set_cluster_token(identity.cluster_token);
  h.set_node_id(identity.node_id);
  h.set_incarnation(identity.incarnation);
  h.set_peer_address(identity.peer_address);
  h.set_client_address(identity.client_address);
  h.set_takes_forward_batches(true);
  return h;
}

void Transport::send_raft(const raft::Message& message) {
  send(message.to, make_raft_frame(message));
}

}  // namespace cset::net

namespace cset::net {

std::optional<std::string> check_peer_handshake(const Handshake& peer, const LocalIdentity& self,
                                                NodeId expected,
                                                const TransportCallbacks& callbacks) {
  if (peer.protocol_version() != kProtocolVersion) {
    return "peer protocol version " + std::to_string(peer.protocol_version()) +
           " is not supported (this node speaks " + std::to_string(kProtocolVersion) + ")";
  }
  if (peer.node_id() == raft::kNoNode) return std::string("peer sent node id 0");
  if (peer.node_id() == self.node_id) {
    const std::string id = std::to_string(self.node_id);
    if (!peer.cluster_id().empty() && !self.cluster_id.empty() &&
        peer.cluster_id() != self.cluster_id) {
      return "the node at " + peer.peer_address() + " is node " + id +
             " of another cluster (cluster id " + peer.cluster_id() + ", this one is " +
             self.cluster_id + ")";
    }
    if (peer.incarnation() != self.incarnation) {
      return "the node at " + peer.peer_address() + " also claims id " + id +
             " with another data directory (two nodes started with the same --id?)";
    }
    return "node " + id + " connected to itself (check the peer addresses)";
  }
  if (expected != raft::kNoNode && peer.node_id() != expected) {
    return "the node at " + peer.peer_address() + " is node " + std::to_string(peer.node_id()) +
           ", not node " + std::to_string(expected);
  }
  if (callbacks.validate_handshake) return callbacks.validate_handshake(peer);
  return std::nullopt;
}

}  // namespace cset::net
