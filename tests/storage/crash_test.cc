// Crash tests: a writer process (crash_writer.cc) is SIGKILLed at a random
// moment, at least 50 times on the same directory; after each kill the
// writer's FaultFs journal is applied — every byte never fsynced and every
// file name never made durable is dropped, as a power cut would (SIGKILL
// alone keeps the page cache and would hide a missing fsync). The reopened
// store must hold every operation the writer reported done and synced, be
// self-consistent (log contiguous, checksums valid, commit <= last index),
// and equal the state after the last reported operation or the one in
// flight. A second test removes save()'s fsync and must see writes lost.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "crash_common.h"
#include "storage/fault_fs.h"
#include "test_util.h"

extern char** environ;

namespace cset::storage {
namespace {

using namespace cset::storage::testing;  // NOLINT
using raft::HardState;
using raft::Index;
using raft::Term;

struct Op {
  char kind = 0;  // 'L' save, 'K' kv write, 'S' snapshot
  uint64_t a = 0, b = 0, c = 0, d = 0;
};

// What the store should hold, replayed from the writer's reports.
struct Model {
  Index offset = 0;
  Term offset_term = 0;
  std::map<Index, Term> log;
  HardState hs;
  Index snapshot = 0;
  Index applied = 0;

  void apply(const Op& op) {
    if (op.kind == 'L') {
      log.erase(log.lower_bound(op.a), log.end());
      for (Index i = op.a; i < op.a + op.b; ++i) log[i] = op.c;
      hs = HardState{op.c, 1, op.d};
    } else if (op.kind == 'K') {
      applied = op.a;
    } else if (op.kind == 'S') {
      snapshot = op.a;
      const Index kept = std::min<uint64_t>(op.b, op.a - offset);
      const Index new_offset = op.a - kept;
      if (new_offset > offset) {
        offset_term = log.at(new_offset);
        log.erase(log.begin(), log.upper_bound(new_offset));
        offset = new_offset;
      }
    }
  }
  Index last() const { return log.empty() ? offset : log.rbegin()->first; }
};

// Differences between the store's log-side state and a model ("" = equal).
std::string compare_log(RocksStore& s, const Model& m) {
  std::ostringstream out;
  if (s.first_index() != m.offset + 1)
    out << "first " << s.first_index() << " vs " << m.offset + 1 << "; ";
  if (s.last_index() != m.last()) out << "last " << s.last_index() << " vs " << m.last() << "; ";
  if (!(s.hard_state() == m.hs)) {
    out << "hard state commit/term " << s.hard_state().commit << "/" << s.hard_state().term
        << " vs " << m.hs.commit << "/" << m.hs.term << "; ";
  }
  if (s.snapshot().meta.index != m.snapshot) {
    out << "snapshot " << s.snapshot().meta.index << " vs " << m.snapshot << "; ";
  }
  if (!out.str().empty()) return out.str();
  if (m.offset > 0 && *s.term(m.offset) != m.offset_term) return "offset term differs";
  if (m.log.empty()) return "";
  auto es = s.entries(m.offset + 1, m.last() + 1, kNoLimit);
  if (!es.ok()) return "entries: " + es.status().to_string();
  for (const raft::Entry& e : *es) {
    auto it = m.log.find(e.index);
    if (it == m.log.end() || it->second != e.term) {
      return "term of " + std::to_string(e.index) + " is " + std::to_string(e.term);
    }
    if (e.data != crash_entry_data(e.index, e.term)) return "data of " + std::to_string(e.index);
  }
  return "";
}

Model model_of(RocksStore& s, Index applied) {
  Model m;
  m.offset = s.first_index() - 1;
  m.offset_term = *s.term(m.offset);
  for (Index i = m.offset + 1; i <= s.last_index(); ++i) m.log[i] = *s.term(i);
  m.hs = s.hard_state();
  m.snapshot = s.snapshot().meta.index;
  m.applied = applied;
  return m;
}

struct Generation {
  Model acked;                // every reported-done operation applied
  std::optional<Op> pending;  // started, not reported done
  Index applied_floor = 0;    // kv state made durable by the last synced op
  Index applied_ceiling = 0;  // the highest kv write ever started
  int done = 0;               // operations reported done
  bool ready = false;
  std::string error;
};

// Runs the writer until `kill_after` operations are done (plus a random
// delay), kills it with SIGKILL and parses everything it reported.
void run_writer(const std::string& dir, const std::string& journal, uint64_t seed, bool skip_sync,
                int kill_after, int delay_us, Generation* g) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  const std::string seed_s = std::to_string(seed);
  const char* argv[] = {CSET_CRASH_WRITER, dir.c_str(),           journal.c_str(),
                        seed_s.c_str(),    skip_sync ? "1" : "0", nullptr};
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, CSET_CRASH_WRITER, &actions, nullptr,
                          const_cast<char* const*>(argv), environ),
            0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  FILE* in = ::fdopen(fds[0], "r");
  ASSERT_NE(in, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool killed = false;
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, in) > 0) {
    std::istringstream words(line);
    std::string tag;
    words >> tag;
    if (tag == "R") {
      g->ready = true;
    } else if (tag == "B") {
      Op op;
      std::string kind;
      words >> kind >> op.a >> op.b >> op.c >> op.d;
      op.kind = kind[0];
      if (op.kind == 'K') g->applied_ceiling = std::max(g->applied_ceiling, op.a);
      g->pending = op;
    } else if (tag == "A") {
      if (!g->pending) {
        g->error = "done without a start";
        break;
      }
      g->acked.apply(*g->pending);
      if (g->pending->kind != 'K') g->applied_floor = g->acked.applied;
      g->pending.reset();
      ++g->done;
    }
    if (!killed && (g->done >= kill_after || std::chrono::steady_clock::now() > deadline)) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  std::free(line);
  std::fclose(in);
  if (!killed) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!killed || !WIFSIGNALED(status)) {
    g->error = "the writer ended by itself (status " + std::to_string(status) + ")";
  }
}

