// RocksStore: a node's durable state in one RocksDB instance per data
// directory — the Raft log, hard state and snapshot metadata (read by the
// consensus core through raft::Storage), the set state machine's key-value
// spaces (set::Kv) and the directory's identity.
//
// Guarantees (docs/storage.md has the on-disk format and the reasons):
// - A write made with sync=true is durable when it returns ok: its WAL record
//   is fsynced, and so is every earlier write. save() puts entries and hard
//   state in ONE write batch with ONE fsync (group commit: the caller batches
//   everything that arrived meanwhile into one call).
// - Atomicity: each call is one RocksDB write batch; a crash leaves the state
//   before or after it. Snapshot install writes the state machine image, the
//   emptied log and the snapshot metadata in one batch.
// - Every log entry carries a CRC-32C over its index, term, type and data,
//   checked on every read (kCorrupt on mismatch, never a wrong entry).
// - A restart restores exactly the durable state. open() refuses (kCorrupt /
//   kInvalid, with a message naming the directory or file) a directory of
//   another node or cluster, of an unknown format version, or a damaged one;
//   a torn final WAL record (a crash mid-write) is dropped with a warning.
// - Disk full / I/O errors: writes fail with kNoSpace / kIo and change
//   nothing; reads keep working; the next write (or resume()) tries to leave
//   the failed state, so the store recovers by itself once space returns:
//   it closes the RocksDB instance and reopens it in place, which recovers
//   exactly the durable state (never DB::Resume(), which in RocksDB 7.8 can
//   hang for good when the disk filled up during a background flush;
//   docs/storage.md). Nothing acknowledged (returned ok) is lost. Any other
//   I/O error (EIO on a WAL write or fsync) needs the node to reopen the
//   store (restart).
//
// Log shape (as raft::Storage): the snapshot / compaction point `offset`
// (index and term of the entry just before the log) and the entries
// offset+1..last_index(), with no gaps. first_index() == offset + 1.
//
// Thread-safety: every method may be called from any thread. Writes to the
// log (save, append, set_hard_state, create_snapshot, install_snapshot,
// compact) are serialized internally; set::Kv writes go through kv() and may
// run concurrently with log writes (they touch other column families). The
// recovering reopen waits for every call in progress and is refused (retried
// later) while a kv().view() is alive.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "cset/status.h"
#include "raft/storage.h"
#include "raft/types.h"
#include "set/kv.h"

namespace rocksdb {
class ColumnFamilyHandle;
class Cache;
class DB;
class Env;
class FileSystem;
class Snapshot;
class WriteBatch;
}  // namespace rocksdb

namespace cset::storage {

/// On-disk format version of the data directory (the `node` column family).
inline constexpr uint32_t kStoreFormatVersion = 1;

struct StoreOptions {
  /// The data directory (one RocksDB instance).
  std::string dir;
  /// This node's id. Required (non-zero) to create a directory; when opening
  /// an existing one it must match the recorded id (0 = accept the recorded
  /// one, for tools).
  raft::NodeId node_id = raft::kNoNode;
  /// The cluster id. Empty = not known yet; once known it is recorded, and a
  /// directory recording another one is refused.
  std::string cluster_id;
  bool create_if_missing = false;
  /// The 16-byte incarnation id given to a new directory; empty = random
  /// (std::random_device). Tests pass a fixed one.
  std::string new_incarnation;
  /// Shared LRU block cache for every column family (index and filter blocks
  /// included, so table memory stays within it), in MiB.
  uint64_t block_cache_mb = 64;
  /// Memtable size of the log and data column families, in MiB (the small
  /// column families use 1/4 of it); two memtables each at most.
  uint64_t write_buffer_mb = 16;
  /// The file system every file access goes through (the fault-injection
  /// seam, storage/fault_fs.h); null = the default POSIX one.
  std::shared_ptr<rocksdb::FileSystem> fs;
  /// Reads every table file once at open to verify its block checksums
  /// (so a flipped byte anywhere is found at start-up, not at first read).
  bool verify_checksums_on_open = true;
  /// Warnings (a torn WAL tail dropped, a background error); null = stderr.
  std::function<void(const std::string&)> warn;
  /// TEST ONLY: save() and append() never fsync even when asked to. Exists
  /// so the crash test can show that it catches one missing fsync.
  bool test_skip_log_sync = false;
};

/// What the `node` column family records about the directory.
struct Identity {
  uint32_t format_version = 0;
  raft::NodeId node_id = raft::kNoNode;
  std::string cluster_id;   // empty until known
  std::string incarnation;  // 16 random bytes, fixed when the directory is created
};

class RocksStore final : public raft::Storage {
 public:
  /// Opens (or creates, with create_if_missing) the store in options.dir.
  /// Errors: kCorrupt — damaged files (a checksum or size check failed, a
  /// damaged WAL record with valid records after it), a missing or unknown
  /// format version, a directory that is not a store; kInvalid — another
  /// node's or another cluster's directory, bad options, no store and
  /// !create_if_missing; kIo — the files cannot be read (e.g. locked by
  /// another process). Messages name the directory and, where known, the file.
  static Result<std::unique_ptr<RocksStore>> open(const StoreOptions& options);
  ~RocksStore() override;

