// The embedded replica's loop: storage, ready processing, writes, reads and
// snapshots. The streams' handshake and frames are in stream.cc.
#include "embed/core.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "raft/codec.h"
#include "set/command.h"

namespace cset::embed {

using raft::Index;
using raft::NodeId;

namespace {

std::string random_bytes(size_t n) {
  std::random_device rd;
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rd() & 0xff);
  return out;
}

std::string default_cluster_id(std::vector<uint64_t> members) {
  std::sort(members.begin(), members.end());
  std::string id = "embed:";
  for (uint64_t m : members) id += std::to_string(m) + ",";
  return id;
}

// Session writes unanswered at once, at most: below the state machine's
// 1024 results kept per session (docs/sessions.md), so a sequence number is
// never refused as beyond the window.
constexpr uint64_t kMaxUnackedSequences = 1000;

uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

const Status kNoSpaceStatus(
    Code::kNoSpace, "this replica cannot persist (disk full or I/O error); nothing changed");

}  // namespace

// ---------------------------------------------------------------------------
// Opening.

Core::Core(Options options) : opt_(std::move(options)) {}

Core::~Core() {
  if (thread_.joinable()) {
    std::fprintf(stderr, "cset::embed::Core destroyed without shutdown()\n");
    std::abort();
  }
}

Result<std::shared_ptr<Core>> Core::open(Options o) {
  if (o.id == 0 || o.id > (uint64_t{1} << 63) - 1)
    return Status(Code::kInvalid, "Options::id must be in 1..2^63-1");
  if (o.heartbeat_ms == 0 || o.election_timeout_ms <= o.heartbeat_ms)
    return Status(Code::kInvalid, "Options: need 0 < heartbeat_ms < election_timeout_ms");
  if (o.write_timeout_ms == 0) return Status(Code::kInvalid, "Options::write_timeout_ms is 0");
  if (o.snapshot_entries == 0) return Status(Code::kInvalid, "Options::snapshot_entries is 0");
  if (o.cluster_id.empty()) o.cluster_id = default_cluster_id(o.members);
  std::shared_ptr<Core> core(new Core(std::move(o)));
  Status s = core->open_storage();
  if (!s) return s;
  return core;
}

