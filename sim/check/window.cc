#include "check/window.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

namespace cset::check::detail {

bool is_read(OpKind k) {
  return k == OpKind::kContains || k == OpKind::kMembers || k == OpKind::kSize;
}

Words empty_state(const Object& object) { return Words((object.atoms.size() + 63) / 64, 0); }

std::vector<Words> starting_states(const Object& object, bool any_start) {
  if (!any_start) return {empty_state(object)};
  std::vector<Words> states;
  for (uint64_t bits = 0; bits < (uint64_t{1} << object.atoms.size()); ++bits) {
    states.push_back(empty_state(object));
    if (bits != 0) states.back()[0] = bits;  // REQUIRES: atoms <= 64
  }
  return states;
}

namespace {

// Of the writes invoked before t1 (all of them unknown or relaxed), keeps at
// most definite - 1 per effect (set or clear the same atoms). They are
// interchangeable, available anywhere in the window, and only the last use of
// an effect between two consecutive definite operations matters (effects
// before the first one are absorbed by the starting state, after the last
// one nothing observes them), so no linearization needs more. (A dropped
// write tied to others of its client by client order only removes
// constraints: its uses can be taken over by a kept, unconstrained one.)
void cap_early_writes(const History& history, Window& w) {
  size_t definite = 0;
  for (size_t h : w.ops) {
    bool relaxed = std::find(w.relaxed.begin(), w.relaxed.end(), h) != w.relaxed.end();
    if (!relaxed && history[h].outcome == Outcome::kOk) ++definite;
  }
  const size_t cap = definite > 0 ? definite - 1 : 0;
  std::map<std::tuple<bool, std::string, std::vector<std::string>>, size_t> kept;
  std::vector<size_t> ops;
  for (auto it = w.ops.rbegin(); it != w.ops.rend(); ++it) {  // latest first
    const Operation& op = history[*it];
    if (op.invoke < *w.t1) {
      std::vector<std::string> members = op.members;
      std::sort(members.begin(), members.end());
      members.erase(std::unique(members.begin(), members.end()), members.end());
      if (++kept[{op.kind != OpKind::kRem, op.key, std::move(members)}] > cap) continue;
    }
    ops.push_back(*it);
  }
  std::reverse(ops.begin(), ops.end());
  w.ops = std::move(ops);
  std::erase_if(w.relaxed,
                [&](size_t h) { return std::find(w.ops.begin(), w.ops.end(), h) == w.ops.end(); });
}

}  // namespace

Window make_window(const History& history, const Object& object, std::optional<int64_t> t1,
                   std::optional<int64_t> t2) {
  Window w{t1, t2, {}, {}, 0};
  for (size_t h : object.ops) {
    const Operation& op = history[h];
    const bool unknown = op.outcome == Outcome::kUnknown;
    if (t2 && op.invoke >= *t2) continue;
    const bool before = t1 && op.invoke < *t1;
    const bool straddles_start = before && (unknown || op.complete >= *t1);
    const bool straddles_end = t2 && !unknown && op.complete >= *t2;
    if (before && !straddles_start) continue;
    if (straddles_start || straddles_end) {
      if (is_read(op.kind)) continue;
      w.relaxed.push_back(h);
    }
    w.ops.push_back(h);
  }
  if (t1) cap_early_writes(history, w);
  return w;
}

// kViolation only when the window cannot be linearized from any of its
// starting states.
SearchVerdict check_window(const History& history, const Object& object, const Window& w,
                           bool client_order, Budget& budget) {
  Problem problem = detail::build_problem(history, object, w.ops, w.relaxed, client_order);
  for (const Words& start : starting_states(object, w.any_start())) {
    auto r = detail::search(problem, start, budget, false);
    if (r.verdict != SearchVerdict::kViolation) return r.verdict;
  }
  return SearchVerdict::kViolation;
}

}  // namespace cset::check::detail
