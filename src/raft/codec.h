// Binary encodings of the consensus core's durable values: Configuration (the
// data of a kConfig log entry, and part of a snapshot's metadata), Entry,
// HardState and SnapshotMeta. Every layer that stores or reads these uses
// these functions, so a configuration means the same bytes everywhere.
//
// Guarantees:
// - Deterministic: equal values encode to equal bytes.
// - Canonical: a decoder accepts exactly the bytes the encoder can produce,
//   so encode(decode(b)) == b for every b that decodes (overlong varints,
//   out-of-range enums and trailing bytes are rejected).
// - Safe on hostile input: a decoder never reads out of bounds, never
//   allocates more than the input's size suggests, and answers Code::kCorrupt
//   for anything malformed or truncated. No checksum here: storage/ and net/
//   frame these bytes with their own.
// - Format only: decoders do not check a Configuration's invariants (sorted
//   ids, tie-breaker among the voters); check_configuration() does.
//
// ## Format, version 1
// varint = unsigned LEB128, 1..10 bytes, minimal (no trailing 0x80-then-0x00
// padding; a 10th byte may only be 0x01). bytes = varint length, then that
// many raw bytes. ids = varint count, then count varints. Every top-level
// encoding starts with one byte, the format version (1).
//
//   Configuration := 0x01  mode:u8(0 tiebreak | 1 majority)
//                    tiebreaker:varint            voters:ids
//                    outgoing_tiebreaker:varint   outgoing_voters:ids
//                    learners:ids
//                    member_count:varint  { id:varint context:bytes }*
//                    removed:ids
//   Entry         := 0x01  term:varint  index:varint
//                    type:u8(0 normal | 1 noop | 2 config)  data:bytes
//   HardState     := 0x01  term:varint  vote:varint  commit:varint
//   SnapshotMeta  := 0x01  index:varint  term:varint  config:bytes
//                    (config holds a whole Configuration encoding, version
//                    byte included)
//
// Nothing may follow the last field. A later version adds a new version byte;
// a decoder answers kCorrupt for a version it does not know.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cset/status.h"
#include "raft/types.h"

namespace cset::raft {

inline constexpr uint8_t kCodecVersion = 1;

/// Appends `value` to `out` as a minimal unsigned LEB128 varint (1..10 bytes).
void put_varint(std::string* out, uint64_t value);
/// Reads a minimal varint from the front of `*in` and advances `*in` past it.
/// Returns false (leaving `*in` unspecified) when the input is truncated,
/// longer than 10 bytes, overflows 64 bits or is not minimal.
bool get_varint(std::string_view* in, uint64_t* value);

std::string encode_configuration(const Configuration& config);
/// Errors: kCorrupt for malformed or truncated input, or an unknown version.
Result<Configuration> decode_configuration(std::string_view bytes);

std::string encode_entry(const Entry& entry);
/// Errors: kCorrupt.
Result<Entry> decode_entry(std::string_view bytes);

std::string encode_hard_state(const HardState& hard_state);
/// Errors: kCorrupt.
Result<HardState> decode_hard_state(std::string_view bytes);

std::string encode_snapshot_meta(const SnapshotMeta& meta);
/// Errors: kCorrupt.
Result<SnapshotMeta> decode_snapshot_meta(std::string_view bytes);

/// Checks the invariants stated on Configuration (types.h): every list sorted
/// and unique without kNoNode; a non-empty voter list holds its tie-breaker
/// and an empty one has none; learners are not voters of `voters`; `members`
/// holds exactly the voters of both halves and the learners (sorted by id);
/// no removed id is in `voters` or `learners` (a voter being removed may
/// still sit in `outgoing_voters` while joint). Errors: kInvalid, naming the
/// first violation.
Status check_configuration(const Configuration& config);

}  // namespace cset::raft
