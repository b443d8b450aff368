#include "check/linearizability.h"

#include <algorithm>
#include <map>
#include <optional>

#include "check/partition.h"
#include "check/search.h"
#include "check/window.h"

namespace cset::check {
namespace {

using detail::Budget;
using detail::check_window;
using detail::empty_state;
using detail::is_read;
using detail::make_window;
using detail::Object;
using detail::Problem;
using detail::SearchVerdict;
using detail::starting_states;
using detail::Window;
using detail::Words;

// Reads are pruned from an excerpt only when it is at most this long.
constexpr size_t kMaxOpsForReadPruning = 200;

Budget make_budget(const CheckOptions& options, uint64_t states) {
  Budget b;
  b.states_left = states;
  b.max_cache_bytes = options.max_cache_bytes;
  if (options.max_time_ms != 0 && options.now_ms) {
    b.now_ms = options.now_ms;
    b.deadline_ms = options.now_ms() + options.max_time_ms;
  }
  return b;
}

class Shrinker {
 public:
  Shrinker(const History& history, const Object& object, const CheckOptions& options)
      : history_(history),
        object_(object),
        options_(options),
        budget_(make_budget(options, options.max_excerpt_states)) {
    for (size_t h : object.ops) times_.push_back(history[h].invoke);
    times_.erase(std::unique(times_.begin(), times_.end()), times_.end());  // ops sorted
  }

  bool any_start_possible() const { return object_.atoms.size() <= detail::kMaxAtomsForAnyStart; }

  /// Whether `w` provably violates, within a slice of the excerpt budget (so
  /// that one expensive window cannot starve the smaller ones tried later).
  bool violates(const Window& w) {
    if (!budget_.exhausted.empty()) return false;
    Budget slice = budget_;
    slice.states_left =
        std::min(budget_.states_left, std::max<uint64_t>(budget_.states_left / 8, 1000));
    slice.states_used = 0;
    const auto verdict = check_window(history_, object_, w, options_.client_order, slice);
    budget_.states_left -= slice.states_used;
    if (budget_.states_left == 0 || (slice.exhausted.size() && budget_.deadline_ms != 0 &&
                                     budget_.now_ms() >= budget_.deadline_ms)) {
      budget_.exhausted = "the excerpt budget ran out";
    }
    return verdict == SearchVerdict::kViolation;
  }

  /// Looks for a violating window ending just after operation `stuck` was
  /// due, growing it backwards from there. Used when the whole object could
  /// not be searched within budget.
  std::optional<Window> find_near(size_t stuck) {
    const Operation& op = history_[stuck];
    const int64_t due = op.outcome == Outcome::kUnknown ? op.invoke : op.complete;
    std::optional<int64_t> t2;
    auto after = std::upper_bound(times_.begin(), times_.end(), due);
    if (after != times_.end()) t2 = *after;
    const size_t last = static_cast<size_t>(after - times_.begin());  // times before t2
    for (size_t span = 2; any_start_possible() && span < last; span *= 2) {
      Window w = make_window(history_, object_, times_[last - span], t2);
      if (violates(w)) return w;
    }
    Window w = make_window(history_, object_, std::nullopt, t2);
    if (violates(w)) return w;
    return std::nullopt;
  }

  /// Cuts a violating window down: the earliest end, then the latest start,
  /// then the reads it does not need. Every cut is kept only when a search
  /// confirms the smaller window still violates.
  Window shrink(Window w) {
    // 1. The earliest end (binary search over invocation times: a shorter
    //    window that violates implies every longer one does).
    {
      std::vector<std::optional<int64_t>> ends;
      for (int64_t t : times_) {
        if ((!w.t1 || t > *w.t1) && (!w.t2 || t < *w.t2)) ends.emplace_back(t);
      }
      ends.push_back(w.t2);  // known to violate
      size_t lo = 0;
      size_t hi = ends.size() - 1;
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        Window candidate = make_window(history_, object_, w.t1, ends[mid]);
        if (violates(candidate)) {
          hi = mid;
          w = std::move(candidate);
        } else {
          lo = mid + 1;
        }
      }
    }
    // 2. The latest start, from any starting state.
    if (any_start_possible()) {
      std::vector<int64_t> starts;
      for (int64_t t : times_) {
        if ((!w.t1 || t > *w.t1) && (!w.t2 || t < *w.t2)) starts.push_back(t);
      }
      size_t a = 0;
      size_t b = starts.size();
      while (a < b) {  // the largest start that still violates
        size_t mid = (a + b) / 2;
        Window candidate = make_window(history_, object_, starts[mid], w.t2);
        if (violates(candidate)) {
          w = std::move(candidate);
          a = mid + 1;
        } else {
          b = mid;
        }
      }
    }
    // 3. Reads that the violation does not need.
    if (w.ops.size() <= kMaxOpsForReadPruning) {
      for (size_t i = 0; i < w.ops.size() && w.ops.size() > 1;) {
        const size_t h = w.ops[i];
        bool relaxed = std::find(w.relaxed.begin(), w.relaxed.end(), h) != w.relaxed.end();
        if (is_read(history_[h].kind) && !relaxed) {
          Window without = w;
          without.ops.erase(without.ops.begin() + static_cast<std::ptrdiff_t>(i));
          if (violates(without)) {
            w = std::move(without);
            ++w.reads_pruned;
            continue;
          }
        }
        ++i;
      }
    }
    return w;
  }

