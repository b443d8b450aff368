// cset-sim: runs the deterministic simulator over a range of seeds, or checks
// a recorded history for linearizability. Command line: issue 3 / docs/simulator.md.
#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <string>

#include "sim/check_history.h"
#include "sim/simulation.h"

namespace {

bool parse_range(const std::string& s, uint64_t* lo, uint64_t* hi) {
  auto dots = s.find("..");
  try {
    if (dots == std::string::npos) {
      *lo = *hi = std::stoull(s);
    } else {
      *lo = std::stoull(s.substr(0, dots));
      *hi = std::stoull(s.substr(dots + 2));
    }
  } catch (...) {
    return false;
  }
  return *lo <= *hi;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cset-sim: deterministic simulation of a consistent-set cluster"};
  std::string seeds;
  uint64_t seed = 0;
  int nodes = 0;
  int steps = 300;
  bool trace_hash = false;
  bool list_bugs = false;
  bool stats = false;
  bool no_membership = false;
  bool no_sessions = false;
  double lost_replies = cset::sim::SimOptions{}.lost_replies;
  std::string bug;
  std::string history_file;
  std::string history_out;
  app.add_option("--seeds", seeds, "seed range A..B (inclusive)");
  app.add_option("--seed", seed, "one seed");
  app.add_option("--nodes", nodes, "cluster size 1..7 (default: a mix per seed)")
      ->check(CLI::Range(1, 7));
  app.add_option("--steps", steps, "client operations per seed")->check(CLI::Range(1, 1000000));
  app.add_flag("--trace-hash", trace_hash, "print trace_hash: HEX for the seed");
  app.add_flag("--list-bugs", list_bugs, "list the injectable bugs");
  app.add_option("--bug", bug, "switch on an injected bug (test builds only)");
  app.add_flag("--stats", stats, "print fault and operation counts");
  app.add_flag("--no-membership", no_membership, "no configuration changes");
  app.add_flag("--no-sessions", no_sessions,
               "plain clients only (default: every other client uses a client session)");
  app.add_option("--lost-replies", lost_replies,
                 "probability that the reply to an applied write is lost (default 0.05)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--check-history", history_file, "check a recorded history (JSONL)");
  app.add_option("--history-out", history_out, "write the (last) seed's client history as JSONL");
  CLI11_PARSE(app, argc, argv);

  if (list_bugs) {
    for (const auto& b : cset::sim::bug_names()) std::printf("%s\n", b.c_str());
    return 0;
  }
  if (!history_file.empty()) return cset::sim::check_history_command(history_file);

  uint64_t lo = seed, hi = seed;
  if (!seeds.empty() && !parse_range(seeds, &lo, &hi)) {
    std::fprintf(stderr, "cset-sim: bad --seeds '%s' (want A..B)\n", seeds.c_str());
    return 2;
  }
  if (seeds.empty() && app.count("--seed") == 0) {
    std::fprintf(stderr, "cset-sim: give --seeds A..B or --seed S\n%s", app.help().c_str());
    return 2;
  }
  cset::sim::SimOptions base;
  base.ops = steps;
  base.membership = !no_membership;
  base.sessions = !no_sessions;
  base.lost_replies = lost_replies;
  if (!bug.empty() && !cset::sim::enable_bug(bug, &base)) {
    std::fprintf(stderr, "cset-sim: unknown bug '%s' (see --list-bugs; test builds only)\n",
                 bug.c_str());
    return 2;
  }
  cset::sim::SimStats total;
  uint64_t failures = 0;
  for (uint64_t s = lo; s <= hi; ++s) {
    cset::sim::SimOptions o = base;
    o.seed = s;
    o.nodes = nodes > 0 ? nodes : cset::sim::default_nodes_for_seed(s);
    cset::sim::SimResult r = cset::sim::run_simulation(o);
    total.add(r.stats);
    if (trace_hash) std::printf("trace_hash: %016" PRIx64 "\n", r.trace_hash);
    if (!history_out.empty()) {
      cset::Status ws = cset::check::write_history_file(
          history_out, cset::sim::to_check_history(r.history, r.stats.virtual_ms * 1000));
      if (!ws) std::fprintf(stderr, "cset-sim: %s\n", ws.to_string().c_str());
    }
    if (!r.ok) {
      ++failures;
      std::printf("FAIL seed %" PRIu64 " (%d nodes): %s violated [checker: %s]\n  %s\n", s, o.nodes,
                  r.property.c_str(), r.checker.c_str(), r.explanation.c_str());
      std::string extra;
      if (no_sessions) extra += " --no-sessions";
      if (app.count("--lost-replies") > 0)
        extra += " --lost-replies " + std::to_string(lost_replies);
      std::printf("  reproduce: cset-sim --seed %" PRIu64 " --nodes %d --steps %d%s%s%s%s\n", s,
                  o.nodes, steps, bug.empty() ? "" : " --bug ", bug.c_str(),
                  no_membership ? " --no-membership" : "", extra.c_str());
      if (failures >= 5) break;
    }
    if (s == UINT64_MAX) break;
  }
  if (stats || hi > lo) {
    std::printf("seeds %" PRIu64 "..%" PRIu64 ": %" PRIu64 " failed; ops ok %" PRIu64
                " failed %" PRIu64 " unknown %" PRIu64 "; crashes %" PRIu64 ", partitions %" PRIu64
                ", lost unsynced writes %" PRIu64 ", snapshots taken %" PRIu64 " installed %" PRIu64
                ", elections %" PRIu64 ", conf changes %" PRIu64 ", dropped msgs %" PRIu64
                ", duplicated %" PRIu64 ", virtual %" PRIu64 " s\n",
                lo, hi, failures, total.ops_ok, total.ops_failed, total.ops_unknown, total.crashes,
                total.partitions, total.lost_unsynced_writes, total.snapshots_taken,
                total.snapshots_installed, total.leader_elections, total.conf_changes,
                total.messages_dropped, total.messages_duplicated, total.virtual_ms / 1000);
    std::printf("sessions opened %" PRIu64 ", session requests %" PRIu64 ", lost replies %" PRIu64
                ", retries sent %" PRIu64 ", retries deduplicated %" PRIu64
                ", CSET.ADD retries answered OK %" PRIu64 ", SESSIONEXPIRED %" PRIu64 "\n",
                total.sessions_opened, total.session_requests, total.lost_replies,
                total.retries_sent, total.retries_deduplicated, total.strict_add_retries_ok,
                total.sessions_expired);
  }
  return failures == 0 ? 0 : 1;
}
