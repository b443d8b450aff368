// The node runtime's loop: raft ready processing, proposals and forwarding,
// reads, snapshots. Client connections are in connection.cc, the admin
// server and INFO text in admin.cc.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "raft/codec.h"
#include "server/server_impl.h"
#include "set/command.h"

namespace cset::server {

using raft::Index;
using raft::NodeId;

// ---------------------------------------------------------------------------
// Member records in the configuration (the registry).

std::string hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string encode_member_context(const MemberRecord& r) {
  return "peer=" + r.peer_address + ";client=" + r.client_address + ";inc=" + r.incarnation +
         (r.confirmed ? ";ok=1" : "");
}

MemberRecord decode_member_context(const std::string& context) {
  MemberRecord r;
  size_t pos = 0;
  while (pos <= context.size()) {
    size_t end = context.find(';', pos);
    if (end == std::string::npos) end = context.size();
    std::string item = context.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq != std::string::npos) {
      std::string k = item.substr(0, eq), v = item.substr(eq + 1);
      if (k == "peer") r.peer_address = v;
      if (k == "client") r.client_address = v;
      if (k == "inc") r.incarnation = v;
      if (k == "ok") r.confirmed = v == "1";
    }
    pos = end + 1;
  }
  return r;
}

// ---------------------------------------------------------------------------
// Start-up.

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;
Status Server::run() { return impl_->run(); }
void Server::stop() { impl_->stop(); }

