// Implementation notes. Rules are cited to the Raft paper ("paper §") and
// Ongaro's dissertation ("§"). The shape follows etcd's raft.go.
#include "raft/raft.h"

#include <algorithm>
#include <cassert>

#include "raft/codec.h"

namespace cset::raft {

namespace {

uint64_t entries_bytes(const std::vector<Entry>& entries) {
  uint64_t n = 0;
  for (const auto& e : entries) n += e.data.size() + 16;
  return n;
}

bool is_vote_request(MessageType t) {
  return t == MessageType::kVote || t == MessageType::kPreVote;
}

bool contains_id(const std::vector<NodeId>& ids, NodeId id) {
  return std::binary_search(ids.begin(), ids.end(), id);
}

// Messages that may only be sent once the batch they were produced with is
// durable: vote requests and grants, and append/snapshot acknowledgements.
bool promises_durability(const Message& m) {
  switch (m.type) {
    case MessageType::kVote:
    case MessageType::kPreVote:
      return true;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
    case MessageType::kAppendResponse:
    case MessageType::kSnapshotResponse:
      return !m.reject;
    default:
      return false;
  }
}

}  // namespace

bool Ready::empty() const {
  return !hard_state && entries.empty() && !snapshot && leader_messages.empty() &&
         messages.empty() && committed_entries.empty() && read_states.empty();
}

// ---------------------------------------------------------------------------
// Construction and start-up.

Raft::Raft(const Options& options)
    : id_(options.id),
      opts_(options),
      storage_(options.storage),
      log_(options.storage),
      rng_state_(options.random_seed ^ (options.id * 0x9E3779B97F4A7C15ULL)) {}

Result<std::unique_ptr<Raft>> Raft::create(const Options& options) {
  if (options.storage == nullptr) return Status(Code::kInvalid, "raft: no storage");
  if (options.id == kNoNode) return Status(Code::kInvalid, "raft: node id 0");
  if (options.election_ticks <= options.heartbeat_ticks || options.heartbeat_ticks <= 0) {
    return Status(Code::kInvalid, "raft: election_ticks must exceed heartbeat_ticks > 0");
  }
  std::unique_ptr<Raft> r(new Raft(options));
  Status s = r->load();
  if (!s) return s;
  return r;
}

Status Raft::load() {
  HardState hs = storage_->hard_state();
  Snapshot snap = storage_->snapshot();
  Index last = storage_->last_index();
  if (hs.commit > last) return Status(Code::kInvalid, "raft: commit index beyond the log");
  Index applied = std::max(opts_.applied, snap.meta.index);
  if (applied > hs.commit) {
    // The state machine's applied index is durable and only ever covers
    // committed entries, so the commit index is at least that far.
    if (applied > last) return Status(Code::kInvalid, "raft: applied index beyond the log");
    hs.commit = applied;
  }
  log_.load(hs.commit, applied);
  term_ = hs.term;
  vote_ = hs.vote;
  prev_hard_state_ = hs;
  durable_term_ = hs.term;
  durable_vote_ = hs.vote;
  durable_index_ = last;

  // The configuration in force: the snapshot's, then every committed
  // configuration entry after it; uncommitted ones are remembered until they
  // commit (or are truncated).
  config_ = snap.meta.config;
  config_index_ = snap.meta.index;
  // Read in batches of up to kScanBatchBytes (a seek per entry made a 1M
  // entry log take seconds to open).
  constexpr uint64_t kScanBatchBytes = 4 << 20;
  for (Index i = storage_->first_index(); i <= last;) {
    auto ents = storage_->entries(i, last + 1, kScanBatchBytes);
    if (!ents.ok()) return ents.status();
    if (ents->empty())
      return Status(Code::kCorrupt, "raft: log entry " + std::to_string(i) + " missing");
    for (const Entry& e : *ents) {
      if (e.type == EntryType::kConfig) {
        auto cfg = decode_configuration(e.data);
        if (!cfg.ok())
          return Status(Code::kCorrupt, "raft: bad configuration entry at index " +
                                            std::to_string(e.index) + ": " +
                                            cfg.status().message());
        if (e.index <= hs.commit) {
          config_ = *cfg;
          config_index_ = e.index;
        } else {
          pending_configs_[e.index] = *cfg;
        }
      }
    }
    i += ents->size();
  }
  quorum_ = make_quorum(config_);
  reset_randomized_timeout();
  become_follower(term_, kNoNode);
  return Status::ok();
}

Entry Raft::bootstrap_entry(const Configuration& config) {
  return Entry{1, 1, EntryType::kConfig, encode_configuration(config)};
}

Configuration Raft::initial_configuration(std::vector<Member> voters, QuorumMode mode) {
  std::sort(voters.begin(), voters.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  Configuration c;
  c.mode = mode;
  for (const auto& m : voters) c.voters.push_back(m.id);
  c.tiebreaker = default_tiebreaker(c.voters);
  c.members = std::move(voters);
  return c;
}

// ---------------------------------------------------------------------------
// Randomness (seeded by the caller) and role changes.

uint64_t Raft::next_random() {
  // splitmix64: deterministic from the seed.
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void Raft::reset_randomized_timeout() {
  randomized_election_ticks_ =
      opts_.election_ticks + static_cast<int>(next_random() % opts_.election_ticks);
}

void Raft::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
    // A partial InstallSnapshot belongs to the leader of the old term, whose
    // transfer can no longer complete (§5.3); keeping it would leave this
    // node unpromotable forever once a new leader catches it up by appends.
    receiving_snapshot_.reset();
  }
  leader_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  abort_transfer();
  removal_stepdown_ = false;
  votes_.clear();
  progress_.clear();
  pending_conf_index_ = 0;
  uncommitted_bytes_ = 0;
  reads_waiting_commit_.clear();
  reads_pending_.clear();
  read_broadcast_needed_ = false;
}

Role Raft::role() const {
  if (role_ == Role::kFollower && config_.is_learner(id_)) return Role::kLearner;
  return role_;
}

void Raft::become_follower(Term term, NodeId leader) {
  reset(term);
  role_ = Role::kFollower;
  leader_ = leader;
}

void Raft::become_pre_candidate() {
  // Pre-vote (§9.6) changes neither term nor vote.
  votes_.clear();
  leader_ = kNoNode;
  role_ = Role::kPreCandidate;
  abort_transfer();
}

void Raft::become_candidate() {
  reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::become_leader() {
  reset(term_);
  role_ = Role::kLeader;
  leader_ = id_;
  sync_progress();
  for (auto& [id, pr] : progress_) pr.recent_active = true;
  // Any configuration entry not yet committed may still take effect: no new
  // change until the leader has committed everything up to here.
  pending_conf_index_ = log_.last_index();
  // A no-op of the new term (paper §8) lets the leader commit earlier entries.
  Index idx = log_.last_index() + 1;
  log_.append({Entry{term_, idx, EntryType::kNoop, {}}});
  uncommitted_bytes_ = 0;
  broadcast_append();
  maybe_commit();
}

bool Raft::promotable() const {
  return quorum_.is_voter(id_) && !storage_failed_ && !receiving_snapshot_;
}

void Raft::campaign(bool pre_vote, bool transfer) {
  if (pre_vote) {
    become_pre_candidate();
    votes_[id_] = true;  // nothing to persist for a pre-vote
  } else {
    become_candidate();
    // The own vote counts once term and vote are durable (advance()).
  }
  Term t = pre_vote ? term_ + 1 : term_;
  for (NodeId peer : config_.all_nodes()) {
    if (peer == id_ || !quorum_.is_voter(peer)) continue;
    Message m;
    m.type = pre_vote ? MessageType::kPreVote : MessageType::kVote;
    m.to = peer;
    m.term = t;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = transfer;
    send(std::move(m));
  }
  poll_votes();
}

void Raft::poll_votes() {
  if (role_ != Role::kPreCandidate && role_ != Role::kCandidate) return;
  VoteResult result = vote_quorum().vote_result(votes_);
  if (result == VoteResult::kWon) {
    if (role_ == Role::kPreCandidate) {
      campaign(false, false);
    } else {
      become_leader();
    }
  } else if (result == VoteResult::kLost) {
    become_follower(term_, kNoNode);
  }
}

JointQuorum Raft::vote_quorum() const {
#ifdef CSET_TEST_HOOKS
  if (opts_.bugs.tiebreaker_from_reachable) {
    // BUG (test only): the tie-breaker taken from whoever answered.
    std::vector<NodeId> heard;
    for (const auto& [id, granted] : votes_) heard.push_back(id);
    return reachable_tiebreak_quorum(heard);
  }
#endif
  return quorum_;
}

JointQuorum Raft::make_quorum(const Configuration& config) const {
  JointQuorum q(config);
#ifdef CSET_TEST_HOOKS
  if (opts_.bugs.quorum_half_inclusive) q.set_half_inclusive_bug(true);
#endif
  return q;
}

JointQuorum Raft::reachable_tiebreak_quorum(const std::vector<NodeId>& heard) const {
  Configuration c = config_;
  std::vector<NodeId> sorted = heard;
  std::sort(sorted.begin(), sorted.end());
  for (NodeId id : sorted) {
    if (contains_id(c.voters, id)) {
      c.tiebreaker = id;
      break;
    }
  }
  for (NodeId id : sorted) {
    if (contains_id(c.outgoing_voters, id)) {
      c.outgoing_tiebreaker = id;
      break;
    }
  }
  return make_quorum(c);
}

bool Raft::bug(bool InjectedBugs::*flag) const {
#ifdef CSET_TEST_HOOKS
  return opts_.bugs.*flag;
#else
  (void)flag;
  return false;
#endif
}

// ---------------------------------------------------------------------------
// Ticks.

void Raft::tick() {
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_election_ticks_) {
    election_elapsed_ = 0;
    campaign(opts_.pre_vote, false);
  }
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= opts_.election_ticks) {
    election_elapsed_ = 0;
    // Check-quorum (§6.2): a leader not heard from by a quorum steps down,
    // so a partitioned leader stops holding clients.
    if (opts_.check_quorum && !quorum_active()) {
      become_follower(term_, kNoNode);
      return;
    }
    if (transfer_target_ != kNoNode) abort_transfer();
  }
  if (transfer_target_ != kNoNode && ++transfer_elapsed_ >= opts_.election_ticks) {
    abort_transfer();
  }
  if (removal_stepdown_ && transfer_target_ == kNoNode) {
    // The hand-over after our removal did not complete in time: step down
    // anyway; the remaining voters elect among themselves.
    become_follower(term_, kNoNode);
    return;
  }
  // A leader that cannot persist hands leadership over (DESIGN.md).
  if (storage_failed_ && transfer_target_ == kNoNode) {
    NodeId target = best_transfer_target();
    if (target != kNoNode) transfer_leadership(target);
  }
  if (heartbeat_elapsed_ >= opts_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat({});
    // Resend a snapshot chunk that went unanswered.
    for (auto& [id, pr] : progress_) {
      if (id == id_ || pr.state != ProgressState::kSnapshot) continue;
      if (pr.snapshot_chunk_inflight && ++pr.snapshot_ticks >= opts_.election_ticks) {
        pr.snapshot_chunk_inflight = false;
        send_snapshot_chunk(id, pr);
      }
    }
  }
}

