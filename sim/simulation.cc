#include "sim/simulation.h"

#include <algorithm>
#include <cassert>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <sstream>

#include "raft/codec.h"
#include "set/command.h"
#include "set/memory_kv.h"
#include "set/state_machine.h"
#include "sim/check_history.h"
#include "sim/sim_storage.h"

namespace cset::sim {

namespace {

using raft::Index;
using raft::NodeId;
using raft::Term;

constexpr uint64_t kMs = 1000;  // virtual time is in microseconds
constexpr uint64_t kTickUs = 10 * kMs;
constexpr uint64_t kUnsyncedWriteUs = 20;  // a write(2) into the page cache, no fsync
constexpr int kElectionTicks = 10;
constexpr uint64_t kWriteTimeoutUs = 1500 * kMs;
constexpr uint64_t kClientTimeoutUs = 2000 * kMs;
constexpr uint64_t kSnapshotEntries = 40;
constexpr uint64_t kMaxMembersReply = 1 << 20;
constexpr uint64_t kSettleLimitUs = 30'000 * kMs;
// The leaders' wall clock at virtual time 0 (ms since the Unix epoch): the
// stamp of every proposed command (docs/sessions.md, "Time comes from the log").
constexpr uint64_t kEpochMs = 1'700'000'000'000;

bool is_write(SimOp::Kind k) {
  return k == SimOp::Kind::kAdd || k == SimOp::Kind::kAddStrict || k == SimOp::Kind::kRem ||
         k == SimOp::Kind::kOpenSession;
}

/// Deterministic random numbers (splitmix64); the only source in a run.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

/// FNV-1a over the run's observable events.
class TraceHash {
 public:
  void add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h_ ^= (v >> (8 * i)) & 0xff;
      h_ *= 0x100000001b3ULL;
    }
  }
  void add(const std::string& s) {
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 0x100000001b3ULL;
    }
    add(s.size());
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

/// What travels between simulated nodes: raft messages and the runtime's
/// request forwarding (a follower hands a client's write to the leader).
struct Packet {
  enum class Kind : uint8_t { kRaft, kForward, kForwardReply } kind = Kind::kRaft;
  raft::Message raft;
  uint64_t op_id = 0;
  std::string command;  // kForward: the encoded command
  // kForwardReply: the outcome at the leader.
  SimOp::Outcome outcome = SimOp::Outcome::kFail;
  uint64_t count = 0;
  bool exists = false;
  bool duplicate = false;  // answered from the session table
  uint64_t index = 0;      // the applied entry's index (CSET.SESSION: the session id)
  std::string error;       // the error word of a refusal (SESSIONEXPIRED, ERR ...)
};

struct Proposal {
  Term term;
  uint64_t op_id;
  NodeId origin;  // where the client waits
};

struct Node {
  NodeId id = 0;
  bool up = false;
  bool removed = false;
  // A new leader that will crash once its first writes are on its own disk;
  // meanwhile nothing it sends arrives (crash_new_leader_).
  bool doomed = false;
  raft::NodeId last_leader = 0;  // to notice a change of leader
  uint64_t incarnation = 0;      // bumped at every restart; stale events are dropped
  double clock_rate = 1.0;
  uint64_t fsync_us = 500;
  std::unique_ptr<SimRaftStorage> disk;
  std::unique_ptr<set::MemoryKv> kv;
  std::unique_ptr<set::StateMachine> sm;
  std::unique_ptr<raft::Raft> raft;
  bool persisting = false;
  raft::Role last_role = raft::Role::kFollower;
  std::map<Index, Proposal> proposals;
  std::map<std::string, uint64_t> reads;                 // ReadIndex context -> op
  std::vector<std::pair<Index, uint64_t>> ready_reads;   // waiting for apply
  std::map<uint64_t, std::deque<uint64_t>> connections;  // client -> queued ops
  std::set<uint64_t> forwarded;                          // ops handed to the leader
  uint64_t read_seq = 0;
};

std::string member_name(uint64_t i) { return "m" + std::to_string(i); }
std::string key_name(uint64_t i) { return "k" + std::to_string(i); }

class Sim {
 public:
  explicit Sim(const SimOptions& o) : opt_(o), rng_(o.seed) {}
  SimResult run();

 private:
  // Events.
  void at(uint64_t t, std::function<void()> fn) { queue_.push(Event{t, seq_++, std::move(fn)}); }
  void after(uint64_t dt, std::function<void()> fn) { at(now_ + dt, std::move(fn)); }
  void at_node(NodeId id, uint64_t dt, std::function<void(Node&)> fn) {
    uint64_t inc = nodes_.at(id).incarnation;
    after(dt, [this, id, inc, fn = std::move(fn)] {
      Node& n = nodes_.at(id);
      if (!n.up || n.incarnation != inc) return;
      fn(n);
    });
  }

  // Nodes.
  void create_node(NodeId id, bool bootstrap, const raft::Configuration& initial);
  void start_node(Node& n);
  void crash_node(Node& n);
  void restart_later(NodeId id);
  void schedule_tick(Node& n);
  void process_ready(Node& n);
  void finish_ready(Node& n, raft::Ready rd);
  void apply_entries(Node& n, const std::vector<raft::Entry>& entries);
  void maybe_snapshot(Node& n);
  void after_input(Node& n);
  void check_role(Node& n);

  // Network.
  void send_packet(NodeId from, NodeId to, Packet p, uint64_t extra_us = 0);
  void deliver(Node& n, const Packet& p);
  bool link_up(NodeId from, NodeId to) const { return !blocked_.count({from, to}); }

  // Client operations at a node.
  // `counted`: new client operations (retries and CSET.SESSION are not).
  void client_submit(int client, std::vector<SimOp> ops, bool counted = true);
  void node_receive_op(Node& n, uint64_t op_id);
  void node_start_op(Node& n, uint64_t op_id);
  void node_retry_waiting(Node& n, bool leader_changed = false);
  void node_complete(Node& n, uint64_t op_id, SimOp::Outcome outcome, uint64_t count = 0,
                     bool present = false, bool exists = false,
                     std::vector<std::string> members = {}, std::string error = {});
  void node_complete(Node& n, uint64_t op_id, SimOp res);
  void answer_read(Node& n, uint64_t op_id);
  std::string encode_op(const SimOp& op) const;
  void stamp(std::string& data) const { set::stamp_command_time(data, kEpochMs + now_ / kMs); }
  std::vector<raft::Entry> reapply_session_retries(const std::vector<raft::Entry>& entries);
  void client_reply(uint64_t op_id, SimOp result);
  void client_done(int client);
  void client_next(int client);
  SimOp make_op(int client);
  // Client sessions (SimOptions::sessions).
  // A node's connection for `op`: its client's, or a new one for a retry.
  static uint64_t connection_of(const SimOp& op) {
    return op.attempts > 1 ? (uint64_t{1} << 40) + op.id : static_cast<uint64_t>(op.client);
  }
  bool session_client(int client) const { return opt_.sessions && client >= 0 && client % 2 == 1; }
  void open_session(int client);
  void session_opened(const SimOp& wire);
  void send_attempt(uint64_t logical_id);
  void attempt_done(const SimOp& wire);
  void finish_logical(SimOp& logical, SimOp::Outcome outcome);
  void count_outcome(SimOp::Outcome outcome);  // one finished logical operation
  // The first key of the current generation (SimOptions::ops_per_key).
  uint64_t key_base() const {
    if (opt_.ops_per_key <= 0) return 0;
    return static_cast<uint64_t>(issued_ / (opt_.keys * opt_.ops_per_key)) * opt_.keys;
  }

  // Faults.
  void schedule_fault();
  void inject_fault();
  void partition_random();
  void heal();
  void membership_change();

  // Checks.
  void fail(const std::string& checker, const std::string& property, const std::string& text);
  void check_log_matching();
  void check_leader_completeness(Node& n);
  void check_commit_safety(Node& n, raft::Index index, raft::Term term);
  void check_linearizability();
  bool settle();

  std::vector<NodeId> member_ids() const;
  NodeId current_leader() const;

  struct Event {
    uint64_t t;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  SimOptions opt_;
  Rng rng_;
  TraceHash trace_;
  SimResult result_;
  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::map<NodeId, Node> nodes_;
  NodeId next_id_ = 1;