std::unique_ptr<Server> Server::create(const ServerOptions& options, StartError* error) {
  // A start that fails (a port in use, a bad --admin-listen) leaves no data
  // directory behind that it created: one initialized from the failed
  // attempt's flags would make the next start ignore --initial-cluster.
  // A directory that held anything before is never touched, nor one whose
  // store this process could not open (another process may hold it: two
  // nodes started at once on a new directory).
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir(options.data_dir);
  // The path itself, not what a symlink points to: a dangling symlink (its
  // disk not mounted) exists. Whatever cannot be checked counts as existing.
  const fs::file_status st = fs::symlink_status(dir, ec);
  const bool existed = st.type() != fs::file_type::not_found;
  ec.clear();
  const bool was_empty =
      existed && fs::is_directory(dir, ec) && !ec && fs::is_empty(dir, ec) && !ec;
  auto impl = std::make_unique<Impl>(options);
  if (!impl->open(error)) {
    const bool ours = impl->store_opened();
    impl.reset();  // closes the store first
    if (!ours) return nullptr;
    if (!existed) {
      fs::remove_all(dir, ec);
    } else if (was_empty) {
      for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
    }
    return nullptr;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Impl::Impl(const ServerOptions& o) : opt_(o), limits_() {
  limits_.max_key_bytes = o.max_key_bytes;
  limits_.max_member_bytes = o.max_member_bytes;
  limits_.max_request_bytes = o.max_request_bytes;
  if (opt_.advertise_peer.empty()) opt_.advertise_peer = opt_.peer_listen;
  if (opt_.advertise_client.empty()) opt_.advertise_client = opt_.client_listen;
}

namespace {

// The prefix of the handshake refusal a removed node gets from its former peers.
constexpr const char* kRemovedReason = "removed";

std::string cluster_id_for(const ServerOptions& o) {
  // The cluster id of a new cluster: a hash of its initial members and token
  // (every initial member computes it alone, as etcd does from
  // --initial-cluster-token), so two clusters with different members or
  // tokens never share one. The same flags give the same id: a new cluster
  // on the addresses of an old one needs its own --cluster-token
  // (docs/operations.md).
  std::string text = o.cluster_token + "|";
  auto members = o.initial_cluster;
  std::sort(members.begin(), members.end());
  for (const auto& [id, addr] : members) text += std::to_string(id) + "=" + addr + ",";
  // Deterministic, so every initial member computes the same id.
  uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
  for (unsigned char c : text) {
    h1 = (h1 ^ c) * 0x100000001b3ULL;
    h2 = (h2 ^ c) * 0x100000001b3ULL + 0x9E3779B97F4A7C15ULL;
  }
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(h1),
                static_cast<unsigned long long>(h2));
  return buf;
}

std::string random_incarnation() {
  std::random_device rd;
  std::string out(16, '\0');
  for (auto& c : out) c = static_cast<char>(rd() & 0xff);
  return out;
}

}  // namespace

bool Server::Impl::open(StartError* error) {
  std::error_code ec;  // a path that cannot be checked: RocksDB's open says why
  bool exists = std::filesystem::exists(std::filesystem::path(opt_.data_dir) / "CURRENT", ec) ||
                std::filesystem::exists(std::filesystem::path(opt_.data_dir) / "db", ec);
  storage::StoreOptions so;
  so.dir = opt_.data_dir;
  so.node_id = opt_.id;
  so.create_if_missing = true;
  so.new_incarnation = random_incarnation();
  so.block_cache_mb = opt_.block_cache_mb;
  so.write_buffer_mb = opt_.write_buffer_mb;
  so.warn = [](const std::string& m) { spdlog::warn("storage: {}", m); };
  if (!exists && !opt_.join) so.cluster_id = cluster_id_for(opt_);
  auto store = storage::RocksStore::open(so);
  if (!store.ok()) {
    *error = {3, "data directory " + opt_.data_dir + " unusable: " + store.status().to_string()};
    return false;
  }
  store_ = std::move(store).value();
  sm_ = std::make_unique<set::StateMachine>(&store_->kv());
  Status s = sm_->load();
  if (!s) {
    *error = {3, "data directory " + opt_.data_dir + ": state machine: " + s.to_string()};
    return false;
  }
  bool fresh = store_->last_index() == 0 && store_->snapshot_meta().index == 0;
  if (fresh && !opt_.join) {
    if (opt_.initial_cluster.empty()) {
      *error = {2, "a new data directory needs --initial-cluster or --join"};
      return false;
    }
    std::vector<raft::Member> members;
    bool self = false;
    for (const auto& [id, addr] : opt_.initial_cluster) {
      MemberRecord r;
      r.peer_address = addr;
      if (id == opt_.id) {
        self = true;
        r.client_address = opt_.advertise_client;
        r.incarnation = hex(store_->identity().incarnation);
      }
      members.push_back({id, encode_member_context(r)});
    }
    if (!self) {
      *error = {2, "--initial-cluster does not list this node's --id " + std::to_string(opt_.id)};
      return false;
    }
    // Every initial member writes the same first entry; the incarnation of
    // the others is learned at their first handshake.
    for (auto& m : members) {
      MemberRecord r = decode_member_context(m.context);
      r.client_address.clear();
      r.incarnation.clear();
      m.context = encode_member_context(r);
    }
    raft::Configuration cfg = raft::Raft::initial_configuration(members, opt_.quorum);
    Status st = store_->save({raft::Raft::bootstrap_entry(cfg)}, raft::HardState{1, 0, 1}, true);
    if (!st) {
      *error = {3, "data directory " + opt_.data_dir + ": cannot write: " + st.to_string()};
      return false;
    }
  }
  if (opt_.force_new_cluster && !force_new_cluster(fresh, error)) return false;
  if (raft::SnapshotMeta meta = store_->snapshot_meta();
      meta.index != 0 && sm_->applied_index() < meta.index) {
    s = sm_->restore_snapshot(store_->snapshot().data, meta.index);
    if (!s) {
      *error = {3, "data directory " + opt_.data_dir + ": snapshot: " + s.to_string()};
      return false;
    }
  }
  raft::Options ro;
  ro.id = opt_.id;
  ro.storage = store_.get();
  ro.applied = sm_->applied_index();
  ro.heartbeat_ticks = 1;
  ro.election_ticks = static_cast<int>(
      std::max<uint64_t>(2, opt_.election_timeout_ms / std::max<uint64_t>(1, opt_.heartbeat_ms)));
  std::random_device rd;
  ro.random_seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  // Request ids start at a random point (below 2^62, so they never wrap):
  // a peer's late ForwardAccepted or ForwardReply for a request of this
  // node's previous run then cannot match a new request (they are matched
  // by id and sender only).
  next_request_id_ = (((static_cast<uint64_t>(rd()) << 32) ^ rd()) >> 3) + 1;
  auto r = raft::Raft::create(ro);
  if (!r.ok()) {
    *error = {3, "data directory " + opt_.data_dir + ": raft state: " + r.status().to_string()};
    return false;
  }
  raft_ = std::move(r).value();
  {
    const auto& removed = raft_->configuration().removed;
    if (std::binary_search(removed.begin(), removed.end(), opt_.id)) {
      removed_ = true;
      spdlog::warn("this node ({}) was removed from the cluster; it answers REMOVED", opt_.id);
    }
  }
  if (opt_.quorum_given && !raft_->configuration().voters.empty() &&
      raft_->configuration().mode != opt_.quorum && !fresh) {
    *error = {2, std::string("--quorum differs from the cluster's configured mode (") +
                     (raft_->configuration().mode == raft::QuorumMode::kMajority ? "majority"
                                                                                 : "tiebreak") +
                     ")"};
    return false;
  }
  // Snapshot images are built only when a follower needs one, at the applied
  // index of that moment (RocksStore::snapshot_chunk), on the io thread that
  // drives the Raft core.
  store_->set_snapshot_source([this] { return snapshot_image(); });
  if (!open_sockets(error)) return false;
  return true;
}

// --force-new-cluster (docs/operations.md "Losing a majority"): before the
// Raft core exists, append to this node's own log one configuration entry
// that makes it the only voter, and mark everything in its log committed.
// The core then loads that log as if the cluster had committed it. Every
// other member of the last configuration goes to the removed list (ids are
// never reused). What it may lose: any write that the lost nodes committed
// but this node's log does not hold; and entries this node holds that the
// old cluster never committed (their clients got TIMEOUT) become committed.
bool Server::Impl::force_new_cluster(bool fresh, StartError* error) {
  if (fresh) {
    *error = {2, "--force-new-cluster needs the data directory of a surviving member (" +
                     opt_.data_dir + " is empty)"};
    return false;
  }
  // The latest configuration in the snapshot or the log (committed or not).
  raft::Configuration cfg;
  if (store_->snapshot_meta().index != 0) cfg = store_->snapshot_meta().config;
  raft::Index first = std::max<raft::Index>(store_->first_index(), 1);
  raft::Index last = store_->last_index();
  for (raft::Index i = first; i <= last;) {
    auto batch = store_->entries(i, last + 1, 16 << 20);
    if (!batch.ok() || batch->empty()) {
      *error = {3, "data directory " + opt_.data_dir + ": cannot read the log at index " +
                       std::to_string(i) + ": " + batch.status().to_string()};
      return false;
    }
    for (const auto& e : *batch) {
      if (e.type != raft::EntryType::kConfig) continue;
      auto c = raft::decode_configuration(e.data);
      if (!c.ok()) {
        *error = {3, "data directory " + opt_.data_dir + ": configuration entry " +
                         std::to_string(e.index) + ": " + c.status().to_string()};
        return false;
      }
      cfg = std::move(c).value();
    }
    i = batch->back().index + 1;
  }
  if (!cfg.contains(opt_.id)) {
    *error = {2, "--force-new-cluster: node " + std::to_string(opt_.id) +
                     " is not a member of the configuration in " + opt_.data_dir};
    return false;
  }
  if (!cfg.joint() && cfg.voters == std::vector<NodeId>{opt_.id} && cfg.learners.empty()) {
    spdlog::warn(
        "--force-new-cluster: node {} is already the only member; nothing to rewrite "
        "(remove the flag)",
        opt_.id);
    return true;
  }
  raft::HardState hs = store_->hard_state();
  raft::Configuration next;
  next.mode = cfg.mode;
  next.voters = {opt_.id};
  next.tiebreaker = opt_.id;
  next.removed = cfg.removed;
  std::string lost;
  for (const auto& m : cfg.members) {
    if (m.id == opt_.id) {
      MemberRecord r = decode_member_context(m.context);
      r.client_address = opt_.advertise_client;
      r.incarnation = hex(store_->identity().incarnation);
      if (r.peer_address.empty()) r.peer_address = opt_.advertise_peer;
      next.members.push_back({m.id, encode_member_context(r)});
    } else {
      next.removed.push_back(m.id);
      lost += (lost.empty() ? "" : ", ") + std::to_string(m.id);
    }
  }
  for (NodeId id : cfg.all_nodes()) {
    if (id != opt_.id && !next.member(id)) next.removed.push_back(id);
  }
  std::sort(next.removed.begin(), next.removed.end());
  next.removed.erase(std::unique(next.removed.begin(), next.removed.end()), next.removed.end());
  raft::Entry e;
  e.term = std::max<raft::Term>(hs.term, 1);
  e.index = last + 1;
  e.type = raft::EntryType::kConfig;
  e.data = raft::encode_configuration(next);
  spdlog::warn(
      "--force-new-cluster: rewriting the configuration of node {} to itself alone ({} quorum, "
      "tie-breaker {}); nodes removed for good: {}",
      opt_.id, next.mode == raft::QuorumMode::kMajority ? "majority" : "tiebreak", opt_.id,
      lost.empty() ? "none" : lost);
  spdlog::warn(
      "--force-new-cluster: this node's log ends at index {} (committed as far as it knows: {}). "
      "Writes the lost nodes committed beyond what this log holds are LOST; entries {}..{} that "
      "the old cluster may never have committed are now committed",
      last, hs.commit, hs.commit + 1, last);
  Status st = store_->save({e}, raft::HardState{e.term, hs.vote, e.index}, true);
  if (!st) {
    *error = {3, "data directory " + opt_.data_dir + ": cannot write: " + st.to_string()};
    return false;
  }
  spdlog::warn(
      "--force-new-cluster: configuration entry written at index {}; add nodes back "
      "under new ids (CSET.NODE ADD) and restart this node without the flag",
      e.index);
  return true;
}

bool Server::Impl::open_sockets(StartError* error) {
  net::TcpTransportOptions to;
  to.identity.node_id = opt_.id;
  to.identity.cluster_id = store_->identity().cluster_id;
  to.identity.cluster_token = opt_.cluster_token;
  to.identity.incarnation = store_->identity().incarnation;
  to.identity.peer_address = opt_.advertise_peer;
  to.identity.client_address = opt_.advertise_client;
  to.listen_address = opt_.peer_listen;
  std::random_device rd;
  to.seed = rd();
  net::TransportCallbacks cb;
  cb.on_frame = [this](NodeId from, net::PeerFrame&& f) {
    asio::post(io_, [this, from, f = std::move(f)]() mutable { on_frame(from, std::move(f)); });
  };
  cb.validate_handshake = [this](const net::Handshake& h) { return validate_handshake(h); };
  cb.on_refused = [this](const net::Refusal& r) {
    spdlog::warn("peer {} at {} refused ({}): {}", r.peer, r.address,
                 r.by_us ? "by us" : "by the peer", r.reason);
    asio::post(io_, [this, peer = r.peer, why = r.reason] { last_refusal_[peer] = why; });
    if (!r.by_us && r.reason.rfind("data lost: node " + std::to_string(opt_.id) + "'s", 0) == 0) {
      // The peer holds another incarnation of this node: it remembers a
      // history this data directory does not have (an older cluster with
      // the same flags, or this node was wiped). What it told us about
      // itself is not to be trusted as its record here.
      std::lock_guard<std::mutex> lock(registry_mu_);
      learned_.erase(r.peer);
    }
    if (!r.by_us && r.reason.rfind(kRemovedReason, 0) == 0) {
      asio::post(io_, [this, reason = r.reason] {
        if (removed_) return;
        removed_ = true;
        spdlog::warn("this node ({}) was removed from the cluster (a peer says: {})", opt_.id,
                     reason);
      });
    }
  };
  cb.on_dropped = [this](NodeId to, const net::PeerFrame& f, net::DropCause) {
    if (f.has_forward_request()) {
      uint64_t id = f.forward_request().request_id();
      asio::post(io_, [this, id] { on_forward_dropped(id); });
    } else if (f.has_forward_batch()) {
      std::vector<uint64_t> ids;
      for (const auto& req : f.forward_batch().requests()) ids.push_back(req.request_id());
      asio::post(io_, [this, ids = std::move(ids)] {
        for (uint64_t id : ids) on_forward_dropped(id);
      });
    }
  };
  cb.log = [](net::LogLevel level, const std::string& m) {
    if (level == net::LogLevel::kWarn || level == net::LogLevel::kError) {
      spdlog::warn("net: {}", m);
    } else {
      spdlog::debug("net: {}", m);
    }
  };
  transport_ = std::make_unique<net::TcpTransport>(to, cb);
  update_peers();
  Status s = transport_->start();
  if (!s) {
    *error = {2, "--peer-listen " + opt_.peer_listen + ": " + s.to_string()};
    return false;
  }
  // Client listener.
  std::string host;
  uint16_t port = 0;
  s = net::split_host_port(opt_.client_listen, &host, &port);
  if (!s) {
    *error = {2, "--client-listen: " + s.to_string()};
    return false;
  }
  asio::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) {
    *error = {2, "--client-listen: bad address " + host};
    return false;
  }
  asio::ip::tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = {2, "--client-listen " + opt_.client_listen + ": " + ec.message()};
    return false;
  }
  if (!opt_.admin_listen.empty() && !start_admin(error)) return false;
  return true;
}