bool Raft::quorum_active() {
  std::vector<NodeId> active{id_};
  for (auto& [id, pr] : progress_) {
    if (id == id_) continue;
    if (pr.recent_active) active.push_back(id);
    pr.active_last_round = pr.recent_active;
    pr.recent_active = false;
  }
#ifdef CSET_TEST_HOOKS
  if (opts_.bugs.tiebreaker_from_reachable)
    return reachable_tiebreak_quorum(active).is_quorum(active);
#endif
  return quorum_.is_quorum(active);
}

// ---------------------------------------------------------------------------
// Messages.

void Raft::send(Message m) {
  m.from = id_;
  if (m.term == 0) m.term = term_;
  bool leader_may_send_early =
      role_ == Role::kLeader &&
      (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
       m.type == MessageType::kSnapshot || m.type == MessageType::kTimeoutNow);
  if (leader_may_send_early) {
    leader_msgs_.push_back(std::move(m));
  } else {
    msgs_.push_back(std::move(m));
  }
}

void Raft::step(const Message& m) {
  if (m.term > term_) {
    if (is_vote_request(m.type)) {
      // Leader stickiness (§4.2.3 / §9.6): a node that heard from a leader
      // within the minimum election timeout ignores vote requests, unless
      // the candidate campaigns on the leader's own TimeoutNow.
      bool in_lease =
          opts_.check_quorum && leader_ != kNoNode && election_elapsed_ < opts_.election_ticks;
      if (in_lease && !m.transfer) return;
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote does not change our term.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // Granted for the term we would campaign in.
    } else {
      bool from_leader = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                         m.type == MessageType::kSnapshot;
      become_follower(m.term, from_leader ? m.from : kNoNode);
    }
  } else if (m.term < term_) {
    if ((opts_.check_quorum || opts_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
         m.type == MessageType::kSnapshot)) {
      // A stale leader learns our term and steps down (§9.6: otherwise a
      // node that pre-vote keeps from campaigning could never rejoin).
      Message resp;
      resp.type = MessageType::kAppendResponse;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      resp.index = m.index;
      send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResponse;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      attach_commit_point(resp);
      send(std::move(resp));
    }
    return;
  }

  if (is_vote_request(m.type)) {
    handle_vote_request(m);
    return;
  }
  switch (role_) {
    case Role::kLeader:
      step_leader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      step_candidate(m);
      break;
    default:
      step_follower(m);
      break;
  }
}