  // Network state.
  std::set<std::pair<NodeId, NodeId>> blocked_;
  double loss_ = 0.0;
  double duplicate_ = 0.0;
  uint64_t delay_max_us_ = 2000;
  std::map<std::pair<NodeId, NodeId>, uint64_t> stream_last_us_;  // FIFO per link

  // Clients and history.
  std::map<uint64_t, SimOp> ops_;  // id -> op as sent (a plain op's record is its history)
  // Session clients: their session and the sequence numbers not yet answered.
  struct SessionClient {
    uint64_t session = 0;  // 0: none open
    bool opening = false;
    uint64_t next_seq = 1;
    std::set<uint64_t> unacked;
  };
  std::map<int, SessionClient> session_clients_;
  // Session writes as logical requests (their history records), and each
  // wire attempt's logical request.
  std::map<uint64_t, SimOp> logical_;
  std::map<uint64_t, uint64_t> attempt_of_;  // wire op id -> logical id
  // Bug reapply_session_retry: the first log index of each (session, seq).
  std::map<std::pair<uint64_t, uint64_t>, Index> first_seq_index_;
  std::map<uint64_t, uint64_t> op_deadline_;
  std::map<int, int> client_outstanding_;
  uint64_t next_op_ = 1;
  int issued_ = 0;
  bool chaos_ = true;
  // Armed by a fault: the next leader to apply a client write crashes right
  // after acknowledging it, before any follower hears the new commit index.
  bool crash_leader_on_commit_ = false;
  // Armed by a fault: the next node to become leader crashes once its no-op
  // is on its own disk and before any other node has it, leaving an entry of
  // its term that nobody else holds (Figure 8's S5).
  bool crash_new_leader_ = false;
  bool stopped_ = false;

