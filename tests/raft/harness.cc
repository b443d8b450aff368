#include "harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "raft/codec.h"

namespace cset::raft::test {

namespace {

// A broken precondition of the harness itself: stop loudly.
void require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "harness: %s\n", what.c_str());
  std::abort();
}

std::string join_ids(const std::vector<NodeId>& ids) {
  std::string out;
  for (NodeId id : ids) {
    if (!out.empty()) out += ",";
    out += std::to_string(id);
  }
  return out;
}

std::string format_config(const Configuration& c) {
  std::string out = "voters=" + join_ids(c.voters) + " tb=" + std::to_string(c.tiebreaker);
  if (c.joint()) {
    out +=
        " out=" + join_ids(c.outgoing_voters) + " out_tb=" + std::to_string(c.outgoing_tiebreaker);
  }
  if (!c.learners.empty()) out += " learners=" + join_ids(c.learners);
  if (c.mode == QuorumMode::kMajority) out += " majority";
  return out;
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

// ---------------------------------------------------------------------------
// Formatting.

std::string format_entry(const Entry& e) {
  std::string out = std::to_string(e.index) + "@" + std::to_string(e.term);
  switch (e.type) {
    case EntryType::kNormal:
      return out + " " + quote(e.data);
    case EntryType::kNoop:
      return out + " noop";
    case EntryType::kConfig: {
      auto cfg = decode_configuration(e.data);
      return out + " config " + (cfg.ok() ? format_config(*cfg) : "<corrupt>");
    }
  }
  return out + " ?";
}

std::string format_entries(const std::vector<Entry>& entries) {
  std::string out;
  for (const Entry& e : entries) {
    if (!out.empty()) out += ", ";
    out += format_entry(e);
  }
  return out;
}

std::string format_message(const Message& m) {
  std::ostringstream o;
  o << m.from << "->" << m.to << " " << to_string(m.type) << " term=" << m.term;
  switch (m.type) {
    case MessageType::kPreVote:
    case MessageType::kVote:
      o << " index=" << m.index << " log_term=" << m.log_term;
      if (m.transfer) o << " transfer";
      break;
    case MessageType::kPreVoteResponse:
    case MessageType::kVoteResponse:
      if (m.reject) o << " reject";
      break;
    case MessageType::kAppend:
      o << " index=" << m.index << " log_term=" << m.log_term << " commit=" << m.commit;
      if (!m.entries.empty()) o << " entries=[" << format_entries(m.entries) << "]";
      break;
    case MessageType::kAppendResponse:
      o << " index=" << m.index;
      if (m.reject) o << " reject hint=" << m.reject_hint << " hint_term=" << m.reject_hint_term;
      break;
    case MessageType::kHeartbeat:
      o << " commit=" << m.commit;
      if (!m.context.empty()) o << " context=" << quote(m.context);
      break;
    case MessageType::kHeartbeatResponse:
      if (!m.context.empty()) o << " context=" << quote(m.context);
      break;
    case MessageType::kSnapshot:
      o << " snap=" << m.snapshot_meta.index << "@" << m.snapshot_meta.term
        << " offset=" << m.snapshot_offset << " len=" << m.snapshot_chunk.size();
      if (m.snapshot_done) o << " done";
      break;
    case MessageType::kSnapshotResponse:
      o << " index=" << m.index << " offset=" << m.snapshot_offset;
      if (m.reject) o << " reject";
      if (m.snapshot_done) o << " done";
      break;
    case MessageType::kTimeoutNow:
      break;
    case MessageType::kReadIndex:
      o << " context=" << quote(m.context);
      break;
    case MessageType::kReadIndexResponse:
      o << " index=" << m.index << " context=" << quote(m.context);
      break;
  }
  return o.str();
}

std::string format_ready(NodeId id, const Ready& rd) {
  std::ostringstream o;
  o << "> " << id << " ready";
  if (rd.hard_state) {
    o << "\n  hard_state term=" << rd.hard_state->term << " vote=" << rd.hard_state->vote
      << " commit=" << rd.hard_state->commit;
  }
  if (!rd.entries.empty()) o << "\n  entries: " << format_entries(rd.entries);
  if (rd.snapshot) {
    o << "\n  snapshot: " << rd.snapshot->meta.index << "@" << rd.snapshot->meta.term << " "
      << format_config(rd.snapshot->meta.config) << " bytes=" << rd.snapshot->data.size();
  }
  if (!rd.leader_messages.empty()) {
    o << "\n  leader_messages:";
    for (const auto& m : rd.leader_messages) o << "\n    " << format_message(m);
  }
  if (!rd.messages.empty()) {
    o << "\n  messages:";
    for (const auto& m : rd.messages) o << "\n    " << format_message(m);
  }
  if (!rd.committed_entries.empty()) o << "\n  committed: " << format_entries(rd.committed_entries);
  if (!rd.read_states.empty()) {
    o << "\n  read_states:";
    for (const auto& r : rd.read_states) o << " " << r.index << " " << quote(r.context);
  }
  return o.str();
}

std::string expected(const char* raw) {
  std::string s(raw);
  if (!s.empty() && s.front() == '\n') s.erase(0, 1);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// ---------------------------------------------------------------------------
// StateMachine.

void StateMachine::apply(const Entry& e) {
  EXPECT_EQ(e.index, applied + 1) << "entries must be applied in order without gaps";
  applied = e.index;
  if (e.type == EntryType::kNormal) {
    data.emplace_back(e.index, e.data);
  } else if (e.type == EntryType::kConfig) {
    auto cfg = decode_configuration(e.data);
    EXPECT_TRUE(cfg.ok());
    if (cfg.ok()) configs[e.index] = *cfg;
  }
}

void StateMachine::restore(const Snapshot& snap) {
  data.clear();
  configs.clear();
  std::istringstream in(snap.data);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    require(colon != std::string::npos, "bad snapshot image line: " + line);
    data.emplace_back(std::stoull(line.substr(0, colon)), line.substr(colon + 1));
  }
  snapshot_config = snap.meta.config;
  snapshot_index = snap.meta.index;
  applied = snap.meta.index;
}

std::string StateMachine::image(Index index) const {
  require(index >= snapshot_index && index <= applied, "image outside the applied range");
  std::string out;
  for (const auto& [i, d] : data) {
    if (i > index) break;
    out += std::to_string(i) + ":" + d + "\n";
  }
  return out;
}

Configuration StateMachine::config_at(Index index) const {
  auto it = configs.upper_bound(index);
  if (it == configs.begin()) return snapshot_config;
  return std::prev(it)->second;
}

std::vector<std::string> StateMachine::values() const {
  std::vector<std::string> out;
  for (const auto& [i, d] : data) out.push_back(d);
  return out;
}

// ---------------------------------------------------------------------------
// Cluster.

Cluster::Cluster(std::vector<NodeId> ids, OptionsFn tweak, QuorumMode mode,
                 std::map<NodeId, std::vector<Term>> logs, std::map<NodeId, Term> terms)
    : tweak_(std::move(tweak)) {
  std::vector<Member> members;
  for (NodeId id : ids) members.push_back(Member{id, "node" + std::to_string(id)});
  Configuration config = Raft::initial_configuration(members, mode);
  for (NodeId id : ids) {
    Node& n = make_node(id);
    std::vector<Entry> log{Raft::bootstrap_entry(config)};
    Term term = 1;
    Index index = 1;
    for (Term t : logs[id]) {
      ++index;
      log.push_back(
          Entry{t, index, EntryType::kNormal, std::to_string(index) + "@" + std::to_string(t)});
      term = std::max(term, t);
    }
    if (terms.count(id)) term = terms[id];
    n.storage->append(log);
    n.storage->set_hard_state(HardState{term, kNoNode, 1});
    create_raft(n);
  }
}

Node& Cluster::make_node(NodeId id) {
  require(!nodes_.count(id), "node " + std::to_string(id) + " exists");
  Node& n = nodes_[id];
  n.id = id;
  n.storage = std::make_unique<MemoryStorage>();
  n.options.id = id;
  n.options.storage = n.storage.get();
  n.options.election_ticks = 10;
  n.options.heartbeat_ticks = 1;
  n.options.random_seed = 1;
  if (tweak_) tweak_(n.options);
  return n;
}

void Cluster::create_raft(Node& n) {
  Options opts = n.options;
  opts.applied = n.sm.applied;
  auto r = Raft::create(opts);
  require(r.ok(), "Raft::create failed: " + r.status().to_string());
  n.raft = std::move(r).value();
}

Node& Cluster::node(NodeId id) {
  auto it = nodes_.find(id);
  require(it != nodes_.end(), "no node " + std::to_string(id));
  return it->second;
}

Raft& Cluster::raft(NodeId id) {
  Node& n = node(id);
  require(n.raft != nullptr, "node " + std::to_string(id) + " is down");
  return *n.raft;
}

MemoryStorage& Cluster::storage(NodeId id) { return *node(id).storage; }

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

bool Cluster::up(NodeId id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && it->second.raft != nullptr;
}

void Cluster::add_node(NodeId id) { create_raft(make_node(id)); }

void Cluster::crash(NodeId id) {
  note("> " + std::to_string(id) + " crashes");
  node(id).raft.reset();
}

void Cluster::restart(NodeId id, bool keep_state_machine) {
  Node& n = node(id);
  note("> " + std::to_string(id) + " restarts");
  if (!keep_state_machine) {
    n.sm = StateMachine{};
    Snapshot snap = n.storage->snapshot();
    if (!snap.empty()) n.sm.restore(snap);
  }
  create_raft(n);
}

void Cluster::break_disk(NodeId id, bool broken) {
  Node& n = node(id);
  n.disk_broken = broken;
  if (!broken && n.raft) watch(id, [&] { n.raft->set_storage_failed(false); });
}

void Cluster::cut(NodeId a, NodeId b) {
  cuts_.insert({a, b});
  cuts_.insert({b, a});
}

void Cluster::cut_one_way(NodeId from, NodeId to) { cuts_.insert({from, to}); }

void Cluster::isolate(NodeId id) {
  for (const auto& [other, n] : nodes_) {
    if (other != id) cut(id, other);
  }
}

void Cluster::partition(const std::vector<std::vector<NodeId>>& groups) {
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = 0; j < groups.size(); ++j) {
      if (i == j) continue;
      for (NodeId a : groups[i]) {
        for (NodeId b : groups[j]) cuts_.insert({a, b});
      }
    }
  }
}