std::optional<std::string> Server::Impl::validate_handshake(const net::Handshake& h) {
  std::lock_guard<std::mutex> lock(registry_mu_);
  if (h.cluster_token() != opt_.cluster_token) return "cluster token mismatch";
  const std::string& mine = store_->identity().cluster_id;
  if (!mine.empty() && !h.cluster_id().empty() && h.cluster_id() != mine) {
    return "another cluster (cluster id " + h.cluster_id() + ", ours " + mine + ")";
  }
  if (removed_ids_.count(h.node_id())) {
    // The removed node recognizes this phrase (on_refused) and stops serving.
    return std::string(kRemovedReason) + ": node " + std::to_string(h.node_id()) +
           " was removed from this cluster";
  }
  // A node missing from our configuration is not refused: a configuration
  // this node has not applied yet may have added it (we lag behind, and
  // that node may be the leader we need to catch up from). It cannot vote
  // or be counted in a quorum until a configuration holding it commits.
  // Removed ids (above), other clusters and replaced data directories of
  // known members (below) are refused.
  auto it = registry_.find(h.node_id());
  // A wiped data directory has a new incarnation: recorded in the
  // configuration (nodes added with CSET.NODE ADD), or seen earlier by this
  // process (the initial members, whose records are written before their
  // incarnations are known).
  std::string expected = it != registry_.end() ? it->second.incarnation : std::string();
  if (expected.empty()) {
    if (auto l = learned_.find(h.node_id()); l != learned_.end()) expected = l->second.incarnation;
  }
  if (!expected.empty() && expected != hex(h.incarnation())) {
    return "data lost: node " + std::to_string(h.node_id()) +
           "'s data directory was replaced (incarnation mismatch); remove this node and add it "
           "back under a new id";
  }
  // Learned from the handshake: the peer's client address and incarnation.
  bool is_new = !learned_.count(h.node_id());
  learned_[h.node_id()] = {h.peer_address(), h.client_address(), hex(h.incarnation())};
  takes_forward_batches_[h.node_id()] = h.takes_forward_batches();
  if (!h.cluster_id().empty()) learned_cluster_ids_[h.node_id()] = h.cluster_id();
  if (is_new && it == registry_.end()) {
    // A node waiting to join, or lagging behind the configuration, answers
    // whoever dialed it: it needs their address.
    asio::post(io_, [this] { update_peers(); });
  }
  return std::nullopt;
}

void Server::Impl::update_peers() {
  const raft::Configuration& cfg = raft_->configuration();
  std::map<NodeId, std::string> peers;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    // Every node that still receives the log: the members, and during a
    // joint change also the outgoing voters, whose member records are gone
    // already but which still vote (the leader itself may be one of them).
    std::map<NodeId, MemberRecord> previous = std::move(registry_);
    registry_.clear();
    for (const auto& m : cfg.members) registry_[m.id] = decode_member_context(m.context);
    for (NodeId id : cfg.all_nodes()) {
      if (registry_.count(id)) continue;
      if (auto it = previous.find(id); it != previous.end()) {
        registry_[id] = it->second;
      } else if (auto l = learned_.find(id); l != learned_.end()) {
        registry_[id] = MemberRecord{l->second.peer_address, l->second.client_address, {}};
      }
    }
    removed_ids_.clear();
    for (NodeId id : cfg.removed) {
      if (!registry_.count(id)) removed_ids_.insert(id);
    }
    for (const auto& [id, r] : registry_) {
      if (id != opt_.id && !r.peer_address.empty()) peers[id] = r.peer_address;
    }
    member_ = cfg.contains(opt_.id);
    for (const auto& [id, address] : joining_) peers.emplace(id, address);
    if (!removed_) {
      // Waiting to be added, or behind a configuration that added nodes we
      // do not know yet: talk back to whoever dialed us.
      for (const auto& [id, r] : learned_) {
        if (id != opt_.id && !removed_ids_.count(id) && !r.peer_address.empty())
          peers.emplace(id, r.peer_address);
      }
    }
  }
  if (peers != dialed_peers_) {
    // Which peers this node talks to decides whom the log reaches; a change
    // is rare (membership, a handshake from an unknown node) and worth a line.
    auto list = [](const std::map<NodeId, std::string>& m) {
      std::string out;
      for (const auto& [id, address] : m) {
        out += (out.empty() ? "" : ", ") + std::to_string(id) + "=" + address;
      }
      return out.empty() ? std::string("none") : out;
    };
    spdlog::info("peers: now {} (was {})", list(peers), list(dialed_peers_));
    dialed_peers_ = peers;
  }
  transport_->set_peers(std::move(peers));
}

// ---------------------------------------------------------------------------
// The loop.

