// The Raft log as one node sees it: the durable part (read through Storage)
// followed by the unstable part (appended in memory, handed to the caller in
// a Ready, durable once advance() confirms it). Modelled on etcd's raftLog
// and unstable.
//
// Indexes: snapshot index < first_index() <= ... <= last_index();
// applied <= committed <= last_index(). Entries are contiguous.
//
// Thread-compatible; owned by one Raft.
#pragma once

#include <optional>
#include <vector>

#include "cset/status.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace cset::raft {

class RaftLog {
 public:
  explicit RaftLog(Storage* storage);

  /// Resets the in-memory view from storage (start-up).
  void load(Index committed, Index applied);

  Index first_index() const;
  Index last_index() const;
  Term last_term() const;
  /// Term of entry i. Errors: kCompacted (below the snapshot), kUnavailable
  /// (beyond the last index). term(snapshot index) is the snapshot's term.
  Result<Term> term(Index i) const;
  /// Term of entry i, or 0 when it is not in the log.
  Term term_or_zero(Index i) const;
  bool match_term(Index i, Term t) const;
  /// Raft paper §5.4.1: (index, term) is at least as up to date as this log.
  bool is_up_to_date(Index last_index, Term last_term) const;

  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  void commit_to(Index index);
  void applied_to(Index index);

  /// Entries [lo, hi) of total size <= max_bytes (at least one).
  /// Errors: kCompacted, kUnavailable.
  Result<std::vector<Entry>> slice(Index lo, Index hi, uint64_t max_bytes) const;

  /// Leader: appends entries after last_index(). Returns the new last index.
  Index append(std::vector<Entry> entries);
  /// Follower (AppendEntries receiver, Raft paper Figure 2): if the entry at
  /// `index` has term `log_term`, appends `entries` (truncating a conflicting
  /// suffix, never a committed entry) and returns the index of the last
  /// new entry; otherwise std::nullopt. Also reports the index of the first
  /// truncated entry through `truncated_from` (0 when none).
  std::optional<Index> maybe_append(Index index, Term log_term, const std::vector<Entry>& entries,
                                    Index* truncated_from);
  /// Conflict hint (Raft paper §5.3, etcd's findConflictByTerm): the largest
  /// index <= `index` whose term is <= `term`, with that term.
  std::pair<Index, Term> find_conflict_by_term(Index index, Term term) const;

  /// Committed entries not yet handed out for application, up to max_bytes
  /// (at least one when any is due). Errors: those of Storage::entries()
  /// (kCompacted, kUnavailable, kCorrupt, kIo) when storage cannot produce
  /// entries the log counts as stored.
  Result<std::vector<Entry>> next_committed_entries(uint64_t max_bytes) const;
  bool has_next_committed_entries() const;

  // The unstable part, for Ready.
  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  /// Entries up to (index, term) became durable.
  void stable_to(Index index, Term term);
  void stable_snapshot_to(Index index);
  /// Replaces the log with a snapshot (InstallSnapshot receiver).
  void restore(Snapshot snapshot);

 private:
  Index unstable_offset() const;  // index of unstable_[0] (when non-empty)
  void truncate_and_append(const std::vector<Entry>& entries);

  Storage* storage_;
  std::optional<Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_;
  Index offset_ = 1;  // index that unstable_[0] has or would have
  Index committed_ = 0;
  Index applied_ = 0;
};

}  // namespace cset::raft