void Raft::handle_vote_request(const Message& m) {
  // A node that cannot persist never votes (DESIGN.md).
  if (storage_failed_) return;
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) ||
                  (m.type == MessageType::kPreVote && m.term > term_);
  bool log_ok =
      log_.is_up_to_date(m.index, m.log_term) || bug(&InjectedBugs::vote_without_log_check);
  Message resp;
  resp.type =
      m.type == MessageType::kVote ? MessageType::kVoteResponse : MessageType::kPreVoteResponse;
  resp.to = m.from;
  if (can_vote && log_ok) {
    // Paper §5.2/§5.4; a pre-vote grant answers in the asked term.
    resp.term = m.term;
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
    attach_commit_point(resp);
  }
  send(std::move(resp));
}

void Raft::attach_commit_point(Message& resp) const {
  auto t = log_.term(log_.committed());
  if (!t.ok()) return;
  resp.commit = log_.committed();
  resp.log_term = *t;
}

void Raft::learn_commit_point(const Message& m) {
  // Any node's commit index names an entry that is committed. When our log
  // holds the same (index, term), log matching makes our whole prefix up to
  // it identical, so it is committed here too. Without this a candidate
  // stuck in a joint configuration whose C_new commit it never heard of
  // needs the vote of a node that C_new removed, which has a longer log and
  // can neither vote for it nor campaign (soak seed 16657, 2 nodes).
  if (m.commit <= log_.committed() || m.log_term == 0) return;
  if (!log_.match_term(m.commit, m.log_term)) return;
  commit_to(m.commit);
  // The configuration just committed may have removed us: stop campaigning
  // (a candidate must be a voter of the configuration it would lead).
  if (!promotable()) become_follower(term_, kNoNode);
}

void Raft::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_append(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_heartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_snapshot_chunk(m);
      break;
    case MessageType::kTimeoutNow:
      // §3.10: campaign at once, skipping pre-vote.
      if (promotable()) campaign(false, true);
      break;
    case MessageType::kReadIndexResponse:
      read_states_.push_back({m.index, m.context});
      break;
    default:
      break;
  }
}

void Raft::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // A leader of our term exists (paper §5.2).
      become_follower(m.term, m.from);
      step_follower(m);
      break;
    case MessageType::kPreVoteResponse:
      if (role_ == Role::kPreCandidate) {
        if (m.reject) learn_commit_point(m);
        if (role_ != Role::kPreCandidate) break;  // removed by what it learned
        votes_.emplace(m.from, !m.reject);
        poll_votes();
      }
      break;
    case MessageType::kVoteResponse:
      if (role_ == Role::kCandidate) {
        if (m.reject) learn_commit_point(m);
        if (role_ != Role::kCandidate) break;  // removed by what it learned
        votes_.emplace(m.from, !m.reject);
        poll_votes();
      }
      break;
    default:
      break;
  }
}

void Raft::handle_append(const Message& m) {
  // A node that cannot persist does not acknowledge (DESIGN.md).
  if (storage_failed_) return;
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    resp.index = log_.committed();
    send(std::move(resp));
    return;
  }
  Index truncated_from = 0;
  auto last_new = log_.maybe_append(m.index, m.log_term, m.entries, &truncated_from);
  if (last_new) {
    if (truncated_from != 0) {
      truncate_pending_configs(truncated_from);
      durable_index_ = std::min(durable_index_, truncated_from - 1);
    }
    remember_configs(m.entries);
    commit_to(std::min(m.commit, *last_new));
    resp.index = *last_new;
    send(std::move(resp));
    return;
  }
  // Reject with a hint (paper §5.3): the largest index <= m.index whose term
  // is <= m.log_term, so the leader can skip a whole term per round trip.
  auto [hint_index, hint_term] =
      log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
  resp.reject = true;
  resp.index = m.index;
  resp.reject_hint = hint_index;
  resp.reject_hint_term = hint_term;
  send(std::move(resp));
}