Status Server::Impl::run() {
  start_accept();
  schedule_tick();
  signals_.async_wait([this](const asio::error_code& ec, int) {
    if (!ec) stop();
  });
  spdlog::info("node {} serving clients on {} and peers on {}", opt_.id, opt_.client_listen,
               opt_.peer_listen);
  if (waiting_to_join()) {
    spdlog::info(
        "node {} waits to be added to a cluster (CSET.NODE ADD {} {} on a member); until then "
        "it answers NOQUORUM",
        opt_.id, opt_.id, opt_.advertise_peer);
  }
  loop_beat_ms_.store(now_ms());
  watchdog_thread_ = std::thread([this] { watchdog_main(); });
  io_.run();
  {
    std::lock_guard<std::mutex> lock(watchdog_mu_);
    watchdog_stop_ = true;
  }
  watchdog_cv_.notify_all();
  watchdog_thread_.join();
  // Shutdown: nothing new is accepted; pending requests fail with the code
  // their state calls for; the store is flushed.
  fail_all_pending();
  transport_->stop();
  stop_admin();
  Status s = store_->flush();
  if (s.code() == Code::kNoSpace) {
    // Not needed for durability: the synced WAL holds everything and the
    // next start replays it. A full disk must not turn SIGTERM into exit 1.
    spdlog::warn("shutdown without flushing the store: {}", s.to_string());
    s = Status::ok();
  }
  spdlog::info("node {} stopped", opt_.id);
  return fatal_.is_ok() ? s : fatal_;
}

uint64_t Server::Impl::loop_stall_ms() const {
  // Several election timeouts, and more than a write timeout (every waiting
  // client has given up by then).
  return std::max<uint64_t>({5000, 3 * opt_.election_timeout_ms, 2 * opt_.write_timeout_ms});
}

void Server::Impl::watchdog_main() {
  const uint64_t stall_ms = loop_stall_ms();
  constexpr uint64_t kWakeMs = 100;
  uint64_t seen_beat = loop_beat_ms_.load();
  uint64_t beat_seen_at = now_ms();  // when the watchdog saw seen_beat change
  uint64_t last_wake = beat_seen_at;
  bool reported = false;
  std::unique_lock<std::mutex> lock(watchdog_mu_);
  while (!watchdog_cv_.wait_for(lock, std::chrono::milliseconds(kWakeMs),
                                [this] { return watchdog_stop_; })) {
    const uint64_t now = now_ms();
    const uint64_t beat = loop_beat_ms_.load(std::memory_order_relaxed);
    if (now - last_wake > 10 * kWakeMs) {
      // The watchdog itself did not run for a second: the whole process was
      // stopped (SIGSTOP) or starved of CPU; that is no stall of the loop.
      beat_seen_at = now;
    }
    last_wake = now;
    if (beat != seen_beat) {
      if (reported) {
        spdlog::warn("event loop: running again after {} ms", now - beat_seen_at);
        reported = false;
        loop_stalled_.store(false);
      }
      seen_beat = beat;
      beat_seen_at = now;
      continue;
    }
    const uint64_t stalled = now - beat_seen_at;
    if (stalled >= stall_ms && !reported) {
      reported = true;
      loop_stalled_.store(true);
      loop_stalls_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn(
          "event loop: stalled for {} ms (a call on the loop thread has not returned); "
          "clients and peers get no answer from this node meanwhile",
          stalled);
    }
#ifdef CSET_TEST_HOOKS
    // Only a stall the watchdog reported: a bound below its threshold would
    // take the normal gap between two ticks for one.
    if (opt_.test_abort_on_stall_ms > 0 && reported && stalled >= opt_.test_abort_on_stall_ms) {
      spdlog::critical(
          "event loop: stalled for {} ms; aborting for a core file "
          "(--test-abort-on-stall-ms)",
          stalled);
      spdlog::default_logger()->flush();
      std::abort();
    }
#endif
  }
}

void Server::Impl::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    asio::error_code ec;
    acceptor_.close(ec);
    close_connections();
    tick_timer_.cancel();
    signals_.cancel();
    io_.stop();
  });
}

void Server::Impl::schedule_tick() {
  tick_timer_.expires_after(std::chrono::milliseconds(opt_.heartbeat_ms));
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    loop_beat_ms_.store(now_ms(), std::memory_order_relaxed);
    raft_->tick();
    on_tick();
    kick();
    schedule_tick();
  });
}

void Server::Impl::kick() {
  if (ready_posted_) return;
  ready_posted_ = true;
  asio::post(io_, [this] {
    ready_posted_ = false;
    process_ready();
  });
}

void Server::Impl::send_messages(std::vector<raft::Message>& msgs) {
  for (auto& m : msgs) {
#ifdef CSET_TEST_HOOKS
    if (opt_.test_snapshot_chunk_delay_ms > 0 && m.type == raft::MessageType::kSnapshot &&
        m.snapshot_offset > 0) {
      // Test builds: hold the chunk on a timer of its own; the loop runs on.
      auto timer = std::make_shared<asio::steady_timer>(
          io_, std::chrono::milliseconds(opt_.test_snapshot_chunk_delay_ms));
      timer->async_wait([this, timer, m = std::move(m)](const asio::error_code& ec) {
        if (!ec && !stopping_) transport_->send_raft(m);
      });
      continue;
    }
#endif
    transport_->send_raft(m);
  }
  msgs.clear();
}