  RocksStore(const RocksStore&) = delete;
  RocksStore& operator=(const RocksStore&) = delete;

  // ---- raft::Storage (reads; everything returned is durable) ----
  raft::HardState hard_state() const override;
  /// Entries from the newest kRecentEntriesMax (at most kRecentBytesMax
  /// bytes of data) come from memory, as save() wrote them: applying just
  /// committed entries reads nothing back (profile of the 256-client add,
  /// issue 8). Older ones are read from the log column family.
  /// Errors: kCompacted, kUnavailable (as raft::Storage), kInvalid (lo > hi),
  /// kCorrupt (a checksum mismatch or a gap, naming the index), kIo.
  Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                           uint64_t max_bytes) const override;
  /// From the in-memory term index: no disk read.
  Result<raft::Term> term(raft::Index i) const override;
  raft::Index first_index() const override;
  raft::Index last_index() const override;
  /// The durable snapshot metadata, with the image when one at exactly that
  /// index is held (recorded by create_snapshot() with data, by
  /// install_snapshot(), or built by the snapshot source); otherwise the data
  /// is empty. Images are held in memory only, never written.
  raft::Snapshot snapshot() const override;
  raft::SnapshotMeta snapshot_meta() const override;
  /// A chunk of the image a follower is sent (InstallSnapshot). When the held
  /// image is older than snapshot_meta() (or there is none), a new one is
  /// built first with the snapshot source (set_snapshot_source): its index
  /// may be newer than snapshot_meta()'s, and chunk.meta says which it is.
  /// total_bytes is 0 when no image can be had (no source, or it failed).
  /// Called on the thread that drives the Raft core; not with mu_ held.
  raft::SnapshotChunk snapshot_chunk(uint64_t offset, uint64_t max_bytes) const override;

  /// Builds an image of the state machine at its applied index, with that
  /// index's term and configuration. Errors are reported as the image being
  /// unavailable (the leader retries later).
  using SnapshotSource = std::function<Result<raft::Snapshot>()>;
  /// Sets the source snapshot_chunk() builds images with. Images are then
  /// built only when a follower needs one, not at every create_snapshot():
  /// encoding the whole state every snapshot_entries entries cost a leader
  /// time and memory in proportion to the data (perf, issue 8). Call before
  /// the Raft core runs; not thread-safe.
  void set_snapshot_source(SnapshotSource source) { snapshot_source_ = std::move(source); }

  // ---- Log writes ----
  /// Persists `entries` (appended, truncating any existing suffix from
  /// entries[0].index; entries at or below the offset are skipped) and
  /// `hard_state` (when set) in one write batch, fsynced once when `sync`.
  /// Errors: kInvalid (entries not consecutive, or a gap after last_index()),
  /// kNoSpace, kIo; nothing changes on error.
  Status save(const std::vector<raft::Entry>& entries,
              const std::optional<raft::HardState>& hard_state, bool sync);
  Status append(const std::vector<raft::Entry>& entries, bool sync = true) {
    return save(entries, std::nullopt, sync);
  }
  Status set_hard_state(const raft::HardState& hard_state, bool sync = true) {
    return save({}, hard_state, sync);
  }

