#include "check/partition.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace cset::check::detail {
namespace {

class UnionFind {
 public:
  explicit UnionFind(size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  size_t find(size_t x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  void unite(size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }

 private:
  std::vector<size_t> parent_;
};

bool is_whole_key(OpKind k) { return k == OpKind::kMembers || k == OpKind::kSize; }

}  // namespace

bool relevant(const Operation& op) {
  if (op.outcome == Outcome::kFail) return false;
  bool read = op.kind == OpKind::kContains || is_whole_key(op.kind);
  return !(read && op.outcome == Outcome::kUnknown);
}

void sort_by_invoke(const History& history, std::vector<size_t>& ops) {
  std::sort(ops.begin(), ops.end(), [&](size_t a, size_t b) {
    return std::pair(history[a].invoke, a) < std::pair(history[b].invoke, b);
  });
}

std::vector<Object> partition(const History& history, bool client_order) {
  const size_t n = history.size();
  // Node ids: operations [0, n), then one per key, then one per atom.
  std::map<std::string, size_t> key_node;
  std::map<Atom, size_t> atom_node;
  size_t next_id = n;
  for (const Operation& op : history) {
    if (!relevant(op)) continue;
    if (!key_node.count(op.key)) key_node[op.key] = next_id++;
    for (const auto* list : {&op.members, &op.result_members}) {
      for (const std::string& m : *list) {
        if (atom_node.emplace(Atom(op.key, m), next_id).second) ++next_id;
      }
    }
  }
  UnionFind uf(next_id);
  std::map<std::string, bool> key_whole;
  for (size_t i = 0; i < n; ++i) {
    const Operation& op = history[i];
    if (!relevant(op)) continue;
    for (const auto* list : {&op.members, &op.result_members}) {
      for (const std::string& m : *list) uf.unite(i, atom_node.at(Atom(op.key, m)));
    }
    if (is_whole_key(op.kind)) {
      uf.unite(i, key_node.at(op.key));
      key_whole[op.key] = true;
    }
  }
  for (const auto& [atom, id] : atom_node) {
    if (key_whole.count(atom.first)) uf.unite(id, key_node.at(atom.first));
  }
  if (client_order) {
    std::map<uint64_t, std::vector<size_t>> by_client;
    for (size_t i = 0; i < n; ++i) {
      // A retried session request may have taken effect through another
      // connection, after later requests of its own: no client order.
      if (relevant(history[i]) && history[i].attempts <= 1) {
        by_client[history[i].client].push_back(i);
      }
    }
    for (auto& [client, ops] : by_client) {
      sort_by_invoke(history, ops);
      std::vector<size_t> active;  // earlier operations still in flight
      for (size_t b : ops) {
        std::erase_if(active, [&](size_t a) { return history[a].complete < history[b].invoke; });
        for (size_t a : active) uf.unite(a, b);
        active.push_back(b);
      }
    }
  }
  std::map<size_t, Object> by_root;
  for (size_t i = 0; i < n; ++i) {
    if (relevant(history[i])) by_root[uf.find(i)].ops.push_back(i);
  }
  for (const auto& [atom, id] : atom_node) {  // map order: atoms sorted
    auto it = by_root.find(uf.find(id));
    if (it != by_root.end()) it->second.atoms.push_back(atom);
  }
  std::vector<Object> objects;
  for (auto& [root, object] : by_root) {
    for (size_t i : object.ops) object.whole_key |= is_whole_key(history[i].kind);
    sort_by_invoke(history, object.ops);
    objects.push_back(std::move(object));
  }
  std::stable_sort(objects.begin(), objects.end(),
                   [](const Object& a, const Object& b) { return a.ops.size() < b.ops.size(); });
  return objects;
}

}  // namespace cset::check::detail
