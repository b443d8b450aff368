#include "net/frame.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

namespace cset::net {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kCastagnoliReflected : 0u);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

void put_u32be(uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

uint32_t get_u32be(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

Status append_frame_payload(std::string_view payload, size_t max_frame_bytes, std::string* out) {
  if (payload.size() > max_frame_bytes || payload.size() > UINT32_MAX) {
    return Status(Code::kTooBig, "peer frame of " + std::to_string(payload.size()) +
                                     " bytes over the limit of " + std::to_string(max_frame_bytes));
  }
  char header[kFrameHeaderBytes];
  put_u32be(static_cast<uint32_t>(payload.size()), header);
  put_u32be(crc32c(payload), header + 4);
  out->append(header, kFrameHeaderBytes);
  out->append(payload);
  return Status::ok();
}

Status append_frame(const PeerFrame& frame, size_t max_frame_bytes, std::string* out) {
  const size_t size = frame.ByteSizeLong();
  if (size > max_frame_bytes || size > UINT32_MAX) {
    return Status(Code::kTooBig, "peer frame of " + std::to_string(size) +
                                     " bytes over the limit of " + std::to_string(max_frame_bytes));
  }
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + size);
  char* payload = out->data() + start + kFrameHeaderBytes;
  if (!frame.SerializeToArray(payload, static_cast<int>(size))) {
    out->resize(start);
    return Status(Code::kInvalid, "peer frame: serialization failed");
  }
  put_u32be(static_cast<uint32_t>(size), out->data() + start);
  put_u32be(crc32c(std::string_view(payload, size)), out->data() + start + 4);
  return Status::ok();
}

FrameDecoder::FrameDecoder(size_t max_frame_bytes)
    : max_frame_bytes_(std::min<size_t>(max_frame_bytes, INT32_MAX)) {}

void FrameDecoder::feed(const void* data, size_t size) {
  if (failed() || size == 0) return;
  compact();
  buffer_.append(static_cast<const char*>(data), size);
}

void FrameDecoder::compact() {
  if (consumed_ == 0) return;
  buffer_.erase(0, consumed_);
  consumed_ = 0;
}

FrameDecoder::Next FrameDecoder::fail(Code code, std::string message) {
  error_ = Status(code, std::move(message));
  buffer_.clear();
  buffer_.shrink_to_fit();
  consumed_ = 0;
  return Next::kError;
}

FrameDecoder::Next FrameDecoder::next_payload(std::string_view* payload) {
  if (failed()) return Next::kError;
  const size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderBytes) return Next::kNeedMore;
  const char* header = buffer_.data() + consumed_;
  const uint32_t length = get_u32be(header);
  if (length > max_frame_bytes_) {
    return fail(Code::kTooBig, "peer frame length " + std::to_string(length) +
                                   " over the limit of " + std::to_string(max_frame_bytes_));
  }
  if (available < kFrameHeaderBytes + length) {
    // The length is within bounds: growing the buffer to hold it is allowed.
    if (consumed_ == 0) buffer_.reserve(kFrameHeaderBytes + length);
    return Next::kNeedMore;
  }
  const uint32_t expected_crc = get_u32be(header + 4);
  std::string_view body(header + kFrameHeaderBytes, length);
  if (crc32c(body) != expected_crc) return fail(Code::kCorrupt, "peer frame checksum mismatch");
  consumed_ += kFrameHeaderBytes + length;
  *payload = body;
  return Next::kFrame;
}

FrameDecoder::Next FrameDecoder::next(PeerFrame* frame) {
  std::string_view payload;
  const Next n = next_payload(&payload);
  if (n != Next::kFrame) return n;
  frame->Clear();
  if (!frame->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return fail(Code::kCorrupt, "peer frame: unparsable protobuf payload");
  }
  return Next::kFrame;
}

}  // namespace cset::net
