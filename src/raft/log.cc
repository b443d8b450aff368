#include "raft/log.h"

#include <algorithm>
#include <cassert>

namespace cset::raft {

namespace {
uint64_t entry_bytes(const Entry& e) { return e.data.size() + 16; }
}  // namespace

RaftLog::RaftLog(Storage* storage) : storage_(storage) {}

void RaftLog::load(Index committed, Index applied) {
  unstable_.clear();
  unstable_snapshot_.reset();
  offset_ = storage_->last_index() + 1;
  committed_ = committed;
  applied_ = applied;
}

Index RaftLog::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->meta.index + 1;
  return storage_->first_index();
}

Index RaftLog::last_index() const {
  if (!unstable_.empty()) return offset_ + unstable_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->meta.index;
  return storage_->last_index();
}

Term RaftLog::last_term() const { return term_or_zero(last_index()); }

Result<Term> RaftLog::term(Index i) const {
  if (unstable_snapshot_ && i == unstable_snapshot_->meta.index) {
    return unstable_snapshot_->meta.term;
  }
  if (!unstable_.empty() && i >= offset_ && i < offset_ + unstable_.size()) {
    return unstable_[i - offset_].term;
  }
  if (i > last_index()) return Status(Code::kUnavailable, "index beyond the log");
  if (unstable_snapshot_) return Status(Code::kCompacted, "index below the snapshot");
  if (i + 1 < storage_->first_index()) return Status(Code::kCompacted, "index compacted");
  return storage_->term(i);
}

Term RaftLog::term_or_zero(Index i) const {
  auto t = term(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::match_term(Index i, Term t) const {
  auto got = term(i);
  return got.ok() && *got == t;
}

bool RaftLog::is_up_to_date(Index lasti, Term lastt) const {
  Term mine = last_term();
  return lastt > mine || (lastt == mine && lasti >= last_index());
}

void RaftLog::commit_to(Index index) {
  if (index <= committed_) return;
  assert(index <= last_index());
  committed_ = index;
}

void RaftLog::applied_to(Index index) {
  if (index > applied_) applied_ = index;
}

Result<std::vector<Entry>> RaftLog::slice(Index lo, Index hi, uint64_t max_bytes) const {
  std::vector<Entry> out;
  if (lo >= hi) return out;
  if (lo < first_index()) return Status(Code::kCompacted, "slice below the first index");
  if (hi > last_index() + 1) return Status(Code::kUnavailable, "slice beyond the log");
  uint64_t bytes = 0;
  Index next = lo;
  if (next < offset_ && !unstable_snapshot_) {
    auto stored = storage_->entries(next, std::min(hi, offset_), max_bytes);
    if (!stored.ok()) return stored.status();
    for (auto& e : *stored) {
      bytes += entry_bytes(e);
      out.push_back(std::move(e));
    }
    next = lo + out.size();
    // Storage stopped early because of max_bytes.
    if (next < std::min(hi, offset_)) return out;
  }
  for (; next < hi; ++next) {
    const Entry& e = unstable_[next - offset_];
    if (!out.empty() && bytes + entry_bytes(e) > max_bytes) break;
    bytes += entry_bytes(e);
    out.push_back(e);
  }
  return out;
}

void RaftLog::truncate_and_append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  Index after = entries.front().index;
  if (after == offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  } else if (after <= offset_) {
    // Replaces the whole unstable part (and durable entries from `after`).
    offset_ = after;
    unstable_ = entries;
  } else {
    unstable_.resize(after - offset_);
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  }
}

Index RaftLog::append(std::vector<Entry> entries) {
  if (entries.empty()) return last_index();
  assert(entries.front().index == last_index() + 1);
  truncate_and_append(entries);
  return last_index();
}

std::optional<Index> RaftLog::maybe_append(Index index, Term log_term,
                                           const std::vector<Entry>& entries,
                                           Index* truncated_from) {
  *truncated_from = 0;
  if (!match_term(index, log_term)) return std::nullopt;
  Index last_new = index + entries.size();
  Index last_before = last_index();
  // First entry that is not already in the log with the same term.
  size_t first_new = entries.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!match_term(entries[i].index, entries[i].term)) {
      first_new = i;
      break;
    }
  }
  if (first_new < entries.size()) {
    Index conflict = entries[first_new].index;
    // Log matching (Raft paper §5.3) guarantees a committed entry never
    // conflicts; a violation means a bug elsewhere, so refuse to break it.
    assert(conflict > committed_);
    if (conflict <= committed_) return std::nullopt;
    if (conflict <= last_before) *truncated_from = conflict;
    truncate_and_append(std::vector<Entry>(entries.begin() + first_new, entries.end()));
  }
  return last_new;
}

std::pair<Index, Term> RaftLog::find_conflict_by_term(Index index, Term term) const {
  index = std::min(index, last_index());
  for (;;) {
    auto t = this->term(index);
    if (!t.ok()) return {index, 0};
    if (*t <= term || index == 0) return {index, *t};
    --index;
  }
}

Result<std::vector<Entry>> RaftLog::next_committed_entries(uint64_t max_bytes) const {
  Index lo = std::max(applied_ + 1, first_index());
  Index hi = committed_ + 1;
  if (lo >= hi) return std::vector<Entry>{};
  auto ents = slice(lo, hi, max_bytes);
  if (ents.ok() && ents->empty()) {
    return Status(Code::kCorrupt, "log: no entry at " + std::to_string(lo) + " to apply");
  }
  return ents;
}

bool RaftLog::has_next_committed_entries() const {
  return committed_ >= std::max(applied_ + 1, first_index());
}

void RaftLog::stable_to(Index index, Term term) {
  if (unstable_.empty() || index < offset_) return;
  if (index >= offset_ + unstable_.size()) return;
  if (unstable_[index - offset_].term != term) return;  // truncated meanwhile
  unstable_.erase(unstable_.begin(), unstable_.begin() + (index - offset_ + 1));
  offset_ = index + 1;
}

void RaftLog::stable_snapshot_to(Index index) {
  if (unstable_snapshot_ && unstable_snapshot_->meta.index == index) unstable_snapshot_.reset();
}

void RaftLog::restore(Snapshot snapshot) {
  committed_ = snapshot.meta.index;
  offset_ = snapshot.meta.index + 1;
  unstable_.clear();
  unstable_snapshot_ = std::move(snapshot);
}

}  // namespace cset::raft