void Raft::handle_heartbeat(const Message& m) {
  // The leader caps m.commit at our match index, so the log up to it matches.
  if (m.commit <= log_.last_index()) commit_to(m.commit);
  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.to = m.from;
  resp.context = m.context;
  send(std::move(resp));
}

void Raft::handle_snapshot_chunk(const Message& m) {
  if (storage_failed_) return;
  Message resp;
  resp.type = MessageType::kSnapshotResponse;
  resp.to = m.from;
  resp.index = m.snapshot_meta.index;
  if (m.snapshot_meta.index <= log_.committed()) {
    // Already have everything it covers.
    resp.snapshot_done = true;
    resp.index = log_.committed();
    receiving_snapshot_.reset();
    send(std::move(resp));
    return;
  }
  bool same = receiving_snapshot_ && receiving_snapshot_->meta.index == m.snapshot_meta.index &&
              receiving_snapshot_->meta.term == m.snapshot_meta.term;
  if (m.snapshot_offset == 0) {
    receiving_snapshot_ = Snapshot{m.snapshot_meta, m.snapshot_chunk};
  } else if (same && m.snapshot_offset == receiving_snapshot_->data.size()) {
    receiving_snapshot_->data += m.snapshot_chunk;
  } else if (same &&
             m.snapshot_offset + m.snapshot_chunk.size() <= receiving_snapshot_->data.size()) {
    // A duplicate chunk: acknowledge what we have.
  } else {
    // Out of order (a transfer cut short, or we restarted): say where we are;
    // offset 0 restarts the transfer cleanly.
    resp.reject = true;
    resp.snapshot_offset = same ? receiving_snapshot_->data.size() : 0;
    send(std::move(resp));
    return;
  }
  resp.snapshot_offset = receiving_snapshot_->data.size();
  if (m.snapshot_done &&
      m.snapshot_offset + m.snapshot_chunk.size() == receiving_snapshot_->data.size()) {
    Snapshot snap = std::move(*receiving_snapshot_);
    receiving_snapshot_.reset();
    restore_snapshot(std::move(snap));
    resp.snapshot_done = true;
    resp.index = std::max(log_.committed(), m.snapshot_meta.index);
  }
  send(std::move(resp));
}

bool Raft::restore_snapshot(Snapshot snap) {
  if (snap.meta.index <= log_.committed()) return false;
  if (log_.match_term(snap.meta.index, snap.meta.term)) {
    // Our log already holds the snapshot's last entry: fast-forward.
    commit_to(snap.meta.index);
    return false;
  }
  pending_configs_.clear();
  durable_index_ = 0;  // until advance() confirms the snapshot durable
  Configuration cfg = snap.meta.config;
  log_.restore(std::move(snap));
  config_index_ = log_.committed();
  activate_config(cfg);
  return true;
}

// ---------------------------------------------------------------------------
// Leader.

void Raft::step_leader(const Message& m) {
  if (m.type == MessageType::kReadIndex) {
    read_index_from(m.context, m.from);
    return;
  }
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::kAppendResponse:
      pr.recent_active = true;
      handle_append_response(m, pr);
      break;
    case MessageType::kHeartbeatResponse:
      pr.recent_active = true;
      handle_heartbeat_response(m, pr);
      break;
    case MessageType::kSnapshotResponse:
      pr.recent_active = true;
      handle_snapshot_response(m, pr);
      break;
    default:
      break;
  }
}

void Raft::handle_append_response(const Message& m, Progress& pr) {
  if (m.reject) {
    // Next probe: the leader's own last index whose term is <= the hint's
    // term (etcd's findConflictByTerm on the leader side).
    Index hint = m.reject_hint;
    if (m.reject_hint_term > 0) {
      hint = log_.find_conflict_by_term(m.reject_hint, m.reject_hint_term).first;
    }
    if (pr.maybe_decrease_to(m.index, hint)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      send_append(m.from);
    }
    return;
  }
  bool was_paused = pr.paused();
  if (!pr.maybe_update(m.index)) {
    if (was_paused && !pr.paused()) send_append(m.from);
    return;
  }
  pr.inflights.free_le(m.index);
  if (pr.state == ProgressState::kProbe) pr.become_replicate();
  if (maybe_commit()) {
    broadcast_append();
  } else {
    // Keep the pipeline full.
    while (send_append(m.from, false)) {
    }
  }
  if (m.from == transfer_target_ && pr.match == log_.last_index()) send_timeout_now(m.from);
}

void Raft::handle_heartbeat_response(const Message& m, Progress& pr) {
  if (pr.state == ProgressState::kProbe) pr.probe_sent = false;
  // The follower is reachable, but every append that filled its window may
  // have been lost (a partition that just healed): free one slot so the next
  // append goes out and is either accepted or rejected (which turns the
  // follower back to probe). Without this it would stay paused forever.
  if (pr.state == ProgressState::kReplicate && pr.inflights.full()) {
    pr.inflights.free_first_one();
  }
  if (pr.match < log_.last_index()) send_append(m.from);
  if (!m.context.empty()) ack_read(m.context, m.from);
}

void Raft::handle_snapshot_response(const Message& m, Progress& pr) {
  if (pr.state != ProgressState::kSnapshot) return;
  if (m.snapshot_done) {
    pr.maybe_update(m.index);
    pr.become_replicate();
    send_append(m.from);
    return;
  }
  if (m.index != pr.pending_snapshot) return;  // about another snapshot
  pr.snapshot_chunk_inflight = false;
  pr.snapshot_offset =
      m.reject ? m.snapshot_offset : std::max(pr.snapshot_offset, m.snapshot_offset);
  send_snapshot_chunk(m.from, pr);
}

