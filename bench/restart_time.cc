// restart_time: how long a node takes to open a big data directory.
//
//   restart_time [--members N] [--entries N] [--runs N] [--dir DIR] [--keep]
//
// Fills a data directory through the real APIs (RocksStore::save of a
// bootstrap configuration entry and then SADD entries of members/entries
// members each, in synced batches of 1,000 as group commit would give; the
// state machine applies them in the same batches, unsynced, as csetd does),
// closes it, then times a reopen done the way csetd's Server::Impl::open does
// it, step by step, `runs` times:
//   1. RocksStore::open (WAL check, RocksDB open, every table file's block
//      checksums verified: verify_checksums_on_open, csetd's default),
//   2. set::StateMachine::load (applied index, configuration),
//   3. raft::Raft::create (hard state, snapshot, then every log entry read
//      once to find the configuration in force).
// Also timed, separately: the same open without the checksum pass, and
// StateMachine::encode_snapshot (what csetd does at start when the directory
// holds a snapshot whose image it must rebuild: take_snapshot(true)).
// Defaults: 5,000,000 members, 1,000,000 entries, 3 runs, a fresh directory
// under $CSET_BENCH_DIR or the build directory (removed unless --keep).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "raft/raft.h"
#include "set/command.h"
#include "set/state_machine.h"
#include "storage/rocks_store.h"

namespace {

using cset::raft::Entry;
using cset::raft::HardState;
using cset::raft::Index;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string& what, const cset::Status& s) {
  std::fprintf(stderr, "restart_time: %s: %s\n", what.c_str(), s.to_string().c_str());
  std::exit(1);
}

cset::storage::StoreOptions store_options(const std::string& dir, bool create, bool verify) {
  cset::storage::StoreOptions o;
  o.dir = dir;
  o.node_id = 1;
  o.create_if_missing = create;
  o.cluster_id = "bench";
  o.block_cache_mb = 64;  // csetd's default --block-cache-mb
  o.verify_checksums_on_open = verify;
  return o;
}

