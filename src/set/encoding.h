// Byte-level helpers shared by the set layer's encodings (commands, key
// layout, snapshot images). Internal to src/set.
//
// varint = unsigned LEB128, 1..10 bytes, minimal (the same rule as
// raft/codec.h: no overlong forms, a 10th byte may only be 0x01).
// bytes = varint length, then that many raw bytes.
// u32/u64 fixed = big-endian, so that their byte order is their numeric order.
//
// Readers never read out of bounds: every get_* returns false on truncated or
// malformed input and leaves the reader in an unspecified position.
//
// Thread-safety: pure functions; a Reader is a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cset::set::detail {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_bytes(std::string& out, std::string_view b) {
  put_varint(out, b.size());
  out.append(b);
}

inline void put_fixed32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline void put_fixed64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline uint64_t read_fixed64(std::string_view b) {  // REQUIRES: b.size() >= 8
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

inline uint32_t read_fixed32(std::string_view b) {  // REQUIRES: b.size() >= 4
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

/// A bounds-checked cursor over an input buffer.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }
  size_t position() const { return pos_; }

  bool get_u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }

  bool get_varint(uint64_t& v) {
    v = 0;
    for (int i = 0; i < 10; ++i) {
      uint8_t byte = 0;
      if (!get_u8(byte)) return false;
      if (i == 9 && byte > 0x01) return false;  // would overflow 64 bits
      v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) return i == 0 || byte != 0;  // minimal form only
    }
    return false;
  }

  bool get_fixed64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = read_fixed64(in_.substr(pos_, 8));
    pos_ += 8;
    return true;
  }

  /// A length-prefixed byte string; the view points into the input.
  bool get_bytes(std::string_view& b) {
    uint64_t n = 0;
    if (!get_varint(n) || n > remaining()) return false;
    b = in_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

  bool get_raw(size_t n, std::string_view& b) {
    if (n > remaining()) return false;
    b = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by
/// RocksDB and iSCSI. crc32c("123456789") == 0xE3069283.
uint32_t crc32c(std::string_view data);

/// The smallest string greater than every string that starts with `prefix`;
/// empty when there is none (prefix is all 0xff bytes, or empty).
inline std::string prefix_successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto last = static_cast<uint8_t>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return s;
}

}  // namespace cset::set::detail
