// The byte-stream seam under a peer connection (DESIGN.md: "framing over any
// byte stream; TCP and TLS bindings").
//
// A peer connection (tcp_transport.cc) reads and writes only through this
// interface once the stream is connected. Today the one implementation is a
// plain TCP socket; a TLS binding supplies a Stream wrapping an
// asio::ssl::stream whose TLS handshake has completed before the peer
// handshake starts, and nothing above this seam changes.
//
// Contract: one read and one write may be outstanding at a time; handlers run
// on the transport's thread; close() aborts both (their handlers then run
// with an error) and is idempotent.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cset::net {

class Stream {
 public:
  /// (error, bytes): for a write, the bytes accepted by the stream before the
  /// error, so the caller knows exactly which frames left whole.
  using Handler = std::function<void(std::error_code, size_t)>;

  virtual ~Stream() = default;
  /// Reads at least one byte into data[0..size).
  virtual void async_read_some(char* data, size_t size, Handler handler) = 0;
  /// Writes every piece in order, or fails. The pieces must stay valid until
  /// the handler runs.
  virtual void async_write(std::vector<std::string_view> pieces, Handler handler) = 0;
  virtual void close() = 0;
  /// "host:port" of the other end, for logs.
  virtual std::string remote_address() const = 0;
};

}  // namespace cset::net