Status Core::open_storage() {
  if (opt_.data_dir.empty()) {
    mem_log_ = std::make_unique<raft::MemoryStorage>();
    mem_kv_ = std::make_unique<set::MemoryKv>();
    log_ = mem_log_.get();
    kv_ = mem_kv_.get();
    incarnation_ = random_bytes(16);
  } else {
    storage::StoreOptions so;
    so.dir = opt_.data_dir;
    so.node_id = opt_.id;
    so.cluster_id = opt_.cluster_id;
    so.create_if_missing = true;
    so.new_incarnation = random_bytes(16);
    so.block_cache_mb = 8;
    so.write_buffer_mb = 4;
    so.warn = [this](const std::string& m) { log("storage: " + m); };
    auto store = storage::RocksStore::open(so);
    if (!store.ok()) return store.status();
    rocks_ = std::move(store).value();
    log_ = rocks_.get();
    kv_ = &rocks_->kv();
    incarnation_ = rocks_->identity().incarnation;
  }
  sm_ = std::make_unique<set::StateMachine>(kv_);
  Status s = sm_->load();
  if (!s) return s;
  s = bootstrap_if_fresh();
  if (!s) return s;
  if (raft::SnapshotMeta meta = log_->snapshot_meta();
      meta.index != 0 && sm_->applied_index() < meta.index) {
    s = sm_->restore_snapshot(log_->snapshot().data, meta.index);
    if (!s) return s;
  }
  raft::Options ro;
  ro.id = opt_.id;
  ro.storage = log_;
  ro.applied = sm_->applied_index();
  ro.heartbeat_ticks = 1;
  ro.election_ticks =
      static_cast<int>(std::max<uint64_t>(2, opt_.election_timeout_ms / opt_.heartbeat_ms));
  if (opt_.random_seed != 0) {
    ro.random_seed = opt_.random_seed;
  } else {
    std::random_device rd;
    ro.random_seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  auto r = raft::Raft::create(ro);
  if (!r.ok()) return r.status();
  raft_ = std::move(r).value();
  // RocksStore keeps only the snapshot's metadata across a restart: record
  // the image again so a lagging follower can be sent one.
  if (rocks_ && !rocks_->snapshot().empty() && rocks_->snapshot().data.empty()) take_snapshot(true);
  publish();
  return Status::ok();
}

Status Core::bootstrap_if_fresh() {
  if (log_->last_index() != 0 || log_->snapshot_meta().index != 0) return Status::ok();
  std::vector<uint64_t> ids = opt_.members;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (!std::binary_search(ids.begin(), ids.end(), opt_.id))
    return Status(Code::kInvalid,
                  "Options::members does not list this replica's id " + std::to_string(opt_.id));
  std::vector<raft::Member> members;
  for (uint64_t id : ids) {
    if (id == 0) return Status(Code::kInvalid, "Options::members holds id 0");
    members.push_back({id, ""});
  }
  raft::Configuration cfg = raft::Raft::initial_configuration(
      members, opt_.majority_quorum ? raft::QuorumMode::kMajority : raft::QuorumMode::kTiebreak);
  // Every initial member writes the same first entry and hard state, so
  // their logs match (raft.h bootstrap_entry).
  return persist({raft::Raft::bootstrap_entry(cfg)}, raft::HardState{1, 0, 1}, true);
}

void Core::log(const std::string& message) const {
  if (opt_.log) opt_.log("replica " + std::to_string(opt_.id) + ": " + message);
}

uint64_t Core::now_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// ---------------------------------------------------------------------------
// Storage, either kind.

Status Core::persist(const std::vector<raft::Entry>& entries,
                     const std::optional<raft::HardState>& hard_state, bool sync) {
  if (rocks_) return rocks_->save(entries, hard_state, sync);
  if (!entries.empty()) mem_log_->append(entries);
  if (hard_state) mem_log_->set_hard_state(*hard_state);
  return Status::ok();
}

Status Core::install(const raft::Snapshot& snapshot) {
  if (rocks_) {
    return rocks_->install_snapshot(
        snapshot, [&] { return sm_->restore_snapshot(snapshot.data, snapshot.meta.index); });
  }
  Status s = sm_->restore_snapshot(snapshot.data, snapshot.meta.index);
  if (s) mem_log_->apply_snapshot(snapshot);
  return s;
}

void Core::maybe_snapshot() {
  if (sm_->applied_index() >= log_->snapshot_meta().index + opt_.snapshot_entries)
    take_snapshot(false);
}

void Core::take_snapshot(bool at_start) {
  Index applied = sm_->applied_index();
  auto term = log_->term(applied);
  auto cfg = raft::decode_configuration(sm_->config_bytes());
  if (!term.ok() || !cfg.ok()) return;
  // The state machine's writes must be durable before the log is compacted.
  if (rocks_ && !rocks_->sync()) return;
  auto data = sm_->encode_snapshot();
  if (!data.ok()) return;
  raft::Snapshot snapshot;
  snapshot.meta.index = applied;
  snapshot.meta.term = *term;
  snapshot.meta.config = *cfg;
  snapshot.data = std::move(data).value();
  uint64_t keep = at_start ? UINT64_MAX / 2 : opt_.snapshot_keep_entries;
  Status s = rocks_ ? rocks_->create_snapshot(std::move(snapshot), keep)
                    : mem_log_->create_snapshot(std::move(snapshot), keep);
  if (!s) log("snapshot at index " + std::to_string(applied) + " failed: " + s.to_string());
}

// ---------------------------------------------------------------------------
// The loop.

void Core::start() {
  schedule_tick();
  thread_ = std::thread([this] { io_.run(); });
}

void Core::shutdown() {
  if (!thread_.joinable()) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    std::fprintf(stderr,
                 "cset::ConsistentSet destroyed from its own callback (the loop thread); "
                 "destroy it from another thread\n");
    std::abort();
  }
  asio::post(io_, [this] {
    stopped_ = true;
    fail_all_pending("the replica is shutting down");
    std::map<uint64_t, std::shared_ptr<StreamState>> streams;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      streams = streams_;
    }
    for (auto& [id, st] : streams) close_on_loop(st, "the replica was destroyed");
    tick_timer_.cancel();
    io_.stop();
  });
  thread_.join();
  // Handlers posted after the stop never run; drop them (and what they hold).
  io_.restart();
  io_.poll();
}

void Core::schedule_tick() {
  tick_timer_.expires_after(std::chrono::milliseconds(opt_.heartbeat_ms));
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopped_) return;
    raft_->tick();
    on_tick();
    kick();
    schedule_tick();
  });
}

