// INFO, CSET.STATUS / CSET.NODES, membership commands, and the admin HTTP
// server (/health, /metrics, /status) served by cpp-httplib on its own thread
// from a snapshot the loop publishes.
#include <dlfcn.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "raft/codec.h"
#include "resp/writer.h"
#include "server/server_impl.h"

namespace cset::server {

using raft::NodeId;

namespace {

const char* mode_name(raft::QuorumMode m) {
  return m == raft::QuorumMode::kMajority ? "majority" : "tiebreak";
}

std::string role_name(raft::Role r) {
  switch (r) {
    case raft::Role::kLeader:
      return "leader";
    case raft::Role::kCandidate:
    case raft::Role::kPreCandidate:
      return "candidate";
    case raft::Role::kLearner:
      return "learner";
    default:
      return "follower";
  }
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string Server::Impl::raft_section() {
  const raft::Configuration& c = raft_->configuration();
  std::string s;
  auto line = [&](const std::string& k, const std::string& v) { s += k + ":" + v + "\r\n"; };
  line("node_id", std::to_string(opt_.id));
  line("role", removed_ ? "removed" : role_name(raft_->role()));
  line("term", std::to_string(raft_->term()));
  line("leader_id", std::to_string(raft_->leader_id()));
  line("commit_index", std::to_string(raft_->commit_index()));
  line("applied_index", std::to_string(sm_->applied_index()));
  line("last_log_index", std::to_string(raft_->last_index()));
  line("first_log_index", std::to_string(raft_->first_index()));
  line("snapshot_index", std::to_string(store_->snapshot_meta().index));
  line("voters", std::to_string(c.voters.size()));
  line("learners", std::to_string(c.learners.size()));
  line("joint", c.joint() ? "1" : "0");
  line("quorum", mode_name(c.mode));
  line("tiebreaker_id", std::to_string(c.tiebreaker));
  line("storage_failed", storage_failed_ ? "1" : "0");
  return s;
}

// The allocator this process runs with, named as Redis's INFO names it:
// "jemalloc-<version>" when jemalloc's mallctl is linked in (CMake option
// CSET_JEMALLOC) or preloaded, else "libc".
static std::string allocator_name() {
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  auto* mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl == nullptr) return "libc";
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc";
  }
  std::string v(version);
  return "jemalloc-" + v.substr(0, v.find('-'));  // "5.3.0-0-g54eaed1..." -> 5.3.0
}

// INFO's "# Memory": the process's RSS and what RocksDB holds by design
// (bounded by its write buffers and --block-cache-mb), so growth beyond those
// bounds can be told from a leak.
std::string Server::Impl::memory_section() {
  uint64_t rss_bytes = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long pages_total = 0, pages_resident = 0;
    if (std::fscanf(f, "%llu %llu", &pages_total, &pages_resident) == 2) {
      rss_bytes = pages_resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
  storage::RocksStore::MemoryUsage m = store_->memory_usage();
  std::string out;
  out += "used_memory_rss:" + std::to_string(rss_bytes) + "\r\n";
  static const std::string allocator = allocator_name();
  out += "mem_allocator:" + allocator + "\r\n";
  out += "rocksdb_memtable_bytes:" + std::to_string(m.memtable_bytes) + "\r\n";
  out += "rocksdb_block_cache_bytes:" + std::to_string(m.block_cache_bytes) + "\r\n";
  out += "rocksdb_table_readers_bytes:" + std::to_string(m.table_readers_bytes) + "\r\n";
  return out;
}

std::string Server::Impl::info_text(const std::vector<std::string>& sections, size_t clients) {
  auto want = [&](const std::string& name) {
    if (sections.empty()) return true;
    for (const auto& s : sections) {
      if (s == name || s == "all" || s == "everything" || s == "default") return true;
    }
    return false;
  };
  std::string out;
  if (want("server")) {
    auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                               started_)
                  .count();
    out += "# Server\r\nredis_version:7.0.0\r\ncset_version:0.1.0\r\nredis_mode:standalone\r\n";
    out += "process_id:" + std::to_string(::getpid()) + "\r\n";
    out += "tcp_port:" + opt_.client_listen.substr(opt_.client_listen.rfind(':') + 1) + "\r\n";
    out += "uptime_in_seconds:" + std::to_string(up) + "\r\n\r\n";
  }
  if (want("clients")) {
    out += "# Clients\r\nconnected_clients:" + std::to_string(clients) + "\r\n\r\n";
  }
  if (want("stats")) {
    out += "# Stats\r\ntotal_connections_received:" + std::to_string(metrics_.connections_total) +
           "\r\ntotal_writes:" + std::to_string(metrics_.writes) +
           "\r\ntotal_reads:" + std::to_string(metrics_.reads) + "\r\n\r\n";
  }
  if (want("memory")) out += "# Memory\r\n" + memory_section() + "\r\n";
  if (want("raft")) out += "# Raft\r\n" + raft_section() + "\r\n";
  return out;
}

void Server::Impl::cset_nodes(std::string* out, int protocol) {
  resp::ReplyWriter w(out, protocol, &metrics_.errors);
  const raft::Configuration& c = raft_->configuration();
  std::map<NodeId, raft::PeerStatus> peers;
  for (const auto& p : raft_->peers()) peers[p.id] = p;
  auto transport = transport_->peer_status();
  w.array_header(c.members.size());
  for (const auto& m : c.members) {
    MemberRecord r = decode_member_context(m.context);
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      auto it = learned_.find(m.id);
      if (it != learned_.end() && r.client_address.empty())
        r.client_address = it->second.client_address;
    }
    if (m.id == opt_.id) r.client_address = opt_.advertise_client;
    std::string state;
    if (m.id == opt_.id) {
      state = role_name(raft_->role());
    } else if (m.id == raft_->leader_id()) {
      state = "leader";
    } else {
      auto t = transport.find(m.id);
      bool connected = t != transport.end() && t->second.state == net::ConnectionState::kConnected;
      state = connected ? "follower" : "unreachable";
    }
    uint64_t match = m.id == opt_.id ? raft_->last_index() : 0;
    if (auto p = peers.find(m.id); p != peers.end()) match = p->second.match;
    w.map_header(6);
    w.bulk_string("id");
    w.integer(static_cast<int64_t>(m.id));
    w.bulk_string("peer_address");
    w.bulk_string(r.peer_address);
    w.bulk_string("client_address");
    w.bulk_string(r.client_address);
    w.bulk_string("role");
    w.bulk_string(c.is_learner(m.id) ? "learner" : "voter");
    w.bulk_string("state");
    w.bulk_string(state);
    w.bulk_string("match_index");
    w.integer(static_cast<int64_t>(match));
  }
}

