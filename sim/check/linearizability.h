// The linearizability checker for set histories (check/history.h): is there
// one order of the operations, consistent with real time and with each
// connection's sending order, in which a single in-memory set model gives
// every recorded result? docs/linearizability.md explains the method.
//
// Method: Wing & Gong's search with Lowe's memoization ("Testing for
// linearizability", G. Lowe, 2017: a cache of (operations linearized, model
// state)), the same algorithm as Porcupine. By P-compositionality
// (Herlihy & Wing's locality) the history is split into independent objects
// first: every key is independent; within a key, each (key, member) pair is
// its own object unless an operation ties members together (a multi-member
// SADD/SREM ties its members; a whole-key read — SMEMBERS, SCARD — ties the
// whole key, because a whole-key read checked member by member is not
// sound); overlapping operations of one connection are tied too, so the
// sending order is checked exactly (not a retried session request:
// history.h, Operation::attempts).
//
// Guarantees:
// - Sound: kLinearizable only when a linearization was found for every object.
// - A search that runs out of budget (states or time) answers kInconclusive,
//   which is a failure: ok() is true only for kLinearizable.
// - Deterministic when no time budget is set: the same history and options
//   give the same verdict and report.
// - A violation names the key and shows a small excerpt: the failing object's
//   operations cut down to the shortest window (between quiescent points)
//   and with the reads that do not matter removed, each cut checked to remain
//   non-linearizable, so the excerpt alone proves the violation.
//
// Thread-safety: pure functions; concurrent calls are independent.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "check/history.h"

namespace cset::check {

struct CheckOptions {
  /// Search states (cache entries) over the whole check; more answers
  /// kInconclusive.
  uint64_t max_states = 2'000'000;
  /// Memory for the search cache, in bytes, per object; more answers kInconclusive.
  uint64_t max_cache_bytes = uint64_t{1} << 30;
  /// Wall-clock budget in ms (0 = none). REQUIRES: now_ms when non-zero.
  uint64_t max_time_ms = 0;
  /// A monotonic clock in milliseconds (time is passed in, never read here).
  std::function<uint64_t()> now_ms;
  /// Operations of one client that overlap in time must take effect in
  /// invocation order (pipelining on one connection; SPEC.md).
  bool client_order = true;
  /// Budget (states) for cutting a violation down to a small excerpt.
  uint64_t max_excerpt_states = 500'000;
};

enum class Verdict : uint8_t {
  kLinearizable,
  kNotLinearizable,  // a violation: see key, excerpt, explanation
  kInconclusive,     // the budget ran out: a failure, never a pass
  kInvalidHistory,   // the history could not be read or is malformed
};

const char* to_string(Verdict verdict);

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  /// The failing object (kNotLinearizable, kInconclusive): its key, and the
  /// members it covers in that key (every member of the key seen in the
  /// history when whole_key).
  std::string key;
  std::vector<std::string> members;
  bool whole_key = false;
  /// Indices into the history of the operations the explanation shows.
  std::vector<size_t> excerpt;
  /// A readable report (multi-line): the verdict, the object, the excerpt
  /// and why it cannot be linearized.
  std::string explanation;
  uint64_t states_explored = 0;
  size_t objects = 0;  // independent objects the history was split into

  bool ok() const { return verdict == Verdict::kLinearizable; }
};

/// Checks `history` (validate_history() first; kInvalidHistory when it fails).
/// Every key starts as the empty set.
CheckResult check_history(const History& history, const CheckOptions& options = {});

/// Reads a JSONL history file (docs/history-format.md) and checks it. A file
/// that cannot be read or parsed gives kInvalidHistory with the reason. This
/// is `cset-sim --check-history FILE.jsonl`.
CheckResult check_history_file(const std::string& path, const CheckOptions& options = {});

}  // namespace cset::check
