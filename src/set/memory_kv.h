// MemoryKv: the Kv interface (set/kv.h) held in memory, for unit tests and
// the simulator.
//
// Guarantees:
// - Bytewise key order (std::string comparison is memcmp-then-length, the
//   same order as RocksDB's default comparator).
// - A WriteBatch applies all of its operations or none; readers never see
//   half a batch.
// - view() is O(1): views share the data copy-on-write; the first write after
//   a view was taken copies the data once (O(size)) while that view lives.
// - Optional power-loss model (Options::model_power_loss): writes made with
//   sync=false are lost by drop_unsynced() unless a later sync=true write
//   (which, like an fsync of a write-ahead log, makes every earlier write
//   durable) came first. Costs a second copy of the data.
// - Fault injection: set_write_error() makes later writes fail, atomically
//   (nothing of a failed batch is applied), until cleared.
//
// Thread-safety: any number of concurrent readers with one writer (the Kv
// contract); readers and views never block on a long scan of another reader.
// The test hooks (drop_unsynced, set_write_error) may be called concurrently
// with readers but not with write()/replace_all().
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "set/kv.h"

namespace cset::set {

class MemoryKv final : public Kv {
 public:
  struct Options {
    bool model_power_loss = false;
  };

  MemoryKv() : MemoryKv(Options{}) {}
  explicit MemoryKv(Options options);

  Result<std::optional<std::string>> get(Space s, std::string_view key) const override;
  Status scan(Space s, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const override;
  Status write(const WriteBatch& batch, bool sync) override;
  std::unique_ptr<KvView> view() const override;
  Status replace_all(const KvView& source) override;

  /// Number of keys in a space (tests and metrics).
  size_t size(Space s) const;

  /// Simulates a power cut: every write not yet made durable is forgotten.
  /// REQUIRES: Options::model_power_loss; returns kInvalid otherwise.
  Status drop_unsynced();

  /// From now on every write() and replace_all() fails with `error` and
  /// changes nothing; Status::ok() restores normal operation.
  void set_write_error(Status error);

 private:
  using Map = std::map<std::string, std::string, std::less<>>;
  using Data = std::array<Map, 2>;  // indexed by Space

  std::shared_ptr<const Data> snapshot() const;
  static void apply(Data& data, const WriteBatch& batch);

  const Options options_;
  mutable std::shared_mutex mu_;      // guards the pointers below, not the maps
  std::shared_ptr<Data> data_;        // current contents; copied on write when shared
  Data durable_;                      // what survives drop_unsynced (power-loss model)
  std::vector<WriteBatch> unsynced_;  // batches written since the last sync
  Status write_error_;
};

}  // namespace cset::set
