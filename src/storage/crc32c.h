// CRC-32C (Castagnoli), the checksum of storage/'s log entries and of the
// records RocksDB writes to its write-ahead log.
//
// Guarantees: crc32c("123456789") == 0xE3069283. Uses the SSE4.2 crc32
// instruction when the CPU has it, a table otherwise; both give the same value.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cset::storage {

/// Continues a CRC-32C computed over earlier bytes (`crc` = the value returned
/// for them; 0 to start) with `data`.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data.data(), data.size()); }

/// RocksDB/LevelDB's "masked" CRC stored in WAL headers: a rotation plus a
/// constant, so that a CRC of data that itself embeds CRCs is not degenerate.
inline uint32_t crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace cset::storage