void Server::Impl::cset_status(std::string* out, int protocol) {
  resp::ReplyWriter w(out, protocol, &metrics_.errors);
  std::string section = raft_section();
  std::vector<std::pair<std::string, std::string>> kv;
  size_t pos = 0;
  while (pos < section.size()) {
    size_t end = section.find("\r\n", pos);
    std::string l = section.substr(pos, end - pos);
    size_t colon = l.find(':');
    kv.emplace_back(l.substr(0, colon), l.substr(colon + 1));
    pos = end + 2;
  }
  w.map_header(kv.size());
  for (const auto& [k, v] : kv) {
    w.bulk_string(k);
    w.bulk_string(v);
  }
}

void Server::Impl::admin_command(const std::string& what, uint64_t id, const std::string& address,
                                 bool voter, AdminDone done) {
  if (removed_) {
    return done(Status(Code::kRemoved, "this node has been removed from the cluster"));
  }
  AdminOp op{what, id, address, voter};
  uint64_t deadline = now_ms() + opt_.write_timeout_ms;
  if (raft_->role() == raft::Role::kLeader) {
    leader_admin(op, deadline, std::move(done));
    return;
  }
  uint64_t rid = next_request_id_++;
  admin_forwards_[rid] = AdminForward{std::move(op), std::move(done), deadline};
  forward_admin(rid);
}