void Raft::sync_progress() {
  if (role_ != Role::kLeader) return;
  std::vector<NodeId> nodes = config_.all_nodes();
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!contains_id(nodes, it->first)) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
  for (NodeId id : nodes) {
    if (progress_.count(id)) continue;
    Progress pr(log_.last_index() + 1, opts_.max_inflight_messages, opts_.max_inflight_bytes);
    if (id == id_) pr.match = durable_index_;
    pr.recent_active = true;
    progress_.emplace(id, std::move(pr));
  }
}

Index Raft::self_match() const {
  if (bug(&InjectedBugs::leader_counts_unsynced)) return log_.last_index();
  return std::min(durable_index_, log_.last_index());
}

bool Raft::maybe_commit() {
  auto match = [this](NodeId id) -> Index {
    if (id == id_) return self_match();
    auto it = progress_.find(id);
    return it == progress_.end() ? 0 : it->second.match;
  };
  Index index;
#ifdef CSET_TEST_HOOKS
  if (opts_.bugs.commit_on_minority) {
    // BUG (test only): the highest index any voter has.
    index = 0;
    for (NodeId id : config_.all_nodes()) {
      if (quorum_.is_voter(id)) index = std::max(index, match(id));
    }
  } else if (opts_.bugs.tiebreaker_from_reachable) {
    std::vector<NodeId> heard{id_};
    for (const auto& [id, pr] : progress_) {
      if (id != id_ && pr.recent_active) heard.push_back(id);
    }
    index = reachable_tiebreak_quorum(heard).committed_index(match);
  } else {
    index = quorum_.committed_index(match);
  }
#else
  index = quorum_.committed_index(match);
#endif
  if (index == UINT64_MAX) index = 0;
  index = std::min(index, log_.last_index());
  if (index <= log_.committed()) return false;
  // Figure 8 (paper §5.4.2): only an entry of the current term is committed
  // by counting replicas; earlier ones are committed with it.
  if (log_.term_or_zero(index) != term_ && !bug(&InjectedBugs::commit_old_term)) return false;
  commit_to(index);
  return true;
}

void Raft::commit_to(Index index) {
  Index before = log_.committed();
  log_.commit_to(index);
  if (log_.committed() == before) return;
  apply_committed_configs();
  if (role_ == Role::kLeader) {
    uncommitted_bytes_ = 0;
    if (committed_current_term()) {
      auto waiting = std::move(reads_waiting_commit_);
      reads_waiting_commit_.clear();
      for (auto& [ctx, from] : waiting) serve_read(ctx, from);
    }
    maybe_auto_leave();
  }
}

bool Raft::committed_current_term() const { return log_.term_or_zero(log_.committed()) == term_; }

bool Raft::send_append(NodeId to, bool send_if_empty) {
  auto it = progress_.find(to);
  if (it == progress_.end() || to == id_) return false;
  Progress& pr = it->second;
  if (pr.paused()) return false;
  Index prev = pr.next - 1;
  auto prev_term = log_.term(prev);
  auto ents = log_.slice(pr.next, log_.last_index() + 1, opts_.max_append_bytes);
  if (!prev_term.ok() || !ents.ok()) {
    // The follower needs entries we compacted: InstallSnapshot (§5.3).
    if (!pr.recent_active) return false;
    SnapshotMeta snap = storage_->snapshot_meta();
    if (snap.index == 0) return false;
    pr.become_snapshot(snap.index);
    send_snapshot_chunk(to, pr);
    return false;
  }
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  uint64_t bytes = entries_bytes(*ents);
  Index last = ents->empty() ? prev : ents->back().index;
  m.entries = std::move(ents).value();
  pr.sent_entries(last, bytes);
  send(std::move(m));
  return true;
}

void Raft::send_snapshot_chunk(NodeId to, Progress& pr) {
  // Only this chunk's bytes are copied out of storage, not the whole image.
  SnapshotChunk chunk = storage_->snapshot_chunk(pr.snapshot_offset, opts_.snapshot_chunk_bytes);
  if (chunk.meta.index != pr.pending_snapshot) {
    // A newer snapshot was taken meanwhile: restart with it.
    pr.become_snapshot(chunk.meta.index);
    chunk = storage_->snapshot_chunk(pr.snapshot_offset, opts_.snapshot_chunk_bytes);
  }
  if (chunk.total_bytes == 0) {
    // No image to send now (storage.h): never an empty "done" chunk, which
    // would install an empty state. Asked again after an election timeout,
    // as for a chunk that went unanswered (tick()).
    pr.snapshot_chunk_inflight = true;
    pr.snapshot_ticks = 0;
    return;
  }
  uint64_t offset = std::min<uint64_t>(pr.snapshot_offset, chunk.total_bytes);
  uint64_t len = chunk.bytes.size();
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.snapshot_meta = std::move(chunk.meta);
  m.snapshot_offset = offset;
  m.snapshot_chunk = std::move(chunk.bytes);
  m.snapshot_done = offset + len == chunk.total_bytes;
  pr.snapshot_chunk_inflight = true;
  pr.snapshot_ticks = 0;
  send(std::move(m));
}

void Raft::send_heartbeat(NodeId to, const std::string& context) {
  auto it = progress_.find(to);
  if (it == progress_.end()) return;
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never past what the follower is known to hold (its log may differ after).
  m.commit = std::min(it->second.match, log_.committed());
  m.context = context;
  send(std::move(m));
}

void Raft::broadcast_append() {
  for (auto& [id, pr] : progress_) {
    if (id != id_) send_append(id);
  }
}

void Raft::broadcast_heartbeat(const std::string& context) {
  for (auto& [id, pr] : progress_) {
    if (id != id_) send_heartbeat(id, context);
  }
}

