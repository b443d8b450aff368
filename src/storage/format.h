// The byte formats of the data directory's column families (docs/storage.md
// is the full specification; this header is its code).
//
//   column family  key                         value
//   log            index:u64be                 crc:u32be term:u64be type:u8 data
//                                              crc = crc32c(index:u64be term type data)
//   raft_state     "hard_state"                frame(raft/codec HardState)
//                  "log_offset"                frame(index:u64be term:u64be)
//                  "snapshot_meta"             frame(raft/codec SnapshotMeta)
//   node           "format_version"            u32be
//                  "node_id"                   u64be
//                  "cluster_id"                bytes (absent until known)
//                  "incarnation"               16 bytes
//   data, sm_meta  set::Kv keys (set/state_machine.h owns their layout)
//
// frame(p) = crc32c(p):u32be | p. Big-endian log keys make RocksDB's bytewise
// order the index order. The entry checksum covers the index (the key), so
// an entry stored or returned under the wrong key is caught too.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cset/status.h"
#include "raft/types.h"

namespace cset::storage {

inline constexpr char kLogFamily[] = "log";
inline constexpr char kRaftStateFamily[] = "raft_state";
inline constexpr char kDataFamily[] = "data";
inline constexpr char kSmMetaFamily[] = "sm_meta";
inline constexpr char kNodeFamily[] = "node";

inline constexpr char kHardStateKey[] = "hard_state";
inline constexpr char kLogOffsetKey[] = "log_offset";
inline constexpr char kSnapshotMetaKey[] = "snapshot_meta";
inline constexpr char kFormatVersionKey[] = "format_version";
inline constexpr char kNodeIdKey[] = "node_id";
inline constexpr char kClusterIdKey[] = "cluster_id";
inline constexpr char kIncarnationKey[] = "incarnation";
inline constexpr size_t kIncarnationBytes = 16;

void put_u32be(std::string* out, uint32_t v);
void put_u64be(std::string* out, uint64_t v);
uint32_t get_u32be(const char* p);
uint64_t get_u64be(const char* p);

/// The log key of `index`: 8 bytes, big-endian.
std::string log_key(raft::Index index);
/// Errors: kCorrupt when the key is not 8 bytes.
Result<raft::Index> parse_log_key(std::string_view key);

/// The log value of `entry` (its index goes into the checksum, not the value).
std::string encode_log_value(const raft::Entry& entry);
/// Decodes the value stored under `index`. Errors: kCorrupt (too short,
/// checksum mismatch, unknown entry type), naming the index.
Result<raft::Entry> decode_log_value(raft::Index index, std::string_view value);

/// crc32c(payload):u32be | payload.
std::string frame(std::string_view payload);
/// Errors: kCorrupt when too short or the checksum does not match.
Result<std::string_view> unframe(std::string_view framed, std::string_view what);

}  // namespace cset::storage
