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
// - Exactly-once client sessions (Raft dissertation §6.3, as LogCabin's
//   Server/StateMachine; docs/sessions.md): a REGISTER entry opens a session
//   whose id is its log index; a command carrying (session, sequence,
//   lowest_unacked) is applied at most once per (session, sequence), and a
//   retry gets the stored result of the first application. Results below
//   lowest_unacked are dropped; at most `max_unacked` per session are kept
//   (a sequence beyond that window is refused). A request on an unknown or
//   expired session is refused with kSessionExpired and changes nothing.
// - Log-derived time: the state machine's clock is the maximum time_ms of
//   the commands applied so far (stamped by the proposing leader), so it
//   never goes backwards, even across leaders with skewed clocks. A session
//   expires when that clock passes its last activity + its timeout; when
//   opening one would exceed `max_sessions`, the least recently active ones
//   are expired first (ties: the lowest id). Everything depends only on the
//   log, so every node expires the same sessions at the same entry.
//
// ## Key layout (version 2; version 1 is read and upgraded at the next apply)
// Space::kData:  u32be(len(key)) | key | member  ->  ""
//   The fixed 4-byte length makes `u32be(len(key)) | key` a prefix that no
//   other key's entries share, so the members of one key are one contiguous
//   range, in bytewise member order.
// Space::kMeta:
//   "A"        -> u64be applied index
//   "C"        -> u64be index of the configuration entry | its raw data (the
//                 latest applied kConfig entry, encoded by raft/codec.h)
//   "F"        -> u8 format version (2); written with the first apply (and
//                 rewritten by the first apply over a version-1 state)
//   "K" | key  -> u64be cardinality of `key`; present iff the set is non-empty
//                 (SCARD and EXISTS in O(1), SCAN over keys without touching
//                 members)
//   "SC"       -> u64be the log clock (ms since the Unix epoch; absent = 0)
//   "SS" | u64be session id -> u64be last activity (log clock ms) | u64be
//                 timeout ms | u64be lowest unacknowledged sequence
//   "SR" | u64be session id | u64be sequence -> the stored result:
//                 code:u8 (0 ok, 1 EXISTS, 2 TOOBIG)  count:varint
//                 fingerprint:u32be (crc32c of the command's op, key and
//                 arguments: a sequence reused for another request is refused)
//   A version-1 state has no "S" keys: no sessions, clock 0.
//
// ## Snapshot image (version 2; version 1 images are still restored)
//   "CSETSNAP" 0x02  { space:u8  count:varint  { key:bytes value:bytes }*count }
//                    for space 0 (kData) then 1 (kMeta), keys strictly increasing
//   crc32c:u32be over every byte before it
// A restore checks the checksum, the framing, the key layout (session records
// included: every stored result belongs to a session in the image) and that
// every cardinality counter matches its set before anything is replaced.
// The image holds the session table and the clock, so sessions survive a
// snapshot install exactly as they survive a restart.
//
// Cursors (SSCAN, SCAN) are positions in the data — the next member or key to
// return — so a scan continues on any node; elements present for the whole
// scan are returned exactly once.
//
// Thread-safety: none. One thread (the apply loop) calls apply(),
// restore_snapshot() and the queries, or the caller serializes them.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cset/status.h"
#include "raft/types.h"
#include "set/command.h"
#include "set/kv.h"

