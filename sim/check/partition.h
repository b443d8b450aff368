// Splitting a history into independent objects (P-compositionality), for the
// linearizability checker. Internal to sim/check.
//
// An atom is one (key, member) pair: one bit of the set model. Two atoms are
// in the same object when some operation ties them:
// - a multi-member add/rem ties its members (its count depends on all);
// - a whole-key read (members, size) ties every atom of its key, since its
//   result depends on the whole set (member-by-member checking of such reads
//   is not sound: docs/linearizability.md);
// - with client order, two overlapping operations of one client are tied,
//   so the order constraint between them lives inside one object.
// Everything else is independent, and by Herlihy & Wing's locality a history
// is linearizable exactly when every object's subhistory is.
//
// Operations that cannot constrain anything are dropped first: failed
// operations (they never took effect) and reads with an unknown outcome
// (no effect, no result).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "check/history.h"

namespace cset::check::detail {

using Atom = std::pair<std::string, std::string>;  // (key, member)

struct Object {
  std::vector<size_t> ops;  // history indices, sorted by (invoke, index)
  std::vector<Atom> atoms;  // sorted; the atoms of one key are contiguous
  bool whole_key = false;   // holds a whole-key read
};

/// True when `op` can constrain a linearization (see above).
bool relevant(const Operation& op);

/// The independent objects of `history`, smallest first (ties: first
/// operation first). REQUIRES: validate_history(history) ok.
std::vector<Object> partition(const History& history, bool client_order);

/// The operations of `ops` (history indices) sorted by (invoke, index).
void sort_by_invoke(const History& history, std::vector<size_t>& ops);

}  // namespace cset::check::detail
