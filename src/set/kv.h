// The key-value interface the set state machine runs on.
//
// Two implementations: MemoryKv (set/memory_kv.h; tests and the simulator)
// and the RocksDB one (storage/). The state machine's whole durable state —
// set members, the applied index, the client-session table, the current
// configuration — lives behind this interface, so a snapshot of the KV is a
// snapshot of the state machine.
//
// Keys are ordered bytewise (memcmp, shorter first on a common prefix), as
// RocksDB's default comparator orders them.
//
// Atomicity: a WriteBatch applies all of its operations or none, and a crash
// leaves either the state before or the state after it (the applied index is
// written in the same batch as the mutations it covers: DESIGN.md).
//
// Thread-safety: implementations allow concurrent readers with one writer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cset/status.h"

namespace cset::set {

/// Column families (namespaces) of the state machine.
enum class Space : uint8_t {
  kData = 0,  // sets: len(key)|key|member -> ""
  kMeta = 1,  // applied index, sessions, configuration, format version
};

struct WriteOp {
  enum class Kind : uint8_t { kPut, kDelete } kind;
  Space space;
  std::string key;
  std::string value;
};

/// An ordered list of puts and deletes applied atomically.
struct WriteBatch {
  std::vector<WriteOp> ops;
  void put(Space s, std::string key, std::string value) {
    ops.push_back({WriteOp::Kind::kPut, s, std::move(key), std::move(value)});
  }
  void del(Space s, std::string key) {
    ops.push_back({WriteOp::Kind::kDelete, s, std::move(key), {}});
  }
};

/// A read-only, point-in-time view (a RocksDB snapshot / a copy in memory).
class KvView {
 public:
  virtual ~KvView() = default;
  /// The value of `key`, std::nullopt when absent. Errors: kIo, kCorrupt.
  virtual Result<std::optional<std::string>> get(Space s, std::string_view key) const = 0;
  /// Calls fn(key, value) for keys in [start, end) in order (end empty = no
  /// bound) until fn returns false. Errors: kIo, kCorrupt.
  virtual Status scan(Space s, std::string_view start, std::string_view end,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const = 0;
};

class Kv : public KvView {
 public:
  /// Applies `batch` atomically. With sync, it is durable on return.
  /// Errors: kNoSpace (disk full), kIo.
  virtual Status write(const WriteBatch& batch, bool sync) = 0;
  /// A consistent point-in-time view that later writes do not change.
  virtual std::unique_ptr<KvView> view() const = 0;
  /// Replaces everything with the contents of `source` (snapshot install),
  /// atomically. Errors: kNoSpace, kIo.
  virtual Status replace_all(const KvView& source) = 0;
};

}  // namespace cset::set