  // Invariant state.
  std::map<Term, NodeId> leader_of_term_;
  std::map<Index, std::pair<Term, std::string>> applied_;  // index -> (term, data)
  std::map<Index, Term> commit_term_bound_;                // >= the term each entry committed in
};

// ---------------------------------------------------------------------------
// Nodes.

void Sim::create_node(NodeId id, bool bootstrap, const raft::Configuration& initial) {
  Node& n = nodes_[id];
  n.id = id;
  n.disk = std::make_unique<SimRaftStorage>();
  set::MemoryKv::Options ko;
  ko.model_power_loss = true;
  n.kv = std::make_unique<set::MemoryKv>(ko);
  n.clock_rate = 0.8 + 0.4 * static_cast<double>(rng_.below(1000)) / 1000.0;
  if (bootstrap) {
    n.disk->append({raft::Raft::bootstrap_entry(initial)});
    n.disk->set_hard_state(raft::HardState{1, raft::kNoNode, 1});
    n.disk->sync();
  }
  start_node(n);
}

void Sim::start_node(Node& n) {
  n.up = true;
  n.incarnation++;
  n.persisting = false;
  n.proposals.clear();
  n.reads.clear();
  n.ready_reads.clear();
  n.connections.clear();
  n.forwarded.clear();
  n.sm = std::make_unique<set::StateMachine>(n.kv.get());
  Status s = n.sm->load();
  if (!s) return fail("recovery", "state machine load", s.to_string());
  raft::Snapshot snap = n.disk->snapshot();
  if (!snap.empty() && n.sm->applied_index() < snap.meta.index) {
    s = n.sm->restore_snapshot(snap.data, snap.meta.index);
    if (!s) return fail("recovery", "snapshot restore at start", s.to_string());
  }
  raft::Options ro;
  ro.id = n.id;
  ro.storage = n.disk.get();
  ro.applied = n.sm->applied_index();
  ro.election_ticks = kElectionTicks;
  ro.heartbeat_ticks = 1;
  ro.random_seed = rng_.next();
  ro.snapshot_chunk_bytes = 512;
  // Sometimes one entry an AppendEntries, so that a new leader's old-term
  // entries and its own no-op reach followers in separate messages (the
  // Figure 8 window).
  ro.max_append_bytes = rng_.chance(0.5) ? 1 : 4096;
  ro.max_inflight_messages = 8;
  ro.bugs = opt_.raft_bugs;
  auto r = raft::Raft::create(ro);
  if (!r.ok()) return fail("recovery", "raft start", r.status().to_string());
  n.raft = std::move(r).value();
  n.last_role = n.raft->role();
  schedule_tick(n);
  after_input(n);
}

void Sim::crash_node(Node& n) {
  if (!n.up) return;
  n.up = false;
  n.doomed = false;
  result_.stats.crashes++;
  auto rand = [this](uint64_t k) { return rng_.below(k); };
  result_.stats.lost_unsynced_writes += n.disk->crash(rand);
  if (n.kv->drop_unsynced().is_ok()) {
  }
  n.raft.reset();
  n.sm.reset();
  trace_.add(0xC0 + n.id);
}

void Sim::restart_later(NodeId id) {
  after(rng_.range(50, 2000) * kMs, [this, id] {
    Node& m = nodes_.at(id);
    if (!m.up && chaos_) start_node(m);
  });
}

void Sim::schedule_tick(Node& n) {
  uint64_t dt = static_cast<uint64_t>(static_cast<double>(kTickUs) * n.clock_rate);
  at_node(n.id, dt, [this](Node& m) {
    m.raft->tick();
    node_retry_waiting(m);
    after_input(m);
    schedule_tick(m);
  });
}

void Sim::after_input(Node& n) {
  check_role(n);
  if (n.raft->leader_id() != n.last_leader) {
    // As csetd: waiting requests try the new leader at once.
    n.last_leader = n.raft->leader_id();
    if (n.last_leader != 0) at_node(n.id, 0, [this](Node& m) { node_retry_waiting(m, true); });
  }
  if (!n.persisting) {
    process_ready(n);
    return;
  }
  // The leader keeps replicating while its own fsync runs (§10.2.1).
  for (auto& m : n.raft->take_leader_messages()) {
    Packet p;
    p.raft = std::move(m);
    send_packet(n.id, p.raft.to, std::move(p));
  }
}

void Sim::check_role(Node& n) {
  raft::Role role = n.raft->role();
  if (role == raft::Role::kLeader && n.last_role != raft::Role::kLeader) {
    result_.stats.leader_elections++;
    Term t = n.raft->term();
    trace_.add(0x1EAD0000 + t * 16 + n.id);
    auto [it, fresh] = leader_of_term_.emplace(t, n.id);
    if (!fresh && it->second != n.id) {
      fail("raft-invariants", "election safety",
           "term " + std::to_string(t) + " has two leaders: " + std::to_string(it->second) +
               " and " + std::to_string(n.id));
    }
    check_leader_completeness(n);
    if (crash_new_leader_) {
      crash_new_leader_ = false;
      n.doomed = true;
    }
  }
  n.last_role = role;
}

void Sim::process_ready(Node& n) {
  // One Ready at a time (raft.h: no ready() before advance()); an answer
  // served from inside finish_ready() may already have started the next.
  if (!n.up || n.persisting || !n.raft->has_ready()) return;
  raft::Ready rd = n.raft->ready();
  if (!n.raft->log_read_error().is_ok()) {
    return fail("raft-invariants", "committed entries readable",
                n.raft->log_read_error().to_string());
  }
  for (auto& m : rd.leader_messages) {
    Packet p;
    p.raft = std::move(m);
    send_packet(n.id, p.raft.to, std::move(p));
  }
  rd.leader_messages.clear();
  // Write to the disk now; it is durable once the fsync completes.
  if (rd.snapshot) n.disk->apply_snapshot(*rd.snapshot);
  n.disk->append(rd.entries);
  if (rd.hard_state) n.disk->set_hard_state(*rd.hard_state);
  if (opt_.node_bugs.ack_before_fsync) {
    // BUG (test only): acknowledgements leave before the data is durable.
    for (auto& m : rd.messages) {
      Packet p;
      p.raft = std::move(m);
      send_packet(n.id, p.raft.to, std::move(p));
    }
    rd.messages.clear();
  }
  if (opt_.node_bugs.apply_before_commit && !rd.entries.empty()) {
    // BUG (test only): entries applied as soon as they are appended.
    apply_entries(n, rd.entries);
  }
  n.persisting = true;
  uint64_t inc = n.incarnation;
  NodeId id = n.id;
  // A commit-index-only hard state is written without an fsync (raft.h):
  // it stays unsynced, and a crash may lose it.
  const uint64_t delay_us = rd.must_sync ? n.fsync_us : kUnsyncedWriteUs;
  after(delay_us, [this, id, inc, rd = std::move(rd)]() mutable {
    Node& m = nodes_.at(id);
    if (!m.up || m.incarnation != inc) return;
    finish_ready(m, std::move(rd));
  });
}

void Sim::finish_ready(Node& n, raft::Ready rd) {
  if (rd.must_sync && (!opt_.node_bugs.ack_before_fsync || rng_.chance(0.2))) n.disk->sync();
  if (n.doomed) {
    crash_node(n);
    restart_later(n.id);
    return;
  }
  for (auto& m : rd.messages) {
    Packet p;
    p.raft = std::move(m);
    send_packet(n.id, p.raft.to, std::move(p));
  }
  if (rd.snapshot) {
    Status s = n.sm->restore_snapshot(rd.snapshot->data, rd.snapshot->meta.index);
    if (!s) return fail("raft-invariants", "snapshot install", s.to_string());
    result_.stats.snapshots_installed++;
    trace_.add(0x5AA0000 + rd.snapshot->meta.index);
  }
  apply_entries(n, rd.committed_entries);
  for (auto& rs : rd.read_states) {
    auto it = n.reads.find(rs.context);
    if (it == n.reads.end()) continue;
    n.ready_reads.emplace_back(rs.index, it->second);
    n.reads.erase(it);
  }
  n.raft->advance(rd);
  n.persisting = false;
  if (crash_leader_on_commit_ && n.raft->role() == raft::Role::kLeader &&
      std::any_of(rd.committed_entries.begin(), rd.committed_entries.end(),
                  [](const raft::Entry& e) {
                    return e.type == raft::EntryType::kNormal && !e.data.empty();
                  })) {
    // Where Figure 8 (an old-term entry counted toward commitment) and a new
    // leader's stale ReadIndex show up.
    crash_leader_on_commit_ = false;
    crash_node(n);
    restart_later(n.id);
    return;
  }
  // Serve reads whose read index is applied.
  auto ready = std::move(n.ready_reads);
  n.ready_reads.clear();
  for (auto& [index, op] : ready) {
    if (n.sm->applied_index() >= index) {
      answer_read(n, op);
    } else {
      n.ready_reads.emplace_back(index, op);
    }
  }
  maybe_snapshot(n);
  check_role(n);
  process_ready(n);
}

void Sim::apply_entries(Node& n, const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  for (const auto& e : entries) {
    if (e.index <= n.sm->applied_index()) continue;
    auto [it, fresh] = applied_.emplace(e.index, std::make_pair(e.term, e.data));
    if (fresh) {
      commit_term_bound_[e.index] = n.raft->term();
      check_commit_safety(n, e.index, e.term);
    }
    if (!fresh && (it->second.first != e.term || it->second.second != e.data)) {
      fail("raft-invariants", "state machine safety",
           "node " + std::to_string(n.id) + " applied (term " + std::to_string(e.term) +
               ") at index " + std::to_string(e.index) + " where another node applied term " +
               std::to_string(it->second.first));
    }
  }
  auto results = opt_.node_bugs.reapply_session_retry
                     ? n.sm->apply(reapply_session_retries(entries), false)
                     : n.sm->apply(entries, false);
  if (!results.ok()) {
    return fail("raft-invariants", "apply", results.status().to_string());
  }
  for (const auto& r : *results) {
    trace_.add(r.index * 31 + n.id);
    if (r.type == raft::EntryType::kConfig) {
      auto cfg = raft::decode_configuration(n.sm->config_bytes());
      // Removed once a configuration lists this id as removed (as the server
      // does): a joining node replaying the log from its start applies older
      // configurations without itself, which is not a removal.
      if (cfg.ok() && std::binary_search(cfg->removed.begin(), cfg->removed.end(), n.id)) {
        n.removed = true;
      }
    }
    auto it = n.proposals.find(r.index);
    if (it == n.proposals.end()) continue;
    Proposal prop = it->second;
    n.proposals.erase(it);
    // Applied entries are contiguous: the result's entry is found by index.
    Term applied_term = entries[r.index - entries.front().index].term;
    Packet reply;
    reply.kind = Packet::Kind::kForwardReply;
    reply.op_id = prop.op_id;
    if (applied_term != prop.term) {
      // Another entry took this index: ours can never commit (it is never
      // re-proposed), so the request certainly did not happen.
      reply.outcome = SimOp::Outcome::kFail;
    } else {
      reply.outcome = SimOp::Outcome::kOk;
      reply.count = r.count;
      reply.exists = r.status.code() == Code::kExists;
      reply.duplicate = r.duplicate;
      reply.index = r.index;
      if (!r.status.is_ok() && r.status.code() != Code::kExists) {
        // Refused by the state machine, nothing changed: an unknown or
        // expired session, or a session request the client got wrong.
        reply.outcome = SimOp::Outcome::kFail;
        reply.error = r.status.code() == Code::kSessionExpired ? "SESSIONEXPIRED"
                                                               : "ERR " + r.status.to_string();
      }
    }
    if (prop.origin == n.id) {
      deliver(n, reply);
    } else {
      send_packet(n.id, prop.origin, std::move(reply));
    }
  }
  // Proposals below the applied index that were never applied (truncated
  // and overwritten before this node applied them) cannot happen: every
  // index is applied once. Anything else waits.
}

// BUG (test only, NodeBugs::reapply_session_retry): an entry whose (session,
// sequence) an earlier log entry already carried is applied as a plain
// command, as if the session table were not consulted. Decided by the log
// alone, so every node applies the same thing (no raft invariant breaks);
// only the client history can show it.
std::vector<raft::Entry> Sim::reapply_session_retries(const std::vector<raft::Entry>& entries) {
  std::vector<raft::Entry> out = entries;
  for (raft::Entry& e : out) {
    if (e.type != raft::EntryType::kNormal) continue;
    auto cmd = set::decode_command(e.data);
    if (!cmd.ok() || !cmd->session) continue;
    // Every node applies the log in order, so the first node to apply an
    // index has seen every earlier (session, sequence).
    auto [it, fresh] = first_seq_index_.emplace(
        std::pair(cmd->session->session_id, cmd->session->sequence), e.index);
    if (fresh || it->second >= e.index) continue;
    cmd->session.reset();
    e.data = set::encode_command(*cmd);
  }
  return out;
}

void Sim::maybe_snapshot(Node& n) {
  Index applied = n.sm->applied_index();
  raft::Snapshot current = n.disk->snapshot();
  if (applied < current.meta.index + kSnapshotEntries) return;
  auto cfg = raft::decode_configuration(n.sm->config_bytes());
  auto term = n.disk->term(applied);
  if (!cfg.ok() || !term.ok()) return;
  // The state machine's data must be durable before the log is compacted.
  set::WriteBatch empty;
  (void)n.kv->write(empty, true);
  auto data = n.sm->encode_snapshot();
  if (!data.ok()) return fail("raft-invariants", "snapshot encode", data.status().to_string());
  raft::Snapshot snap;
  snap.meta.index = applied;
  snap.meta.term = *term;
  snap.meta.config = *cfg;
  snap.data = std::move(data).value();
  n.disk->create_snapshot(snap, rng_.below(10));
  n.disk->sync();
  result_.stats.snapshots_taken++;
}

// ---------------------------------------------------------------------------
// Network.

void Sim::send_packet(NodeId from, NodeId to, Packet p, uint64_t extra_us) {
  result_.stats.messages_sent++;
  if (!link_up(from, to) || nodes_.at(from).doomed ||
      (p.kind == Packet::Kind::kRaft && rng_.chance(loss_))) {
    result_.stats.messages_dropped++;
    return;
  }
  // Raft tolerates duplicated messages; the runtime's forwarding travels on a
  // stream connection that never duplicates (a duplicated forward would be
  // proposed twice: exactly what DESIGN.md forbids).
  int copies = p.kind == Packet::Kind::kRaft && rng_.chance(duplicate_) ? 2 : 1;
  if (copies == 2) result_.stats.messages_duplicated++;
  for (int i = 0; i < copies; ++i) {
    uint64_t delay = 100 + rng_.below(delay_max_us_) + extra_us;
    if (p.kind != Packet::Kind::kRaft) {
      // Forwards and their replies travel on one stream connection per pair
      // of nodes (TCP): they arrive in the order sent. Raft messages may be
      // reordered (raft tolerates it).
      uint64_t& last = stream_last_us_[{from, to}];
      uint64_t when = std::max(now_ + delay, last + 1);
      last = when;
      delay = when - now_;
    }
    after(delay, [this, from, to, p] {
      if (!nodes_.count(to)) return;
      Node& n = nodes_.at(to);
      if (!n.up || !link_up(from, to)) return;
      deliver(n, p);
    });
  }
}

void Sim::deliver(Node& n, const Packet& p) {
  result_.stats.events++;
  switch (p.kind) {
    case Packet::Kind::kRaft:
      trace_.add((static_cast<uint64_t>(p.raft.type) << 56) ^ (p.raft.term << 32) ^
                 (p.raft.from << 8) ^ p.raft.to ^ (p.raft.index << 12));
      n.raft->step(p.raft);
      after_input(n);
      break;
    case Packet::Kind::kForward: {
      // At the leader: stamped with its clock and proposed once; never
      // re-sent by anyone.
      std::string data = p.command;
      stamp(data);
      auto idx = n.raft->propose({data});
      if (!idx.ok()) {
        Packet reply;
        reply.kind = Packet::Kind::kForwardReply;
        reply.op_id = p.op_id;
        reply.outcome = SimOp::Outcome::kFail;  // never proposed
        send_packet(n.id, p.raft.from, std::move(reply));
      } else {
        n.proposals[*idx] = Proposal{n.raft->term(), p.op_id, p.raft.from};
      }
      after_input(n);
      break;
    }
    case Packet::Kind::kForwardReply: {
      n.forwarded.erase(p.op_id);
      SimOp res;
      res.outcome = p.outcome;
      if (p.outcome == SimOp::Outcome::kOk) {
        res.count = p.count;
        res.exists = p.exists;
        res.deduplicated = p.duplicate;
        res.session = p.index;  // CSET.SESSION: the new session's id
      } else {
        res.error = p.error.empty() ? "NOQUORUM" : p.error;
      }
      node_complete(n, p.op_id, std::move(res));
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// Clients.

SimOp Sim::make_op(int client) {
  SimOp op;
  op.id = next_op_++;
  op.client = client;
  std::vector<NodeId> live = member_ids();
  op.node = live[rng_.below(live.size())];
  op.key = key_name(key_base() + rng_.below(opt_.keys));
  uint64_t r = rng_.below(100);
  if (r < 30) {
    op.kind = SimOp::Kind::kAdd;
  } else if (r < 40) {
    op.kind = SimOp::Kind::kAddStrict;
  } else if (r < 60) {
    op.kind = SimOp::Kind::kRem;
  } else if (r < 80) {
    op.kind = SimOp::Kind::kContains;
  } else if (r < 92) {
    op.kind = SimOp::Kind::kMembers;
  } else {
    op.kind = SimOp::Kind::kSize;
  }
  int nmembers = 1;
  if ((op.kind == SimOp::Kind::kAdd || op.kind == SimOp::Kind::kRem) && rng_.chance(0.2)) {
    nmembers = 2;
  }
  if (op.kind != SimOp::Kind::kMembers && op.kind != SimOp::Kind::kSize) {
    std::set<std::string> chosen;
    while (static_cast<int>(chosen.size()) < nmembers) {
      chosen.insert(member_name(rng_.below(opt_.members)));
    }
    op.members.assign(chosen.begin(), chosen.end());
  }
  return op;
}

void Sim::client_next(int client) {
  if (stopped_ || !chaos_ || issued_ >= opt_.ops) return;
  if (session_client(client) && session_clients_[client].session == 0) {
    open_session(client);  // client_next again once it is open
    return;
  }
  // Some clients pipeline several requests on one connection.
  int n = rng_.chance(0.2) ? static_cast<int>(rng_.range(2, 4)) : 1;
  std::vector<SimOp> ops;
  NodeId node = 0;
  std::string key;
  for (int i = 0; i < n && issued_ < opt_.ops; ++i) {
    SimOp op = make_op(client);
    if (node == 0) {
      node = op.node;
      key = op.key;
    }
    // One pipeline, one node and one key: operations of a pipeline are tied
    // together for the checker, and ties across keys would merge the keys
    // into one (expensive) object.
    op.node = node;
    op.key = key;
    if (session_client(client) && is_write(op.kind)) {
      // CSET.SEQ session seq lowest_unacked: the lowest sequence whose
      // answer the client has not had yet (this one included).
      SessionClient& sc = session_clients_[client];
      op.session = sc.session;
      op.seq = sc.next_seq++;
      sc.unacked.insert(op.seq);
      op.lowest_unacked = *sc.unacked.begin();
      op.attempts = 0;  // none sent yet
      op.invoke_us = now_;
      logical_[op.id] = op;
      // Its first attempt: a wire request of its own, on this connection.
      SimOp wire = op;
      wire.id = next_op_++;
      wire.attempts = 1;
      attempt_of_[wire.id] = op.id;
      logical_[op.id].attempts = 1;
      op = std::move(wire);
    }
    ops.push_back(std::move(op));
    issued_++;
  }
  client_submit(client, std::move(ops));
}

void Sim::open_session(int client) {
  SessionClient& sc = session_clients_[client];
  if (sc.opening) return;
  sc.opening = true;
  SimOp op;
  op.id = next_op_++;
  op.client = client;
  op.kind = SimOp::Kind::kOpenSession;
  std::vector<NodeId> live = member_ids();
  op.node = live[rng_.below(live.size())];
  // Sometimes a short session (CSET.SESSION TIMEOUT ms), so that sessions
  // expire mid-run and retries meet SESSIONEXPIRED.
  op.count = rng_.chance(0.25) ? rng_.range(1500, 6000) : 0;
  client_submit(client, {op}, /*counted=*/false);
}

void Sim::session_opened(const SimOp& wire) {
  SessionClient& sc = session_clients_[wire.client];
  sc.opening = false;
  if (wire.outcome == SimOp::Outcome::kOk) {
    sc.session = wire.session;  // the REGISTER entry's index
    result_.stats.sessions_opened++;
    trace_.add(0x5E550000 + sc.session);
  }
  // Open or not (a lost or failed CSET.SESSION is sent again), carry on.
  int client = wire.client;
  after(rng_.below(20 * kMs), [this, client] { client_next(client); });
}

// One more attempt of a session write, through any node.
void Sim::send_attempt(uint64_t logical_id) {
  SimOp& l = logical_.at(logical_id);
  SimOp wire = l;
  wire.id = next_op_++;
  wire.attempts = ++l.attempts;
  std::vector<NodeId> live = member_ids();
  wire.node = live[rng_.below(live.size())];
  attempt_of_[wire.id] = logical_id;
  result_.stats.retries_sent++;
  client_submit(wire.client, {wire}, /*counted=*/false);
}

// The answer (or none) to one attempt of a session write.
void Sim::attempt_done(const SimOp& wire) {
  SimOp& l = logical_.at(attempt_of_.at(wire.id));
  if (l.outcome != SimOp::Outcome::kPending) return;
  if (wire.outcome == SimOp::Outcome::kOk) {
    // Definitive: applied now, or answered from the session table with the
    // result of the attempt that was applied.
    l.count = wire.count;
    l.exists = wire.exists;
    l.deduplicated = wire.deduplicated;
    if (l.attempts > 1 && wire.deduplicated) {
      result_.stats.retries_deduplicated++;
      if (l.kind == SimOp::Kind::kAddStrict && !wire.exists) result_.stats.strict_add_retries_ok++;
    }
    return finish_logical(l, SimOp::Outcome::kOk);
  }
  // An attempt that got an answer was certainly not applied (the
  // refusals) or may have been (unknown).
  if (wire.outcome == SimOp::Outcome::kUnknown) l.error = "maybe applied";
  if (wire.error == "SESSIONEXPIRED") {
    // Nothing was applied now; an earlier attempt may have been. The
    // client needs a new session for its next writes.
    result_.stats.sessions_expired++;
    SessionClient& sc = session_clients_[l.client];
    if (sc.session == l.session) sc.session = 0;
    return finish_logical(l, l.error.empty() ? SimOp::Outcome::kFail : SimOp::Outcome::kUnknown);
  }
  if (wire.error.rfind("ERR", 0) == 0) {
    // A correct client never gets these while the request is pending: its
    // sequence is still unacknowledged and within the window.
    fail("sessions", "session request refused",
         "client " + std::to_string(l.client) + " session " + std::to_string(l.session) + " seq " +
             std::to_string(l.seq) + ": " + wire.error);
    return;
  }
  if (l.attempts >= kSessionAttempts || stopped_) {
    return finish_logical(l, l.error.empty() ? SimOp::Outcome::kFail : SimOp::Outcome::kUnknown);
  }
  uint64_t id = l.id;
  after(rng_.range(5, 100) * kMs, [this, id] {
    if (!stopped_) send_attempt(id);
  });
}

void Sim::finish_logical(SimOp& l, SimOp::Outcome outcome) {
  l.outcome = outcome;
  l.complete_us = now_;
  if (outcome == SimOp::Outcome::kOk) l.error.clear();
  trace_.add(l.id * 131 + static_cast<uint64_t>(outcome) * 7 + l.count);
  result_.stats.session_requests++;
  count_outcome(outcome);
  // Answered (or given up): later requests may let the cluster forget it.
  session_clients_[l.client].unacked.erase(l.seq);
  client_done(l.client);
}

void Sim::client_submit(int client, std::vector<SimOp> ops, bool counted) {
  for (const SimOp& op : ops) {
    if (counted && op.kind != SimOp::Kind::kOpenSession) client_outstanding_[client]++;
  }
  // One connection: requests arrive in the order sent (TCP).
  uint64_t arrival = 50 + rng_.below(500);
  for (auto& op : ops) {
    op.invoke_us = now_;
    uint64_t id = op.id;
    NodeId node = op.node;
    ops_[id] = op;
    op_deadline_[id] = now_ + kClientTimeoutUs;
    trace_.add(id * 7 + static_cast<uint64_t>(op.kind));
    // Client -> node: a short hop; a crashed node never sees it.
    after(arrival++, [this, node, id] {
      Node& n = nodes_.at(node);
      if (n.up) node_receive_op(n, id);
    });
    // The client gives up at its own timeout.
    after(kClientTimeoutUs, [this, id] {
      SimOp& o = ops_.at(id);
      if (o.outcome != SimOp::Outcome::kPending) return;
      SimOp res;
      res.outcome = is_write(o.kind) ? SimOp::Outcome::kUnknown : SimOp::Outcome::kFail;
      res.error = "client timeout";
      client_reply(id, res);
    });
  }
}

void Sim::client_reply(uint64_t op_id, SimOp res) {
  SimOp& o = ops_.at(op_id);
  if (o.outcome != SimOp::Outcome::kPending) return;
  o.outcome = res.outcome;
  o.complete_us = now_;
  o.count = res.count;
  o.present = res.present;
  o.exists = res.exists;
  o.result_members = std::move(res.result_members);
  o.error = res.error;
  trace_.add(op_id * 131 + static_cast<uint64_t>(o.outcome) * 7 + o.count);
  o.deduplicated = res.deduplicated;
  o.session = o.kind == SimOp::Kind::kOpenSession ? res.session : o.session;
  if (o.kind == SimOp::Kind::kOpenSession) return session_opened(o);
  if (attempt_of_.count(op_id)) return attempt_done(o);
  count_outcome(o.outcome);
  client_done(o.client);
}

void Sim::count_outcome(SimOp::Outcome outcome) {
  switch (outcome) {
    case SimOp::Outcome::kOk:
      result_.stats.ops_ok++;
      break;
    case SimOp::Outcome::kFail:
      result_.stats.ops_failed++;
      break;
    default:
      result_.stats.ops_unknown++;
      break;
  }
}

void Sim::client_done(int client) {
  if (--client_outstanding_[client] == 0) {
    after(rng_.below(20 * kMs), [this, client] { client_next(client); });
  }
}

void Sim::node_receive_op(Node& n, uint64_t op_id) {
  const SimOp& op = ops_.at(op_id);
  auto& q = n.connections[connection_of(op)];
  q.push_back(op_id);
  // Commands on one connection take effect in the order sent: one at a time.
  if (q.size() == 1) node_start_op(n, op_id);
  // The node's own deadline for this request.
  at_node(n.id, kWriteTimeoutUs, [this, op_id](Node& m) {
    const SimOp& o = ops_.at(op_id);
    if (o.outcome != SimOp::Outcome::kPending) return;
    bool passed = m.forwarded.count(op_id) > 0;
    for (const auto& [idx, p] : m.proposals) {
      if (p.op_id == op_id) passed = true;
    }
    if (is_write(o.kind) && passed) {
      node_complete(m, op_id, SimOp::Outcome::kUnknown, 0, false, false, {}, "TIMEOUT");
    } else {
      node_complete(m, op_id, SimOp::Outcome::kFail, 0, false, false, {}, "NOQUORUM");
    }
  });
}

void Sim::node_start_op(Node& n, uint64_t op_id) {
  SimOp& op = ops_.at(op_id);
  if (op.outcome != SimOp::Outcome::kPending) return;
  if (n.removed) {
    node_complete(n, op_id, SimOp::Outcome::kFail, 0, false, false, {}, "REMOVED");
    return;
  }
  if (!is_write(op.kind)) {
    if (opt_.node_bugs.stale_local_read) {
      answer_read(n, op_id);  // BUG (test only): no ReadIndex
      return;
    }
    std::string ctx = std::to_string(n.id) + ":" + std::to_string(++n.read_seq);
    if (n.raft->read_index(ctx).is_ok()) {
      n.reads[ctx] = op_id;
      after_input(n);
    }
    return;  // otherwise retried at the next tick
  }
  std::string data = encode_op(op);
  if (n.raft->role() == raft::Role::kLeader) {
    std::string stamped = data;
    stamp(stamped);
    auto idx = n.raft->propose({stamped});
    if (idx.ok()) {
      n.proposals[*idx] = Proposal{n.raft->term(), op_id, n.id};
      after_input(n);
    }
    return;
  }
  NodeId leader = n.raft->leader_id();
  if (leader != raft::kNoNode && leader != n.id) {
    // The point of no return: from here the outcome is unknown on timeout.
    n.forwarded.insert(op_id);
    Packet p;
    p.kind = Packet::Kind::kForward;
    p.op_id = op_id;
    p.command = std::move(data);
    p.raft.from = n.id;
    send_packet(n.id, leader, std::move(p));
  }
}

// The command a write puts in the log (unstamped: the leader stamps it).
std::string Sim::encode_op(const SimOp& op) const {
  set::Command cmd;
  switch (op.kind) {
    case SimOp::Kind::kAdd:
      cmd = set::Command::add(op.key, op.members);
      break;
    case SimOp::Kind::kAddStrict:
      cmd = set::Command::add_strict(op.key, op.members[0]);
      break;
    case SimOp::Kind::kOpenSession:
      // CSET.SESSION [TIMEOUT ms]: op.count carries the timeout asked for.
      cmd = set::Command::register_session(op.count);
      break;
    default:
      cmd = set::Command::rem(op.key, op.members);
      break;
  }
  if (op.session != 0) {
    cmd.session = set::SessionHeader{op.session, op.seq, op.lowest_unacked};
  }
  return set::encode_command(cmd);
}

void Sim::node_retry_waiting(Node& n, bool leader_changed) {
  // The head of each connection that has not left the node yet, and reads
  // whose ReadIndex answer may have been lost, start again.
  for (auto& [client, q] : n.connections) {
    if (q.empty()) continue;
    uint64_t op_id = q.front();
    if (n.forwarded.count(op_id)) continue;
    bool proposed = false;
    for (const auto& [idx, p] : n.proposals) {
      if (p.op_id == op_id) proposed = true;
    }
    if (proposed) continue;
    bool reading = false;
    for (const auto& [ctx, id] : n.reads) {
      if (id == op_id) reading = true;
    }
    for (const auto& [idx, id] : n.ready_reads) {
      if (id == op_id) reading = true;
    }
    if (reading && !leader_changed && rng_.below(kElectionTicks) != 0) continue;
    if (reading) {
      for (auto it = n.reads.begin(); it != n.reads.end();) {
        it = it->second == op_id ? n.reads.erase(it) : std::next(it);
      }
    }
    node_start_op(n, op_id);
  }
}

void Sim::answer_read(Node& n, uint64_t op_id) {
  const SimOp& op = ops_.at(op_id);
  switch (op.kind) {
    case SimOp::Kind::kContains: {
      auto r = n.sm->contains(op.key, op.members[0]);
      if (r.ok()) node_complete(n, op_id, SimOp::Outcome::kOk, 0, *r);
      break;
    }
    case SimOp::Kind::kSize: {
      auto r = n.sm->size(op.key);
      if (r.ok()) node_complete(n, op_id, SimOp::Outcome::kOk, *r);
      break;
    }
    case SimOp::Kind::kMembers: {
      auto r = n.sm->members(op.key, kMaxMembersReply);
      if (r.ok()) node_complete(n, op_id, SimOp::Outcome::kOk, 0, false, false, *r);
      break;
    }
    default:
      break;
  }
}

void Sim::node_complete(Node& n, uint64_t op_id, SimOp::Outcome outcome, uint64_t count,
                        bool present, bool exists, std::vector<std::string> members,
                        std::string error) {
  SimOp res;
  res.outcome = outcome;
  res.count = count;
  res.present = present;
  res.exists = exists;
  res.result_members = std::move(members);
  res.error = std::move(error);
  node_complete(n, op_id, std::move(res));
}

void Sim::node_complete(Node& n, uint64_t op_id, SimOp res) {
  SimOp& op = ops_.at(op_id);
  if (op.outcome != SimOp::Outcome::kPending) return;
  auto& q = n.connections[connection_of(op)];
  auto it = std::find(q.begin(), q.end(), op_id);
  if (it == q.end()) return;  // already answered by this node
  q.erase(it);
  n.forwarded.erase(op_id);
  if (opt_.lost_replies > 0 && res.outcome == SimOp::Outcome::kOk && is_write(op.kind) &&
      op.kind != SimOp::Kind::kOpenSession && rng_.chance(opt_.lost_replies)) {
    // The write was applied, but its reply is lost: the connection drops
    // and the client cannot tell whether the write happened.
    result_.stats.lost_replies++;
    trace_.add(0x1057000 + op_id);
    SimOp lost;
    lost.outcome = SimOp::Outcome::kUnknown;
    lost.error = "connection lost";
    res = std::move(lost);
  }
  // Node -> client.
  after(50 + rng_.below(500), [this, op_id, res] { client_reply(op_id, res); });
  if (!q.empty()) node_start_op(n, q.front());
}

// ---------------------------------------------------------------------------
// Faults.

std::vector<NodeId> Sim::member_ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (!n.removed) out.push_back(id);
  }
  return out;
}

NodeId Sim::current_leader() const {
  NodeId best = 0;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    // A removed leader handing over (raft.cc activate_config) answers
    // REMOVED: not the leader clients or faults should aim at.
    if (n.up && !n.removed && n.raft->role() == raft::Role::kLeader &&
        n.raft->term() >= best_term) {
      best = id;
      best_term = n.raft->term();
    }
  }
  return best;
}

void Sim::schedule_fault() {
  after(rng_.range(100, 700) * kMs, [this] {
    if (!chaos_ || stopped_) return;
    inject_fault();
    schedule_fault();
  });
}

void Sim::inject_fault() {
  uint64_t r = rng_.below(100);
  std::vector<NodeId> ids = member_ids();
  NodeId victim = ids[rng_.below(ids.size())];
  if (r < 25) {
    // Crash a node (often the leader), restart it later.
    NodeId leader = current_leader();
    if (rng_.chance(0.6)) {
      (rng_.chance(0.5) ? crash_leader_on_commit_ : crash_new_leader_) = true;
      return;
    }
    if (leader != 0 && rng_.chance(0.5)) victim = leader;
    Node& n = nodes_.at(victim);
    if (!n.up) return;
    crash_node(n);
    restart_later(victim);
  } else if (r < 35) {
    // A power outage: several nodes (sometimes all) crash at once, losing
    // whatever they had not fsynced, and come back together.
    std::vector<NodeId> down;
    for (NodeId id : ids) {
      if (rng_.chance(0.7)) down.push_back(id);
    }
    for (NodeId id : down) crash_node(nodes_.at(id));
    uint64_t back = rng_.range(20, 1500) * kMs;
    for (NodeId id : down) {
      after(back + rng_.below(50 * kMs), [this, id] {
        Node& m = nodes_.at(id);
        if (!m.up && chaos_) start_node(m);
      });
    }
  } else if (r < 55) {
    partition_random();
    after(rng_.range(200, 3000) * kMs, [this] {
      if (chaos_) heal();
    });
  } else if (r < 62) {
    // Network quality changes.
    loss_ = rng_.chance(0.5) ? 0.0 : static_cast<double>(rng_.below(25)) / 100.0;
    duplicate_ = rng_.chance(0.5) ? 0.0 : static_cast<double>(rng_.below(10)) / 100.0;
    delay_max_us_ = rng_.chance(0.7) ? 2000 : rng_.range(5, 60) * kMs;
  } else if (r < 72) {
    // A slow disk on one node.
    Node& n = nodes_.at(victim);
    n.fsync_us = rng_.chance(0.3) ? 500 : rng_.range(2, 80) * kMs;
    result_.stats.slow_disks++;
  } else if (r < 80) {
    // Clock drift.
    nodes_.at(victim).clock_rate = 0.5 + static_cast<double>(rng_.below(1000)) / 1000.0;
  } else if (r < 90) {
    if (opt_.membership) membership_change();
  } else {
    // Leadership transfer.
    NodeId leader = current_leader();
    if (leader != 0 && victim != leader) {
      Node& l = nodes_.at(leader);
      (void)l.raft->transfer_leadership(victim);
      after_input(l);
    }
  }
}

void Sim::partition_random() {
  result_.stats.partitions++;
  blocked_.clear();
  std::vector<NodeId> ids = member_ids();
  std::vector<NodeId> all;
  for (const auto& [id, n] : nodes_) all.push_back(id);
  // Shuffle deterministically.
  for (size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng_.below(i)]);
  uint64_t shape = rng_.below(5);
  auto cut = [this](NodeId a, NodeId b) {
    blocked_.insert({a, b});
    blocked_.insert({b, a});
  };
  if (shape == 0) {
    // Isolate the leader (or one node).
    NodeId leader = current_leader();
    NodeId x = leader != 0 ? leader : all[0];
    for (NodeId o : all) {
      if (o != x) cut(x, o);
    }
  } else if (shape == 1 || shape == 2) {
    // Two sides: halves or a minority.
    size_t split =
        shape == 1 ? all.size() / 2 : 1 + rng_.below(std::max<size_t>(1, all.size() / 2));
    for (size_t i = 0; i < split; ++i) {
      for (size_t j = split; j < all.size(); ++j) cut(all[i], all[j]);
    }
  } else if (shape == 3) {
    // Bridge: two sides that only one node sees both of ("majorities ring").
    if (all.size() >= 3) {
      NodeId bridge = all[0];
      size_t half = 1 + (all.size() - 1) / 2;
      for (size_t i = 1; i < half; ++i) {
        for (size_t j = half; j < all.size(); ++j) cut(all[i], all[j]);
      }
      (void)bridge;
    }
  } else {
    // One-way links.
    for (size_t i = 0; i < all.size(); ++i) {
      for (size_t j = 0; j < all.size(); ++j) {
        if (i != j && rng_.chance(0.3)) blocked_.insert({all[i], all[j]});
      }
    }
  }
  trace_.add(0xBA000000 + blocked_.size());
}

void Sim::heal() {
  blocked_.clear();
  loss_ = 0.0;
  duplicate_ = 0.0;
  delay_max_us_ = 2000;
}

void Sim::membership_change() {
  NodeId leader = current_leader();
  if (leader == 0) return;
  Node& l = nodes_.at(leader);
  const raft::Configuration& cfg = l.raft->configuration();
  std::vector<raft::ConfChange> changes;
  uint64_t r = rng_.below(4);
  size_t total = cfg.voters.size() + cfg.learners.size();
  if (r == 0 && total < 7) {
    // A new node joins as a learner (empty disk; it gets a snapshot or the log).
    NodeId id = next_id_++;
    create_node(id, false, {});
    changes.push_back({raft::ConfChange::Type::kAddLearner, id, {}});
  } else if (r == 1 && !cfg.learners.empty()) {
    changes.push_back({raft::ConfChange::Type::kPromote, cfg.learners[0], {}});
  } else if (r == 2 && cfg.voters.size() > 1) {
    // Remove any voter, sometimes the leader itself or the tie-breaker.
    NodeId victim = cfg.voters[rng_.below(cfg.voters.size())];
    changes.push_back({raft::ConfChange::Type::kRemove, victim, {}});
  } else if (r == 3 && !cfg.learners.empty()) {
    changes.push_back({raft::ConfChange::Type::kRemove, cfg.learners.back(), {}});
  } else {
    return;
  }
  auto res = l.raft->propose_conf_change(changes);
  if (res.ok()) {
    result_.stats.conf_changes++;
    trace_.add(0xCC000000 + *res);
  }
  after_input(l);
}

// ---------------------------------------------------------------------------
// Checks.

void Sim::fail(const std::string& checker, const std::string& property, const std::string& text) {
  if (!result_.ok) return;
  if (checker == "raft-invariants" && !opt_.invariants) return;
  result_.ok = false;
  result_.checker = checker;
  result_.property = property;
  result_.explanation = text + " (at virtual time " + std::to_string(now_ / kMs) + " ms)";
  stopped_ = true;
}

// Commit safety (paper §5.4.2, Figure 8): once an entry is committed, no
// voter lacking it can win an election. Checked when the entry is first
// applied anywhere, on durable logs and on log comparison alone (which votes
// a candidate could gather in some future term): every quorum must hold a
// voter whose durable log is more up to date than the candidate's. Sound for
// the correct commit rule (the Leader Completeness proof: each quorum
// intersects the one that stored the entry); an old-term entry committed by
// counting replicas fails it while a node holding a later-term entry at that
// index could still be elected, before any node is ever overwritten.
void Sim::check_commit_safety(Node& n, raft::Index index, raft::Term term) {
  const raft::Configuration& cfg = n.raft->configuration();
  const raft::JointQuorum quorum(cfg);
  struct Tip {
    raft::Term last_term = 0;
    raft::Index last_index = 0;
    bool has_entry = false;
  };
  std::map<NodeId, Tip> tips;
  for (const auto& [id, node] : nodes_) {
    const raft::MemoryStorage& d = node.disk->durable();
    Tip tip;
    tip.last_index = d.last_index();
    auto lt = d.term(tip.last_index);
    tip.last_term = lt.ok() ? *lt : 0;
    if (index < d.first_index()) {
      tip.has_entry = d.snapshot().meta.index >= index;
    } else {
      auto t = d.term(index);
      tip.has_entry = t.ok() && *t == term;
    }
    tips[id] = tip;
  }
  for (NodeId candidate : cfg.all_nodes()) {
    if (!cfg.is_voter(candidate) || !tips.count(candidate) || tips[candidate].has_entry) continue;
    const Tip& c = tips[candidate];
    std::vector<NodeId> would_vote;
    for (const auto& [id, v] : tips) {
      if (!cfg.is_voter(id)) continue;
      bool up_to_date =
          c.last_term > v.last_term || (c.last_term == v.last_term && c.last_index >= v.last_index);
      if (id == candidate || up_to_date) would_vote.push_back(id);
    }
    if (quorum.is_quorum(would_vote)) {
      std::string who;
      for (NodeId id : would_vote) who += (who.empty() ? "" : ",") + std::to_string(id);
      fail("raft-invariants", "commit safety",
           "entry " + std::to_string(index) + " of term " + std::to_string(term) +
               " was applied by node " + std::to_string(n.id) + ", but node " +
               std::to_string(candidate) + " lacks it and could still win an election with " +
               "the votes of {" + who + "} (its durable log ends at " +
               std::to_string(c.last_index) + "@" + std::to_string(c.last_term) + ")");
      return;
    }
  }
}

void Sim::check_leader_completeness(Node& n) {
  // Every entry applied anywhere (hence committed) must be in a new leader's
  // log, or covered by its snapshot (paper §5.4, Leader Completeness).
  const raft::RaftLog& log = n.raft->log();
  for (const auto& [index, te] : applied_) {
    if (index < log.first_index()) continue;  // covered by its snapshot
    // Leader Completeness binds leaders of terms after the one the entry was
    // committed in. That term is at most the applying node's term when it
    // first applied the entry; a leader of an older term (elected late, on
    // delayed votes) need not hold it.
    if (commit_term_bound_[index] >= n.raft->term()) continue;
    auto t = log.term(index);
    if (!t.ok() || *t != te.first) {
      fail("raft-invariants", "leader completeness",
           "new leader " + std::to_string(n.id) + " (term " + std::to_string(n.raft->term()) +
               ") lacks committed entry " + std::to_string(index) + " of term " +
               std::to_string(te.first));
      return;
    }
  }
}

void Sim::check_log_matching() {
  // Log Matching (paper §5.3): where two logs hold an entry with the same
  // index and term, they are identical up to it.
  std::vector<Node*> up;
  for (auto& [id, n] : nodes_) {
    if (n.up) up.push_back(&n);
  }
  for (size_t a = 0; a < up.size(); ++a) {
    for (size_t b = a + 1; b < up.size(); ++b) {
      const raft::RaftLog& la = up[a]->raft->log();
      const raft::RaftLog& lb = up[b]->raft->log();
      Index lo = std::max(la.first_index(), lb.first_index());
      Index hi = std::min(la.last_index(), lb.last_index());
      bool matched = false;
      for (Index i = hi; i >= lo && i > 0; --i) {
        Term ta = la.term_or_zero(i), tb = lb.term_or_zero(i);
        if (!matched && ta == tb) matched = true;
        if (matched) {
          auto ea = la.slice(i, i + 1, UINT64_MAX);
          auto eb = lb.slice(i, i + 1, UINT64_MAX);
          if (!ea.ok() || !eb.ok() || ea->front() != eb->front()) {
            fail("raft-invariants", "log matching",
                 "nodes " + std::to_string(up[a]->id) + " and " + std::to_string(up[b]->id) +
                     " differ at index " + std::to_string(i) + " below a matching entry");
            return;
          }
        }
      }
    }
  }
}

bool Sim::settle() {
  // Faults stop: heal the network, restart every node, then a leader must
  // appear and a write must succeed within kSettleLimitUs (liveness, I5).
  chaos_ = false;
  crash_leader_on_commit_ = false;
  crash_new_leader_ = false;
  for (auto& [id, n] : nodes_) n.doomed = false;
  heal();
  for (auto& [id, n] : nodes_) {
    n.fsync_us = 500;
    n.clock_rate = 1.0;
    // Removed nodes too: a node that a joint configuration removes is still
    // needed to finish leaving it (its vote in C_old), and its process runs
    // until an operator stops it.
    if (!n.up) start_node(n);
  }
  uint64_t deadline = now_ + kSettleLimitUs;
  uint64_t probe_id = 0;
  int probes = 0;
  while (!stopped_ && now_ < deadline) {
    if (queue_.empty()) break;
    Event e = queue_.top();
    queue_.pop();
    now_ = e.t;
    e.fn();
    if (probe_id != 0) {
      const SimOp& o = ops_.at(probe_id);
      if (o.outcome == SimOp::Outcome::kOk) return true;
      if (o.outcome != SimOp::Outcome::kPending) probe_id = 0;
    }
    if (probe_id == 0 && current_leader() != 0 && probes < 100) {
      // A write through the leader (client id -1: the settle probe).
      SimOp op;
      op.id = next_op_++;
      op.client = -1 - probes++;
      op.node = current_leader();
      op.kind = SimOp::Kind::kAdd;
      op.key = key_name(0);
      op.members = {"settle"};
      probe_id = op.id;
      client_submit(op.client, {op});
    }
  }
  if (stopped_) return false;
  std::string state = "leader=" + std::to_string(current_leader());
  for (const auto& [id, n] : nodes_) {
    state += "; node " + std::to_string(id) + (n.up ? "" : " down") + (n.removed ? " removed" : "");
    if (!n.up) continue;
    const raft::Configuration& c = n.raft->configuration();
    state += std::string(" ") + raft::to_string(n.raft->role()) + " term " +
             std::to_string(n.raft->term()) + " leader " + std::to_string(n.raft->leader_id()) +
             " commit " + std::to_string(n.raft->commit_index()) + " last " +
             std::to_string(n.raft->last_index()) + " voters";
    for (NodeId v : c.voters) state += " " + std::to_string(v);
    if (c.joint()) {
      state += " | outgoing";
      for (NodeId v : c.outgoing_voters) state += " " + std::to_string(v);
    }
    for (NodeId v : c.learners) state += " learner " + std::to_string(v);
  }
  fail("liveness",
       "no leader or no write within " + std::to_string(kSettleLimitUs / kMs) +
           " ms after faults stopped",
       state);
  return false;
}

// ---------------------------------------------------------------------------

void Sim::check_linearizability() {
  LinearizabilityVerdict v = check_sim_history(result_.history, now_);
  if (!v.ok) fail("linearizability", "linearizability of the client history", v.explanation);
}

SimResult Sim::run() {
  raft::Configuration initial;
  std::vector<raft::Member> members;
  for (int i = 0; i < opt_.nodes; ++i) members.push_back({next_id_++, {}});
  initial = raft::Raft::initial_configuration(members, raft::QuorumMode::kTiebreak);
  for (const auto& m : members) create_node(m.id, true, initial);
  for (int c = 0; c < opt_.clients; ++c) {
    after(rng_.below(50 * kMs), [this, c] { client_next(c); });
  }
  if (opt_.faults) schedule_fault();
  // Chaos phase: until every client operation has been issued and answered.
  uint64_t check_every = 2000;
  while (!stopped_ && !queue_.empty()) {
    Event e = queue_.top();
    queue_.pop();
    now_ = e.t;
    e.fn();
    if (++result_.stats.events % check_every == 0) check_log_matching();
    if (issued_ >= opt_.ops) {
      bool all_done = true;
      for (const auto& [c, n] : client_outstanding_) all_done = all_done && n == 0;
      if (all_done) break;
    }
  }
  if (!stopped_) settle();
  if (!stopped_) {
    // Final reads on every node, recorded as ordinary operations: every
    // acknowledged write must be visible, and all nodes must agree.
    const int keys_used = static_cast<int>(key_base()) + opt_.keys;
    for (int k = 0; k < keys_used; ++k) {
      for (NodeId id : member_ids()) {
        SimOp op;
        op.id = next_op_++;
        op.client = 1000 + static_cast<int>(id) * 1000 + k;
        op.node = id;
        op.kind = SimOp::Kind::kMembers;
        op.key = key_name(k);
        client_submit(op.client, {op});
      }
    }
    uint64_t deadline = now_ + kClientTimeoutUs + 10 * kMs;
    while (!stopped_ && !queue_.empty() && queue_.top().t <= deadline) {
      Event e = queue_.top();
      queue_.pop();
      now_ = e.t;
      e.fn();
    }
    check_log_matching();
  }
  // The history: plain requests as sent, session writes as logical requests
  // (their attempts and CSET.SESSION requests are not client operations).
  std::map<uint64_t, const SimOp*> history;
  for (const auto& [id, op] : ops_) {
    if (!attempt_of_.count(id) && op.kind != SimOp::Kind::kOpenSession) history[id] = &op;
  }
  for (const auto& [id, op] : logical_) history[id] = &op;
  for (const auto& [id, op] : history) result_.history.push_back(*op);
  if (!stopped_) check_linearizability();
  result_.stats.virtual_ms = now_ / kMs;
  result_.trace_hash = trace_.value();
  return std::move(result_);
}

}  // namespace