void Server::Impl::forward_admin(uint64_t rid) {
  auto it = admin_forwards_.find(rid);
  if (it == admin_forwards_.end() || it->second.forwarded) return;
  if (raft_->role() == raft::Role::kLeader) {
    // Became the leader while waiting: handle it here.
    AdminForward f = std::move(it->second);
    admin_forwards_.erase(it);
    leader_admin(f.op, f.deadline_ms, std::move(f.done));
    return;
  }
  NodeId leader = raft_->leader_id();
  if (leader == raft::kNoNode || leader == opt_.id) return;  // retried at the next tick
  net::AdminCommand cmd;
  cmd.set_op(it->second.op.what);
  cmd.set_node_id(it->second.op.id);
  cmd.set_peer_address(it->second.op.address);
  cmd.set_voter(it->second.op.voter);
  net::PeerFrame f;
  auto* req = f.mutable_forward_request();
  req->set_request_id(rid);
  req->set_kind(net::FORWARD_ADMIN);
  req->set_command(cmd.SerializeAsString());
  uint64_t now = now_ms();
  req->set_timeout_ms(it->second.deadline_ms > now ? it->second.deadline_ms - now : 0);
  // The point of no return: from here a lost answer means "unknown".
  it->second.forwarded = true;
  it->second.forwarded_to = leader;
  transport_->send(leader, std::move(f));
}

void Server::Impl::finish_admin_forward(uint64_t rid, const Status& s) {
  auto it = admin_forwards_.find(rid);
  if (it == admin_forwards_.end()) return;
  AdminDone done = std::move(it->second.done);
  admin_forwards_.erase(it);
  done(s);
}

void Server::Impl::on_admin_forward(NodeId from, const net::ForwardRequest& req) {
  auto reply = [this, from, rid = req.request_id()](const Status& s) {
    net::PeerFrame f;
    auto* rep = f.mutable_forward_reply();
    rep->set_request_id(rid);
    rep->set_code(static_cast<uint32_t>(s.code()));
    rep->set_message(s.message());
    rep->set_leader_id(raft_->leader_id());
    transport_->send(from, std::move(f));
  };
  net::AdminCommand cmd;
  if (!cmd.ParseFromString(req.command())) {
    return reply(Status(Code::kErr, "malformed forwarded membership command"));
  }
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    if (removed_ids_.count(from)) {
      return reply(Status(Code::kRemoved, "this node has been removed from the cluster"));
    }
  }
  if (raft_->role() != raft::Role::kLeader) {
    // Nothing proposed: the origin may try the current leader.
    return reply(Status(Code::kNotLeader, "not the leader"));
  }
  uint64_t budget = std::min<uint64_t>(req.timeout_ms(), opt_.write_timeout_ms);
  leader_admin(AdminOp{cmd.op(), cmd.node_id(), cmd.peer_address(), cmd.voter()}, now_ms() + budget,
               reply);
}

