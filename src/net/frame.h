// Framing of the peer protocol: how PeerFrames (net/peer.proto) travel over a
// byte stream, and an incremental decoder that survives any input.
//
// ## Format
//   frame   := length:u32be  crc:u32be  payload[length]
//   payload := a serialized PeerFrame
//   crc     := CRC-32C (Castagnoli) of the payload, unmasked
// A frame's `length` is at most the receiver's max_frame_bytes (default
// 64 MiB; snapshot chunks are 1 MiB). There is no resynchronisation: after a
// bad frame the stream is unusable and the connection is closed.
//
// ## Guarantees
// - The decoder accepts arbitrary chunking: feeding a stream one byte at a
//   time or all at once yields the same frames.
// - Bounded memory: the length is checked against max_frame_bytes before any
//   buffer grows for the payload; the decoder never buffers more than one
//   header plus one maximal payload beyond the chunk it was just fed.
// - Hostile input (oversized length, checksum mismatch, unparsable protobuf)
//   ends in a sticky error (Code::kCorrupt or kTooBig), never a crash.
//
// Thread-safety: FrameDecoder is a plain object (one owner); the free
// functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cset/status.h"
#include "net/peer.pb.h"

namespace cset::net {

inline constexpr size_t kFrameHeaderBytes = 8;
inline constexpr size_t kDefaultMaxFrameBytes = size_t{64} << 20;

/// CRC-32C of `data` continuing from `crc` (0 to start). crc32c("123456789")
/// == 0xE3069283. Table-driven, portable.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data.data(), data.size()); }

/// Appends one frame holding `payload` to `out`.
/// Errors: kTooBig when payload.size() > max_frame_bytes (nothing appended).
Status append_frame_payload(std::string_view payload, size_t max_frame_bytes, std::string* out);

/// Serializes `frame` and appends it to `out` as one frame.
/// Errors: kTooBig (over max_frame_bytes), kInvalid (serialization failed).
Status append_frame(const PeerFrame& frame, size_t max_frame_bytes, std::string* out);

/// Splits a byte stream into frames (max_frame_bytes is capped at 2^31-1,
/// protobuf's own limit). Usage:
///   decoder.feed(data, n);
///   PeerFrame f;
///   while (decoder.next(&f) == FrameDecoder::Next::kFrame) handle(f);
///   if (decoder.failed()) close(decoder.error());
class FrameDecoder {
 public:
  enum class Next { kFrame, kNeedMore, kError };

  explicit FrameDecoder(size_t max_frame_bytes = kDefaultMaxFrameBytes);

  /// Appends stream bytes. Ignored once failed(). Memory: the unconsumed
  /// bytes are kept; call next() until kNeedMore between feeds.
  void feed(const void* data, size_t size);
  void feed(std::string_view data) { feed(data.data(), data.size()); }

  /// Extracts the next whole payload without parsing it (the view is valid
  /// until the next feed() or next*() call).
  Next next_payload(std::string_view* payload);
  /// Extracts and parses the next whole frame into `*frame` (cleared first).
  Next next(PeerFrame* frame);

  bool failed() const { return !error_.is_ok(); }
  const Status& error() const { return error_; }
  /// Bytes fed but not yet returned as frames.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }
  size_t max_frame_bytes() const { return max_frame_bytes_; }

 private:
  Next fail(Code code, std::string message);
  void compact();

  size_t max_frame_bytes_;
  std::string buffer_;  // buffer_[consumed_..] is unconsumed input
  size_t consumed_ = 0;
  Status error_;
};

}  // namespace cset::net