namespace cset::set {

inline constexpr uint8_t kStateFormatVersion = 2;

/// Bounds of the session table. They decide which requests are refused and
/// which sessions expire, so every node of a cluster must use the same values
/// (csetd uses the defaults; tests shrink them).
struct SessionLimits {
  /// The timeout of a session registered with timeout 0, and the largest
  /// one a REGISTER may ask for (longer requests get this).
  uint64_t default_timeout_ms = 60 * 60 * 1000;
  /// Live sessions at most; opening one more expires the least recently active.
  size_t max_sessions = 100000;
  /// Results kept per session: a sequence >= lowest_unacked + max_unacked is refused.
  uint64_t max_unacked = 1024;
};

/// One client session as the state machine holds it (for tests and INFO).
struct SessionInfo {
  uint64_t last_active_ms = 0;  // log clock of its latest request
  uint64_t timeout_ms = 0;
  uint64_t lowest_unacked = 0;  // results below this were dropped
  bool operator==(const SessionInfo&) const = default;
};

/// The outcome of one applied entry.
struct ApplyResult {
  raft::Index index = 0;
  raft::EntryType type = raft::EntryType::kNormal;
  /// ok; kExists (ADD_STRICT of a present member, nothing changed); kCorrupt
  /// (the entry's command did not decode; nothing changed); kSessionExpired
  /// (unknown or expired session: nothing changed); kErr (a session request
  /// refused: its sequence is below lowest_unacked, beyond the window, or
  /// reused for another request; nothing changed).
  Status status;
  /// ADD: members newly added. ADD_STRICT: 1 when added. REM: members removed.
  /// DEL: keys that existed. 0 for kNoop and kConfig entries. REGISTER: 0
  /// (the session id is `index`).
  uint64_t count = 0;
  /// True when this is a retry answered from the session's stored result
  /// (status and count are the first application's; nothing changed now).
  bool duplicate = false;

  bool operator==(const ApplyResult& o) const {
    return index == o.index && type == o.type && status.code() == o.status.code() &&
           count == o.count && duplicate == o.duplicate;
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
  explicit StateMachine(Kv* kv, SessionLimits limits = {});

  /// Reads the applied index, configuration, clock and session table from
  /// the Kv (after a restart). Errors: kCorrupt (unknown format version or
  /// malformed metadata), kIo.
  Status load();

  /// The log clock: the largest command time_ms applied (0 = none yet).
  uint64_t clock_ms() const { return clock_ms_; }
  /// Live sessions (expired ones are removed as the clock passes them).
  size_t session_count() const { return sessions_.size(); }
  /// The session `id`, or std::nullopt when unknown or expired.
  std::optional<SessionInfo> session(uint64_t id) const;

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
  /// kConfig stores the configuration bytes. A kNormal entry first moves the
  /// clock to max(clock, time_ms) and expires the sessions it passes.
  /// Errors (nothing applied, applied_index() and the session table
  /// unchanged): kInvalid for a gap or entries out of order; the Kv's errors
  /// (kNoSpace, kIo).
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

  Result<std::vector<ApplyResult>> apply_entries(const std::vector<raft::Entry>& entries,
                                                 bool sync);
  Status apply_command(Overlay& overlay, const raft::Entry& entry, ApplyResult& result);
  Status apply_set_command(Overlay& overlay, const Command& command, ApplyResult& result) const;
  // Sessions (state_machine.cc, "Sessions").
  Status load_sessions();
  Status advance_clock(Overlay& overlay, uint64_t time_ms);
  Status register_session(Overlay& overlay, raft::Index index, uint64_t timeout_ms);
  Status apply_in_session(Overlay& overlay, const Command& command, ApplyResult& result);
  void put_session(Overlay& overlay, uint64_t id, const SessionInfo& info);
  Status drop_session(Overlay& overlay, uint64_t id);

  Kv* kv_;
  SessionLimits limits_;
  raft::Index applied_index_ = 0;
  raft::Index config_index_ = 0;
  std::string config_bytes_;
  uint8_t format_version_ = 0;  // as recorded in the Kv; 0 = none yet
  uint64_t clock_ms_ = 0;
  // The session table, mirrored from the Kv's "SS" records; rebuilt from the
  // Kv by load() (after a restart, a snapshot install or a failed apply).
  std::map<uint64_t, SessionInfo> sessions_;
  std::set<std::pair<uint64_t, uint64_t>> by_activity_;  // (last_active_ms, id)
  std::set<std::pair<uint64_t, uint64_t>> by_expiry_;    // (last_active + timeout, id)
};

/// The Space::kData key of `member` in set `key`.
std::string data_key(std::string_view key, std::string_view member);
/// The prefix shared by every member of set `key`.
std::string data_prefix(std::string_view key);

}  // namespace cset::set