void Core::kick() {
  if (ready_posted_ || stopped_) return;
  ready_posted_ = true;
  asio::post(io_, [this] {
    ready_posted_ = false;
    if (!stopped_) process_ready();
  });
}

void Core::process_ready() {
  if (!fatal_.is_ok()) return;
  flush_proposals();
  while (raft_->has_ready()) {
    raft::Ready rd = raft_->ready();
    if (!raft_->log_read_error().is_ok()) {
      // Committed entries that cannot be read: a restart loads the log again.
      fatal_ = Status(Code::kCorrupt,
                      "cannot read committed entries: " + raft_->log_read_error().to_string());
      log(fatal_.to_string());
      fail_all_pending("the replica stopped: cannot read its log");
      break;
    }
    // Only a leader's appends and heartbeats may go before their batch is
    // durable (dissertation §10.2.1); everything else waits for persist().
    send_messages(rd.leader_messages);
    Status s;
    if (rd.snapshot) s = install(*rd.snapshot);
    if (s && (!rd.entries.empty() || rd.hard_state)) {
      s = persist(rd.entries, rd.hard_state, rd.must_sync);
    }
    if (!s) {
      on_storage_failure(s);
      break;
    }
    if (storage_failed_ && !(rocks_ && rocks_->write_failed())) {
      storage_failed_ = false;
      raft_->set_storage_failed(false);
      log("storage recovered");
    }
    send_messages(rd.messages);
    const bool failed_before_apply = storage_failed_;
    apply(rd.committed_entries);
    // The state machine could not persist: without advance() the Ready, and
    // its committed entries, come again.
    if ((storage_failed_ && !failed_before_apply) || !fatal_.is_ok()) break;
    for (auto& rs : rd.read_states) on_read_state(rs);
    raft_->advance(rd);
    serve_ready_reads();
    maybe_snapshot();
  }
  // Compared with what was seen last: the leader changes inside step() and
  // tick(), before this Ready.
  if (raft_->leader_id() != seen_leader_) {
    seen_leader_ = raft_->leader_id();
    on_leader_change();
  }
  publish();
}

void Core::publish() {
  leader_ = raft_->leader_id();
  voters_ = raft_->configuration().voters.size();
  applied_ = sm_->applied_index();
}

void Core::on_storage_failure(const Status& s) {
  if (!storage_failed_) log("cannot persist: " + s.to_string());
  storage_failed_ = true;
  raft_->set_storage_failed(true);
  // Requests that had not reached the log can be refused for certain.
  std::vector<uint64_t> refused;
  for (auto& [id, w] : writes_) {
    if (!w.proposed && !w.forwarded) refused.push_back(id);
  }
  for (uint64_t id : refused) finish_write(id, kNoSpaceStatus, {});
}

void Core::on_tick() {
  if (storage_failed_ && rocks_) {
    // The store recovers (reopens) once space returns; retried every tick.
    if (rocks_->resume() && !rocks_->write_failed()) {
      storage_failed_ = false;
      raft_->set_storage_failed(false);
      log("storage recovered");
    }
  }
  uint64_t now = now_ms();
  expire_writes(now);
  std::vector<uint64_t> expired_reads;
  for (auto& [id, r] : reads_) {
    if (now >= r.deadline_ms) {
      expired_reads.push_back(id);
    } else if (r.read_index == 0 && now >= r.retry_ms) {
      start_read(id);
    }
  }
  for (uint64_t id : expired_reads) {
    finish_read(id, Status(Code::kNoQuorum,
                           "no quorum within the write timeout: the read could not be confirmed"));
  }
}

void Core::apply(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  auto results = sm_->apply(entries, false);
  if (!results.ok() && results.code() == Code::kNoSpace) {
    on_storage_failure(results.status());
    return;
  }
  if (!results.ok()) {
    // An applied index that skipped entries would be silent loss: stop.
    fatal_ = Status(results.code(), "apply failed: " + results.status().message());
    log(fatal_.to_string());
    fail_all_pending("the replica stopped: apply failed");
    return;
  }
  for (const auto& r : *results) {
    auto it = proposals_.find(r.index);
    if (it == proposals_.end()) continue;
    Proposal p = it->second;
    proposals_.erase(it);
    raft::Term applied_term = entries[r.index - entries.front().index].term;
    if (applied_term != p.term) {
      complete_proposal(p.request_id,
                        Status(Code::kTimeout,
                               "leadership changed before the write committed; it was not applied"),
                        {});
    } else {
      complete_proposal(p.request_id, Status::ok(), r);
    }
  }
  // Proposals at or below the applied index not applied above were
  // overwritten by another leader's entries: never applied.
  for (auto it = proposals_.begin(); it != proposals_.end() && it->first <= sm_->applied_index();) {
    complete_proposal(
        it->second.request_id,
        Status(Code::kTimeout, "leadership changed before the write committed; it was not applied"),
        {});
    it = proposals_.erase(it);
  }
}

