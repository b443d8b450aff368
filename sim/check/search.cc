#include "check/search.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_set>

namespace cset::check::detail {
namespace {

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
constexpr uint64_t kCacheEntryOverheadBytes = 64;  // hash node, vector header, bucket

struct WordsHash {
  size_t operator()(const Words& w) const {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ w.size();
    for (uint64_t x : w) {
      h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
      h *= 0xBF58476D1CE4E5B9ull;
    }
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

// The call/return event list of Wing & Gong's algorithm, doubly linked so
// that linearized operations can be lifted out and put back in O(1).
class EventList {
 public:
  explicit EventList(const Problem& problem) {
    const int n = static_cast<int>(problem.ops.size());
    // (time, 0 = call / 1 = return, op): at equal times a call comes before
    // a return, so operations that touch at one instant are concurrent.
    std::vector<std::tuple<int64_t, int, int>> events;
    for (int i = 0; i < n; ++i) {
      events.emplace_back(problem.ops[i].invoke, 0, i);
      events.emplace_back(problem.ops[i].complete, 1, i);
    }
    std::sort(events.begin(), events.end());
    nodes_.resize(events.size() + 1);  // node 0: the head sentinel
    std::vector<int> call_node(n);
    for (size_t k = 0; k < events.size(); ++k) {
      Node& node = nodes_[k + 1];
      node.prev = static_cast<int>(k);
      node.next = k + 1 < events.size() ? static_cast<int>(k + 2) : -1;
      node.op = std::get<2>(events[k]);
      node.call = std::get<1>(events[k]) == 0;
      if (node.call) {
        call_node[node.op] = static_cast<int>(k + 1);
      } else {
        nodes_[call_node[node.op]].match = static_cast<int>(k + 1);
      }
    }
    nodes_[0].next = events.empty() ? -1 : 1;
  }

  int first() const { return nodes_[0].next; }
  int next(int node) const { return nodes_[node].next; }
  bool call(int node) const { return nodes_[node].call; }
  int op(int node) const { return nodes_[node].op; }

  void lift(int call) {
    unlink(call);
    unlink(nodes_[call].match);
  }
  void unlift(int call) {  // exact reverse of lift
    relink(nodes_[call].match);
    relink(call);
  }

 private:
  struct Node {
    int prev = -1;
    int next = -1;
    int op = -1;
    bool call = false;
    int match = -1;  // a call's return node
  };
  void unlink(int i) {
    nodes_[nodes_[i].prev].next = nodes_[i].next;
    if (nodes_[i].next >= 0) nodes_[nodes_[i].next].prev = nodes_[i].prev;
  }
  void relink(int i) {
    nodes_[nodes_[i].prev].next = i;
    if (nodes_[i].next >= 0) nodes_[nodes_[i].next].prev = i;
  }
  std::vector<Node> nodes_;
};

bool charge(Budget& budget, uint64_t cache_bytes) {
  if (!budget.exhausted.empty()) return false;
  if (budget.states_left == 0) {
    budget.exhausted = "the state budget ran out";
    return false;
  }
  if (cache_bytes > budget.max_cache_bytes) {
    budget.exhausted = "the search cache outgrew its memory budget";
    return false;
  }
  --budget.states_left;
  ++budget.states_used;
  if (budget.deadline_ms != 0 && budget.states_used % 1024 == 0 &&
      budget.now_ms() >= budget.deadline_ms) {
    budget.exhausted = "the time budget ran out";
    return false;
  }
  return true;
}

// A search state: the linearized definite operations, the linearized tied
// unknown operations, the model state, the class counters and the chain of
// just-placed unknown writes (see allowed_by_chain).
//
// Definite operations are encoded as a window: `first` = the first one not
// linearized (all before it are), then the words up to the last one
// linearized. An operation can only be linearized once every operation that
// returned before its invocation has been, so the window spans the
// concurrency of the history, not its length, and the cache stays small on
// long histories.
Words cache_key(const Words& linearized, const Problem& p, const Words& state,
                const std::vector<uint32_t>& counters, const std::vector<uint32_t>& chain) {
  const size_t definite = p.definite_count;
  size_t first = 0;
  while (first < definite && test_bit(linearized, first)) {
    if ((first & 63) == 0 && first + 64 <= definite && linearized[first >> 6] == ~uint64_t{0}) {
      first += 64;
    } else {
      ++first;
    }
  }
  size_t end_word = first >> 6;  // exclusive end of the window, in words
  for (size_t w = (definite + 63) >> 6; w > (first >> 6); --w) {
    uint64_t word = linearized[w - 1];
    if (w - 1 == (definite >> 6)) word &= (uint64_t{1} << (definite & 63)) - 1;
    if (word != 0) {
      end_word = w;
      break;
    }
  }
  const size_t tied_word = p.tied_first_bit >> 6;
  Words key;
  key.reserve(2 + (end_word - (first >> 6)) + (p.bit_words - tied_word) + state.size());
  key.push_back(first);
  key.push_back(end_word);
  key.insert(key.end(), linearized.begin() + static_cast<std::ptrdiff_t>(first >> 6),
             linearized.begin() + static_cast<std::ptrdiff_t>(end_word));
  key.insert(key.end(), linearized.begin() + static_cast<std::ptrdiff_t>(tied_word),
             linearized.end());
  key.insert(key.end(), state.begin(), state.end());
  key.insert(key.end(), counters.begin(), counters.end());
  key.insert(key.end(), chain.begin(), chain.end());  // after fixed-size fields: unambiguous
  return key;
}

SearchOp make_search_op(const History& history, const Object& object, size_t h, bool relaxed,
                        size_t state_words) {
  auto atom_of = [&](const std::string& key, const std::string& member) {
    auto it = std::lower_bound(object.atoms.begin(), object.atoms.end(), Atom(key, member));
    return static_cast<uint32_t>(it - object.atoms.begin());
  };
  const Operation& op = history[h];
  SearchOp s;
  s.history_index = h;
  s.kind = op.kind;
  s.unknown = relaxed || op.outcome == Outcome::kUnknown;
  s.count = op.count;
  s.flag = op.flag;
  s.invoke = op.invoke;
  s.complete = s.unknown ? kForever : op.complete;
  for (const std::string& m : op.members) s.atoms.push_back(atom_of(op.key, m));
  std::sort(s.atoms.begin(), s.atoms.end());
  s.atoms.erase(std::unique(s.atoms.begin(), s.atoms.end()), s.atoms.end());
  if (op.kind == OpKind::kMembers || op.kind == OpKind::kSize) {
    s.mask.assign(state_words, 0);
    s.expected.assign(state_words, 0);
    for (size_t a = 0; a < object.atoms.size(); ++a) {
      if (object.atoms[a].first == op.key) set_bit(s.mask, a);
    }
    for (const std::string& m : op.result_members) {
      uint32_t a = atom_of(op.key, m);
      if (test_bit(s.expected, a)) s.impossible = true;
      set_bit(s.expected, a);
    }
  }
  return s;
}

// Ties each operation to the latest earlier operation of its client (in
// sending order) whose recorded interval overlaps its own. Retried session
// requests are left out (history.h, Operation::attempts).
void tie_client_order(const History& history, std::vector<SearchOp>& ops) {
  std::map<uint64_t, std::vector<int>> by_client;  // earlier ops, in sending order
  for (int i = 0; i < static_cast<int>(ops.size()); ++i) {
    const Operation& b = history[ops[i].history_index];
    // A retried session request (attempts > 1) may have taken effect through
    // another connection, after later requests of its client: not ordered.
    if (b.attempts > 1) continue;
    auto& earlier = by_client[b.client];
    for (auto it = earlier.rbegin(); it != earlier.rend(); ++it) {
      if (history[ops[*it].history_index].complete >= b.invoke) {
        ops[i].client_pred = *it;
        ops[*it].can_skip = ops[*it].unknown;
        break;
      }
    }
    earlier.push_back(i);
  }
}

// Groups the operations (definite, tied unknown, interchangeable unknown
// writes by class), keeping invocation order inside each group, and assigns
// bits, classes and ranks.
void group(Problem& p) {
  std::vector<int> group_of(p.ops.size());
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const SearchOp& op = p.ops[i];
    group_of[i] = !op.unknown ? 0 : (op.client_pred >= 0 || op.can_skip) ? 1 : 2;
  }
  std::vector<int> position(p.ops.size());
  std::vector<SearchOp> grouped;
  grouped.reserve(p.ops.size());
  for (int g = 0; g < 3; ++g) {
    if (g == 1) p.tied_first_bit = (grouped.size() + 63) / 64 * 64;
    for (size_t i = 0; i < p.ops.size(); ++i) {
      if (group_of[i] != g) continue;
      position[i] = static_cast<int>(grouped.size());
      grouped.push_back(std::move(p.ops[i]));
    }
    if (g == 0) p.definite_count = grouped.size();
  }
  std::map<std::pair<bool, std::vector<uint32_t>>, int> class_of;  // (sets?, atoms) -> class
  std::vector<uint32_t> class_size;
  size_t next_bit = p.tied_first_bit;
  for (size_t i = 0; i < grouped.size(); ++i) {
    SearchOp& op = grouped[i];
    if (op.client_pred >= 0) op.client_pred = position[static_cast<size_t>(op.client_pred)];
    if (i < p.definite_count) {
      op.bit = static_cast<int>(i);
    } else if (op.client_pred >= 0 || op.can_skip) {
      op.bit = static_cast<int>(next_bit++);
    } else {
      auto [it, fresh] = class_of.try_emplace({op.kind != OpKind::kRem, op.atoms},
                                              static_cast<int>(class_size.size()));
      if (fresh) class_size.push_back(0);
      op.class_id = it->second;
      op.class_rank = class_size[static_cast<size_t>(op.class_id)]++;
      op.chainable = op.atoms.size() == 1;
    }
  }
  p.class_count = class_size.size();
  p.bit_words = (next_bit + 63) / 64;
  p.ops = std::move(grouped);
}

}  // namespace

Problem build_problem(const History& history, const Object& object,
                      const std::vector<size_t>& indices, const std::vector<size_t>& relaxed,
                      bool client_order) {
  Problem p;
  p.atom_count = object.atoms.size();
  p.state_words = (p.atom_count + 63) / 64;
  std::vector<size_t> order = indices;
  sort_by_invoke(history, order);
  for (size_t h : order) {
    bool relax = std::find(relaxed.begin(), relaxed.end(), h) != relaxed.end();
    p.ops.push_back(make_search_op(history, object, h, relax, p.state_words));
  }
  if (client_order) tie_client_order(history, p.ops);
  group(p);
  return p;
}

bool step(const SearchOp& op, Words& state, int variant) {
  if (variant == 1) return true;  // skipped: never took effect
  switch (op.kind) {
    case OpKind::kAdd:
    case OpKind::kRem: {
      const bool adding = op.kind == OpKind::kAdd;
      uint64_t changed = 0;
      for (uint32_t a : op.atoms) {
        if (test_bit(state, a) == adding) continue;
        if (adding) {
          set_bit(state, a);
        } else {
          reset_bit(state, a);
        }
        ++changed;
      }
      return op.unknown || changed == op.count;
    }
    case OpKind::kAddStrict: {
      const bool present = test_bit(state, op.atoms[0]);
      if (op.unknown || op.flag) set_bit(state, op.atoms[0]);
      if (op.unknown) return true;
      return op.flag ? !present : present;
    }
    case OpKind::kContains:
      return test_bit(state, op.atoms[0]) == op.flag;
    case OpKind::kSize: {
      uint64_t n = 0;
      for (size_t w = 0; w < state.size(); ++w) n += std::popcount(state[w] & op.mask[w]);
      return n == op.count;
    }
    case OpKind::kMembers: {
      if (op.impossible) return false;
      for (size_t w = 0; w < state.size(); ++w) {
        if ((state[w] & op.mask[w]) != op.expected[w]) return false;
      }
      return true;
    }
  }
  return false;
}

namespace {

// The mutable state of one search: which operations are linearized (bits and
// class counters) and the model state.
struct Position {
  Words linearized;
  std::vector<uint32_t> counters;
  Words state;
  /// The atoms set or cleared by the single-atom interchangeable unknown
  /// writes linearized since the last other operation, ascending.
  std::vector<uint32_t> chain;

