// A leader's view of one follower's replication (etcd's tracker/progress.go,
// dissertation §10.2 "pipelining"): the match and next indexes, the state
// that decides how aggressively to send, and bounded flow control.
//
// - kProbe: next is a guess; one AppendEntries at a time until it matches.
// - kReplicate: next follows the last sent entry; appends are pipelined, at
//   most `max_messages` messages and `max_bytes` bytes of entries in flight.
// - kSnapshot: the follower needs an InstallSnapshot; chunks are sent one at a
//   time and appends wait until the snapshot is acknowledged.
//
// Plain value; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "raft/types.h"

namespace cset::raft {

enum class ProgressState : uint8_t { kProbe, kReplicate, kSnapshot };
const char* to_string(ProgressState state);

/// Appends in flight to one follower: (last index, bytes) per message, in
/// send order. Bounded by a count and a byte budget.
class Inflights {
 public:
  Inflights(size_t max_messages, uint64_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}

  void add(Index last_index, uint64_t bytes);
  /// Frees every message whose last index is <= index.
  void free_le(Index index);
  /// Frees the oldest message (if any): used when the follower answers a
  /// heartbeat while the window is full, since every append in it may have
  /// been lost (etcd's FreeFirstOne).
  void free_first_one();
  void reset();
  bool full() const { return items_.size() >= max_messages_ || bytes_ >= max_bytes_; }
  size_t count() const { return items_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  struct Item {
    Index index;
    uint64_t bytes;
  };
  size_t max_messages_;
  uint64_t max_bytes_;
  std::deque<Item> items_;
  uint64_t bytes_ = 0;
};

struct Progress {
  Progress(Index next_index, size_t max_inflight_messages, uint64_t max_inflight_bytes)
      : next(next_index), inflights(max_inflight_messages, max_inflight_bytes) {}

  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  bool probe_sent = false;     // kProbe: an append is outstanding
  bool recent_active = false;  // heard from since the last check-quorum round
  // Heard from during the last completed check-quorum round: with
  // recent_active, "reachable" for a configuration change proposed just
  // after a round reset recent_active, before the next replies came.
  bool active_last_round = false;
  // kSnapshot: the snapshot being sent and how far the follower confirmed.
  Index pending_snapshot = 0;
  uint64_t snapshot_offset = 0;
  bool snapshot_chunk_inflight = false;
  int snapshot_ticks = 0;  // ticks since the last chunk was sent
  Inflights inflights;

  void become_probe();
  void become_replicate();
  void become_snapshot(Index snapshot_index);
  /// A successful AppendEntries response up to `index`. Returns whether match
  /// advanced (or next moved forward).
  bool maybe_update(Index index);
  /// A rejection of the append at `rejected`; `hint` is where to try next.
  /// Returns false for a stale rejection (ignored).
  bool maybe_decrease_to(Index rejected, Index hint);
  /// Records that entries up to `last` were sent (`bytes` of data).
  void sent_entries(Index last, uint64_t bytes);
  /// Whether sending appends must wait.
  bool paused() const;
};

}  // namespace cset::raft