void Core::on_leader_change() {
  // Waiting requests try the new leader at once; session writes sent to the
  // old one are sent again (the state machine applies them once).
  std::vector<uint64_t> ids;
  for (auto& [id, w] : writes_) {
    if (w.queued || w.unsequenced) continue;
    if (w.sequence != 0 && (w.proposed || w.forwarded)) {
      w.maybe_applied = true;
      w.proposed = w.forwarded = false;
      w.forwarded_to = 0;
    }
    if (!w.proposed && !w.forwarded) ids.push_back(id);
  }
  for (uint64_t id : ids) start_write(id);
  std::vector<uint64_t> read_ids;
  for (auto& [id, r] : reads_) {
    if (r.read_index == 0) read_ids.push_back(id);
  }
  for (uint64_t id : read_ids) start_read(id);
}

// ---------------------------------------------------------------------------
// Writes. The point of no return is the moment a request enters this
// leader's log (proposed) or its forward frame is handed to the stream to
// the leader (forwarded): before it a timeout is NOQUORUM, after it TIMEOUT.

void Core::submit_write(set::Command command, WriteCallback done) {
  asio::post(io_, [this, command = std::move(command), done = std::move(done)]() mutable {
    if (stopped_) {
      done(Status(Code::kNoQuorum, "the replica is shutting down; nothing changed"), {});
      return;
    }
    if (!fatal_.is_ok()) {
      done(fatal_, {});
      return;
    }
    uint64_t id = next_request_id_++;
    PendingWrite w;
    w.original = std::move(command);
    w.unsequenced = true;
    w.done = std::move(done);
    w.deadline_ms = now_ms() + opt_.write_timeout_ms;
    writes_.emplace(id, std::move(w));
    ++unsequenced_writes_;
    sequence_waiting_writes();
  });
}

void Core::ensure_session() {
  if (session_id_ != 0 || registering_id_ != 0 || stopped_ || !fatal_.is_ok()) return;
  uint64_t id = next_request_id_++;
  PendingWrite w;
  w.command = set::encode_command(set::Command::register_session(opt_.session_timeout_ms));
  w.deadline_ms = now_ms() + opt_.write_timeout_ms;
  w.done = [this, id](const Status& s, const set::ApplyResult& r) {
    if (registering_id_ == id) registering_id_ = 0;
    if (!s.is_ok() || !r.status.is_ok() || r.index == 0) return;  // tried again at the next tick
    session_id_ = r.index;  // the log index of the REGISTER entry
    next_sequence_ = 1;
    sequence_waiting_writes();
  };
  registering_id_ = id;
  writes_.emplace(id, std::move(w));
  start_write(id);
}

uint64_t Core::lowest_unacked() const {
  uint64_t lowest = 0;
  for (const auto& [id, w] : writes_) {
    if (w.sequence != 0 && w.session == session_id_ && (lowest == 0 || w.sequence < lowest))
      lowest = w.sequence;
  }
  return lowest;
}

void Core::sequence_waiting_writes() {
  if (unsequenced_writes_ == 0 || stopped_ || !fatal_.is_ok()) return;
  if (session_id_ == 0) return ensure_session();
  uint64_t lowest = lowest_unacked();
  std::vector<uint64_t> ready;
  for (auto& [id, w] : writes_) {  // in submission order
    if (!w.unsequenced) continue;
    if (lowest != 0 && next_sequence_ >= lowest + kMaxUnackedSequences) break;
    w.sequence = next_sequence_++;
    w.session = session_id_;
    if (lowest == 0) lowest = w.sequence;
    set::Command c = *w.original;
    c.session = set::SessionHeader{session_id_, w.sequence, lowest};
    w.command = set::encode_command(c);
    w.unsequenced = false;
    --unsequenced_writes_;
    ready.push_back(id);
  }
  for (uint64_t id : ready) start_write(id);
}

