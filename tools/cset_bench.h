// cset bench: a RESP load generator (SPEC.md "cset", issue 8). N connections,
// each keeping up to `pipeline` requests in flight, issue a weighted mix of set
// commands for a duration or a request count after a warm-up, and the tool
// reports throughput, latency percentiles and errors by code word. It speaks
// plain RESP2 (SADD, SREM, SISMEMBER, SMEMBERS), so the same code drives
// csetd and Redis, which is what makes side-by-side figures comparable
// (bench/compare).
//
// Measurement: a request's latency runs from the moment its bytes are handed
// to the socket write (after any requests ahead of it in the same pipeline
// window were written) to the moment its reply is parsed. Requests completed
// during the warm-up are neither counted nor timed. Latencies are kept
// exactly (one uint32 of microseconds each, up to kMaxSamples; beyond that
// the count still grows but percentiles use the first kMaxSamples).
//
// One thread, one asio event loop for all connections: the load generator
// itself costs one core at most, leaving the other for the servers on a
// 2-core machine (redis-benchmark makes the same choice).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/cset_client.h"

namespace cset::cli {

/// The operations a bench mix can hold, with their RESP commands.
enum class BenchOp : uint8_t {
  kFresh,    // SADD key <16-byte member never used before>
  kAdd,      // SADD key m<i>, i uniform in [0, members)
  kRem,      // SREM key m<i>
  kHas,      // SISMEMBER key m<i>
  kMembers,  // SMEMBERS key (bounded by --members when only kAdd fills it)
};

struct BenchOptions {
  std::vector<Endpoint> endpoints;
  /// Connections are spread round-robin over every endpoint when true; all go
  /// to the first endpoint otherwise.
  bool all_endpoints = false;
  int clients = 50;
  int pipeline = 1;
  /// Measured requests; 0 means run for `seconds` instead.
  uint64_t requests = 0;
  double seconds = 10.0;
  double warmup_seconds = 1.0;
  /// Weights per operation; at least one is positive.
  std::map<BenchOp, uint32_t> mix = {{BenchOp::kFresh, 1}};
  uint64_t members = 1000;  // the member space of kAdd/kRem/kHas
  uint32_t keys = 1;        // keys "<prefix>:<j>", j uniform in [0, keys)
  std::string key_prefix = "bench";
  uint64_t seed = 0;  // 0: random
  /// Connect timeout and the longest wait for any one reply, ms; a request
  /// older than this counts as a TIMEOUT error and its connection is reopened.
  uint64_t request_timeout_ms = 10000;
};

struct BenchResult {
  uint64_t requests = 0;  // measured (after warm-up) and completed, errors included
  uint64_t errors = 0;
  std::map<std::string, uint64_t> errors_by_code;  // "NOQUORUM", "CONNECTION", ...
  double seconds = 0;                              // measured wall time
  double ops_per_second = 0;
  // Latency of measured requests, ms; zero when none completed.
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
  int connections_opened = 0;  // first connections that opened (reconnects not counted)
  std::string first_error;     // the first connection failure, if any
};

inline constexpr size_t kMaxSamples = 50'000'000;

/// Parses a mix: "fresh=1,has=3" (names: fresh, add, rem, has, members) or, as
/// SPEC.md writes it, weights "A:R:H" for add (fresh members), rem and has.
/// Errors: kInvalid naming the bad item.
Result<std::map<BenchOp, uint32_t>> parse_bench_mix(std::string_view text);

/// Runs the load. Blocks the calling thread for about warm-up + seconds (or
/// until `requests` complete). Errors: kUnavailable when no connection could
/// be opened at all; kInvalid for options out of range. Errors on single
/// requests are counted in the result, not returned.
Result<BenchResult> run_bench(const BenchOptions& options);

/// Human-readable report (several lines) and one-line JSON (for scripts).
std::string bench_report_text(const BenchOptions& options, const BenchResult& result);
std::string bench_report_json(const BenchOptions& options, const BenchResult& result);

}  // namespace cset::cli
