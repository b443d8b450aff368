// Micro-benchmarks of the CPU-bound cores (issue 8), Google Benchmark:
// - the consensus core: a 3-node cluster of raft::Raft in one process
//   (tests/raft/harness.h: MemoryStorage, a toy state machine, an in-process
//   router), a leader proposing batches of 100-byte entries until every node
//   applied them; entries/s is the core's own ceiling, no disk, no sockets.
//   No log compaction (the toy state machine's snapshot image is the whole
//   history, so compacting would measure the harness); memory grows by the
//   entries proposed (a few hundred MB at most at the default run length).
// - the RESP request parser: pipelined SADD commands, bytes/s and commands/s.
// - the RESP reply writer: integer and bulk-array replies, bytes/s.
// Run it in a Release tree (bench/CMakeLists.txt); figures go in
// docs/benchmarks.md, never into test assertions.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "resp/parser.h"
#include "resp/writer.h"
#include "tests/raft/harness.h"

namespace {

using cset::raft::test::Cluster;

// Entries committed and applied on all 3 nodes per second, proposed in
// batches of state.range(0).
void BM_RaftCommit3Nodes(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  Cluster c({1, 2, 3});
  if (!c.campaign(1)) {
    state.SkipWithError("no leader");
    return;
  }
  c.stabilize();
  const std::string payload(100, 'x');
  uint64_t applied = 0;
  for (auto _ : state) {
    std::vector<std::string> entries(batch, payload);
    if (!c.propose(1, std::move(entries)).ok()) {
      state.SkipWithError("propose failed");
      return;
    }
    c.stabilize();
    applied += batch;
  }
  if (c.raft(3).applied_index() < applied) state.SkipWithError("followers did not apply");
  state.SetItemsProcessed(static_cast<int64_t>(applied));
  state.SetBytesProcessed(static_cast<int64_t>(applied * payload.size()));
}
BENCHMARK(BM_RaftCommit3Nodes)->Arg(1)->Arg(16)->Arg(256);

std::string pipelined_sadds(size_t count) {
  std::string wire;
  for (size_t i = 0; i < count; ++i) {
    std::string member = "member-" + std::to_string(i);
    wire += "*3\r\n$4\r\nSADD\r\n$8\r\nbench:k1\r\n$" + std::to_string(member.size()) + "\r\n" +
            member + "\r\n";
  }
  return wire;
}

// Parsing 1000 pipelined SADDs fed in 16 KiB reads.
void BM_RespParsePipelinedSadd(benchmark::State& state) {
  const std::string wire = pipelined_sadds(1000);
  const size_t chunk = 16 << 10;
  size_t commands = 0;
  for (auto _ : state) {
    cset::resp::RequestParser parser;
    for (size_t off = 0; off < wire.size(); off += chunk) {
      parser.feed(std::string_view(wire).substr(off, chunk));
      for (;;) {
        auto r = parser.next();
        if (r.status != cset::resp::ParseStatus::kCommand) break;
        benchmark::DoNotOptimize(r.args.data());
        ++commands;
      }
    }
  }
  if (commands != 1000 * static_cast<size_t>(state.iterations())) {
    state.SkipWithError("parser lost commands");
  }
  state.SetItemsProcessed(static_cast<int64_t>(commands));
  state.SetBytesProcessed(static_cast<int64_t>(wire.size() * state.iterations()));
}
BENCHMARK(BM_RespParsePipelinedSadd);

// Writing 1000 replies: an integer (SADD's answer) and a 10-member array.
void BM_RespWriteReplies(benchmark::State& state) {
  const std::vector<std::string> members = {"a",      "bb",      "ccc",      "dddd", "eeeee",
                                            "ffffff", "ggggggg", "hhhhhhhh", "i",    "jj"};
  std::string out;
  size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    cset::resp::ReplyWriter w(&out, 2);
    for (int i = 0; i < 1000; ++i) {
      w.integer(i & 1);
      w.array_header(members.size());
      for (const auto& m : members) w.bulk_string(m);
    }
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(2000 * state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_RespWriteReplies);

}  // namespace

BENCHMARK_MAIN();