bool Core::resend_later(uint64_t id, bool attempt_may_have_applied) {
  auto it = writes_.find(id);
  if (it == writes_.end() || it->second.sequence == 0 || stopped_) return false;
  PendingWrite& w = it->second;
  if (now_ms() >= w.deadline_ms) return false;
  if (attempt_may_have_applied) w.maybe_applied = true;
  w.proposed = w.forwarded = false;
  w.forwarded_to = 0;
  if (!w.queued) start_write(id);
  return true;
}

bool Core::renumber(uint64_t id) {
  auto it = writes_.find(id);
  if (it == writes_.end() || it->second.sequence == 0) return false;
  PendingWrite& w = it->second;
  if (w.session == session_id_ && session_id_ != 0) {
    log("client session " + std::to_string(session_id_) +
        " expired; writes go on in a new session");
    session_id_ = 0;  // the next write registers anew
  }
  // This attempt was refused (not applied); an earlier one still in flight
  // or lost is what maybe_applied records.
  w.proposed = w.forwarded = false;
  w.forwarded_to = 0;
  if (w.maybe_applied || now_ms() >= w.deadline_ms) return false;
  w.sequence = 0;
  w.session = 0;
  w.unsequenced = true;
  ++unsequenced_writes_;
  sequence_waiting_writes();
  return true;
}

void Core::start_write(uint64_t id) {
  auto it = writes_.find(id);
  if (it == writes_.end()) return;
  PendingWrite& w = it->second;
  if (w.unsequenced) return;    // numbered once the session exists
  if (storage_failed_) return;  // waits; NOSPACE or NOQUORUM at its deadline
  if (raft_->role() == raft::Role::kLeader) {
    if (raft_->leaving() || raft_->transfer_target() != raft::kNoNode) return;
    w.queued = true;
    proposal_queue_.push_back(id);
    kick();
    return;
  }
  NodeId leader = raft_->leader_id();
  if (leader == raft::kNoNode || leader == opt_.id) return;  // retried at the next tick
  net::PeerFrame f;
  auto* req = f.mutable_forward_request();
  req->set_request_id(id);
  req->set_kind(net::FORWARD_WRITE);
  req->set_command(w.command);
  uint64_t now = now_ms();
  req->set_timeout_ms(w.deadline_ms > now ? w.deadline_ms - now : 0);
  if (send_to(leader, f)) {
    w.forwarded = true;
    w.forwarded_to = leader;
    w.forwarded_stream = links_.at(leader)->id;
    w.resend_ms = now + 2 * opt_.election_timeout_ms;
  }
}

void Core::flush_proposals() {
  if (proposal_queue_.empty()) return;
  std::vector<uint64_t> ids = std::move(proposal_queue_);
  proposal_queue_.clear();
  std::vector<std::string> batch;
  std::vector<uint64_t> batch_ids;
  for (uint64_t id : ids) {
    if (auto it = writes_.find(id); it != writes_.end()) {
      batch.push_back(it->second.command);
      batch_ids.push_back(id);
    } else if (auto rit = remote_writes_.find(id); rit != remote_writes_.end()) {
      batch.push_back(rit->second.command);
      batch_ids.push_back(id);
    }
  }
  if (batch.empty()) return;
  // The leader's wall clock: the state machine's clock (session expiry) is
  // the largest stamp applied, so it never goes back (docs/sessions.md).
  const uint64_t stamp_ms = wall_clock_ms();
  for (std::string& command : batch) set::stamp_command_time(command, stamp_ms);
  auto last = raft_->propose(std::move(batch));
  if (!last.ok()) {
    // Not proposed: local ones wait (NOQUORUM at their deadline); remote
    // ones are refused so their origin may try the new leader.
    for (uint64_t id : batch_ids) {
      if (auto it = writes_.find(id); it != writes_.end()) {
        it->second.queued = false;
      } else {
        refuse_remote(id, last.status());
      }
    }
    return;
  }
  Index first = *last - batch_ids.size() + 1;
  for (size_t i = 0; i < batch_ids.size(); ++i) {
    if (auto it = writes_.find(batch_ids[i]); it != writes_.end()) {
      it->second.proposed = true;
      it->second.queued = false;
    }
    proposals_[first + i] = Proposal{raft_->term(), batch_ids[i]};
  }
}