  /// Records `snapshot` as the latest snapshot: REQUIRES the state machine in
  /// kv() to hold exactly the image at snapshot.meta.index (the caller applied
  /// up to it and applies nothing meanwhile). `snapshot.data` may be empty
  /// (metadata only; the image is built on demand by the snapshot source);
  /// a held image older than the new metadata is then dropped. The write is fsynced, which also
  /// makes every earlier kv() write durable, so the log is compacted only up
  /// to a durable applied index: entries up to meta.index - keep_entries are
  /// discarded in the same batch. Errors: kInvalid (older than the current
  /// snapshot, beyond the log, or a term that differs from the log's),
  /// kNoSpace, kIo.
  Status create_snapshot(raft::Snapshot snapshot, uint64_t keep_entries);

  /// Installs a snapshot received from the leader (InstallSnapshot), atomically
  /// with the state machine: `restore` must call kv().replace_all() exactly
  /// once (set::StateMachine::restore_snapshot does); that replace_all's write
  /// batch also empties the log and records the snapshot metadata, fsynced.
  /// An older snapshot than the current one is ignored (ok).
  /// Errors: what `restore` returns; kInvalid when it returned ok without
  /// calling replace_all(); kNoSpace, kIo.
  Status install_snapshot(raft::Snapshot snapshot, const std::function<Status()>& restore);

  /// Discards the entries before `index` (kept: index..last). REQUIRES
  /// index <= snapshot index + 1, else kInvalid. No-op when nothing is left
  /// to discard. Errors: kInvalid, kNoSpace, kIo.
  Status compact(raft::Index index);

  // ---- The state machine's key-value spaces ----
  /// The set::Kv on the `data` and `sm_meta` column families. Views taken
  /// from it must not outlive the store.
  set::Kv& kv();

  // ---- Identity and health ----
  /// Not concurrently with set_cluster_id().
  const Identity& identity() const { return identity_; }
  /// Records the cluster id once it becomes known (fsynced). Errors:
  /// kInvalid when another id is recorded; kNoSpace, kIo.
  Status set_cluster_id(const std::string& cluster_id);
  /// Whether the last write failed (disk full or I/O error) and the store has
  /// not recovered since.
  bool write_failed() const;

  /// Memory RocksDB holds by design, bytes: it grows up to its configured
  /// bounds (memtables: write buffers; the block cache: --block-cache-mb) and
  /// is not a leak. INFO's "# Memory" section shows it, and the chaos
  /// harness subtracts it from RSS to judge growth. Zeros while the DB is
  /// closed. Thread-safe.
  struct MemoryUsage {
    uint64_t memtable_bytes = 0;       // rocksdb.size-all-mem-tables, all families
    uint64_t block_cache_bytes = 0;    // the block cache's usage
    uint64_t table_readers_bytes = 0;  // rocksdb.estimate-table-readers-mem
  };
  MemoryUsage memory_usage() const;
  /// Tries to leave the failed state after a full disk: when the file system
  /// has room for the recovery (the memtables' size plus 1 MiB), closes the
  /// RocksDB instance and reopens it in place (WAL replay, memtables flushed
  /// to table files, a new WAL). Blocks every other call while it runs
  /// (milliseconds to a second: bounded by the WAL size). ok when writable
  /// again (also when it never failed). Errors: kNoSpace (still no room, or
  /// a kv().view() is alive: try later), kIo (a failure other than a full
  /// disk: the store must be reopened by its owner; or the reopen failed:
  /// reads fail too until a later resume() succeeds).
  Status resume();
  /// Makes every earlier write durable (one WAL fsync). Errors: kNoSpace, kIo.
  Status sync();
  /// Writes every memtable to table files (tests; a clean shutdown does not
  /// need it). Errors: kNoSpace, kIo.
  Status flush();
  /// Reads the whole log: contiguous offset+1..last, every checksum valid,
  /// terms non-decreasing and equal to the in-memory term index, hard state
  /// commit <= last. For tests and offline checks. Errors: kCorrupt, kIo.
  Status verify_log() const;
  const std::string& dir() const { return options_.dir; }

 private:
  class Kv;
  class View;
  class ErrorListener;
  friend class Kv;
  friend class View;

  struct Handles;
  struct TermRun {
    raft::Index first;  // first index of the run
    raft::Term term;
  };
  struct PendingInstall {
    raft::Snapshot snapshot;
    bool consumed = false;
  };