// One kill-and-recover cycle. Returns "" when the recovered state is one the
// writer's reports allow, else what is wrong. `model` is updated to the
// recovered state.
std::string cycle(const TempDir& dir, const TempDir& side, uint64_t seed, bool skip_sync,
                  Model* model) {
  std::mt19937_64 rng(seed);
  const std::string journal = side.sub("journal");
  Generation g;
  g.acked = *model;
  g.applied_floor = g.applied_ceiling = model->applied;
  run_writer(dir.path(), journal, seed, skip_sync, 1 + static_cast<int>(rng() % 120),
             static_cast<int>(rng() % 3000), &g);
  if (!g.error.empty()) return g.error;
  if (!g.ready) return "the writer never opened the store";
  auto journal_model = DurabilityModel::load_journal(journal);
  if (!journal_model.ok()) return journal_model.status().to_string();
  Status cut = (*journal_model)->power_cut();
  if (!cut) return cut.to_string();
  std::filesystem::remove(journal);

  StoreOptions o = options_for(dir.path());
  auto opened = RocksStore::open(o);
  if (!opened.ok()) return "reopen: " + opened.status().to_string();
  RocksStore& s = **opened;
  Status v = s.verify_log();
  if (!v) return "verify_log: " + v.to_string();
  if (s.hard_state().commit > s.last_index()) return "commit beyond the last index";

  // Log side: the acked state, or the one in flight if it is a synced op.
  std::string diff = compare_log(s, g.acked);
  if (!diff.empty() && g.pending && g.pending->kind != 'K') {
    Model next = g.acked;
    next.apply(*g.pending);
    if (compare_log(s, next).empty()) diff.clear();
  }
  if (!diff.empty()) return "log state is neither the acknowledged nor the next one: " + diff;

  // Kv side: unsynced writes become durable with the next synced write.
  Index applied = 0;
  auto a = s.kv().get(set::Space::kMeta, "A");
  if (!a.ok()) return a.status().to_string();
  if (a->has_value()) applied = std::strtoull((*a)->c_str(), nullptr, 10);
  if (applied < g.applied_floor || applied > g.applied_ceiling) {
    return "applied " + std::to_string(applied) + " outside [" + std::to_string(g.applied_floor) +
           ", " + std::to_string(g.applied_ceiling) + "]";
  }
  uint64_t members = 0;
  Status scan = s.kv().scan(set::Space::kData, "", "", [&](std::string_view, std::string_view) {
    ++members;
    return true;
  });
  if (!scan) return scan.to_string();
  if (members != applied)
    return "kv holds " + std::to_string(members) + " members, applied " + std::to_string(applied);
  if (s.snapshot().meta.index > applied) return "snapshot beyond the durable applied index";
  *model = model_of(s, applied);
  return "";
}

TEST(CrashTest, EveryReportedSyncedWriteSurvivesFiftyRandomKills) {
  TempDir dir;
  TempDir side;
  Model model;
  int progressed = 0;
  for (uint64_t round = 0; round < 50; ++round) {
    const Index before = model.last();
    std::string problem = cycle(dir, side, 1000 + round, /*skip_sync=*/false, &model);
    ASSERT_EQ(problem, "") << "round " << round;
    if (model.last() > before) ++progressed;
  }
  std::printf("rounds that progressed: %d of 50, last index %llu\n", progressed,
              static_cast<unsigned long long>(model.last()));
  // The kills landed while the writer was making progress, not before it began.
  EXPECT_GT(progressed, 40);
  EXPECT_GT(model.last(), 500u);
}

TEST(CrashTest, RemovingTheFsyncOfSaveIsCaught) {
  TempDir dir;
  TempDir side;
  Model model;
  int lost = 0;
  for (uint64_t round = 0; round < 12; ++round) {
    Model before = model;
    std::string problem = cycle(dir, side, 5000 + round, /*skip_sync=*/true, &model);
    if (!problem.empty()) {
      ++lost;
      // Start the next round from whatever survived.
      auto opened = RocksStore::open(options_for(dir.path()));
      ASSERT_TRUE(opened.ok()) << opened.status().to_string();
      Index applied = 0;
      auto a = (*opened)->kv().get(set::Space::kMeta, "A");
      if (a.ok() && a->has_value()) applied = std::strtoull((*a)->c_str(), nullptr, 10);
      model = model_of(**opened, applied);
    }
  }
  std::printf("rounds that lost acknowledged writes: %d of 12\n", lost);
  EXPECT_GT(lost, 0) << "a store that never fsyncs passed the crash test";
}

}  // namespace
}  // namespace cset::storage