void Core::complete_proposal(uint64_t id, const Status& s, const set::ApplyResult& r) {
  if (writes_.count(id)) {
    // Overwritten by another leader's entries: never applied; a session
    // write is proposed again.
    if (!s.is_ok() && resend_later(id, false)) return;
    finish_write(id, s, r);
    return;
  }
  auto it = remote_writes_.find(id);
  if (it == remote_writes_.end()) return;
  RemoteWrite rw = std::move(it->second);
  remote_writes_.erase(it);
  net::PeerFrame f;
  auto* rep = f.mutable_forward_reply();
  rep->set_request_id(rw.origin_request_id);
  Status st = s.is_ok() ? r.status : s;
  rep->set_code(static_cast<uint32_t>(st.code()));
  rep->set_message(st.message());
  rep->set_count(r.count);
  rep->set_index(r.index);
  send_to(rw.origin, f);  // lost with the stream: the origin answers TIMEOUT
}

void Core::finish_write(uint64_t id, const Status& s, const set::ApplyResult& r) {
  auto it = writes_.find(id);
  if (it == writes_.end()) return;
  const bool expired =
      s.code() == Code::kSessionExpired || (s.is_ok() && r.status.code() == Code::kSessionExpired);
  if (expired && renumber(id)) return;
  if (it->second.unsequenced) --unsequenced_writes_;
  const bool maybe_applied = it->second.maybe_applied;
  WriteCallback done = std::move(it->second.done);
  writes_.erase(it);
  if (expired) {
    done(maybe_applied ? Status(Code::kTimeout,
                                "this replica's client session expired while the write was "
                                "retried: the outcome is unknown")
                       : Status(Code::kNoQuorum,
                                "this replica's client session expired and no new one could be "
                                "opened in time; nothing changed"),
         {});
  } else {
    done(s, r);
  }
  sequence_waiting_writes();  // the window may have room now
}

void Core::expire_writes(uint64_t now) {
  std::vector<uint64_t> expired;
  std::vector<uint64_t> resend;
  for (auto& [id, w] : writes_) {
    if (now >= w.deadline_ms) {
      expired.push_back(id);
    } else if (w.sequence != 0 && w.forwarded) {
      // Unanswered for two election timeouts, or its stream is gone or
      // replaced: the reply may be lost; the session makes a resend safe.
      auto link = links_.find(w.forwarded_to);
      if (now >= w.resend_ms || link == links_.end() || link->second->id != w.forwarded_stream)
        resend.push_back(id);
    } else if (!w.proposed && !w.forwarded && !w.queued) {
      start_write(id);
    }
  }
  for (uint64_t id : resend) resend_later(id, true);
  if (unsequenced_writes_ != 0 && session_id_ == 0) ensure_session();
  for (uint64_t id : expired) {
    auto it = writes_.find(id);
    if (it == writes_.end()) continue;
    bool passed = it->second.proposed || it->second.forwarded || it->second.maybe_applied;
    finish_write(id,
                 passed            ? Status(Code::kTimeout,
                                            "the write reached the leader but its commit was not confirmed "
                                                       "in time: the outcome is unknown")
                 : storage_failed_ ? kNoSpaceStatus
                                   : Status(Code::kNoQuorum,
                                            "no quorum within the write timeout; the request was "
                                            "never proposed, nothing changed"),
                 {});
  }
}

void Core::refuse_remote(uint64_t id, const Status& why) {
  auto it = remote_writes_.find(id);
  if (it == remote_writes_.end()) return;
  net::PeerFrame f;
  auto* rep = f.mutable_forward_reply();
  rep->set_request_id(it->second.origin_request_id);
  rep->set_code(static_cast<uint32_t>(Code::kNotLeader));
  rep->set_message(why.message());
  rep->set_leader_id(raft_->leader_id());
  send_to(it->second.origin, f);
  remote_writes_.erase(it);
}

void Core::on_forward_request(NodeId from, const net::ForwardRequest& req) {
  if (req.kind() != net::FORWARD_WRITE) return;
  uint64_t id = next_request_id_++;
  remote_writes_[id] = RemoteWrite{from, req.request_id(), req.command()};
  if (raft_->role() != raft::Role::kLeader || raft_->leaving() ||
      raft_->transfer_target() != raft::kNoNode || storage_failed_) {
    refuse_remote(id, Status(Code::kNotLeader, "not the leader"));
  } else {
    proposal_queue_.push_back(id);
  }
}

