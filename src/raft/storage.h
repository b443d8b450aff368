// The consensus core's view of durable state, and an in-memory implementation.
//
// raft::Raft only reads through `Storage`: everything it returns must already
// be durable. The caller (server/ or the simulator) writes to its storage
// what a Ready batch asks for — entries, hard state, a snapshot — makes it
// durable, and only then calls Raft::advance(). Modelled on etcd's raft
// Storage interface.
//
// Log shape: a snapshot covers every index <= snapshot().meta.index; the log
// holds the entries first_index()..last_index() that follow it, with no gaps.
// An empty log has first_index() == snapshot index + 1 and
// last_index() == snapshot index.
#pragma once

#include <mutex>
#include <vector>

#include "cset/status.h"
#include "raft/types.h"

namespace cset::raft {

class Storage {
 public:
  virtual ~Storage() = default;

  /// The durable hard state (zero for a new node).
  virtual HardState hard_state() const = 0;
  /// Entries [lo, hi), at least one if lo < hi, stopping before the total
  /// data size would exceed max_bytes. Errors: kCompacted when lo <
  /// first_index(); kUnavailable when hi > last_index() + 1.
  virtual Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const = 0;
  /// Term of entry i, for snapshot index <= i <= last_index(). Errors:
  /// kCompacted below the snapshot index, kUnavailable above last_index().
  virtual Result<Term> term(Index i) const = 0;
  virtual Index first_index() const = 0;
  virtual Index last_index() const = 0;
  /// The latest snapshot (empty() when there is none). Copies the image:
  /// callers that need only the metadata or a part use the two below.
  virtual Snapshot snapshot() const = 0;
  /// The latest snapshot's metadata (index 0 when there is none), without
  /// copying its image. The default copies; implementations override it.
  virtual SnapshotMeta snapshot_meta() const { return snapshot().meta; }
  /// Bytes [offset, offset + max_bytes) of the latest snapshot's image (fewer
  /// at its end; none when offset >= its size), with its metadata and total
  /// size, so InstallSnapshot chunks cost their own size, not the image's.
  /// The chunk's metadata may name a newer snapshot than snapshot_meta() (an
  /// image built on demand at a later applied index). total_bytes 0 means
  /// no image is available now: the leader sends nothing and asks again an
  /// election timeout later.
  virtual SnapshotChunk snapshot_chunk(uint64_t offset, uint64_t max_bytes) const;
};

/// Storage held in memory, for tests and the simulator. The simulator wraps it
/// with its own crash model (what was not "synced" is lost on a crash).
/// Thread-safety: every method takes an internal mutex.
class MemoryStorage : public Storage {
 public:
  MemoryStorage();

  HardState hard_state() const override;
  Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> term(Index i) const override;
  Index first_index() const override;
  Index last_index() const override;
  Snapshot snapshot() const override;
  SnapshotMeta snapshot_meta() const override;
  SnapshotChunk snapshot_chunk(uint64_t offset, uint64_t max_bytes) const override;

  void set_hard_state(const HardState& hs);
  /// Appends entries, truncating any existing suffix from entries[0].index.
  /// Entries at or below the snapshot index are ignored. REQUIRES: no gap
  /// (entries[0].index <= last_index() + 1).
  void append(const std::vector<Entry>& entries);
  /// Replaces the whole log with `snapshot` (InstallSnapshot). An older
  /// snapshot than the current one is ignored.
  void apply_snapshot(Snapshot snapshot);
  /// Records a snapshot of the state machine at `meta.index` (<= last_index())
  /// and discards the log up to `meta.index - keep_entries` (kept entries
  /// let slightly lagging followers catch up without a snapshot).
  /// Errors: kInvalid when the index is older than the current snapshot or
  /// beyond the log.
  Status create_snapshot(Snapshot snapshot, uint64_t keep_entries);
  /// Discards entries before `index` (they must be covered by the snapshot).
  void compact(Index index);

 private:
  Index offset_locked() const { return ents_[0].index; }

  mutable std::mutex mu_;
  HardState hard_state_;
  Snapshot snapshot_;
  // ents_[0] is a dummy holding the index and term of the entry before the
  // log (the snapshot's last entry, or 0/0).
  std::vector<Entry> ents_;
};

}  // namespace cset::raft