void Server::Impl::leader_admin(const AdminOp& op, uint64_t deadline_ms, AdminDone done) {
  PendingAdmin p;
  p.op = op;
  p.target = op.id;
  p.deadline_ms = deadline_ms;
  p.done = std::move(done);
  if (op.what == "transfer") {
    Status s = raft_->transfer_leadership(op.id);
    if (!s)
      return p.done(Status(s.code() == Code::kNotLeader ? s.code() : Code::kErr, s.message()));
    p.kind = PendingAdmin::Kind::kTransfer;
    admin_waiting_.push_back(std::move(p));
    kick();
    return;
  }
  // This leader's own record confirmation (server.cc confirm_member_records)
  // commits within a round trip: wait for it rather than answer BUSY.
  if (record_update_index_ > raft_->commit_index() && raft_->conf_change_pending()) {
    if (now_ms() >= deadline_ms) {
      return p.done(Status(Code::kBusy, "a configuration change is already in flight"));
    }
    auto timer = std::make_shared<asio::steady_timer>(
        io_, std::chrono::milliseconds(std::max<uint64_t>(opt_.heartbeat_ms / 2, 1)));
    timer->async_wait([this, timer, p = std::move(p)](const asio::error_code& ec) mutable {
      if (ec) return p.done(Status(Code::kNoQuorum, "shutting down; nothing changed"));
      if (raft_->role() != raft::Role::kLeader) {
        return p.done(Status(Code::kNoQuorum, "leadership changed; nothing changed"));
      }
      leader_admin(p.op, p.deadline_ms, std::move(p.done));
    });
    return;
  }
  // One change at a time: the core refuses a second proposal while one is
  // uncommitted; this also covers an ADD still waiting for its handshake and
  // a joint change whose final half has not committed yet.
  for (const auto& w : admin_waiting_) {
    if (w.kind != PendingAdmin::Kind::kTransfer) {
      return p.done(Status(Code::kBusy, "a configuration change is already in flight (" +
                                            w.op.what + " of node " + std::to_string(w.target) +
                                            ")"));
    }
  }
  if (op.what != "add") {
    propose_admin(std::move(p));
    return;
  }
  // ADD: refuse what is certainly wrong at once, then wait for the new node's
  // handshake so that its client address and incarnation go into the
  // configuration with it (the registry: every node can then show them).
  const raft::Configuration& c = raft_->configuration();
  if (op.id == raft::kNoNode) return p.done(Status(Code::kErr, "node id 0"));
  if (std::binary_search(c.removed.begin(), c.removed.end(), op.id)) {
    return p.done(Status(Code::kErr, "node " + std::to_string(op.id) +
                                         " was removed; ids are never reused (add it under a "
                                         "new id)"));
  }
  if (c.contains(op.id)) {
    return p.done(Status(Code::kErr, "node " + std::to_string(op.id) + " is already a member"));
  }
  if (raft_->conf_change_pending() || c.joint()) {
    return p.done(Status(Code::kBusy, "a configuration change is already in flight"));
  }
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    joining_[op.id] = op.address;
  }
  p.kind = PendingAdmin::Kind::kAwaitHandshake;
  uint64_t now = now_ms();
  p.handshake_deadline_ms = now + (deadline_ms > now ? (deadline_ms - now) / 2 : 0);
  last_refusal_.erase(p.target);
  admin_waiting_.push_back(std::move(p));
  update_peers();
  check_admin();
}

void Server::Impl::propose_admin(PendingAdmin p) {
  raft::ConfChange ch;
  ch.id = p.op.id;
  if (p.op.what == "add") {
    ch.type = p.op.voter ? raft::ConfChange::Type::kAddVoter : raft::ConfChange::Type::kAddLearner;
    MemberRecord r;
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      auto it = learned_.find(p.op.id);
      if (it != learned_.end()) r = it->second;
      r.confirmed = !r.incarnation.empty();
    }
    r.peer_address = p.op.address;
    ch.context = encode_member_context(r);
  } else if (p.op.what == "promote") {
    ch.type = raft::ConfChange::Type::kPromote;
  } else if (p.op.what == "remove") {
    ch.type = raft::ConfChange::Type::kRemove;
  } else {
    return p.done(Status(Code::kErr, "unknown membership command " + p.op.what));
  }
  auto idx = raft_->propose_conf_change({ch});
  if (!idx.ok()) {
    Code c = idx.code();
    if (c != Code::kBusy && c != Code::kNoQuorum && c != Code::kNotLeader) c = Code::kErr;
    std::string why = idx.status().message();
    if (c == Code::kNoQuorum) why += "; nothing changed";
    if (p.op.what == "add") end_join_wait(p.op.id);
    return p.done(Status(c, why));
  }
  spdlog::info("membership: proposed {} of node {} at index {}", p.op.what, p.op.id, *idx);
  p.kind = PendingAdmin::Kind::kChange;
  p.index = *idx;
  p.term = raft_->term();
  admin_waiting_.push_back(std::move(p));
  kick();
}