std::unique_ptr<cset::storage::RocksStore> open_store(const std::string& dir, bool create,
                                                      bool verify) {
  auto r = cset::storage::RocksStore::open(store_options(dir, create, verify));
  if (!r.ok()) die("open " + dir, r.status());
  return std::move(r).value();
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

void fill(const std::string& dir, uint64_t members, uint64_t entries) {
  auto store = open_store(dir, /*create=*/true, /*verify=*/false);
  cset::set::StateMachine sm(&store->kv());
  if (cset::Status s = sm.load(); !s) die("load", s);
  std::vector<cset::raft::Member> voters{{1, ""}, {2, ""}, {3, ""}};
  auto cfg = cset::raft::Raft::initial_configuration(voters, cset::raft::QuorumMode::kTiebreak);
  std::vector<Entry> batch{cset::raft::Raft::bootstrap_entry(cfg)};
  const uint64_t per_entry = (members + entries - 1) / entries;
  constexpr uint64_t kSets = 100;
  constexpr size_t kBatch = 1000;
  uint64_t member = 0;
  Index index = 1;
  const auto t0 = Clock::now();
  auto flush = [&] {
    if (cset::Status s = store->save(batch, HardState{1, 1, index}, /*sync=*/true); !s) {
      die("save", s);
    }
    auto applied = sm.apply(batch, /*sync=*/false);
    if (!applied.ok()) die("apply", applied.status());
    batch.clear();
  };
  for (uint64_t e = 0; e < entries; ++e) {
    std::vector<std::string> args;
    for (uint64_t m = 0; m < per_entry && member < members; ++m, ++member) {
      char name[32];
      std::snprintf(name, sizeof(name), "member-%010llu", static_cast<unsigned long long>(member));
      args.emplace_back(name);
    }
    if (args.empty()) args.emplace_back("member-extra-" + std::to_string(e));
    auto command = cset::set::Command::add("set-" + std::to_string(e % kSets), std::move(args));
    batch.push_back(
        Entry{1, ++index, cset::raft::EntryType::kNormal, cset::set::encode_command(command)});
    if (batch.size() == kBatch) flush();
  }
  if (!batch.empty()) flush();
  if (cset::Status s = store->sync(); !s) die("sync", s);
  std::printf("fill: %llu members in %llu log entries (last index %llu): %.1f s\n",
              static_cast<unsigned long long>(member), static_cast<unsigned long long>(entries),
              static_cast<unsigned long long>(index), seconds_since(t0));
}

struct Reopen {
  double open_s = 0;
  double load_s = 0;
  double raft_s = 0;
  double total() const { return open_s + load_s + raft_s; }
};

Reopen reopen_like_csetd(const std::string& dir, bool verify) {
  Reopen r;
  auto t0 = Clock::now();
  auto store = open_store(dir, /*create=*/true, verify);  // csetd passes create_if_missing
  r.open_s = seconds_since(t0);
  t0 = Clock::now();
  cset::set::StateMachine sm(&store->kv());
  if (cset::Status s = sm.load(); !s) die("load", s);
  r.load_s = seconds_since(t0);
  t0 = Clock::now();
  cset::raft::Options ro;
  ro.id = 1;
  ro.storage = store.get();
  ro.applied = sm.applied_index();
  ro.heartbeat_ticks = 1;
  ro.election_ticks = 10;
  ro.random_seed = 1;
  auto raft = cset::raft::Raft::create(ro);
  if (!raft.ok()) die("raft create", raft.status());
  r.raft_s = seconds_since(t0);
  return r;
}

double time_encode_snapshot(const std::string& dir) {
  auto store = open_store(dir, /*create=*/false, /*verify=*/false);
  cset::set::StateMachine sm(&store->kv());
  if (cset::Status s = sm.load(); !s) die("load", s);
  const auto t0 = Clock::now();
  auto image = sm.encode_snapshot();
  if (!image.ok()) die("encode_snapshot", image.status());
  const double s = seconds_since(t0);
  std::printf("  encode_snapshot: %.2f s (%.1f MiB image)\n", s,
              static_cast<double>(image->size()) / (1 << 20));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t members = 5'000'000;
  uint64_t entries = 1'000'000;
  int runs = 3;
  bool keep = false;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "restart_time: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--members") {
      members = std::stoull(next());
    } else if (a == "--entries") {
      entries = std::stoull(next());
    } else if (a == "--runs") {
      runs = std::stoi(next());
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: restart_time [--members N] [--entries N] [--runs N] [--dir DIR] "
                   "[--keep]\n");
      return 2;
    }
  }
  if (entries == 0) entries = 1;
  bool made = false;
  if (dir.empty()) {
    const char* env = std::getenv("CSET_BENCH_DIR");
    std::string base = env != nullptr && *env != '\0' ? env : CSET_BENCH_DEFAULT_DIR;
    std::string templ = base + "/cset-restart-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::fprintf(stderr, "restart_time: cannot create a directory under %s\n", base.c_str());
      return 2;
    }
    dir = templ + "/data";
    made = true;
  }
  if (!std::filesystem::exists(dir + "/CURRENT")) fill(dir, members, entries);
  std::printf("on disk: %.1f MiB in %s\n", static_cast<double>(dir_bytes(dir)) / (1 << 20),
              dir.c_str());
  double best = 1e9;
  double best_unverified = 1e9;
  for (int r = 0; r < runs; ++r) {
    Reopen v = reopen_like_csetd(dir, /*verify=*/true);
    Reopen u = reopen_like_csetd(dir, /*verify=*/false);
    std::printf(
        "run %d: reopen as csetd %.2f s (RocksStore::open %.2f incl. checksum pass, "
        "StateMachine::load %.3f, Raft::create %.2f); without the checksum pass: open %.2f s\n",
        r + 1, v.total(), v.open_s, v.load_s, v.raft_s, u.open_s);
    best = std::min(best, v.total());
    best_unverified = std::min(best_unverified, u.open_s);
  }
  std::printf("reopen as csetd, min of %d: %.2f s (RocksStore::open without checksums: %.2f s)\n",
              runs, best, best_unverified);
  time_encode_snapshot(dir);
  if (made && !keep) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(dir).parent_path(), ec);
  }
  return 0;
}