 private:
  const History& history_;
  const Object& object_;
  const CheckOptions& options_;
  Budget budget_;
  std::vector<int64_t> times_;  // distinct invocation times of the object, ascending
};

std::string describe_state(const Object& object, const Words& state) {
  std::string out = "{";
  bool first = true;
  const bool one_key =
      object.atoms.empty() || object.atoms.front().first == object.atoms.back().first;
  for (size_t a = 0; a < object.atoms.size(); ++a) {
    if (!detail::test_bit(state, a)) continue;
    out += first ? "" : ", ";
    first = false;
    if (!one_key) out += quote(object.atoms[a].first) + ":";
    out += quote(object.atoms[a].second);
  }
  return out + "}";
}

std::string describe_object(const Object& object, const History& history) {
  const std::string& key = history[object.ops.front()].key;
  std::string out = "key " + quote(key);
  if (object.whole_key) return out + " (the whole set: it has whole-key reads)";
  std::vector<std::string> members;
  for (const auto& [k, m] : object.atoms) {
    members.push_back(k == key ? quote(m) : quote(k) + ":" + quote(m));
  }
  if (members.size() == 1) return out + ", member " + members[0];
  out += ", members {";
  for (size_t i = 0; i < members.size(); ++i) out += (i ? ", " : "") + members[i];
  return out + "}";
}

// Why the window fails: its longest linearizable prefix and, after it, what
// each operation that could come next would contradict. `culprit` becomes
// the history index of the first operation that contradicts the model there.
std::string explain_dead_end(const History& history, const Object& object, const Window& w,
                             const CheckOptions& options, std::optional<size_t>& culprit) {
  Problem problem = detail::build_problem(history, object, w.ops, w.relaxed, options.client_order);
  Budget budget = make_budget(options, options.max_excerpt_states);
  detail::SearchResult best;
  Words best_start = empty_state(object);
  for (const Words& start : starting_states(object, w.any_start())) {
    auto r = detail::search(problem, start, budget, true);
    if (r.verdict != SearchVerdict::kViolation) break;
    if (best.deepest.empty() || r.deepest.size() > best.deepest.size()) {
      best = std::move(r);
      best_start = start;
    }
  }
  std::string out;
  Words state = best_start;
  std::vector<bool> done(problem.ops.size(), false);
  if (w.any_start()) out += "  starting from " + describe_state(object, state) + "\n";
  out += "  longest linearizable prefix:";
  if (best.deepest.empty()) out += " (none)";
  for (const auto& [i, variant] : best.deepest) {
    detail::step(problem.ops[static_cast<size_t>(i)], state, variant);
    done[static_cast<size_t>(i)] = true;
    out += "\n    #" + std::to_string(problem.ops[static_cast<size_t>(i)].history_index + 1) +
           (variant == 1 ? " (never took effect)" : "") + " -> " + describe_state(object, state);
  }
  out += "\n  then no operation can take effect next:";
  for (size_t i = 0; i < problem.ops.size(); ++i) {
    if (done[i]) continue;
    const detail::SearchOp& op = problem.ops[i];
    bool blocked = false;
    for (size_t j = 0; j < problem.ops.size(); ++j) {
      if (!done[j] && problem.ops[j].complete < op.invoke) blocked = true;
    }
    if (blocked) continue;  // some earlier operation must come first
    out += "\n    #" + std::to_string(op.history_index + 1) + " ";
    Words next = state;
    if (op.client_pred >= 0 && !done[static_cast<size_t>(op.client_pred)]) {
      out += "must wait for #" +
             std::to_string(problem.ops[static_cast<size_t>(op.client_pred)].history_index + 1) +
             " (same client, sent earlier)";
    } else if (!detail::step(op, next, 0)) {
      out += "contradicts the set " + describe_state(object, state);
      if (!culprit) culprit = op.history_index;
    } else {
      out += "could, but no order of the remaining operations works after it";
    }
  }
  return out + "\n";
}

void fill_object(CheckResult& result, const Object& object, const std::string& key) {
  result.key = key;
  result.whole_key = object.whole_key;
  result.members.clear();
  for (const auto& [k, m] : object.atoms) {
    if (k == key) result.members.push_back(m);
  }
}

// "; left out: 12 before time 100, 3 from time 200, 2 other reads" (the
// parts that are not zero), or "" when the excerpt is the whole object.
std::string left_out(const History& history, const Object& object, const Window& w) {
  size_t before = 0;
  size_t after = 0;
  for (size_t h : object.ops) {
    if (std::find(w.ops.begin(), w.ops.end(), h) != w.ops.end()) continue;
    if (w.t2 && history[h].invoke >= *w.t2) {
      ++after;
    } else if (w.t1 && history[h].invoke < *w.t1) {
      ++before;
    }
  }
  const size_t other = object.ops.size() - w.ops.size() - before - after;
  std::vector<std::string> parts;
  if (before) parts.push_back(std::to_string(before) + " before time " + std::to_string(*w.t1));
  if (after) parts.push_back(std::to_string(after) + " from time " + std::to_string(*w.t2));
  if (other) parts.push_back(std::to_string(other) + " other reads");
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "; left out: ") + parts[i];
  return out;
}