void Server::Impl::end_join_wait(NodeId id) {
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    joining_.erase(id);
  }
  update_peers();
}

void Server::Impl::check_admin() {
  uint64_t now = now_ms();
  std::vector<PendingAdmin> waiting = std::move(admin_waiting_);
  admin_waiting_.clear();
  std::vector<PendingAdmin> keep;
  for (auto& p : waiting) {
    bool finished = false;
    switch (p.kind) {
      case PendingAdmin::Kind::kAwaitHandshake: {
        bool answered = false;
        {
          std::lock_guard<std::mutex> lock(registry_mu_);
          answered = learned_.count(p.target) > 0;
        }
        if (raft_->role() != raft::Role::kLeader) {
          end_join_wait(p.target);
          p.done(Status(Code::kNotLeader,
                        "leadership changed before the change was proposed; "
                        "nothing changed"));
          finished = true;
        } else if (answered) {
          // joining_ keeps the connection up until the change is decided.
          propose_admin(std::move(p));
          finished = true;
        } else if (now >= p.handshake_deadline_ms) {
          end_join_wait(p.target);
          auto refusal = last_refusal_.find(p.target);
          if (refusal != last_refusal_.end()) {
            p.done(Status(Code::kErr, "node " + std::to_string(p.target) + " at " + p.op.address +
                                          " was refused: " + refusal->second +
                                          "; nothing changed"));
          } else {
            p.done(Status(Code::kErr, "node " + std::to_string(p.target) + " did not answer at " +
                                          p.op.address +
                                          " in time (start it first with csetd --join and this "
                                          "--peer-listen address); nothing changed"));
          }
          finished = true;
        }
        break;
      }
      case PendingAdmin::Kind::kTransfer:
        if (raft_->leader_id() == p.target) {
          p.done(Status::ok());
          finished = true;
        }
        break;
      case PendingAdmin::Kind::kChange:
        if (sm_->applied_index() >= p.index) {
          auto t = store_->term(p.index);
          // A joint change also waits for the final configuration.
          if (t.ok() && *t != p.term) {
            p.done(Status(Code::kTimeout, "leadership changed before the change committed"));
            finished = true;
          } else if (!raft_->configuration().joint()) {
            p.done(Status::ok());
            finished = true;
          }
        }
        break;
    }
    if (!finished && now >= p.deadline_ms) {
      p.done(Status(Code::kTimeout,
                    "the change was not confirmed within the write timeout: the outcome is "
                    "unknown (see CSET.NODES)"));
      finished = true;
    }
    if (finished && p.kind == PendingAdmin::Kind::kChange && p.op.what == "add") {
      end_join_wait(p.target);
    }
    if (!finished) keep.push_back(std::move(p));
  }
  // Callbacks may have added new entries meanwhile.
  for (auto& p : admin_waiting_) keep.push_back(std::move(p));
  admin_waiting_ = std::move(keep);
}