void Cluster::heal() {
  cuts_.clear();
  drop_filter_ = nullptr;
}

void Cluster::set_drop_filter(std::function<bool(const Message&)> drop) {
  drop_filter_ = std::move(drop);
}

bool Cluster::deliverable(const Message& m) const {
  if (!up(m.to)) return false;
  if (cuts_.count({m.from, m.to})) return false;
  if (drop_filter_ && drop_filter_(m)) return false;
  return true;
}

size_t Cluster::deliver(const std::function<bool(const Message&)>& pred) {
  if (queue_hook_) queue_hook_(queue_);
  std::deque<Message> pending = std::move(queue_);
  queue_.clear();
  std::deque<Message> kept;
  size_t stepped = 0;
  for (auto& m : pending) {
    if (pred && !pred(m)) {
      kept.push_back(std::move(m));
      continue;
    }
    if (!deliverable(m)) {
      note("  drop " + format_message(m));
      continue;
    }
    step(m);
    ++stepped;
  }
  // Nothing is queued while stepping (messages wait in each Raft's Ready).
  for (auto& m : queue_) kept.push_back(std::move(m));
  queue_ = std::move(kept);
  return stepped;
}

size_t Cluster::drop_queued(const std::function<bool(const Message&)>& pred) {
  size_t before = queue_.size();
  std::erase_if(queue_, pred);
  return before - queue_.size();
}