void Raft::send_timeout_now(NodeId to) {
  // The commit index first, so the new leader starts from the latest
  // configuration (it matters when this leader was removed).
  send_heartbeat(to, {});
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  send(std::move(m));
}

// ---------------------------------------------------------------------------
// Proposals.

Result<Index> Raft::propose(std::vector<std::string> batch) {
  if (role_ != Role::kLeader) return Status(Code::kNotLeader, "not the leader");
  if (transfer_target_ != kNoNode) {
    return Status(Code::kNotLeader, "leadership transfer in progress");
  }
  if (storage_failed_) return Status(Code::kNoSpace, "this node cannot persist");
  if (leaving()) {
    // Nothing may follow the configuration that removes this leader: the
    // voter it hands over to must be able to be exactly as up to date.
    return Status(Code::kNotLeader, "this leader is being removed from the cluster");
  }
  if (batch.empty()) return log_.last_index();
  std::vector<Entry> ents;
  ents.reserve(batch.size());
  Index idx = log_.last_index();
  uint64_t bytes = 0;
  for (auto& data : batch) {
    bytes += data.size() + 16;
    ents.push_back(Entry{term_, ++idx, EntryType::kNormal, std::move(data)});
  }
  if (opts_.max_uncommitted_bytes > 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + bytes > opts_.max_uncommitted_bytes) {
    return Status(Code::kUnavailable, "too many uncommitted entries");
  }
  uncommitted_bytes_ += bytes;
  Index last = log_.append(std::move(ents));
  broadcast_append();
  maybe_commit();
  return last;
}

bool Raft::leaving() const {
  const Configuration& latest =
      pending_configs_.empty() ? config_ : pending_configs_.rbegin()->second;
  return role_ == Role::kLeader && !contains_id(latest.voters, id_);
}

bool Raft::conf_change_pending() const {
  return role_ == Role::kLeader && pending_conf_index_ > log_.committed();
}