void Server::Impl::process_ready() {
  flush_proposals();
  while (raft_->has_ready() && !stopping_) {
    raft::Ready rd = raft_->ready();
    if (!raft_->log_read_error().is_ok()) {
      // Entries the log counts as stored cannot be read back. Nothing more
      // can be applied; a restart loads the log again from the store.
      fatal_ = Status(Code::kCorrupt, "cannot read committed entries from the log: " +
                                          raft_->log_read_error().to_string());
      spdlog::critical("{}; stopping", fatal_.to_string());
      stop();
      break;
    }
    send_messages(rd.leader_messages);
    Status s;
    if (rd.snapshot) {
      raft::Snapshot snap = *rd.snapshot;
      s = store_->install_snapshot(
          snap, [&] { return sm_->restore_snapshot(snap.data, snap.meta.index); });
      if (s) {
        metrics_.snapshots_installed++;
        spdlog::info("installed snapshot at index {}", snap.meta.index);
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    if (s && (!rd.entries.empty() || rd.hard_state)) {
      // A commit-index-only hard state is written without an fsync (raft.h).
      s = store_->save(rd.entries, rd.hard_state, rd.must_sync);
    }
    if (rd.must_sync) metrics_.observe_fsync(std::chrono::steady_clock::now() - t0);
    if (!s) {
      on_storage_failure(s);
      break;
    }
    // Recovered only once the store says so (on_tick's resume()): a Ready
    // with nothing to persist proves nothing.
    if (storage_failed_ && !store_->write_failed()) {
      storage_failed_ = false;
      raft_->set_storage_failed(false);
      spdlog::info("storage recovered");
    }
    send_messages(rd.messages);
    const bool failed_before_apply = storage_failed_;
    apply(rd.committed_entries);
    // The state machine could not persist (disk full): nothing was applied;
    // without advance() the Ready, and its committed entries, come again.
    if (storage_failed_ && !failed_before_apply) break;
    for (auto& rs : rd.read_states) on_read_state(rs);
    raft_->advance(rd);
    serve_ready_reads();
    check_admin();
    maybe_snapshot();
  }
  observe_leadership();
  publish_status();
}

void Server::Impl::on_storage_failure(const Status& s) {
  if (!storage_failed_) spdlog::error("cannot persist: {}", s.to_string());
  storage_failed_ = true;
  metrics_.storage_failures++;
  raft_->set_storage_failed(true);
  // Proposals that had not yet reached the log can be refused for certain.
  std::vector<uint64_t> refused;
  for (auto& [id, w] : writes_) {
    if (!w.proposed && !w.forwarded) refused.push_back(id);
  }
  for (uint64_t id : refused) {
    finish_write(id,
                 Status(Code::kNoSpace,
                        "this node cannot persist (disk full or I/O error); nothing changed"),
                 {});
  }
}

// An initial member's record is written at bootstrap, before its incarnation
// is known, and each node's bootstrap entry holds only its own. The leader
// records each one through the log (a kUpdate configuration change: same
// voters, no joint step) once it knows it — its own at once, a peer's from
// that peer's handshake — so every node, also one restarted since, refuses a
// wiped data directory under that id and it can never vote a second time in
// a term (cases.md C09). One record per change; retried on later ticks.
bool Server::Impl::acknowledged(NodeId id) const {
  for (const raft::PeerStatus& p : raft_->peers()) {
    if (p.id == id) return p.match > 0;
  }
  return false;
}

void Server::Impl::confirm_member_records() {
  if (raft_->role() != raft::Role::kLeader || raft_->conf_change_pending() ||
      raft_->configuration().joint() || !admin_waiting_.empty()) {
    return;  // an operator's change goes first
  }
  for (const raft::Member& m : raft_->configuration().members) {
    MemberRecord record = decode_member_context(m.context);
    if (record.confirmed) continue;
    MemberRecord next = record;
    if (m.id == opt_.id) {
      next.incarnation = hex(store_->identity().incarnation);
      next.client_address = opt_.advertise_client;
    } else {
      // Only a peer that took our appends: a handshake we accepted from a
      // peer that refused us (another history under the same cluster id) is
      // no record of this cluster's member.
      if (!acknowledged(m.id)) continue;
      std::lock_guard<std::mutex> lock(registry_mu_);
      auto learned = learned_.find(m.id);
      if (learned == learned_.end()) continue;  // not heard from yet
      next.incarnation = learned->second.incarnation;
      next.client_address = learned->second.client_address;
      if (next.peer_address.empty()) next.peer_address = learned->second.peer_address;
    }
    // A known incarnation is never replaced (the handshake refuses a mismatch).
    if (next.incarnation.empty() ||
        (!record.incarnation.empty() && record.incarnation != next.incarnation)) {
      continue;
    }
    next.confirmed = true;
    auto index = raft_->propose_conf_change(
        {{raft::ConfChange::Type::kUpdate, m.id, encode_member_context(next)}});
    if (index.ok()) {
      record_update_index_ = *index;
      spdlog::info("membership: recording node {}'s incarnation {} at index {}", m.id,
                   next.incarnation, *index);
      kick();
    }
    return;
  }
}

void Server::Impl::on_tick() {
  confirm_member_records();
  if (storage_failed_) {
    // Try again: the store recovers (reopens) once space returns. Cleared
    // here, not only in process_ready(): when every node's disk was full
    // there is no leader and no message, so no Ready would ever come.
    if (store_->resume() && !store_->write_failed()) {
      storage_failed_ = false;
      raft_->set_storage_failed(false);
      spdlog::info("storage recovered");
    }
    kick();
  }
  uint64_t now = now_ms();
  // Requests that have not left this node yet try again; deadlines fire.
  std::vector<uint64_t> expired;
  for (auto& [id, w] : writes_) {
    if (now >= w.deadline_ms) {
      expired.push_back(id);
    } else if (!w.proposed && !w.forwarded && !w.queued) {
      start_write(id);
    }
  }
  for (uint64_t id : expired) {
    auto it = writes_.find(id);
    if (it == writes_.end()) continue;
    bool passed = it->second.proposed || it->second.forwarded;
    finish_write(id,
                 passed ? Status(Code::kTimeout,
                                 "the write was sent to the leader but its commit was not "
                                 "confirmed in time: the outcome is unknown")
                 : storage_failed_
                     ? Status(Code::kNoSpace,
                              "this node cannot persist (disk full or I/O error); nothing changed")
                     : Status(Code::kNoQuorum,
                              "no quorum within the write timeout; the request was never "
                              "proposed, nothing changed"),
                 {});
  }
  std::vector<uint64_t> expired_admin;
  for (auto& [id, a] : admin_forwards_) {
    if (now >= a.deadline_ms) {
      expired_admin.push_back(id);
    } else if (!a.forwarded) {
      forward_admin(id);
    }
  }
  for (uint64_t id : expired_admin) {
    auto it = admin_forwards_.find(id);
    if (it == admin_forwards_.end()) continue;
    finish_admin_forward(
        id, it->second.forwarded
                ? Status(Code::kTimeout,
                         "the change was sent to the leader but its commit was not confirmed in "
                         "time: the outcome is unknown (see CSET.NODES)")
                : Status(Code::kNoQuorum, "no leader within the write timeout; nothing changed"));
  }
  if (!admin_waiting_.empty()) check_admin();
  std::vector<uint64_t> expired_reads;
  for (auto& [id, r] : reads_) {
    if (now >= r.deadline_ms) {
      expired_reads.push_back(id);
    } else if (r.read_index == 0 && now >= r.retry_ms) {
      start_read(id);
    }
  }
  for (uint64_t id : expired_reads) {
    auto it = reads_.find(id);
    if (it != reads_.end() && it->second.read_index != 0 && storage_failed_) {
      // A quorum confirmed the read; this node cannot apply up to it.
      finish_read(id, Status(Code::kNoSpace,
                             "this node cannot apply what the read must see (disk full or I/O "
                             "error): read from another node"));
      continue;
    }
    finish_read(id, Status(Code::kNoQuorum,
                           "no quorum within the write timeout: the read could not be confirmed"));
  }
}

// ---------------------------------------------------------------------------
// Writes.

uint64_t Server::Impl::now_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

bool Server::Impl::expired_without_leader(uint64_t arrival_ms) const {
  return arrival_ms != 0 && now_ms() >= arrival_ms + opt_.write_timeout_ms &&
         raft_->leader_id() == raft::kNoNode;
}

void Server::Impl::submit_write(std::string command, WriteCallback done, uint64_t arrival_ms) {
  if (expired_without_leader(arrival_ms)) {
    done(Status(Code::kNoQuorum, "no leader within the write timeout; nothing changed"), {});
    return;
  }
  uint64_t id = next_request_id_++;
  PendingWrite w;
  w.command = std::move(command);
  w.done = std::move(done);
  w.deadline_ms = now_ms() + opt_.write_timeout_ms;
  writes_.emplace(id, std::move(w));
  metrics_.writes++;
  start_write(id);
}

void Server::Impl::start_write(uint64_t id) {
  auto it = writes_.find(id);
  if (it == writes_.end()) return;
  PendingWrite& w = it->second;
  if (storage_failed_) return;  // waits; NOSPACE or NOQUORUM at its deadline
  if (raft_->role() == raft::Role::kLeader) {
    if (raft_->leaving() || raft_->transfer_target() != raft::kNoNode)
      return;  // wait for the next leader
    w.queued = true;
    proposal_queue_.push_back(id);
    kick();
    return;
  }
  NodeId leader = raft_->leader_id();
  if (leader == raft::kNoNode || leader == opt_.id) return;  // retried at the next tick
  // Sent with the other writes of this loop turn (flush_forwards); until
  // then it has not left this node.
  w.queued = true;
  forward_outbox_[leader].push_back(id);
  if (!forward_flush_posted_) {
    forward_flush_posted_ = true;
    asio::post(io_, [this] {
      forward_flush_posted_ = false;
      if (!stopping_) flush_forwards();
    });
  }
}

// Hands the writes queued by start_write to the leader they were queued
// for: ForwardBatch frames of at most kForwardBatchBytes of commands (or one
// larger request alone) to a leader whose handshake said it takes them,
// else one ForwardRequest frame each.
void Server::Impl::flush_forwards() {
  auto outbox = std::move(forward_outbox_);
  forward_outbox_.clear();
  for (auto& [leader, ids] : outbox) {
    // Only on an established connection: its handshake set the flag, and a
    // frame sent now travels on it or is dropped with it. A frame queued
    // while the transport dials would go to whatever process answers, maybe
    // an older one (a downgrade) that takes no batches.
    bool batches = false;
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      auto it = takes_forward_batches_.find(leader);
      batches = it != takes_forward_batches_.end() && it->second;
    }
    batches = batches && transport_->connected(leader);
    net::PeerFrame batch;
    size_t batch_bytes = 0;
    const uint64_t now = now_ms();
    for (uint64_t id : ids) {
      auto it = writes_.find(id);
      if (it == writes_.end() || !it->second.queued) continue;  // answered meanwhile
      PendingWrite& w = it->second;
      w.queued = false;
      if (raft_->leader_id() != leader || raft_->role() == raft::Role::kLeader) {
        start_write(id);  // the leader changed this turn: route it again
        continue;
      }
      if (batches && batch.has_forward_batch() &&
          batch_bytes + w.command.size() > kForwardBatchBytes) {
        transport_->send(leader, std::move(batch));  // this one would overfill it
        batch.Clear();
        batch_bytes = 0;
      }
      net::PeerFrame single;
      net::ForwardRequest* req = batches ? batch.mutable_forward_batch()->add_requests()
                                         : single.mutable_forward_request();
      req->set_request_id(id);
      req->set_kind(net::FORWARD_WRITE);
      req->set_command(w.command);
      req->set_timeout_ms(w.deadline_ms > now ? w.deadline_ms - now : 0);
      req->set_answer_on_apply(true);
      // The point of no return: from here a timeout means "unknown".
      w.forwarded = true;
      w.forwarded_to = leader;
      metrics_.forwarded_writes++;
      if (!batches) {
        transport_->send(leader, std::move(single));
        continue;
      }
      batch_bytes += w.command.size();
    }
    if (batch.has_forward_batch()) transport_->send(leader, std::move(batch));
  }
}

void Server::Impl::flush_proposals() {
  if (proposal_queue_.empty()) return;
  std::vector<uint64_t> ids = std::move(proposal_queue_);
  proposal_queue_.clear();
  std::vector<std::string> batch;
  std::vector<uint64_t> batch_ids;
  for (uint64_t id : ids) {
    auto it = writes_.find(id);
    if (it != writes_.end()) {
      batch.push_back(it->second.command);
      batch_ids.push_back(id);
    } else if (auto rit = remote_writes_.find(id); rit != remote_writes_.end()) {
      batch.push_back(rit->second.command);
      batch_ids.push_back(id);
    }
  }
  if (batch.empty()) return;
  // The leader stamps every command with its wall clock: the state machine's
  // clock (client-session expiry) is derived from these stamps, and never
  // goes back even when a later leader's clock is behind (set/state_machine.h).
  const uint64_t wall_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  for (std::string& command : batch) set::stamp_command_time(command, wall_ms);
  auto last = raft_->propose(std::move(batch));
  if (!last.ok()) {
    // Not proposed: local ones try again (or time out as NOQUORUM); remote
    // ones are refused so their origin may try the new leader.
    for (uint64_t id : batch_ids) {
      if (auto it = writes_.find(id); it != writes_.end()) {
        it->second.queued = false;
        if (last.code() == Code::kNoSpace) {
          finish_write(id,
                       Status(Code::kNoSpace,
                              "this node cannot persist (disk full or I/O error); nothing changed"),
                       {});
        }
      } else {
        refuse_remote(id, last.status());
      }
    }
    return;
  }
  Index first = *last - batch_ids.size() + 1;
  raft::Term term = raft_->term();
  metrics_.proposals += batch_ids.size();
  metrics_.proposal_batches++;
  // Origins that answer from their own apply learn where their writes went,
  // one frame per origin, sent before this batch's appends (same connection).
  std::map<NodeId, net::PeerFrame> accepted;
  for (size_t i = 0; i < batch_ids.size(); ++i) {
    uint64_t id = batch_ids[i];
    if (auto it = writes_.find(id); it != writes_.end()) {
      it->second.proposed = true;
      it->second.queued = false;
    } else if (auto rit = remote_writes_.find(id);
               rit != remote_writes_.end() && rit->second.answer_on_apply) {
      auto* a = accepted[rit->second.origin].mutable_forward_accepted();
      a->set_term(term);
      a->add_request_id(rit->second.origin_request_id);
      a->add_index(first + i);
      remote_writes_.erase(rit);
      continue;
    }
    proposals_.emplace(first + i, Proposal{term, id});
  }
  for (auto& [origin, f] : accepted) transport_->send(origin, std::move(f));
}

void Server::Impl::apply(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  auto results = sm_->apply(entries, false);
  if (!results.ok() && results.code() == Code::kNoSpace) {
    on_storage_failure(results.status());  // process_ready does not advance
    return;
  }
  if (!results.ok()) {
    // The state machine cannot keep up with the log: nothing applied; the
    // node stops (an applied index that skips entries would be silent loss).
    fatal_ = Status(results.code(), "apply failed: " + results.status().message());
    spdlog::critical("{}", fatal_.to_string());
    stop();
    return;
  }
  bool config_changed = false;
  for (const auto& r : *results) {
    if (r.type == raft::EntryType::kConfig) config_changed = true;
    auto [lo, hi] = proposals_.equal_range(r.index);
    if (lo == hi) continue;
    std::vector<Proposal> waiting;
    for (auto it = lo; it != hi; ++it) waiting.push_back(it->second);
    proposals_.erase(lo, hi);
    // Applied entries are contiguous: the result's entry is found by index.
    const raft::Term applied_term = entries[r.index - entries.front().index].term;
    for (const Proposal& p : waiting) {
      if (applied_term != p.term) {
        complete_proposal(
            p.request_id,
            Status(Code::kTimeout,
                   "leadership changed before the write committed; it was not applied"),
            {});
        continue;
      }
      // Refusals by the state machine (nothing changed) answer as errors;
      // EXISTS and TOOBIG are results the connection turns into replies.
      const Code code = r.status.code();
      const bool refused =
          code == Code::kCorrupt || code == Code::kSessionExpired || code == Code::kErr;
      complete_proposal(p.request_id, refused ? r.status : Status::ok(), r);
    }
  }
  // Proposals at or below the applied index that no result above matched
  // (every entry has one) came inside an installed snapshot: this node never
  // applied their entry by itself, so their result is not known here.
  for (auto it = proposals_.begin(); it != proposals_.end() && it->first <= sm_->applied_index();) {
    complete_proposal(it->second.request_id,
                      Status(Code::kTimeout,
                             "this node caught up by a snapshot that covers the write's entry, so "
                             "its result is not known here: the outcome is unknown"),
                      {});
    it = proposals_.erase(it);
  }
  if (config_changed) on_config_applied();
}

void Server::Impl::complete_proposal(uint64_t id, const Status& s, const set::ApplyResult& r) {
  if (writes_.count(id)) {
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
  transport_->send(rw.origin, std::move(f));
}

// A request a follower handed to this node (alone or in a ForwardBatch).
void Server::Impl::on_forward_request(NodeId from, net::ForwardRequest& req) {
  if (req.kind() == net::FORWARD_ADMIN) {
    on_admin_forward(from, req);
    return;
  }
  if (req.kind() != net::FORWARD_WRITE) return;
  uint64_t id = next_request_id_++;
  remote_writes_[id] =
      RemoteWrite{from, req.request_id(), std::move(*req.mutable_command()), req.answer_on_apply()};
  if (raft_->role() != raft::Role::kLeader || raft_->leaving() ||
      raft_->transfer_target() != raft::kNoNode || storage_failed_) {
    refuse_remote(id, Status(Code::kNotLeader, "not the leader"));
  } else {
    proposal_queue_.push_back(id);
  }
}

// The leader put writes this node forwarded into its log: they are answered
// from this node's own apply (see apply()), as the leader would have.
void Server::Impl::on_forward_accepted(NodeId from, const net::ForwardAccepted& accepted) {
  const int n = std::min(accepted.request_id_size(), accepted.index_size());
  for (int i = 0; i < n; ++i) {
    const uint64_t id = accepted.request_id(i);
    const Index index = accepted.index(i);
    auto it = writes_.find(id);
    if (it == writes_.end() || it->second.forwarded_to != from) continue;
    if (index <= sm_->applied_index()) {
      // Cannot happen while the transport keeps order (the appends carrying
      // the entry come after this frame); if it did, the result is gone.
      finish_write(id,
                   Status(Code::kTimeout,
                          "the write was sent to the leader but its result was not seen here: "
                          "the outcome is unknown"),
                   {});
      continue;
    }
    // Another proposal may wait at the same index under another term (two
    // leaders wrote there); either may still commit, so both wait for the
    // apply of that index, which answers the one whose term it carries.
    proposals_.emplace(index, Proposal{accepted.term(), id});
    metrics_.forwards_accepted++;
  }
}

void Server::Impl::finish_write(uint64_t id, const Status& s, const set::ApplyResult& r) {
  auto it = writes_.find(id);
  if (it == writes_.end()) return;
  WriteCallback done = std::move(it->second.done);
  writes_.erase(it);
  done(s, r);
}

void Server::Impl::on_forward_dropped(uint64_t id) {
  if (auto a = admin_forwards_.find(id); a != admin_forwards_.end()) {
    // Never reached the leader: nothing changed; tried again at the next tick.
    a->second.forwarded = false;
    a->second.forwarded_to = 0;
    return;
  }
  auto it = writes_.find(id);
  if (it == writes_.end() || !it->second.forwarded) return;
  // The transport says the frame never reached the leader: the request is
  // back before the point of no return, and may be sent again.
  it->second.forwarded = false;
  it->second.forwarded_to = 0;
}

void Server::Impl::refuse_remote(uint64_t id, const Status& why) {
  auto it = remote_writes_.find(id);
  if (it == remote_writes_.end()) return;
  net::PeerFrame f;
  auto* rep = f.mutable_forward_reply();
  rep->set_request_id(it->second.origin_request_id);
  rep->set_code(static_cast<uint32_t>(Code::kNotLeader));
  rep->set_message(why.message());
  rep->set_leader_id(raft_->leader_id());
  transport_->send(it->second.origin, std::move(f));
  remote_writes_.erase(it);
}

void Server::Impl::on_frame(NodeId from, net::PeerFrame&& f) {
  if (stopping_) return;
  if (f.has_raft()) {
    auto m = net::from_proto(f.raft());
    if (!m.ok()) {
      spdlog::warn("bad raft message from {}: {}", from, m.status().to_string());
      return;
    }
    if (m->type == raft::MessageType::kSnapshot) {
      spdlog::debug("snapshot chunk received from {}: snapshot index {}, offset {}, {} bytes{}",
                    from, m->snapshot_meta.index, m->snapshot_offset, m->snapshot_chunk.size(),
                    m->snapshot_done ? ", last" : "");
    }
    raft_->step(*m);
  } else if (f.has_forward_request()) {
    on_forward_request(from, *f.mutable_forward_request());
  } else if (f.has_forward_batch()) {
    for (net::ForwardRequest& req : *f.mutable_forward_batch()->mutable_requests()) {
      on_forward_request(from, req);
    }
  } else if (f.has_forward_accepted()) {
    on_forward_accepted(from, f.forward_accepted());
  } else if (f.has_forward_reply()) {
    const auto& rep = f.forward_reply();
    if (auto a = admin_forwards_.find(rep.request_id());
        a != admin_forwards_.end() && a->second.forwarded_to == from) {
      Code code = static_cast<Code>(rep.code());
      if (code == Code::kNotLeader) {
        // Refused without being proposed: safe to try the current leader.
        a->second.forwarded = false;
        a->second.forwarded_to = 0;
      } else {
        finish_admin_forward(rep.request_id(),
                             code == Code::kOk ? Status::ok() : Status(code, rep.message()));
      }
    }
    auto it = writes_.find(rep.request_id());
    if (it != writes_.end() && it->second.forwarded_to == from) {
      Code code = static_cast<Code>(rep.code());
      if (code == Code::kNotLeader) {
        // Refused without being proposed: safe to try the current leader.
        it->second.forwarded = false;
        it->second.forwarded_to = 0;
      } else {
        set::ApplyResult r;
        r.count = rep.count();
        r.index = rep.index();
        if (code == Code::kExists) r.status = Status(Code::kExists, rep.message());
        Status s =
            code == Code::kOk || code == Code::kExists ? Status::ok() : Status(code, rep.message());
        finish_write(rep.request_id(), s, r);
      }
    }
  }
  kick();
}

// ---------------------------------------------------------------------------
// Reads (ReadIndex, dissertation §6.4).

void Server::Impl::submit_read(ReadCallback done, uint64_t arrival_ms) {
#ifdef CSET_TEST_HOOKS
  if (opt_.unsafe_local_reads) {  // BUG on purpose (test builds): no ReadIndex
    done(Status::ok());
    return;
  }
#endif
  if (expired_without_leader(arrival_ms)) {
    done(Status(Code::kNoQuorum, "no leader within the write timeout; the read was not served"));
    return;
  }
  uint64_t id = next_request_id_++;
  PendingRead r;
  r.done = std::move(done);
  r.deadline_ms = now_ms() + opt_.write_timeout_ms;
  reads_.emplace(id, std::move(r));
  metrics_.reads++;
  start_read(id);
}

void Server::Impl::start_read(uint64_t id) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  PendingRead& r = it->second;
  r.context =
      std::to_string(opt_.id) + ":" + std::to_string(id) + ":" + std::to_string(++read_seq_);
  r.retry_ms = now_ms() + 2 * opt_.election_timeout_ms;
  if (raft_->read_index(r.context).is_ok()) {
    read_contexts_[r.context] = id;
    kick();
  }
}

void Server::Impl::on_read_state(const raft::ReadState& rs) {
  auto it = read_contexts_.find(rs.context);
  if (it == read_contexts_.end()) return;
  uint64_t id = it->second;
  read_contexts_.erase(it);
  auto rit = reads_.find(id);
  if (rit == reads_.end()) return;
  rit->second.read_index = std::max<Index>(rs.index, 1);
}

void Server::Impl::serve_ready_reads() {
  std::vector<uint64_t> ready;
  for (auto& [id, r] : reads_) {
    if (r.read_index != 0 && sm_->applied_index() >= r.read_index) ready.push_back(id);
  }
  for (uint64_t id : ready) finish_read(id, Status::ok());
}

void Server::Impl::finish_read(uint64_t id, const Status& s) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  ReadCallback done = std::move(it->second.done);
  if (!it->second.context.empty()) read_contexts_.erase(it->second.context);
  reads_.erase(it);
  done(s);
}