  explicit RocksStore(StoreOptions options);
  // Opening. REQUIRES: no other thread uses the store (open) or db_mu_ held
  // exclusively (reopen).
  Status check_wal_files();
  Status open_db(bool creating, bool verify_checksums);
  Status check_identity(bool creating);
  Status load_raft_state();
  Status load_term_runs();
  Result<raft::Entry> read_entry(raft::Index index) const;
  void close_db();
  /// REQUIRES: mu_ held. The recovery behind resume().
  Status resume_locked();
  /// REQUIRES: mu_ held. Free bytes needed to reopen: the memtables' size
  /// plus a margin.
  uint64_t reopen_needed_bytes() const;
  /// REQUIRES: db_mu_ (shared) or mu_ held, db_ open. Writes `batch`; marks
  /// the store failed on error.
  Status write_db(rocksdb::WriteBatch* batch, bool sync, const char* what);
  /// REQUIRES: mu_ held, and resume_locked() called first (it ok).
  Status write_locked(rocksdb::WriteBatch* batch, bool sync, const char* what);
  /// REQUIRES: db_mu_ or mu_ held. The column family `i` of db_.
  rocksdb::ColumnFamilyHandle* family(size_t i) const;
  /// The error for a call made while db_ is closed (a failed reopen).
  Status closed() const;
  void warn(const std::string& message) const;
  Status corrupt(const std::string& what) const;
  // The log-side part of an install, added to replace_all's batch.
  Status add_install_locked(rocksdb::WriteBatch* batch);
  void finish_install_locked();
  raft::Term term_locked(raft::Index i) const;
  /// REQUIRES: mu_ held. Keeps recent_ a copy of the log's newest entries
  /// after `entries` (consecutive, the first at most last_ + 1) were written.
  void remember_recent_locked(const std::vector<raft::Entry>& entries, size_t from);
  /// REQUIRES: mu_ held. Forgets cached entries at or below `index`; clear: all of them.
  void clear_recent_locked();
  void forget_recent_through_locked(raft::Index index);
  void truncate_runs_locked(raft::Index from);
  void append_run_locked(raft::Index index, raft::Term term);

  StoreOptions options_;
  std::unique_ptr<rocksdb::Env> env_;
  std::shared_ptr<ErrorListener> listener_;
  std::unique_ptr<Handles> handles_;
  std::unique_ptr<Kv> kv_;
  Identity identity_;

  // Guards db_ and handles_ against a reopen: held shared by every use of the
  // DB without mu_, exclusively only to close and reopen it (which also
  // holds mu_, so holding mu_ keeps them stable too). Lock order: mu_ before
  // db_mu_; a thread holding db_mu_ never takes mu_.
  mutable std::shared_mutex db_mu_;
  std::shared_ptr<rocksdb::Cache> block_cache_;  // set by open_db()
  rocksdb::DB* db_ = nullptr;                    // null only after a failed reopen
  mutable std::atomic<int> open_views_{0};       // kv().view()s alive (they pin db_)

  // Serializes log writes and recovery; guards everything below. Reads take
  // it briefly.
  mutable std::mutex mu_;
  raft::HardState hard_state_;
  raft::SnapshotMeta snapshot_meta_;
  // The image held for followers and its metadata (its index is at least
  // snapshot_meta_'s when valid). Mutable: snapshot_chunk() builds it.
  mutable std::shared_ptr<const std::string> snapshot_data_;
  mutable raft::SnapshotMeta image_meta_;
  // Whether an image is held that may still be sent (not older than
  // snapshot_meta_). REQUIRES: mu_ held.
  bool image_current_locked() const {
    return snapshot_data_ && image_meta_.index >= snapshot_meta_.index;
  }
  SnapshotSource snapshot_source_;
  raft::Index offset_ = 0;     // index of the entry before the log
  raft::Index last_ = 0;       // last index (== offset_ when the log is empty)
  std::vector<TermRun> runs_;  // terms of offset_..last_, one run per term
  // The newest entries exactly as written: empty, or a run of consecutive
  // entries ending at last_ and starting after offset_. Bounded by
  // kRecentEntriesMax entries and kRecentBytesMax bytes of entry data.
  static constexpr size_t kRecentEntriesMax = 8192;
  static constexpr uint64_t kRecentBytesMax = 8ull << 20;
  std::deque<raft::Entry> recent_;
  uint64_t recent_bytes_ = 0;
  std::optional<PendingInstall> pending_install_;

  std::atomic<bool> write_failed_{false};
  // Whether the failure was a full disk (recoverable by a reopen) rather
  // than another I/O error (the owner must reopen the store).
  std::atomic<bool> failed_no_space_{false};
};

}  // namespace cset::storage
