// MemoryStorage, after etcd's raft MemoryStorage: ents_[0] is a dummy entry
// holding the index and term of the entry just before the log (the
// snapshot's last entry, or 0/0 for a new node), so offset_locked() is that
// index and ents_[i] holds index offset_locked() + i.
//
// Size accounting for entries(): an entry's size is the length of its data.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "raft/storage.h"

namespace cset::raft {

namespace {

// A REQUIRES broken by the caller: the log would silently lose or invent
// entries, so stop at once in every build.
void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "MemoryStorage: requirement violated: %s\n", what);
  std::abort();
}

Entry dummy(Index index, Term term) {
  Entry e;
  e.index = index;
  e.term = term;
  return e;
}

}  // namespace

MemoryStorage::MemoryStorage() : ents_{dummy(0, 0)} {}

HardState MemoryStorage::hard_state() const {
  std::lock_guard lock(mu_);
  return hard_state_;
}

void MemoryStorage::set_hard_state(const HardState& hs) {
  std::lock_guard lock(mu_);
  hard_state_ = hs;
}

Result<std::vector<Entry>> MemoryStorage::entries(Index lo, Index hi, uint64_t max_bytes) const {
  std::lock_guard lock(mu_);
  const Index offset = offset_locked();
  const Index last = offset + ents_.size() - 1;
  if (lo <= offset) {
    return Status(Code::kCompacted, "entries from " + std::to_string(lo) +
                                        " compacted; first index " + std::to_string(offset + 1));
  }
  if (hi > last + 1) {
    return Status(Code::kUnavailable, "entries up to " + std::to_string(hi) +
                                          " unavailable; last index " + std::to_string(last));
  }
  if (lo > hi) return Status(Code::kInvalid, "entries: lo > hi");
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - offset];
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

Result<Term> MemoryStorage::term(Index i) const {
  std::lock_guard lock(mu_);
  const Index offset = offset_locked();
  if (i < offset) {
    return Status(Code::kCompacted, "term of " + std::to_string(i) + " compacted");
  }
  if (i - offset >= ents_.size()) {
    return Status(Code::kUnavailable, "term of " + std::to_string(i) + " unavailable");
  }
  return ents_[i - offset].term;
}

Index MemoryStorage::first_index() const {
  std::lock_guard lock(mu_);
  return offset_locked() + 1;
}

Index MemoryStorage::last_index() const {
  std::lock_guard lock(mu_);
  return offset_locked() + ents_.size() - 1;
}

Snapshot MemoryStorage::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

SnapshotMeta MemoryStorage::snapshot_meta() const {
  std::lock_guard lock(mu_);
  return snapshot_.meta;
}

SnapshotChunk MemoryStorage::snapshot_chunk(uint64_t offset, uint64_t max_bytes) const {
  std::lock_guard lock(mu_);
  SnapshotChunk c;
  c.meta = snapshot_.meta;
  c.total_bytes = snapshot_.data.size();
  if (offset < c.total_bytes) c.bytes = snapshot_.data.substr(offset, max_bytes);
  return c;
}

SnapshotChunk Storage::snapshot_chunk(uint64_t offset, uint64_t max_bytes) const {
  Snapshot s = snapshot();
  SnapshotChunk c;
  c.meta = std::move(s.meta);
  c.total_bytes = s.data.size();
  if (offset < c.total_bytes) c.bytes = s.data.substr(offset, max_bytes);
  return c;
}

void MemoryStorage::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  for (size_t i = 1; i < entries.size(); ++i) {
    require(entries[i].index == entries[i - 1].index + 1, "appended entries are consecutive");
  }
  std::lock_guard lock(mu_);
  const Index first = offset_locked() + 1;
  const Index last_new = entries.back().index;
  if (last_new < first) return;  // everything is already covered by the snapshot
  // Skip the entries that the snapshot already covers.
  const size_t skip = entries.front().index < first ? first - entries.front().index : 0;
  const Index start = entries[skip].index;
  const Index at = start - offset_locked();  // position of `start` in ents_
  require(at <= ents_.size(), "no gap between the log and appended entries");
  ents_.resize(at);  // truncate any conflicting suffix
  ents_.insert(ents_.end(), entries.begin() + static_cast<std::ptrdiff_t>(skip), entries.end());
}

void MemoryStorage::apply_snapshot(Snapshot snapshot) {
  std::lock_guard lock(mu_);
  if (snapshot.meta.index <= snapshot_.meta.index) return;  // out of date
  ents_.assign(1, dummy(snapshot.meta.index, snapshot.meta.term));
  snapshot_ = std::move(snapshot);
}

Status MemoryStorage::create_snapshot(Snapshot snapshot, uint64_t keep_entries) {
  std::lock_guard lock(mu_);
  const Index index = snapshot.meta.index;
  const Index offset = offset_locked();
  const Index last = offset + ents_.size() - 1;
  if (index < snapshot_.meta.index || index < offset) {
    return Status(Code::kInvalid, "snapshot at " + std::to_string(index) +
                                      " older than the current one at " +
                                      std::to_string(snapshot_.meta.index));
  }
  if (index > last) {
    return Status(Code::kInvalid, "snapshot at " + std::to_string(index) +
                                      " beyond the last index " + std::to_string(last));
  }
  if (ents_[index - offset].term != snapshot.meta.term) {
    return Status(Code::kInvalid, "snapshot term " + std::to_string(snapshot.meta.term) +
                                      " differs from the log's term at " + std::to_string(index));
  }
  snapshot_ = std::move(snapshot);
  // Keep the last `keep_entries` entries covered by the snapshot: the new
  // dummy sits at index - keep_entries (never before the current one).
  const Index kept = std::min<uint64_t>(keep_entries, index - offset);
  const Index new_offset = index - kept;
  ents_.erase(ents_.begin(), ents_.begin() + static_cast<std::ptrdiff_t>(new_offset - offset));
  ents_[0].data.clear();
  ents_[0].type = EntryType::kNormal;
  return Status::ok();
}

void MemoryStorage::compact(Index index) {
  std::lock_guard lock(mu_);
  const Index offset = offset_locked();
  if (index <= offset + 1) return;  // nothing before `index` is left
  require(index <= snapshot_.meta.index + 1, "compacted entries are covered by the snapshot");
  const Index last = offset + ents_.size() - 1;
  require(index <= last + 1, "compaction within the log");
  // The new dummy is the entry at index - 1.
  ents_.erase(ents_.begin(), ents_.begin() + static_cast<std::ptrdiff_t>(index - 1 - offset));
  ents_[0].data.clear();
  ents_[0].type = EntryType::kNormal;
}

}  // namespace cset::raft