void Server::Impl::fail_all_pending() {
  std::vector<uint64_t> ids;
  for (auto& [id, w] : writes_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto& w = writes_.at(id);
    bool passed = w.proposed || w.forwarded;
    finish_write(id,
                 passed
                     ? Status(Code::kTimeout, "the node is shutting down; the outcome is unknown")
                     : Status(Code::kNoQuorum, "the node is shutting down; nothing changed"),
                 {});
  }
  ids.clear();
  for (auto& [id, a] : admin_forwards_) ids.push_back(id);
  for (uint64_t id : ids) {
    bool passed = admin_forwards_.at(id).forwarded;
    finish_admin_forward(
        id, passed ? Status(Code::kTimeout, "the node is shutting down; the outcome is unknown")
                   : Status(Code::kNoQuorum, "the node is shutting down; nothing changed"));
  }
  std::vector<PendingAdmin> admins = std::move(admin_waiting_);
  admin_waiting_.clear();
  for (auto& p : admins) {
    p.done(p.kind == PendingAdmin::Kind::kAwaitHandshake
               ? Status(Code::kNoQuorum, "the node is shutting down; nothing changed")
               : Status(Code::kTimeout, "the node is shutting down; the outcome is unknown"));
  }
  ids.clear();
  for (auto& [id, r] : reads_) ids.push_back(id);
  for (uint64_t id : ids) finish_read(id, Status(Code::kNoQuorum, "the node is shutting down"));
}

