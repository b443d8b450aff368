// Time windows of one object's history, for cutting a violation down to a
// small excerpt. Internal to sim/check.
//
// A window [t1, t2) is built so that if it cannot be linearized — from every
// starting state when t1 is set, from the empty set otherwise — neither can
// the whole history (proof sketch in docs/linearizability.md "Excerpts"):
// - operations invoked at or after t2 are left out;
// - operations that completed before t1 are left out (the starting state
//   stands for them);
// - writes that straddle t1 or t2, and unknown writes invoked before t1, are
//   kept with their results ignored ("relaxed" to unknown); reads that
//   straddle an edge are left out;
// - of the writes invoked before t1, at most (definite operations - 1) per
//   effect are kept: they are interchangeable, usable anywhere in the window,
//   and only the last use of an effect between two consecutive definite
//   operations can matter.
#pragma once

#include <optional>
#include <vector>

#include "check/history.h"
#include "check/partition.h"
#include "check/search.h"

namespace cset::check::detail {

/// Above this many atoms, a window is not checked from every possible
/// starting state (that takes 2^atoms searches).
inline constexpr size_t kMaxAtomsForAnyStart = 8;

struct Window {
  std::optional<int64_t> t1;    // none: from the beginning, starting empty
  std::optional<int64_t> t2;    // none: to the end
  std::vector<size_t> ops;      // history indices, sorted by invocation
  std::vector<size_t> relaxed;  // those of `ops` whose results are ignored
  size_t reads_pruned = 0;

  bool any_start() const { return t1.has_value(); }
};

bool is_read(OpKind k);
Words empty_state(const Object& object);
/// Every state of the object's atoms (any_start; REQUIRES: atoms <= 64), or
/// only the empty one.
std::vector<Words> starting_states(const Object& object, bool any_start);

/// The window [t1, t2) of `object` (see above).
Window make_window(const History& history, const Object& object, std::optional<int64_t> t1,
                   std::optional<int64_t> t2);

/// kViolation only when `w` cannot be linearized from any of its starting
/// states; kOutOfBudget when the budget ran out first.
SearchVerdict check_window(const History& history, const Object& object, const Window& w,
                           bool client_order, Budget& budget);

}  // namespace cset::check::detail