const char* to_string(SimOp::Kind kind) {
  switch (kind) {
    case SimOp::Kind::kAdd:
      return "add";
    case SimOp::Kind::kAddStrict:
      return "add_strict";
    case SimOp::Kind::kRem:
      return "rem";
    case SimOp::Kind::kContains:
      return "contains";
    case SimOp::Kind::kMembers:
      return "members";
    case SimOp::Kind::kSize:
      return "size";
    case SimOp::Kind::kOpenSession:
      return "open_session";
  }
  return "?";
}

void SimStats::add(const SimStats& o) {
  events += o.events;
  messages_sent += o.messages_sent;
  messages_dropped += o.messages_dropped;
  messages_duplicated += o.messages_duplicated;
  crashes += o.crashes;
  partitions += o.partitions;
  lost_unsynced_writes += o.lost_unsynced_writes;
  snapshots_taken += o.snapshots_taken;
  snapshots_installed += o.snapshots_installed;
  leader_elections += o.leader_elections;
  conf_changes += o.conf_changes;
  slow_disks += o.slow_disks;
  ops_ok += o.ops_ok;
  ops_failed += o.ops_failed;
  ops_unknown += o.ops_unknown;
  virtual_ms += o.virtual_ms;
  sessions_opened += o.sessions_opened;
  session_requests += o.session_requests;
  lost_replies += o.lost_replies;
  retries_sent += o.retries_sent;
  retries_deduplicated += o.retries_deduplicated;
  strict_add_retries_ok += o.strict_add_retries_ok;
  sessions_expired += o.sessions_expired;
}

