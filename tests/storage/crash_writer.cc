// The writer process of the crash test (crash_test.cc): writes to a
// RocksStore through a FaultFs that journals every durability event, and
// reports on stdout, one line each, every operation before it starts
// ("B ...") and after it returned ok ("A"). The parent SIGKILLs it at a random
// moment, applies the journal (dropping what was never synced) and checks
// the reopened store against the reported operations.
//
// Usage: storage_crash_writer DIR JOURNAL SEED SKIP_SYNC(0|1)
// Operations (all deterministic from SEED and the store's state):
//   B L start count term commit   save(entries start.., hard state), synced
//   B K applied                   kv write of members up to `applied`, NOT synced
//   B S index keep                create_snapshot(index) keeping `keep` entries, synced
// Entry data is a function of (index, term) so the parent can check it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "crash_common.h"
#include "storage/fault_fs.h"
#include "storage/rocks_store.h"

namespace {

using cset::raft::Entry;
using cset::raft::HardState;
using cset::raft::Index;
using cset::raft::Term;
using cset::storage::testing::crash_entry_data;

void say(const std::string& line) {
  std::string l = line + "\n";
  const char* p = l.data();
  size_t left = l.size();
  while (left > 0) {
    ssize_t n = ::write(1, p, left);
    if (n <= 0) std::_Exit(3);
    p += n;
    left -= static_cast<size_t>(n);
  }
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "crash_writer: %s\n", why.c_str());
  std::_Exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) die("usage: DIR JOURNAL SEED SKIP_SYNC");
  const std::string dir = argv[1];
  std::mt19937_64 rng(std::strtoull(argv[3], nullptr, 10));
  const bool skip_sync = std::string(argv[4]) == "1";

  cset::storage::StoreOptions o;
  o.dir = dir;
  o.node_id = 1;
  o.create_if_missing = true;
  o.block_cache_mb = 8;
  o.write_buffer_mb = 1;  // small memtables: flushes happen during the run
  o.fs = std::make_shared<cset::storage::FaultFs>(nullptr, argv[2]);
  o.test_skip_log_sync = skip_sync;
  o.verify_checksums_on_open = false;  // the parent verifies
  auto opened = cset::storage::RocksStore::open(o);
  if (!opened.ok()) die(opened.status().to_string());
  cset::storage::RocksStore& store = **opened;

  Index last = store.last_index();
  HardState hs = store.hard_state();
  Term term = std::max<Term>(hs.term, last == 0 ? 1 : *store.term(last));
  Index commit = hs.commit;
  Index applied = 0;
  auto a = store.kv().get(cset::set::Space::kMeta, "A");
  if (!a.ok()) die(a.status().to_string());
  if (a->has_value()) applied = std::strtoull((*a)->c_str(), nullptr, 10);
  say("R");

  while (true) {
    const uint64_t r = rng() % 100;
    if (r < 70) {
      Index start = last + 1;
      if (rng() % 8 == 0 && last > commit) {
        start = commit + 1 + rng() % (last - commit);  // overwrite an uncommitted suffix
        ++term;
      }
      const Index count = 1 + rng() % 16;
      std::vector<Entry> entries;
      for (Index i = start; i < start + count; ++i) {
        entries.push_back(
            Entry{term, i, cset::raft::EntryType::kNormal, crash_entry_data(i, term)});
      }
      const Index new_last = start + count - 1;
      const Index new_commit = std::max(commit, new_last > 3 ? new_last - 3 : 0);
      say("B L " + std::to_string(start) + " " + std::to_string(count) + " " +
          std::to_string(term) + " " + std::to_string(new_commit));
      cset::Status s = store.save(entries, HardState{term, 1, new_commit}, true);
      if (!s) die(s.to_string());
      last = new_last;
      commit = new_commit;
      say("A");
    } else if (r < 92) {
      if (applied >= commit) continue;
      const Index to = std::min<Index>(commit, applied + 1 + rng() % 5);
      cset::set::WriteBatch batch;
      for (Index i = applied + 1; i <= to; ++i) {
        batch.put(cset::set::Space::kData, "m" + std::to_string(i), "");
      }
      batch.put(cset::set::Space::kMeta, "A", std::to_string(to));
      say("B K " + std::to_string(to));
      cset::Status s = store.kv().write(batch, false);
      if (!s) die(s.to_string());
      applied = to;
      say("A");
    } else {
      if (applied == 0 || applied <= store.snapshot().meta.index) continue;
      const uint64_t keep = rng() % 20;
      cset::raft::Snapshot snap;
      snap.meta.index = applied;
      snap.meta.term = *store.term(applied);
      snap.meta.config.voters = {1};
      snap.meta.config.tiebreaker = 1;
      snap.meta.config.members = {{1, ""}};
      snap.data = "image";
      say("B S " + std::to_string(applied) + " " + std::to_string(keep));
      cset::Status s = store.create_snapshot(snap, keep);
      if (!s) die(s.to_string());
      say("A");
    }
  }
}
