// TcpPipe (embed/tcp_pipe.h).
#include "embed/tcp_pipe.h"

namespace cset::embed {

std::shared_ptr<TcpPipe> TcpPipe::start(asio::ip::tcp::socket socket,
                                        std::shared_ptr<ReplicaStream> stream,
                                        size_t max_queue_bytes) {
  std::shared_ptr<TcpPipe> pipe(new TcpPipe(std::move(socket), std::move(stream), max_queue_bytes));
  std::weak_ptr<TcpPipe> weak = pipe;
  asio::error_code ec;
  pipe->socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  // The stream's callbacks run on the replica's thread: hop to the socket's.
  pipe->stream_->set_output([weak](std::string_view bytes) {
    if (auto p = weak.lock()) {
      asio::post(p->socket_.get_executor(),
                 [p, b = std::string(bytes)]() mutable { p->enqueue(std::move(b)); });
    }
  });
  pipe->stream_->set_on_close([weak](const std::string& reason) {
    if (auto p = weak.lock()) p->close();
  });
  asio::post(pipe->socket_.get_executor(), [pipe] { pipe->read_more(); });
  return pipe;
}

TcpPipe::TcpPipe(asio::ip::tcp::socket socket, std::shared_ptr<ReplicaStream> stream,
                 size_t max_queue_bytes)
    : socket_(std::move(socket)), stream_(std::move(stream)), max_queue_bytes_(max_queue_bytes) {}

void TcpPipe::close() {
  auto self = shared_from_this();
  // Bytes already queued (a refusal, say) go out first.
  asio::post(socket_.get_executor(), [self] {
    self->closing_ = true;
    if (!self->writing_) self->shut("closed");
  });
}

void TcpPipe::shut(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  queue_.clear();
  queued_bytes_ = 0;
  stream_->close();
}

void TcpPipe::read_more() {
  if (closed_) return;
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buffer_, sizeof(buffer_)),
                          [self](const asio::error_code& ec, size_t n) {
                            if (ec) return self->shut(ec.message());
                            self->stream_->write(std::string_view(self->buffer_, n));
                            self->read_more();
                          });
}

void TcpPipe::enqueue(std::string bytes) {
  if (closed_) return;
  if (queued_bytes_ + bytes.size() > max_queue_bytes_) return shut("send queue full");
  queued_bytes_ += bytes.size();
  queue_.push_back(std::move(bytes));
  if (!writing_) write_more();
}

void TcpPipe::write_more() {
  if (closed_ || queue_.empty()) {
    writing_ = false;
    if (closing_) shut("closed");
    return;
  }
  writing_ = true;
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(queue_.front()),
                    [self](const asio::error_code& ec, size_t) {
                      // shut() empties the queue, also while a write runs.
                      if (ec || self->closed_) return self->shut("write failed");
                      self->queued_bytes_ -= self->queue_.front().size();
                      self->queue_.pop_front();
                      self->write_more();
                    });
}

}  // namespace cset::embed