void Server::Impl::publish_status() {
  uint64_t now = now_ms();
  if (now - last_publish_ms_ < 100 && last_publish_ms_ != 0) return;
  last_publish_ms_ = now;
  check_admin();
  StatusSnapshot s;
  s.info_raft = raft_section();
  // /health's verdict and, when unhealthy, the first reason that applies.
  s.unhealthy_reason.clear();
  if (removed_) {
    s.unhealthy_reason = "removed from the cluster";
  } else if (storage_failed_) {
    s.unhealthy_reason = "cannot write to its disk (disk full or I/O error)";
  } else if (raft_->leader_id() == raft::kNoNode) {
    s.unhealthy_reason = "no leader known (an election is running, or no quorum is reachable)";
  } else if (sm_->applied_index() < raft_->commit_index()) {
    s.unhealthy_reason = "catching up: applied index " + std::to_string(sm_->applied_index()) +
                         " of commit index " + std::to_string(raft_->commit_index());
  }
  s.healthy = s.unhealthy_reason.empty();
  const raft::Configuration& c = raft_->configuration();
  std::string j = "{";
  j += "\"node_id\":" + std::to_string(opt_.id);
  j += ",\"role\":\"" + (removed_ ? std::string("removed") : role_name(raft_->role())) + "\"";
  j += ",\"term\":" + std::to_string(raft_->term());
  j += ",\"leader_id\":" + std::to_string(raft_->leader_id());
  j += ",\"commit_index\":" + std::to_string(raft_->commit_index());
  j += ",\"applied_index\":" + std::to_string(sm_->applied_index());
  j += ",\"last_log_index\":" + std::to_string(raft_->last_index());
  j += ",\"quorum\":\"" + std::string(mode_name(c.mode)) + "\"";
  j += ",\"tiebreaker_id\":" + std::to_string(c.tiebreaker);
  j += ",\"storage_failed\":" + std::string(storage_failed_ ? "true" : "false");
  j += ",\"members\":[";
  bool first = true;
  for (const auto& m : c.members) {
    MemberRecord r = decode_member_context(m.context);
    if (!first) j += ",";
    first = false;
    j += "{\"id\":" + std::to_string(m.id) + ",\"peer_address\":\"" + json_escape(r.peer_address) +
         "\",\"role\":\"" + (c.is_learner(m.id) ? "learner" : "voter") + "\"}";
  }
  j += "]}";
  s.status_json = j;
  std::string mt;
  auto g = [&](const std::string& name, const std::string& help, double v) {
    mt += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
          std::to_string(v) + "\n";
  };
  auto cnt = [&](const std::string& name, const std::string& help, uint64_t v) {
    mt += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
          std::to_string(v) + "\n";
  };
  g("cset_is_leader", "1 when this node is the leader", raft_->role() == raft::Role::kLeader);
  g("cset_term", "current Raft term", static_cast<double>(raft_->term()));
  g("cset_commit_index", "Raft commit index", static_cast<double>(raft_->commit_index()));
  g("cset_applied_index", "state machine applied index", static_cast<double>(sm_->applied_index()));
  g("cset_last_log_index", "last log index", static_cast<double>(raft_->last_index()));
  g("cset_storage_failed", "1 while the node cannot persist", storage_failed_ ? 1 : 0);
  cnt("cset_proposals_total", "entries proposed by this node as leader", metrics_.proposals);
  cnt("cset_proposal_batches_total", "proposal batches", metrics_.proposal_batches);
  cnt("cset_writes_total", "client writes received", metrics_.writes);
  cnt("cset_forwarded_writes_total", "writes this node forwarded to the leader",
      metrics_.forwarded_writes);
  cnt("cset_forward_accepted_total",
      "forwarded writes the leader put in its log; answered from this node's own apply",
      metrics_.forwards_accepted);
  cnt("cset_reads_total", "client reads received", metrics_.reads);
  cnt("cset_snapshots_taken_total", "snapshots taken (log compactions)", metrics_.snapshots_taken);
  cnt("cset_snapshot_images_built_total", "snapshot images encoded to send to followers",
      metrics_.snapshot_images_built);
  cnt("cset_snapshots_installed_total", "snapshots installed", metrics_.snapshots_installed);
  cnt("cset_leader_changes_total", "leader changes seen", metrics_.leader_changes);
  mt += "# HELP cset_errors_total client errors by code\n# TYPE cset_errors_total counter\n";
  for (const auto& [code, n] : metrics_.errors) {
    mt += "cset_errors_total{code=\"" + code + "\"} " + std::to_string(n) + "\n";
  }
  mt += "# HELP cset_fsync_seconds log fsync latency\n# TYPE cset_fsync_seconds histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < 10; ++i) {
    cum += metrics_.fsync_buckets[i];
    mt += "cset_fsync_seconds_bucket{le=\"" + std::to_string(Metrics::kBucketsUs[i] / 1e6) +
          "\"} " + std::to_string(cum) + "\n";
  }
  cum += metrics_.fsync_buckets[10];
  mt += "cset_fsync_seconds_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  mt += "cset_fsync_seconds_sum " + std::to_string(metrics_.fsync_sum_s) + "\n";
  mt += "cset_fsync_seconds_count " + std::to_string(metrics_.fsync_count) + "\n";
  mt +=
      "# HELP cset_peer_lag_entries entries a peer is behind the leader\n# TYPE "
      "cset_peer_lag_entries gauge\n";
  for (const auto& p : raft_->peers()) {
    if (p.id == opt_.id) continue;
    mt += "cset_peer_lag_entries{peer=\"" + std::to_string(p.id) + "\"} " +
          std::to_string(raft_->last_index() - std::min(p.match, raft_->last_index())) + "\n";
  }
  s.metrics = mt;
  std::lock_guard<std::mutex> lock(status_mu_);
  status_ = std::move(s);
}

