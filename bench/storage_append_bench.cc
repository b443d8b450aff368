// storage_append_bench: the cost of a synced log append in RocksStore
// (save(entries, hard_state, sync=true): one write batch, one WAL fsync) at
// batch sizes 1, 16 and 256 entries of 100 bytes, next to the raw rate of the
// same disk: write(2) of the same number of bytes appended to a plain file in
// the same directory, then fdatasync(2).
//
// Counters: entries_per_second and bytes_per_second (payload bytes: entries x
// 100), rates over wall time. Run a Release build:
//   CSET_BENCH_DIR=/path/on/the/disk ./storage_append_bench
// The data lives in a fresh directory under $CSET_BENCH_DIR (default: the
// build directory), removed at exit. Not a ctest test.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "raft/types.h"
#include "storage/rocks_store.h"

namespace {

constexpr size_t kEntryBytes = 100;

/// A fresh directory under $CSET_BENCH_DIR (or the build directory).
class BenchDir {
 public:
  BenchDir() {
    const char* env = std::getenv("CSET_BENCH_DIR");
    std::string base = env != nullptr && *env != '\0' ? env : CSET_BENCH_DEFAULT_DIR;
    std::string templ = base + "/cset-bench-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::fprintf(stderr, "cannot create a directory under %s\n", base.c_str());
      std::exit(2);
    }
    path_ = templ;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void set_counters(benchmark::State& state, int64_t batch) {
  const double entries = static_cast<double>(state.iterations()) * static_cast<double>(batch);
  state.counters["entries_per_second"] = benchmark::Counter(entries, benchmark::Counter::kIsRate);
  state.counters["bytes_per_second"] = benchmark::Counter(
      entries * kEntryBytes, benchmark::Counter::kIsRate, benchmark::Counter::OneK::kIs1024);
  state.counters["fsyncs_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_RocksStoreSyncedAppend(benchmark::State& state) {
  const int64_t batch = state.range(0);
  BenchDir dir;
  cset::storage::StoreOptions o;
  o.dir = dir.path() + "/store";
  o.node_id = 1;
  o.create_if_missing = true;
  o.warn = [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); };
  auto opened = cset::storage::RocksStore::open(o);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().to_string().c_str());
    return;
  }
  auto store = std::move(opened).value();
  cset::raft::Index next = 1;
  std::vector<cset::raft::Entry> entries(static_cast<size_t>(batch));
  for (auto _ : state) {
    for (auto& e : entries) {
      e = cset::raft::Entry{1, next++, cset::raft::EntryType::kNormal,
                            std::string(kEntryBytes, 'e')};
    }
    cset::Status s = store->save(entries, cset::raft::HardState{1, 1, next - 1}, /*sync=*/true);
    if (!s) {
      state.SkipWithError(s.to_string().c_str());
      break;
    }
  }
  set_counters(state, batch);
}

void BM_RawWriteFdatasync(benchmark::State& state) {
  const int64_t batch = state.range(0);
  BenchDir dir;
  const std::string path = dir.path() + "/raw";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (fd < 0) {
    state.SkipWithError("cannot create the raw file");
    return;
  }
  const std::string bytes(static_cast<size_t>(batch) * kEntryBytes, 'r');
  for (auto _ : state) {
    if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write or fdatasync failed");
      break;
    }
  }
  ::close(fd);
  set_counters(state, batch);
}

BENCHMARK(BM_RocksStoreSyncedAppend)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();
BENCHMARK(BM_RawWriteFdatasync)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