// ---------------------------------------------------------------------------
// Snapshots and configuration.

void Server::Impl::maybe_snapshot() {
  Index applied = sm_->applied_index();
  Index snap = store_->snapshot_meta().index;
  if (applied < snap + opt_.snapshot_entries) return;
  // A new snapshot makes the image a follower is being sent too old to send:
  // its transfer starts over, and one that takes longer than the writes
  // between two snapshots never finished (found by the breaker). So while a
  // follower is in snapshot state, wait, up to kMaxDeferredSnapshots
  // snapshot intervals of log (the bound for a follower that died meanwhile:
  // the leader keeps it in snapshot state until it answers).
  if (applied < snap + kMaxDeferredSnapshots * opt_.snapshot_entries &&
      snapshot_transfer_in_progress()) {
    return;
  }
  take_snapshot();
}

bool Server::Impl::snapshot_transfer_in_progress() const {
  if (raft_->role() != raft::Role::kLeader) return false;
  for (const raft::PeerStatus& p : raft_->peers()) {
    if (p.id != opt_.id && p.state == raft::ProgressState::kSnapshot) return true;
  }
  return false;
}

Result<raft::SnapshotMeta> Server::Impl::applied_snapshot_meta() const {
  Index applied = sm_->applied_index();
  auto term = store_->term(applied);
  if (!term.ok()) return term.status();
  auto cfg = raft::decode_configuration(sm_->config_bytes());
  if (!cfg.ok()) return cfg.status();
  raft::SnapshotMeta meta;
  meta.index = applied;
  meta.term = *term;
  meta.config = *cfg;
  return meta;
}

