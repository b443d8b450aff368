// The linearizability search over one object: Wing & Gong's algorithm with
// Lowe's memoization, as in Porcupine. Internal to sim/check.
//
// The model is a set of atoms (check/partition.h) held as a bitset. An
// operation with an unknown outcome may take effect at any time after its
// invocation (its return is placed at +infinity) or never; "never" is the
// same as "last" unless a later operation of its client must follow it, so
// only then is a second choice, "skip", explored.
//
// Unknown writes with the same effect (set or clear the same atoms) and no
// client-order tie are interchangeable, so the search uses them in
// invocation order only: a class of k such writes has k + 1 states, not 2^k.
// This loses no linearization (an earlier-invoked one can always stand in for
// a later-invoked one: both may take effect at any later time). And such
// writes are placed just in time: only where they change the state, right
// before an operation that observes them (search.cc, allowed_by_chain).
//
// Source: G. Lowe, "Testing for linearizability", Concurrency and
// Computation: Practice and Experience 29(4), 2017 (the search and its cache
// of (linearized set, state) pairs); J. M. Wing and C. Gong, "Testing and
// verifying concurrent objects", JPDC 17(1), 1993.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "check/history.h"
#include "check/partition.h"

namespace cset::check::detail {

using Words = std::vector<uint64_t>;

inline bool test_bit(const Words& w, size_t i) { return (w[i >> 6] >> (i & 63)) & 1; }
inline void set_bit(Words& w, size_t i) { w[i >> 6] |= uint64_t{1} << (i & 63); }
inline void reset_bit(Words& w, size_t i) { w[i >> 6] &= ~(uint64_t{1} << (i & 63)); }

/// One operation, ready for the model.
struct SearchOp {
  size_t history_index = 0;
  OpKind kind = OpKind::kAdd;
  bool unknown = false;         // outcome unknown (or relaxed to unknown by a window)
  std::vector<uint32_t> atoms;  // touched atoms, without repeats (add, rem, add_strict, contains)
  Words mask;                   // whole-key reads: the atoms of the key
  Words expected;               // members: the atoms read
  bool impossible = false;      // members: a member listed twice
  uint64_t count = 0;
  bool flag = false;
  int64_t invoke = 0;
  int64_t complete = 0;  // INT64_MAX when unknown
  int client_pred = -1;  // an operation that must take effect (or be skipped) first
  bool can_skip = false;
  // Where the search records that the operation is linearized: a bit of the
  // linearized set, or (interchangeable unknown writes) a class counter
  // reaching beyond `class_rank`.
  int bit = -1;
  int class_id = -1;
  uint32_t class_rank = 0;
  bool chainable = false;  // an interchangeable unknown write of one atom (search.cc)
};

/// One object's operations (or a window of them), in three groups, each
/// sorted by invocation: definite operations (bits [0, definite_count)),
/// unknown operations with a client-order tie (bits from `tied_first_bit`),
/// and interchangeable unknown writes (class counters).
struct Problem {
  std::vector<SearchOp> ops;
  size_t definite_count = 0;
  size_t tied_first_bit = 0;  // definite_count rounded up to a word
  size_t bit_words = 0;
  size_t class_count = 0;
  size_t atom_count = 0;
  size_t state_words = 0;
};

/// Builds the problem for `ops` (history indices, any order) over `object`'s
/// atoms. Operations listed in `relaxed` are treated as unknown (their
/// results ignored). With client order, each operation waits for the latest
/// earlier operation of its client whose recorded interval overlaps its own.
Problem build_problem(const History& history, const Object& object, const std::vector<size_t>& ops,
                      const std::vector<size_t>& relaxed, bool client_order);

/// Applies `op` (variant 0: takes effect; 1: skipped) to `state`; false when
/// the recorded result contradicts the model.
bool step(const SearchOp& op, Words& state, int variant);

/// Shared search budget.
struct Budget {
  uint64_t states_left = 0;
  uint64_t max_cache_bytes = 0;
  uint64_t deadline_ms = 0;  // 0 = none
  std::function<uint64_t()> now_ms;
  uint64_t states_used = 0;
  std::string exhausted;  // non-empty: why the budget ran out
};

enum class SearchVerdict : uint8_t { kLinearizable, kViolation, kOutOfBudget };

struct SearchResult {
  SearchVerdict verdict = SearchVerdict::kLinearizable;
  /// With tracking: the longest linearized prefix reached, as (op, variant).
  std::vector<std::pair<int, int>> deepest;
  /// The operation whose return ended the deepest path explored (-1: none):
  /// where a violation, or the hard part of the search, most likely is.
  int stuck_op = -1;
};

/// Searches for a linearization of `problem` starting from `initial`.
SearchResult search(const Problem& problem, const Words& initial, Budget& budget,
                    bool track_deepest);

}  // namespace cset::check::detail