bool Server::Impl::start_admin(StartError* error) {
  std::string host;
  uint16_t port = 0;
  Status s = net::split_host_port(opt_.admin_listen, &host, &port);
  if (!s) {
    *error = {2, "--admin-listen: " + s.to_string()};
    return false;
  }
  http_ = std::make_shared<httplib::Server>();
  http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    // The status is published by the loop: a stalled loop cannot say so. The
    // watchdog's verdict (watchdog_main), which a SIGSTOP does not trip.
    if (loop_stalled_.load()) {
      res.status = 503;
      res.set_content("unhealthy: event loop stalled\n", "text/plain");
      return;
    }
    std::lock_guard<std::mutex> lock(status_mu_);
    res.status = status_.healthy ? 200 : 503;
    res.set_content(status_.healthy ? "ok\n" : "unhealthy: " + status_.unhealthy_reason + "\n",
                    "text/plain");
  });
#ifdef CSET_TEST_HOOKS
  // TEST BUILDS ONLY: POST /test/stall?ms=N blocks the loop thread for N ms
  // (the watchdog's tests).
  http_->Post("/test/stall", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string text = req.get_param_value("ms");
    uint64_t ms = 0;
    bool valid = !text.empty() && text.size() <= 6;
    for (char c : text) valid = valid && c >= '0' && c <= '9';
    if (valid) ms = std::stoull(text);
    if (!valid || ms > 600'000) {
      res.status = 400;
      res.set_content("ms: a number of milliseconds, 0 to 600000\n", "text/plain");
      return;
    }
    asio::post(io_, [ms] { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); });
    res.set_content("ok\n", "text/plain");
  });
#endif
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    // The loop publishes the rest; the watchdog's figures are read here, so
    // that they show while the loop is stalled.
    std::string text;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      text = status_.metrics;
    }
    text +=
        "# HELP cset_loop_stalls_total times the event loop did not run for several election "
        "timeouts\n# TYPE cset_loop_stalls_total counter\ncset_loop_stalls_total " +
        std::to_string(loop_stalls_.load()) +
        "\n# HELP cset_loop_stalled 1 while the event loop is stalled (the other figures are "
        "then as it last published them)\n# TYPE cset_loop_stalled gauge\ncset_loop_stalled " +
        std::to_string(loop_stalled_.load() ? 1 : 0) + "\n";
    res.set_content(text, "text/plain; version=0.0.4");
  });
  http_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(status_mu_);
    res.set_content(status_.status_json, "application/json");
  });
  if (!http_->bind_to_port(host, port)) {
    *error = {2, "--admin-listen " + opt_.admin_listen + ": cannot bind"};
    return false;
  }
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return true;
}

Server::Impl::~Impl() {
  if (transport_) transport_->stop();
  stop_admin();
}

void Server::Impl::stop_admin() {
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  http_.reset();
}

}  // namespace cset::server