CheckResult report_violation(const History& history, const Object& object, const Window& w,
                             const CheckOptions& options, CheckResult result) {
  result.verdict = Verdict::kNotLinearizable;
  result.excerpt = w.ops;
  std::string& s = result.explanation;
  s = "not linearizable: " + describe_object(object, history) + "\n";
  s += "the " + std::to_string(w.ops.size()) + " operations below cannot be linearized " +
       (w.any_start() ? "whatever the set held before them" : "starting from the empty set");
  s += " (" + std::to_string(object.ops.size()) + " operations on this object" +
       left_out(history, object, w) + "):\n";
  for (size_t h : w.ops) {
    bool relaxed = std::find(w.relaxed.begin(), w.relaxed.end(), h) != w.relaxed.end();
    s += "  " + describe(history[h], h + 1) +
         (relaxed && history[h].outcome == Outcome::kOk ? "  (result ignored: crosses the "
                                                          "excerpt's edge)"
                                                        : "") +
         "\n";
  }
  std::optional<size_t> culprit;
  s += explain_dead_end(history, object, w, options, culprit);
  // An object may span keys (overlapping operations of one client): name the
  // key of the operation at fault.
  fill_object(result, object, history[culprit.value_or(w.ops.back())].key);
  return result;
}

CheckResult report_inconclusive(const History& history, const Object& object, const Budget& budget,
                                CheckResult result) {
  result.verdict = Verdict::kInconclusive;
  result.excerpt = object.ops;
  fill_object(result, object, history[object.ops.front()].key);
  result.explanation = "inconclusive, which fails the check: " + budget.exhausted + " after " +
                       std::to_string(budget.states_used) + " states, on " +
                       describe_object(object, history) + " (" + std::to_string(object.ops.size()) +
                       " operations), and no small window of it could be shown to violate "
                       "linearizability within the excerpt budget\n";
  return result;
}

}  // namespace

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kInconclusive:
      return "inconclusive (a failure)";
    case Verdict::kInvalidHistory:
      return "invalid history";
  }
  return "?";
}

CheckResult check_history(const History& history, const CheckOptions& options) {
  CheckResult result;
  if (Status st = validate_history(history); !st.is_ok()) {
    result.verdict = Verdict::kInvalidHistory;
    result.explanation = st.message() + "\n";
    return result;
  }
  if (options.max_time_ms != 0 && !options.now_ms) {
    result.verdict = Verdict::kInvalidHistory;
    result.explanation = "CheckOptions: max_time_ms needs now_ms\n";
    return result;
  }
  std::vector<Object> objects = detail::partition(history, options.client_order);
  result.objects = objects.size();
  Budget budget = make_budget(options, options.max_states);
  for (const Object& object : objects) {
    Problem problem = detail::build_problem(history, object, object.ops, {}, options.client_order);
    auto r = detail::search(problem, empty_state(object), budget, false);
    result.states_explored = budget.states_used;
    if (r.verdict == SearchVerdict::kLinearizable) continue;
    // A violation is most cheaply shown on a small window near where the
    // search got stuck; that also works when the whole search ran out of
    // budget. Failing that, a violation is cut down from the whole object.
    Shrinker shrinker(history, object, options);
    std::optional<Window> found;
    if (r.stuck_op >= 0) {
      found = shrinker.find_near(problem.ops[static_cast<size_t>(r.stuck_op)].history_index);
    }
    if (!found && r.verdict == SearchVerdict::kViolation) {
      found = make_window(history, object, std::nullopt, std::nullopt);
    }
    if (found) {
      return report_violation(history, object, shrinker.shrink(std::move(*found)), options, result);
    }
    return report_inconclusive(history, object, budget, result);
  }
  result.verdict = Verdict::kLinearizable;
  result.explanation = "linearizable: " + std::to_string(history.size()) + " operations, " +
                       std::to_string(objects.size()) + " independent objects, " +
                       std::to_string(result.states_explored) + " states explored\n";
  return result;
}

CheckResult check_history_file(const std::string& path, const CheckOptions& options) {
  auto history = read_history_file(path);
  if (!history.ok()) {
    CheckResult result;
    result.verdict = Verdict::kInvalidHistory;
    result.explanation = history.status().message() + "\n";
    return result;
  }
  return check_history(*history, options);
}

}  // namespace cset::check
