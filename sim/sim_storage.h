// The simulator's disk for the Raft log: raft::Storage with a power-cut model.
//
// Writes go to a live MemoryStorage that the node reads, and to a journal of
// unsynced writes. sync() replays the journal onto the durable copy (an
// fsync). crash() keeps what a power cut would: the durable copy plus, at the
// disk's whim, a prefix of the unsynced writes, possibly with the last append
// torn (only some of its entries). The live copy then restarts from it.
//
// The same contract as storage/'s RocksDB store, so the simulator finds the
// bugs that a missing fsync would cause there.
#pragma once

#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "raft/storage.h"

namespace cset::sim {

class SimRaftStorage : public raft::Storage {
 public:
  SimRaftStorage();

  raft::HardState hard_state() const override { return live_->hard_state(); }
  Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                           uint64_t max_bytes) const override {
    return live_->entries(lo, hi, max_bytes);
  }
  Result<raft::Term> term(raft::Index i) const override { return live_->term(i); }
  raft::Index first_index() const override { return live_->first_index(); }
  raft::Index last_index() const override { return live_->last_index(); }
  raft::Snapshot snapshot() const override { return live_->snapshot(); }

  void append(const std::vector<raft::Entry>& entries);
  void set_hard_state(const raft::HardState& hs);
  void apply_snapshot(const raft::Snapshot& snapshot);
  /// Records a state machine snapshot and compacts the log before it,
  /// keeping `keep_entries`.
  void create_snapshot(const raft::Snapshot& snapshot, uint64_t keep_entries);
  /// fsync: everything written so far becomes durable.
  void sync();
  bool has_unsynced() const { return !journal_.empty(); }
  /// What a power cut would keep at least: the state as of the last sync().
  const raft::MemoryStorage& durable() const { return *durable_; }

  /// A power cut. `rand(n)` draws in [0, n). Returns how many unsynced
  /// writes were lost (whole or torn).
  size_t crash(const std::function<uint64_t(uint64_t)>& rand);

 private:
  struct Append {
    std::vector<raft::Entry> entries;
  };
  struct SetHardState {
    raft::HardState hs;
  };
  struct ApplySnapshot {
    raft::Snapshot snapshot;
  };
  struct CreateSnapshot {
    raft::Snapshot snapshot;
    uint64_t keep;
  };
  using Op = std::variant<Append, SetHardState, ApplySnapshot, CreateSnapshot>;

  static void apply(raft::MemoryStorage& s, const Op& op);
  static std::unique_ptr<raft::MemoryStorage> clone(const raft::MemoryStorage& s);

  std::unique_ptr<raft::MemoryStorage> live_;
  std::unique_ptr<raft::MemoryStorage> durable_;
  std::vector<Op> journal_;
};

}  // namespace cset::sim
