// The set state machine: applies committed raft log entries to named sets
// held in a Kv (set/kv.h), answers queries, and encodes/restores snapshots.
//
// Guarantees:
// - Deterministic: the same entries applied to the same state give the same
//   state and results on every node (a command that does not decode fails the
//   same way everywhere and still advances the applied index).
// - Atomic and idempotent: one apply() call is one WriteBatch holding the
//   mutations and the new applied index, so a crash leaves the state before
//   or after the whole call; entries at or below the applied index are
//   skipped, so replaying the log after a restart is harmless.
// - Binary-safe keys and members: any bytes, including empty.
//
// ## Key layout (version 1)
// Space::kData:  u32be(len(key)) | key | member  ->  ""
//   The fixed 4-byte length makes `u32be(len(key)) | key` a prefix that no
//   other key's entries share, so the members of one key are one contiguous
//   range, in bytewise member order.
// Space::kMeta:
//   "A"        -> u64be applied index
//   "C"        -> u64be index of the configuration entry | its raw data (the
//                 latest applied kConfig entry, encoded by raft/codec.h)
//   "F"        -> u8 format version (1); written with the first apply
//   "K" | key  -> u64be cardinality of `key`; present iff the set is non-empty
//                 (SCARD and EXISTS in O(1), SCAN over keys without touching
//                 members)
//   "S..."     reserved for client sessions (a later issue)
//
// ## Snapshot image (version 1)
//   "CSETSNAP" 0x01  { space:u8  count:varint  { key:bytes value:bytes }*count }
//                    for space 0 (kData) then 1 (kMeta), keys strictly increasing
//   crc32c:u32be over every byte before it
// A restore checks the checksum, the framing, the key layout and that every
// cardinality counter matches its set before anything is replaced.
//
// Cursors (SSCAN, SCAN) are positions in the data — the next member or key to
// return — so a scan continues on any node; elements present for the whole
// scan are returned exactly once.
//
// Thread-safety: none. One thread (the apply loop) calls apply(),
// restore_snapshot() and the queries, or the caller serializes them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cset/status.h"
#include "raft/types.h"
#include "set/kv.h"

namespace cset::set {

inline constexpr uint8_t kStateFormatVersion = 1;

/// The outcome of one applied entry.
struct ApplyResult {
  raft::Index index = 0;
  raft::EntryType type = raft::EntryType::kNormal;
  /// ok; kExists (ADD_STRICT of a present member, nothing changed); kCorrupt
  /// (the entry's command did not decode; nothing changed).
  Status status;
  /// ADD: members newly added. ADD_STRICT: 1 when added. REM: members removed.
  /// DEL: keys that existed. 0 for kNoop and kConfig entries.
  uint64_t count = 0;

  bool operator==(const ApplyResult& o) const {
    return index == o.index && type == o.type && status.code() == o.status.code() &&
           count == o.count;
  }
};

/// One page of a scan. `next_cursor` is std::nullopt when the scan is complete.
struct ScanPage {
  std::vector<std::string> items;
  std::optional<std::string> next_cursor;
};

class StateMachine {
 public:
  /// `kv` must outlive the state machine. Call load() before anything else.
  explicit StateMachine(Kv* kv);

  /// Reads the applied index and configuration from the Kv (after a restart).
  /// Errors: kCorrupt (unknown format version or malformed metadata), kIo.
  Status load();

  /// The index of the last entry applied (0 for a new state machine).
  raft::Index applied_index() const { return applied_index_; }

  /// The data of the latest applied kConfig entry (empty when none) and its
  /// index (0 when none). Decode with raft/codec.h.
  const std::string& config_bytes() const { return config_bytes_; }
  raft::Index config_index() const { return config_index_; }

  /// Applies committed entries atomically (one WriteBatch; durable on return
  /// when `sync`). Entries at or below applied_index() are skipped; the rest
  /// must continue it without a gap. Returns one result per entry applied, in
  /// order (none for skipped ones). kNoop only advances the applied index;
  /// kConfig stores the configuration bytes.
  /// Errors (nothing applied, applied_index() unchanged): kInvalid for a gap
  /// or entries out of order; the Kv's write errors (kNoSpace, kIo).
  Result<std::vector<ApplyResult>> apply(const std::vector<raft::Entry>& entries, bool sync);

  // Queries, over the current state. Errors: the Kv's read errors.
  Result<bool> contains(std::string_view key, std::string_view member) const;
  Result<uint64_t> size(std::string_view key) const;
  Result<bool> exists(std::string_view key) const;
  /// Every member in bytewise order. Errors: kTooBig when size(key) > limit.
  Result<std::vector<std::string>> members(std::string_view key, uint64_t limit) const;
  /// SSCAN: up to `count` (>= 1) members of `key` starting at `cursor`
  /// (inclusive; "" = from the start), in bytewise order.
  Result<ScanPage> scan_members(std::string_view key, std::string_view cursor, size_t count) const;
  /// SCAN: up to `count` (>= 1) non-empty keys starting at `cursor`.
  Result<ScanPage> scan_keys(std::string_view cursor, size_t count) const;

  /// A point-in-time image of the whole Kv (both spaces) at applied_index().
  /// Errors: the Kv's read errors.
  Result<std::string> encode_snapshot() const;

  /// Replaces the whole state with a snapshot image covering `index`.
  /// Validates everything first; on any error the state is unchanged.
  /// Errors: kCorrupt (bad checksum, framing or contents, or an image whose
  /// applied index is not `index`); kInvalid when `index` < applied_index()
  /// (a state machine never goes back); the Kv's errors.
  Status restore_snapshot(std::string_view data, raft::Index index);

 private:
  class Overlay;

  Status apply_command(Overlay& overlay, const std::string& data, ApplyResult& result) const;

  Kv* kv_;
  raft::Index applied_index_ = 0;
  raft::Index config_index_ = 0;
  std::string config_bytes_;
};

/// The Space::kData key of `member` in set `key`.
std::string data_key(std::string_view key, std::string_view member);
/// The prefix shared by every member of set `key`.
std::string data_prefix(std::string_view key);

}  // namespace cset::set
