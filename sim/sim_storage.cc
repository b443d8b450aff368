#include "sim/sim_storage.h"

namespace cset::sim {

SimRaftStorage::SimRaftStorage()
    : live_(std::make_unique<raft::MemoryStorage>()),
      durable_(std::make_unique<raft::MemoryStorage>()) {}

void SimRaftStorage::apply(raft::MemoryStorage& s, const Op& op) {
  if (auto* a = std::get_if<Append>(&op)) {
    s.append(a->entries);
  } else if (auto* h = std::get_if<SetHardState>(&op)) {
    s.set_hard_state(h->hs);
  } else if (auto* sn = std::get_if<ApplySnapshot>(&op)) {
    s.apply_snapshot(sn->snapshot);
  } else if (auto* c = std::get_if<CreateSnapshot>(&op)) {
    (void)s.create_snapshot(c->snapshot, c->keep);
  }
}

std::unique_ptr<raft::MemoryStorage> SimRaftStorage::clone(const raft::MemoryStorage& s) {
  auto out = std::make_unique<raft::MemoryStorage>();
  raft::Snapshot snap = s.snapshot();
  if (!snap.empty()) out->apply_snapshot(snap);
  if (s.last_index() >= s.first_index()) {
    auto ents = s.entries(s.first_index(), s.last_index() + 1, UINT64_MAX);
    if (ents.ok()) out->append(*ents);
  }
  out->set_hard_state(s.hard_state());
  return out;
}

void SimRaftStorage::append(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  live_->append(entries);
  journal_.push_back(Append{entries});
}

void SimRaftStorage::set_hard_state(const raft::HardState& hs) {
  live_->set_hard_state(hs);
  journal_.push_back(SetHardState{hs});
}

void SimRaftStorage::apply_snapshot(const raft::Snapshot& snapshot) {
  live_->apply_snapshot(snapshot);
  journal_.push_back(ApplySnapshot{snapshot});
}

void SimRaftStorage::create_snapshot(const raft::Snapshot& snapshot, uint64_t keep_entries) {
  (void)live_->create_snapshot(snapshot, keep_entries);
  journal_.push_back(CreateSnapshot{snapshot, keep_entries});
}

void SimRaftStorage::sync() {
  for (const auto& op : journal_) apply(*durable_, op);
  journal_.clear();
}

size_t SimRaftStorage::crash(const std::function<uint64_t(uint64_t)>& rand) {
  // The disk may have written any prefix of the unsynced operations, in order,
  // and the last of those only in part.
  size_t kept = journal_.empty() ? 0 : rand(journal_.size() + 1);
  for (size_t i = 0; i < kept; ++i) {
    const Op& op = journal_[i];
    auto* a = std::get_if<Append>(&op);
    // A batch that rewrites durable entries (a truncation) is one atomic
    // write (RocksDB's WriteBatch), so only a pure extension can tear.
    bool extends = a && a->entries.front().index > durable_->last_index();
    if (i + 1 == kept && a && extends && a->entries.size() > 1 && rand(2) == 0) {
      // Torn: only a prefix of the batch reached the platter.
      size_t n = 1 + rand(a->entries.size() - 1);
      apply(*durable_,
            Append{std::vector<raft::Entry>(a->entries.begin(), a->entries.begin() + n)});
    } else {
      apply(*durable_, op);
    }
  }
  size_t lost = journal_.size() - kept;
  journal_.clear();
  live_ = clone(*durable_);
  return lost;
}

}  // namespace cset::sim