Result<Configuration> Raft::next_config(const std::vector<ConfChange>& changes) const {
  if (config_.joint()) return Status(Code::kBusy, "configuration is joint");
  Configuration c = config_;
  std::vector<NodeId> voters = c.voters;
  for (const auto& ch : changes) {
    if (ch.id == kNoNode) return Status(Code::kInvalid, "node id 0");
    if (contains_id(c.removed, ch.id)) {
      return Status(Code::kInvalid,
                    "node " + std::to_string(ch.id) + " was removed; ids are never reused");
    }
    auto in = [](std::vector<NodeId>& v, NodeId id) {
      return std::find(v.begin(), v.end(), id) != v.end();
    };
    auto erase = [](std::vector<NodeId>& v, NodeId id) {
      v.erase(std::remove(v.begin(), v.end(), id), v.end());
    };
    switch (ch.type) {
      case ConfChange::Type::kAddLearner:
      case ConfChange::Type::kAddVoter:
        if (in(voters, ch.id) || in(c.learners, ch.id)) {
          return Status(Code::kInvalid, "node " + std::to_string(ch.id) + " is already a member");
        }
        if (ch.type == ConfChange::Type::kAddVoter) {
          voters.push_back(ch.id);
        } else {
          c.learners.push_back(ch.id);
        }
        c.members.push_back(Member{ch.id, ch.context});
        break;
      case ConfChange::Type::kPromote:
        if (!in(c.learners, ch.id)) {
          return Status(Code::kInvalid, "node " + std::to_string(ch.id) + " is not a learner");
        }
        erase(c.learners, ch.id);
        voters.push_back(ch.id);
        break;
      case ConfChange::Type::kUpdate: {
        auto m = std::find_if(c.members.begin(), c.members.end(),
                              [&](const Member& x) { return x.id == ch.id; });
        if (m == c.members.end()) {
          return Status(Code::kInvalid, "node " + std::to_string(ch.id) + " is not a member");
        }
        m->context = ch.context;
        break;
      }
      case ConfChange::Type::kRemove:
        if (!in(voters, ch.id) && !in(c.learners, ch.id)) {
          return Status(Code::kInvalid, "node " + std::to_string(ch.id) + " is not a member");
        }
        erase(voters, ch.id);
        erase(c.learners, ch.id);
        c.members.erase(std::remove_if(c.members.begin(), c.members.end(),
                                       [&](const Member& m) { return m.id == ch.id; }),
                        c.members.end());
        c.removed.push_back(ch.id);
        break;
    }
  }
  if (voters.empty()) return Status(Code::kInvalid, "a configuration needs at least one voter");
  std::sort(voters.begin(), voters.end());
  std::sort(c.learners.begin(), c.learners.end());
  std::sort(c.removed.begin(), c.removed.end());
  std::sort(c.members.begin(), c.members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  if (voters != c.voters) {
    // The tie-breaker stays unless it left; then the lowest remaining voter.
    NodeId tb = contains_id(voters, c.tiebreaker) ? c.tiebreaker : default_tiebreaker(voters);
    if (bug(&InjectedBugs::single_server_change)) {
      c.voters = voters;
      c.tiebreaker = tb;
    } else {
      c.outgoing_voters = c.voters;
      c.outgoing_tiebreaker = c.tiebreaker;
      c.voters = voters;
      c.tiebreaker = tb;
    }
  }
  return c;
}

Result<Index> Raft::propose_conf_change(const std::vector<ConfChange>& changes) {
  if (role_ != Role::kLeader) return Status(Code::kNotLeader, "not the leader");
  if (transfer_target_ != kNoNode)
    return Status(Code::kNotLeader, "leadership transfer in progress");
  if (!committed_current_term()) {
    return Status(Code::kBusy, "the leader has not yet committed an entry of its term");
  }
  if (conf_change_pending() || config_.joint()) {
    return Status(Code::kBusy, "a configuration change is already in flight");
  }
  auto next = next_config(changes);
  if (!next.ok()) return next.status();
  // Refuse a change that would leave no quorum among the nodes we hear from:
  // heard from in this check-quorum round or the last one (right after a
  // round, recent_active is false for every peer until its next reply).
  std::vector<NodeId> active{id_};
  for (const auto& [id, pr] : progress_) {
    if (id != id_ && (pr.recent_active || pr.active_last_round)) active.push_back(id);
  }
  for (const auto& ch : changes) {
    if (ch.type == ConfChange::Type::kAddVoter) active.push_back(ch.id);  // catching up
  }
  if (!make_quorum(*next).is_quorum(active)) {
    return Status(Code::kNoQuorum, "the new configuration would have no reachable quorum");
  }
  return append_config(*next);
}

Index Raft::append_config(const Configuration& config) {
  Index idx = log_.last_index() + 1;
  Entry e{term_, idx, EntryType::kConfig, encode_configuration(config)};
  log_.append({e});
  pending_configs_[idx] = config;
  pending_conf_index_ = idx;
  broadcast_append();
  maybe_commit();
  return idx;
}

void Raft::maybe_auto_leave() {
  // Once C_old,new is committed, the leader proposes C_new (§4.3).
  if (role_ != Role::kLeader || !config_.joint()) return;
  if (pending_conf_index_ > log_.committed()) return;
  if (!committed_current_term()) return;
  Configuration c = config_;
  c.outgoing_voters.clear();
  c.outgoing_tiebreaker = kNoNode;
  append_config(c);
}

void Raft::remember_configs(const std::vector<Entry>& entries) {
  for (const auto& e : entries) {
    if (e.type != EntryType::kConfig || e.index <= log_.committed()) continue;
    auto cfg = decode_configuration(e.data);
    if (cfg.ok()) pending_configs_[e.index] = std::move(cfg).value();
  }
}

void Raft::truncate_pending_configs(Index from) {
  pending_configs_.erase(pending_configs_.lower_bound(from), pending_configs_.end());
}

void Raft::apply_committed_configs() {
  while (!pending_configs_.empty() && pending_configs_.begin()->first <= log_.committed()) {
    auto node = pending_configs_.extract(pending_configs_.begin());
    config_index_ = node.key();
    activate_config(node.mapped());
  }
}

void Raft::activate_config(const Configuration& config) {
  config_ = config;
  quorum_ = make_quorum(config_);
  if (role_ != Role::kLeader) return;
  sync_progress();
  if (!quorum_.is_voter(id_) && !config_.joint()) {
    // The leader was removed (§4.2.2). Stepping down at once can leave the
    // remaining voters unable to elect anyone (etcd#11038, case C05): one
    // may not yet know C_new committed and still need this node's vote, and
    // must then be as up to date as this node. So hand over properly: bring
    // the most up-to-date voter level (entries and commit index), send it
    // TimeoutNow, and step down when it takes over or the transfer times out.
    NodeId target = best_transfer_target();
    if (target == kNoNode) {
      become_follower(term_, kNoNode);
      return;
    }
    removal_stepdown_ = true;
    abort_transfer();
    transfer_leadership(target);
    return;
  }
  maybe_commit();
}

// ---------------------------------------------------------------------------
// ReadIndex (§6.4).

Status Raft::read_index(std::string context) {
  if (role_ == Role::kLeader) {
    read_index_from(std::move(context), kNoNode);
    return Status::ok();
  }
  if (leader_ == kNoNode) return Status(Code::kNotLeader, "no leader known");
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = leader_;
  m.context = std::move(context);
  send(std::move(m));
  return Status::ok();
}

void Raft::read_index_from(std::string context, NodeId from) {
  if (!committed_current_term() && !bug(&InjectedBugs::read_index_before_term_commit)) {
    // The leader's commit index is only known to be current once it has
    // committed an entry of its own term.
    reads_waiting_commit_.emplace_back(std::move(context), from);
    return;
  }
  serve_read(std::move(context), from);
}

void Raft::serve_read(std::string context, NodeId from) {
  PendingRead r{std::move(context), from, log_.committed(), {}};
  r.acks.insert(id_);
  if (quorum_.is_quorum({id_})) {
    release_read(r);
    return;
  }
  reads_pending_.push_back(std::move(r));
  read_broadcast_needed_ = true;
}

void Raft::ack_read(const std::string& context, NodeId from) {
  auto it = std::find_if(reads_pending_.begin(), reads_pending_.end(),
                         [&](const PendingRead& r) { return r.context == context; });
  if (it == reads_pending_.end()) return;
  it->acks.insert(from);
  std::vector<NodeId> acks(it->acks.begin(), it->acks.end());
  if (!quorum_.is_quorum(acks)) return;
  // A quorum confirmed leadership after every earlier request arrived.
  auto end = std::next(it);
  for (auto r = reads_pending_.begin(); r != end; ++r) release_read(*r);
  reads_pending_.erase(reads_pending_.begin(), end);
}

void Raft::release_read(const PendingRead& r) {
  if (r.from == kNoNode || r.from == id_) {
    read_states_.push_back({r.index, r.context});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = r.from;
  m.index = r.index;
  m.context = r.context;
  send(std::move(m));
}

// ---------------------------------------------------------------------------
// Leadership transfer (§3.10).

Status Raft::transfer_leadership(NodeId target) {
  if (role_ != Role::kLeader) return Status(Code::kNotLeader, "not the leader");
  if (target == id_) return Status(Code::kInvalid, "already the leader");
  if (!quorum_.is_voter(target) || !progress_.count(target)) {
    return Status(Code::kInvalid, "node " + std::to_string(target) + " is not a voter");
  }
  if (transfer_target_ == target) return Status::ok();
  abort_transfer();
  transfer_target_ = target;
  transfer_elapsed_ = 0;
  if (progress_.at(target).match == log_.last_index()) {
    send_timeout_now(target);
  } else {
    send_append(target);
  }
  return Status::ok();
}

void Raft::abort_transfer() {
  transfer_target_ = kNoNode;
  transfer_elapsed_ = 0;
}

NodeId Raft::best_transfer_target() const {
  NodeId best = kNoNode;
  Index best_match = 0;
  for (const auto& [id, pr] : progress_) {
    if (id == id_ || !quorum_.incoming().contains(id)) continue;
    if (best == kNoNode || pr.match > best_match) {
      best = id;
      best_match = pr.match;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Storage failure.

void Raft::set_storage_failed(bool failed) {
  storage_failed_ = failed;
  if (failed) {
    // Votes and acknowledgements still waiting for the next ready() would be
    // sent only once that batch is durable, which it will not be: drop them,
    // so a failure reported before ready() cannot let one out (the node
    // neither votes nor acknowledges; the peers retry). Rejections,
    // heartbeat responses and ReadIndex traffic promise nothing durable.
    std::erase_if(msgs_, promises_durability);
  }
  if (failed && role_ == Role::kLeader && transfer_target_ == kNoNode) {
    NodeId target = best_transfer_target();
    if (target != kNoNode) transfer_leadership(target);
  }
  if (failed && (role_ == Role::kCandidate || role_ == Role::kPreCandidate)) {
    become_follower(term_, kNoNode);
  }
}

// ---------------------------------------------------------------------------
// Ready / advance.

HardState Raft::hard_state() const { return HardState{term_, vote_, log_.committed()}; }

bool Raft::has_ready() const {
  if (storage_failed_) {
    // Nothing can be persisted; messages that do not depend on it may go
    // (votes and acknowledgements are not produced meanwhile).
    return !leader_msgs_.empty() || !msgs_.empty() || !read_states_.empty() ||
           read_broadcast_needed_;
  }
  return hard_state() != prev_hard_state_ || !log_.unstable_entries().empty() ||
         log_.unstable_snapshot().has_value() || !msgs_.empty() || !leader_msgs_.empty() ||
         (log_.has_next_committed_entries() && log_read_error_.is_ok()) || !read_states_.empty() ||
         read_broadcast_needed_;
}

Ready Raft::ready() {
  if (read_broadcast_needed_ && role_ == Role::kLeader && !reads_pending_.empty()) {
    // One heartbeat round confirms every read queued so far (batching).
    broadcast_heartbeat(reads_pending_.back().context);
  }
  read_broadcast_needed_ = false;
  Ready rd;
  rd.leader_messages = std::move(leader_msgs_);
  leader_msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  if (storage_failed_) return rd;
  HardState hs = hard_state();
  if (hs != prev_hard_state_) rd.hard_state = hs;
  rd.entries = log_.unstable_entries();
  if (log_.unstable_snapshot()) rd.snapshot = *log_.unstable_snapshot();
  if (log_read_error_.is_ok()) {
    auto committed = log_.next_committed_entries(opts_.max_committed_bytes_per_ready);
    if (committed.ok()) {
      rd.committed_entries = std::move(committed).value();
    } else {
      log_read_error_ = committed.status();
    }
  }
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                 (rd.hard_state && (rd.hard_state->term != prev_hard_state_.term ||
                                    rd.hard_state->vote != prev_hard_state_.vote));
  return rd;
}

void Raft::advance(const Ready& rd) {
  if (rd.hard_state) {
    prev_hard_state_ = *rd.hard_state;
    durable_term_ = rd.hard_state->term;
    durable_vote_ = rd.hard_state->vote;
  }
  if (rd.snapshot) {
    log_.stable_snapshot_to(rd.snapshot->meta.index);
    log_.applied_to(rd.snapshot->meta.index);
    durable_index_ = std::max(durable_index_, rd.snapshot->meta.index);
  }
  if (!rd.entries.empty()) {
    const Entry& last = rd.entries.back();
    // Persisting entries truncates anything after them in storage. If the
    // log was truncated again since ready() (a step() in between), the
    // persisted entries are superseded and durable_index_ was lowered then.
    if (log_.term_or_zero(last.index) == last.term) durable_index_ = last.index;
    log_.stable_to(last.index, last.term);
  }
  if (!rd.committed_entries.empty()) log_.applied_to(rd.committed_entries.back().index);
  // A candidate's own vote counts once durable.
  if (role_ == Role::kCandidate && durable_term_ == term_ && durable_vote_ == id_ &&
      !votes_.count(id_)) {
    votes_[id_] = true;
    poll_votes();
  }
  if (role_ == Role::kLeader) {
    if (progress_.count(id_)) progress_.at(id_).match = self_match();
    if (maybe_commit()) broadcast_append();
  }
}

std::vector<Message> Raft::take_leader_messages() {
  std::vector<Message> out = std::move(leader_msgs_);
  leader_msgs_.clear();
  if (read_broadcast_needed_ && role_ == Role::kLeader && !reads_pending_.empty()) {
    broadcast_heartbeat(reads_pending_.back().context);
    read_broadcast_needed_ = false;
    out.insert(out.end(), std::make_move_iterator(leader_msgs_.begin()),
               std::make_move_iterator(leader_msgs_.end()));
    leader_msgs_.clear();
  }
  return out;
}

std::vector<PeerStatus> Raft::peers() const {
  std::vector<PeerStatus> out;
  if (role_ != Role::kLeader) return out;
  for (const auto& [id, pr] : progress_) {
    PeerStatus s;
    s.id = id;
    s.match = id == id_ ? self_match() : pr.match;
    s.next = pr.next;
    s.state = pr.state;
    s.recent_active = id == id_ || pr.recent_active;
    s.voter = quorum_.is_voter(id);
    out.push_back(s);
  }
  return out;
}

}  // namespace cset::raft
