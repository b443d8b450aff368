// The bridge between the simulator and the linearizability checker
// (sim/check): converting a simulated history, and `cset-sim --check-history`.
#pragma once

#include <string>
#include <vector>

#include "sim/check/history.h"
#include "sim/simulation.h"

namespace cset::sim {

struct LinearizabilityVerdict {
  bool ok = true;
  std::string explanation;  // on failure: the key and the operations involved
};

/// The checker's form of a simulated history; operations still pending at
/// `end_us` are unknown.
check::History to_check_history(const std::vector<SimOp>& history, uint64_t end_us);

/// Checks a simulated history against the set model (sim/check).
LinearizabilityVerdict check_sim_history(const std::vector<SimOp>& history, uint64_t end_us);

/// `cset-sim --check-history FILE.jsonl`: prints the verdict; returns the exit
/// code (0 linearizable, 1 not or inconclusive, 2 unreadable file).
int check_history_command(const std::string& path);

}  // namespace cset::sim