Result<raft::Snapshot> Server::Impl::snapshot_image() {
  auto meta = applied_snapshot_meta();
  if (!meta.ok()) return meta.status();
  auto data = sm_->encode_snapshot();
  if (!data.ok()) return data.status();
  raft::Snapshot snapshot;
  snapshot.meta = std::move(meta).value();
  snapshot.data = std::move(data).value();
  metrics_.snapshot_images_built++;
  return snapshot;
}

void Server::Impl::take_snapshot() {
  // Metadata only, and the log compacted behind it: the image is built when
  // a follower needs one (snapshot_image()). Encoding the whole state here,
  // every snapshot_entries entries, made a leader's cost per write grow with
  // the size of its sets (perf, issue 8).
  auto meta = applied_snapshot_meta();
  if (!meta.ok()) return;
  // The state machine's writes must be durable before the log is compacted.
  Status s = store_->sync();
  if (!s) return;
  raft::Snapshot snapshot;
  snapshot.meta = std::move(meta).value();
  s = store_->create_snapshot(std::move(snapshot), 1000);
  if (s) {
    metrics_.snapshots_taken++;
  } else {
    spdlog::warn("snapshot at {} failed: {}", sm_->applied_index(), s.to_string());
  }
}

void Server::Impl::on_config_applied() {
  auto cfg = raft::decode_configuration(sm_->config_bytes());
  // Removed once a committed configuration lists this id as removed: a joint
  // one is enough (every later leader completes it to its final half).
  if (cfg.ok() && std::binary_search(cfg->removed.begin(), cfg->removed.end(), opt_.id) &&
      !removed_) {
    removed_ = true;
    spdlog::warn("this node ({}) was removed from the cluster", opt_.id);
  }
  update_peers();
  if (cfg.ok() && cfg->contains(opt_.id) && store_->identity().cluster_id.empty()) {
    // A node that joined learns the cluster id from the leader's handshake.
    std::string id;
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      if (auto it = learned_cluster_ids_.find(raft_->leader_id()); it != learned_cluster_ids_.end())
        id = it->second;
    }
    bool recorded = false;
    if (!id.empty()) {
      // validate_handshake reads the identity under the same lock.
      std::lock_guard<std::mutex> lock(registry_mu_);
      recorded = store_->set_cluster_id(id).is_ok();
    }
    if (recorded) {
      net::LocalIdentity ident;
      ident.node_id = opt_.id;
      ident.cluster_id = id;
      ident.cluster_token = opt_.cluster_token;
      ident.incarnation = store_->identity().incarnation;
      ident.peer_address = opt_.advertise_peer;
      ident.client_address = opt_.advertise_client;
      transport_->set_identity(ident);
      spdlog::info("joined cluster {} as node {}", id, opt_.id);
    }
  }
}

void Server::Impl::observe_leadership() {
  // The core changes leader, role and term inside step() and tick(), before
  // the Ready that follows: compare with what was seen last, not with the
  // state at the start of process_ready().
  const NodeId leader = raft_->leader_id();
  const raft::Role role = raft_->role();
  const raft::Term term = raft_->term();
  if (role != seen_role_ || term != seen_term_ || leader != seen_leader_) {
    if (role == raft::Role::kLeader) {
      if (seen_role_ != raft::Role::kLeader || term != seen_term_)
        spdlog::info("raft: became the leader at term {}", term);
    } else if (role == raft::Role::kCandidate || role == raft::Role::kPreCandidate) {
      // A removed node that never heard of its final configuration still
      // counts itself a voter of the joint one; it cannot win (its peers
      // refuse it) and says nothing more about it.
      if ((role != seen_role_ || term != seen_term_) && !removed_) {
        if (role == raft::Role::kCandidate) {
          spdlog::info("raft: campaigning at term {}", term);
        } else {
          spdlog::info("raft: pre-campaigning for term {} (no leader heard from)", term + 1);
        }
      }
    } else if (leader != seen_leader_ || role != seen_role_) {
      if (leader == raft::kNoNode) {
        spdlog::info("raft: {} at term {}, no leader known",
                     role == raft::Role::kLearner ? "learner" : "follower", term);
      } else {
        spdlog::info("raft: {} of leader {} at term {}",
                     role == raft::Role::kLearner ? "learner" : "follower", leader, term);
      }
    }
  }
  seen_role_ = role;
  seen_term_ = term;
  if (leader == seen_leader_) return;
  seen_leader_ = leader;
  on_leader_change();
}

void Server::Impl::on_leader_change() {
  metrics_.leader_changes++;
  // Waiting requests try the new leader at once.
  for (auto& [id, w] : writes_) {
    if (!w.proposed && !w.forwarded && !w.queued) start_write(id);
  }
  std::vector<uint64_t> admin_ids;
  for (auto& [id, a] : admin_forwards_) {
    if (!a.forwarded) admin_ids.push_back(id);
  }
  for (uint64_t id : admin_ids) forward_admin(id);
  // Reads without a read index yet ask again now instead of at their retry
  // time: their ReadIndex request may have gone to the old leader.
  std::vector<uint64_t> read_ids;
  for (auto& [id, r] : reads_) {
    if (r.read_index == 0) read_ids.push_back(id);
  }
  for (uint64_t id : read_ids) start_read(id);
}

}  // namespace cset::server
