// A read-only check of RocksDB's write-ahead log files before the store opens
// them, so that a torn tail is reported with a log line and a damaged record
// is reported naming its file and offset.
//
// Why: in WALRecoveryMode::kTolerateCorruptedTailRecords (the mode we use,
// docs/storage.md) RocksDB drops an incomplete final record silently, and it
// also takes a record whose length field points past the end of the file for
// an incomplete one — a flipped bit there would silently drop every synced
// record after it in the last block. This scan tells the two apart: a torn
// tail has nothing valid after it; a record that cannot be complete but is
// followed by a valid record is corruption. A record that lies wholly inside
// the file but fails its checksum, type or framing checks is corruption too
// (RocksDB refuses those as well in this mode).
//
// Record format (RocksDB db/log_format.h, legacy non-recyclable records):
// the file is a sequence of 32 KiB blocks; a record is a 7-byte header —
// masked crc32c:u32le over type and payload, length:u16le, type:u8 (1 full,
// 2 first, 3 middle, 4 last) — and its payload, never crossing a block end;
// fewer than 7 bytes left in a block are zero padding. An all-zero header
// makes RocksDB skip the rest of the block (preallocated space); we do too.
//
// Thread-safety: pure function of the files read.
#pragma once

#include <rocksdb/file_system.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cset/status.h"

namespace cset::storage {

struct WalScanResult {
  enum class Outcome : uint8_t { kClean, kTornTail, kCorrupt };
  std::string file;   // full path
  uint64_t size = 0;  // bytes in the file
  Outcome outcome = Outcome::kClean;
  uint64_t offset = 0;   // torn tail / corruption: where it starts
  uint64_t records = 0;  // complete logical records before it
  std::string detail;    // what is wrong (for kCorrupt)
};

/// Scans every "<number>.log" file directly in `dir` through `fs`.
/// Errors: kIo when a file cannot be listed or read.
Result<std::vector<WalScanResult>> scan_wal_files(rocksdb::FileSystem* fs, const std::string& dir);

/// Scans the bytes of one WAL file (exposed for tests).
WalScanResult scan_wal_bytes(const std::string& file, const std::string& bytes);

}  // namespace cset::storage