void Core::on_forward_reply(NodeId from, const net::ForwardReply& rep) {
  auto it = writes_.find(rep.request_id());
  if (it == writes_.end()) return;
  // A session write may have been sent to several leaders; any answer of
  // theirs is the one answer (the state machine applied it once).
  const bool current = it->second.forwarded_to == from;
  if (!current && it->second.sequence == 0) return;
  Code code = static_cast<Code>(rep.code());
  if (code == Code::kNotLeader) {
    // Refused without being proposed: safe to try the current leader.
    if (current) {
      it->second.forwarded = false;
      it->second.forwarded_to = 0;
    }
    return;
  }
  set::ApplyResult r;
  r.count = rep.count();
  r.index = rep.index();
  if (code != Code::kOk) r.status = Status(code, rep.message());
  // The state machine's answers (EXISTS, ...) travel in the result; the
  // leader's failures (TIMEOUT, NOSPACE) as the status.
  bool result =
      code == Code::kOk || code == Code::kExists || code == Code::kTooBig || code == Code::kCorrupt;
  // The leader's own failures: TIMEOUT (outcome unknown), NOQUORUM and
  // NOSPACE (nothing changed). A session write tries again.
  if (!result && !current) return;  // an earlier attempt's failure: the current one decides
  if (!result && code != Code::kSessionExpired &&
      resend_later(rep.request_id(), code == Code::kTimeout))
    return;
  finish_write(rep.request_id(), result ? Status::ok() : Status(code, rep.message()), r);
}

// ---------------------------------------------------------------------------
// Reads (ReadIndex, dissertation §6.4).

void Core::submit_read(ReadCallback done) {
  asio::post(io_, [this, done = std::move(done)]() mutable {
    if (stopped_) {
      done(Status(Code::kNoQuorum, "the replica is shutting down"));
      return;
    }
    if (!fatal_.is_ok()) {
      done(fatal_);
      return;
    }
    uint64_t id = next_request_id_++;
    PendingRead r;
    r.done = std::move(done);
    r.deadline_ms = now_ms() + opt_.write_timeout_ms;
    reads_.emplace(id, std::move(r));
    start_read(id);
  });
}

void Core::start_read(uint64_t id) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  PendingRead& r = it->second;
  if (!r.context.empty()) read_contexts_.erase(r.context);
  r.context =
      std::to_string(opt_.id) + ":" + std::to_string(id) + ":" + std::to_string(++read_seq_);
  r.retry_ms = now_ms() + 2 * opt_.election_timeout_ms;
  if (raft_->read_index(r.context).is_ok()) {
    read_contexts_[r.context] = id;
    kick();
  }
}

void Core::on_read_state(const raft::ReadState& rs) {
  auto it = read_contexts_.find(rs.context);
  if (it == read_contexts_.end()) return;
  uint64_t id = it->second;
  read_contexts_.erase(it);
  if (auto rit = reads_.find(id); rit != reads_.end())
    rit->second.read_index = std::max<Index>(rs.index, 1);
}

void Core::serve_ready_reads() {
  std::vector<uint64_t> ready;
  for (auto& [id, r] : reads_) {
    if (r.read_index != 0 && sm_->applied_index() >= r.read_index) ready.push_back(id);
  }
  for (uint64_t id : ready) finish_read(id, Status::ok());
}

void Core::finish_read(uint64_t id, const Status& s) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  ReadCallback done = std::move(it->second.done);
  read_contexts_.erase(it->second.context);
  reads_.erase(it);
  done(s);
}

void Core::fail_all_pending(const char* why) {
  std::vector<uint64_t> ids;
  for (auto& [id, w] : writes_) ids.push_back(id);
  for (uint64_t id : ids) {
    const PendingWrite& w = writes_.at(id);
    bool passed = w.proposed || w.forwarded || w.maybe_applied;
    finish_write(id,
                 passed ? Status(Code::kTimeout, std::string(why) + "; the outcome is unknown")
                        : Status(Code::kNoQuorum, std::string(why) + "; nothing changed"),
                 {});
  }
  ids.clear();
  for (auto& [id, r] : reads_) ids.push_back(id);
  for (uint64_t id : ids) finish_read(id, Status(Code::kNoQuorum, why));
}

}  // namespace cset::embed