  bool done(const SearchOp& op) const {
    return op.bit >= 0 ? test_bit(linearized, static_cast<size_t>(op.bit))
                       : counters[static_cast<size_t>(op.class_id)] > op.class_rank;
  }
  void mark(const SearchOp& op, bool on) {
    if (op.bit >= 0) {
      on ? set_bit(linearized, static_cast<size_t>(op.bit))
         : reset_bit(linearized, static_cast<size_t>(op.bit));
    } else {
      uint32_t& counter = counters[static_cast<size_t>(op.class_id)];
      counter = on ? counter + 1 : counter - 1;
    }
  }
};

bool observes(const SearchOp& op, uint32_t atom) {
  if (op.kind == OpKind::kMembers || op.kind == OpKind::kSize) return test_bit(op.mask, atom);
  return std::binary_search(op.atoms.begin(), op.atoms.end(), atom);
}

// Just-in-time placement of unknown writes (after Lowe's JIT linearization):
// some linearization, if any exists, places each single-atom interchangeable
// unknown write u immediately before the first operation after it that it
// does not commute with. Move u right past everything it commutes with (it
// has no real-time or client-order successors); drop it if a later write
// overwrites its atom first (its effect is never observed; it then takes
// effect "at the end"); drop it if it changes nothing. What remains before a
// definite operation d is a run of such writes on distinct atoms, each
// observed by d, in any order (they commute): we try them in ascending atom
// order only. Other unknown operations simply end a run ("breakers").
bool allowed_by_chain(const SearchOp& op, int variant, const Position& at) {
  if (!op.unknown) {
    for (uint32_t atom : at.chain) {
      if (!observes(op, atom)) return false;
    }
    return true;
  }
  if (op.chainable && variant == 0) return at.chain.empty() || op.atoms[0] > at.chain.back();
  return true;
}

void extend_chain(const SearchOp& op, int variant, Position& at) {
  if (op.chainable && variant == 0) {
    at.chain.push_back(op.atoms[0]);
  } else {
    at.chain.clear();
  }
}

// The operations that may be linearized next: calls before the first return
// that are not waiting for another operation, in invocation order (as Wing &
// Gong's list order: trying the oldest pending operation first finds a
// linearization of a correct history with little backtracking).
void candidates(const EventList& list, const Problem& p, const Position& at,
                std::vector<int>& out) {
  out.clear();
  for (int e = list.first(); e >= 0 && list.call(e); e = list.next(e)) {
    const SearchOp& op = p.ops[static_cast<size_t>(list.op(e))];
    if (op.client_pred >= 0 && !at.done(p.ops[static_cast<size_t>(op.client_pred)])) continue;
    if (op.class_id >= 0 && at.counters[static_cast<size_t>(op.class_id)] != op.class_rank) {
      continue;  // an earlier write of its class comes first
    }
    out.push_back(e);
  }
}

}  // namespace

SearchResult search(const Problem& problem, const Words& initial, Budget& budget,
                    bool track_deepest) {
  SearchResult result;
  EventList list(problem);
  std::unordered_set<Words, WordsHash> visited;
  uint64_t cache_bytes = 0;
  Position at{
      Words(problem.bit_words, 0), std::vector<uint32_t>(problem.class_count, 0), initial, {}};
  struct Frame {
    int node;
    size_t candidate;
    int variant;
    Words state_before;
    std::vector<uint32_t> chain_before;
  };
  std::vector<Frame> stack;
  std::vector<int> next;
  size_t resume = 0;
  int resume_variant = 0;
  size_t deepest_depth = 0;
  // Done once every definite operation is linearized: the unknown ones left
  // can always take effect after everything else (nothing checks them).
  size_t definite_left = problem.definite_count;
  candidates(list, problem, at, next);
  while (definite_left > 0) {
    bool advanced = false;
    for (size_t k = resume; k < next.size() && !advanced; ++k) {
      const int node = next[k];
      const SearchOp& op = problem.ops[static_cast<size_t>(list.op(node))];
      for (int v = k == resume ? resume_variant : 0; v < (op.can_skip ? 2 : 1); ++v) {
        if (!allowed_by_chain(op, v, at)) continue;
        Words state = at.state;
        if (!step(op, state, v)) continue;
        // An unknown write that would change nothing now is never needed
        // here: leaving it for later (or never) keeps strictly more options.
        if (op.unknown && v == 0 && state == at.state) continue;
        std::vector<uint32_t> chain_before = at.chain;
        at.mark(op, true);
        extend_chain(op, v, at);
        Words key = cache_key(at.linearized, problem, state, at.counters, at.chain);
        const uint64_t key_bytes = key.size() * 8 + kCacheEntryOverheadBytes;
        if (!visited.insert(std::move(key)).second) {  // seen: a known dead end
          at.mark(op, false);
          at.chain = std::move(chain_before);
          continue;
        }
        cache_bytes += key_bytes;
        if (!charge(budget, cache_bytes)) {
          result.verdict = SearchVerdict::kOutOfBudget;
          return result;
        }
        stack.push_back({node, k, v, std::move(at.state), std::move(chain_before)});
        at.state = std::move(state);
        if (!op.unknown) --definite_left;
        list.lift(node);
        advanced = true;
        break;
      }
    }
    if (advanced) {
      if (track_deepest && stack.size() > result.deepest.size()) {
        result.deepest.clear();
        for (const Frame& f : stack) result.deepest.emplace_back(list.op(f.node), f.variant);
      }
      candidates(list, problem, at, next);
      resume = 0;
      resume_variant = 0;
      continue;
    }
    // A dead end: the first return's operation cannot be linearized in time.
    if (stack.size() >= deepest_depth) {
      deepest_depth = stack.size();
      for (int e = list.first(); e >= 0; e = list.next(e)) {
        if (!list.call(e)) {
          result.stuck_op = list.op(e);
          break;
        }
      }
    }
    if (stack.empty()) {
      result.verdict = SearchVerdict::kViolation;
      return result;
    }
    Frame frame = std::move(stack.back());
    stack.pop_back();
    at.state = std::move(frame.state_before);
    at.chain = std::move(frame.chain_before);
    const SearchOp& undone = problem.ops[static_cast<size_t>(list.op(frame.node))];
    at.mark(undone, false);
    if (!undone.unknown) ++definite_left;
    list.unlift(frame.node);
    candidates(list, problem, at, next);
    resume = frame.candidate;
    resume_variant = frame.variant + 1;
  }
  result.verdict = SearchVerdict::kLinearizable;
  return result;
}

}  // namespace cset::check::detail