void Cluster::step(const Message& m) {
  watch(m.to, [&] { raft(m.to).step(m); });
}

void Cluster::watch(NodeId id, const std::function<void()>& fn) {
  Raft& r = raft(id);
  Role role = r.role();
  Term term = r.term();
  fn();
  if (r.role() != role || r.term() != term) {
    note(std::to_string(id) + " becomes " + to_string(r.role()) +
         " term=" + std::to_string(r.term()));
  }
}

// ---------------------------------------------------------------------------
// The Ready loop.

Ready Cluster::take_ready(NodeId id) {
  Ready rd = raft(id).ready();
  if (trace_) note(format_ready(id, rd));
  // The persistence contract (raft.h): only a leader's appends, heartbeats,
  // snapshot chunks and TimeoutNow may go before the batch is durable.
  for (const auto& m : rd.leader_messages) {
    bool early = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                 m.type == MessageType::kSnapshot || m.type == MessageType::kTimeoutNow;
    EXPECT_TRUE(early) << "sent before persisting: " << format_message(m);
  }
  return rd;
}

void Cluster::check_durable(NodeId id, const Ready& rd) {
  // Every vote and acknowledgement in `messages` is backed by durable state.
  const MemoryStorage& s = storage(id);
  for (const auto& m : rd.messages) {
    if (m.reject) continue;
    switch (m.type) {
      case MessageType::kVoteResponse:
        EXPECT_EQ(s.hard_state().term, m.term) << format_message(m);
        EXPECT_EQ(s.hard_state().vote, m.to) << "vote not durable: " << format_message(m);
        break;
      case MessageType::kVote:
        EXPECT_EQ(s.hard_state().term, m.term) << format_message(m);
        EXPECT_EQ(s.hard_state().vote, id) << "own vote not durable: " << format_message(m);
        break;
      case MessageType::kAppendResponse:
        EXPECT_GE(s.last_index(), m.index) << "ack not durable: " << format_message(m);
        if (s.last_index() >= m.index && m.index >= s.snapshot_meta().index) {
          auto t = s.term(m.index);
          EXPECT_TRUE(t.ok() && *t == raft(id).log().term_or_zero(m.index))
              << "acknowledged entry differs from the durable one: " << format_message(m);
        }
        break;
      case MessageType::kSnapshotResponse:
        if (m.snapshot_done) {
          EXPECT_TRUE(s.snapshot_meta().index >= m.index || s.last_index() >= m.index)
              << "snapshot ack not durable: " << format_message(m);
        }
        break;
      default:
        break;
    }
  }
}