SimResult run_simulation(const SimOptions& options) {
  Sim sim(options);
  return sim.run();
}

}  // namespace cset::sim

namespace cset::sim {

namespace {
struct BugEntry {
  const char* name;
  bool raft::InjectedBugs::*raft_flag;
  bool NodeBugs::*node_flag;
};
const BugEntry kBugs[] = {
    {"commit-on-minority", &raft::InjectedBugs::commit_on_minority, nullptr},
    {"commit-old-term", &raft::InjectedBugs::commit_old_term, nullptr},
    {"vote-without-log-check", &raft::InjectedBugs::vote_without_log_check, nullptr},
    {"ack-before-fsync", nullptr, &NodeBugs::ack_before_fsync},
    {"leader-counts-unsynced", &raft::InjectedBugs::leader_counts_unsynced, nullptr},
    {"stale-local-read", nullptr, &NodeBugs::stale_local_read},
    {"read-index-before-term-commit", &raft::InjectedBugs::read_index_before_term_commit, nullptr},
    {"apply-before-commit", nullptr, &NodeBugs::apply_before_commit},
    {"quorum-half-inclusive", &raft::InjectedBugs::quorum_half_inclusive, nullptr},
    {"tiebreaker-from-reachable", &raft::InjectedBugs::tiebreaker_from_reachable, nullptr},
    {"single-server-change", &raft::InjectedBugs::single_server_change, nullptr},
    {"reapply-session-retry", nullptr, &NodeBugs::reapply_session_retry},
};
}  // namespace

int default_nodes_for_seed(uint64_t seed) {
  static const int kSizes[] = {3, 2, 4, 5, 3, 4, 1, 2, 5, 3, 4, 6, 7, 3, 2, 4};
  return kSizes[seed % (sizeof(kSizes) / sizeof(kSizes[0]))];
}

std::vector<std::string> bug_names() {
  std::vector<std::string> out;
#ifdef CSET_TEST_HOOKS
  for (const auto& b : kBugs) out.emplace_back(b.name);
#endif
  return out;
}

bool enable_bug(const std::string& name, SimOptions* options) {
#ifdef CSET_TEST_HOOKS
  for (const auto& b : kBugs) {
    if (name != b.name) continue;
    if (b.raft_flag) options->raft_bugs.*(b.raft_flag) = true;
    if (b.node_flag) options->node_bugs.*(b.node_flag) = true;
    return true;
  }
#else
  (void)name;
  (void)options;
#endif
  return false;
}

}  // namespace cset::sim
