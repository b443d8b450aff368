// The peer transport over TCP (standalone asio), with the promises of
// net/transport.h.
//
// Connections: one outbound connection per peer, which carries this node's
// frames to it; the peer's own outbound connection carries its frames here
// (peer.proto explains the direction rule and the handshake). A failed or
// broken connection is retried with exponential backoff from backoff_min to
// backoff_max, each delay jittered to [delay/2, delay] by a RNG seeded with
// `seed`; a refused handshake is retried every ~backoff_max (the other side
// may be fixed and restarted). Dialing and the handshake together must finish
// within `handshake_timeout`, and an accepted connection must send its
// handshake within it too.
//
// Threads: one thread, owned by the transport, runs every socket operation
// and every callback (see transport.h).
//
// TLS: not implemented. The seam is net/stream.h: connections read and write
// through net::Stream after connecting, so a TLS binding wraps the socket in
// an asio::ssl::stream (TLS handshake first) in the dial and accept paths of
// tcp_transport.cc, and nothing else changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/transport.h"

namespace cset::net {

struct TcpTransportOptions {
  LocalIdentity identity;
  /// host:port to listen on; port 0 picks a free port (see listen_port()).
  std::string listen_address = "127.0.0.1:0";
  TransportLimits limits;
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2000};
  std::chrono::milliseconds handshake_timeout{2000};
  uint64_t seed = 1;  // jitter of the reconnect delays
};

/// Splits "host:port" or "[v6-host]:port". Errors: kInvalid.
Status split_host_port(std::string_view address, std::string* host, uint16_t* port);

class TcpTransport final : public Transport {
 public:
  TcpTransport(TcpTransportOptions options, TransportCallbacks callbacks);
  ~TcpTransport() override;  // stop()

  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  /// Binds and listens synchronously (SO_REUSEADDR), then starts the thread.
  /// Errors: kIo naming the address; kInvalid for a malformed address or a
  /// second start().
  Status start() override;
  void stop() override;
  /// The port actually listened on (useful with port 0). 0 before start().
  uint16_t listen_port() const;

  void set_peers(std::map<NodeId, std::string> peers) override;
  void set_identity(LocalIdentity identity) override;
  void send(NodeId to, PeerFrame frame) override;
  std::map<NodeId, PeerStatus> peer_status() const override;
  TransportCounters counters() const override;
  /// True while the connection to `to` is established (handshakes accepted
  /// both ways). A frame send() accepts then goes on that connection or is
  /// dropped with it (and reported): never on a later one. Thread-safe.
  bool connected(NodeId to) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cset::net