bool Cluster::persist(NodeId id, const Ready& rd) {
  Node& n = node(id);
  bool has_writes = rd.hard_state || !rd.entries.empty() || rd.snapshot;
  if (n.disk_broken && has_writes) return false;
  if (rd.snapshot) n.storage->apply_snapshot(*rd.snapshot);
  if (!rd.entries.empty()) n.storage->append(rd.entries);
  if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
  return true;
}

void Cluster::send(const std::vector<Message>& msgs) {
  for (const auto& m : msgs) queue_.push_back(m);
}

void Cluster::apply(NodeId id, const Ready& rd) {
  Node& n = node(id);
  if (rd.snapshot) {
    n.sm.restore(*rd.snapshot);
    n.installed.push_back(*rd.snapshot);
  }
  for (const auto& e : rd.committed_entries) n.sm.apply(e);
  for (const auto& r : rd.read_states) n.read_states.push_back(r);
}

void Cluster::advance(NodeId id, const Ready& rd) {
  watch(id, [&] { raft(id).advance(rd); });
}

bool Cluster::handle_ready(NodeId id) {
  if (!raft(id).has_ready()) return false;
  Ready rd = take_ready(id);
  send(rd.leader_messages);
  if (!persist(id, rd)) {
    note("  persist failed");
    watch(id, [&] { raft(id).set_storage_failed(true); });
    return true;
  }
  check_durable(id, rd);
  send(rd.messages);
  apply(id, rd);
  advance(id, rd);
  return true;
}

void Cluster::process_readies() {
  for (int guard = 0; guard < 10000; ++guard) {
    bool any = false;
    for (auto& [id, n] : nodes_) {
      if (!n.raft) continue;
      while (handle_ready(id)) any = true;
    }
    if (!any) return;
  }
  ADD_FAILURE() << "process_readies did not settle";
}

void Cluster::stabilize(int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    process_readies();
    if (queue_.empty()) return;
    deliver();
  }
  ADD_FAILURE() << "stabilize did not settle in " << max_rounds << " rounds";
}

// ---------------------------------------------------------------------------
// Time and client operations.

void Cluster::tick(NodeId id, int n) {
  for (int i = 0; i < n; ++i) watch(id, [&] { raft(id).tick(); });
}

void Cluster::run(int n) {
  for (int i = 0; i < n; ++i) {
    for (auto& [id, node] : nodes_) {
      if (node.raft) tick(id);
    }
    stabilize();
  }
}

bool Cluster::campaign(NodeId id) {
  Raft& r = raft(id);
  int limit = 2 * node(id).options.election_ticks + 1;
  for (int i = 0; i < limit && r.role() == Role::kFollower; ++i) tick(id);
  stabilize();
  return r.role() == Role::kLeader;
}

NodeId Cluster::leader() const {
  NodeId best = kNoNode;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.raft && n.raft->role() == Role::kLeader && n.raft->term() >= best_term) {
      best = id;
      best_term = n.raft->term();
    }
  }
  return best;
}

Result<Index> Cluster::propose(NodeId id, std::vector<std::string> batch) {
  std::string what;
  for (const auto& d : batch) what += (what.empty() ? "" : ",") + quote(d);
  Result<Index> r = Status(Code::kInvalid, "unset");
  watch(id, [&] { r = raft(id).propose(std::move(batch)); });
  note("> " + std::to_string(id) + " propose " + what + " -> " +
       (r.ok() ? std::to_string(*r) : r.status().to_string()));
  return r;
}

Status Cluster::read_index(NodeId id, std::string context) {
  note("> " + std::to_string(id) + " read_index " + quote(context));
  return raft(id).read_index(std::move(context));
}

void Cluster::compact(NodeId id, Index index, uint64_t keep) {
  Node& n = node(id);
  auto term = n.storage->term(index);
  require(term.ok(), "compact: no term at " + std::to_string(index));
  Snapshot snap;
  snap.meta.index = index;
  snap.meta.term = *term;
  snap.meta.config = n.sm.config_at(index);
  snap.data = n.sm.image(index);
  Status s = n.storage->create_snapshot(std::move(snap), keep);
  require(s.is_ok(), "create_snapshot: " + s.to_string());
  note("> " + std::to_string(id) + " compacts to " + std::to_string(index));
}

void Cluster::note(std::string line) {
  if (trace_) transcript_.push_back(std::move(line));
}

std::string Cluster::take_transcript() {
  std::string out;
  for (const auto& l : transcript_) {
    if (!out.empty()) out += "\n";
    out += l;
  }
  transcript_.clear();
  return out;
}

}  // namespace cset::raft::test
