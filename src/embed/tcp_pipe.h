// TcpPipe: carries one ReplicaStream (include/cset/consistent_set.h) over one
// connected TCP socket, with standalone asio — the C++ form of the original
// design's `stream.pipe(net.connect(port)).pipe(stream)`. Used by the
// seed-usage example and the embed tests; any other transport (a pipe, TLS)
// is wired the same way: bytes read go into stream->write(), bytes the
// stream emits are written out.
//
// Guarantees: bytes go out in the order the stream emitted them; at most
// max_queue_bytes wait for the socket (beyond that the connection is cut:
// the stream closes and raft retransmits over the next one); when either
// side ends (socket error or EOF, or the stream closed), both are closed.
//
// Threads: the socket is used only on its io_context's thread (run that
// io_context on one thread); close() and the stream's callbacks may come
// from any thread.
#pragma once

#include <asio.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "cset/consistent_set.h"

namespace cset::embed {

class TcpPipe : public std::enable_shared_from_this<TcpPipe> {
 public:
  /// Starts piping; the pipe keeps itself alive while the connection lasts.
  static std::shared_ptr<TcpPipe> start(asio::ip::tcp::socket socket,
                                        std::shared_ptr<ReplicaStream> stream,
                                        size_t max_queue_bytes = size_t{64} << 20);
  /// Closes the socket (once the bytes already queued are written) and the
  /// stream. Thread-safe, idempotent.
  void close();
  const std::shared_ptr<ReplicaStream>& stream() const { return stream_; }

 private:
  TcpPipe(asio::ip::tcp::socket socket, std::shared_ptr<ReplicaStream> stream,
          size_t max_queue_bytes);
  void read_more();
  void enqueue(std::string bytes);
  void write_more();
  void shut(const std::string& why);

  asio::ip::tcp::socket socket_;
  std::shared_ptr<ReplicaStream> stream_;
  const size_t max_queue_bytes_;
  // Socket thread only.
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;  // close() asked: shut once the queue is written
  bool closed_ = false;
  char buffer_[64 * 1024];
};

}  // namespace cset::embed
