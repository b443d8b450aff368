// The deterministic simulator: a whole cluster of real raft/ and set/ code in
// one process, over a simulated network and simulated disks, in virtual time,
// driven by one 64-bit seed (issue 3; FoundationDB's and TigerBeetle's
// simulators are the model).
//
// What it injects: message loss, duplication, reordering and delay per link;
// partitions of every shape (halves, isolated leader, minority, bridge,
// one-way links) that flap and heal; crashes and restarts at any moment with
// unsynced writes lost and the last write possibly torn; slow disks; clocks
// ticking at different rates; random membership changes; lost replies to
// applied writes. Half the clients use client sessions (docs/sessions.md)
// and retry a write whose answer they did not get, through any node.
//
// What it checks, on every run: the Raft invariants as it goes (one leader
// per term; leader completeness; state machine safety: no two nodes apply
// different entries at one index), log matching at the end, the
// linearizability of every client operation (sim/check), and liveness: once
// faults stop, a leader is elected and writes succeed within a bounded time.
//
// Single-threaded; one Simulation per run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/raft.h"

namespace cset::sim {

/// Times a session client sends one request before it gives up (unknown).
inline constexpr int kSessionAttempts = 8;

/// Bugs the simulated node runtime can be built with (besides raft's
/// InjectedBugs), to show that the checkers catch them.
struct NodeBugs {
  bool ack_before_fsync = false;     // send acknowledgements before the fsync
  bool stale_local_read = false;     // serve reads from local state, no ReadIndex
  bool apply_before_commit = false;  // apply entries as soon as they are appended
  /// Apply a session retry again instead of answering it from the session
  /// table: the apply wrapper strips the session header from an entry whose
  /// (session, sequence) an earlier log entry already carried.
  bool reapply_session_retry = false;
};

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;  // 1..7
  int ops = 300;  // client operations before the faults stop
  int clients = 4;
  int keys = 3;  // keys in use at a time
  /// Operations per key before the clients move on to fresh keys (as Jepsen's
  /// independent keys): each key's history stays small enough for the
  /// linearizability search, whose cost grows exponentially with the
  /// unknown-outcome writes on one key. 0: never move on.
  int ops_per_key = 25;
  int members = 4;  // member space per key
  bool faults = true;
  bool membership = true;  // random configuration changes
  /// Client sessions (docs/sessions.md): every other client (1, 3, ...) opens
  /// a session through the log (CSET.SESSION) and sends its writes as
  /// CSET.SEQ with increasing sequence numbers; a request whose answer it did
  /// not get (lost reply, TIMEOUT, NOQUORUM, its own timeout) is sent again,
  /// same (session, sequence), through any node, until a definitive answer
  /// (at most kSessionAttempts times). The others stay plain clients.
  bool sessions = true;
  /// Probability that the reply to an applied write is lost on its way to
  /// the client (the connection drops after the node answered): a plain
  /// client records the write as unknown, a session client retries it.
  double lost_replies = 0.05;
  /// Check the Raft invariants as the run goes (off: only the client
  /// history is checked, to show what the linearizability checker sees alone).
  bool invariants = true;
  raft::InjectedBugs raft_bugs;
  NodeBugs node_bugs;
};

/// One client operation as the simulated client saw it.
struct SimOp {
  // kOpenSession (CSET.SESSION) is a client's own request, never in a history.
  enum class Kind : uint8_t { kAdd, kAddStrict, kRem, kContains, kMembers, kSize, kOpenSession };
  enum class Outcome : uint8_t { kPending, kOk, kFail, kUnknown };
  uint64_t id = 0;
  int client = 0;
  raft::NodeId node = 0;  // the node it was sent to
  Kind kind = Kind::kAdd;
  std::string key;
  std::vector<std::string> members;  // arguments
  uint64_t invoke_us = 0;
  uint64_t complete_us = 0;
  Outcome outcome = Outcome::kPending;
  // Results (when ok): count for add/rem/size; present for contains; exists
  // for add_strict refused; members for members.
  uint64_t count = 0;
  bool present = false;
  bool exists = false;
  std::vector<std::string> result_members;
  std::string error;  // the error code word when failed/unknown
  // Client sessions (SimOptions::sessions). A session write in a history is
  // one logical request: invoked at its first attempt, completed at its
  // definitive answer, with that answer's result.
  uint64_t session = 0;  // 0: a plain request
  uint64_t seq = 0;
  uint64_t lowest_unacked = 0;
  int attempts = 1;           // times sent
  bool deduplicated = false;  // the definitive answer came from the session table
};
const char* to_string(SimOp::Kind kind);

struct SimStats {
  uint64_t events = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_dropped = 0;
  uint64_t messages_duplicated = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t lost_unsynced_writes = 0;
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_installed = 0;
  uint64_t leader_elections = 0;
  uint64_t conf_changes = 0;
  uint64_t slow_disks = 0;
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t ops_unknown = 0;
  uint64_t virtual_ms = 0;
  // Client sessions and lost replies.
  uint64_t sessions_opened = 0;
  uint64_t session_requests = 0;       // logical session writes completed (any outcome)
  uint64_t lost_replies = 0;           // replies to applied writes dropped
  uint64_t retries_sent = 0;           // session attempts after the first
  uint64_t retries_deduplicated = 0;   // retries answered from the session table
  uint64_t strict_add_retries_ok = 0;  // of those, CSET.ADD answered OK (its own first attempt)
  uint64_t sessions_expired = 0;       // SESSIONEXPIRED answers

  void add(const SimStats& o);
};

struct SimResult {
  bool ok = true;
  std::string property;  // the violated property, e.g. "election safety"
  std::string
      checker;  // which checker caught it ("raft-invariants", "linearizability", "liveness")
  std::string explanation;  // a short excerpt that shows it
  uint64_t trace_hash = 0;
  SimStats stats;
  std::vector<SimOp> history;
};

/// Runs one seed. Deterministic: the same options give the same result and
/// trace hash.
SimResult run_simulation(const SimOptions& options);

/// The cluster size seed `seed` runs with when none is given: a mix that
/// always includes DESIGN.md's 2-, 3- and 4-node cases (and 1, 5, 6, 7).
int default_nodes_for_seed(uint64_t seed);

/// Names of the injectable bugs (`cset-sim --list-bugs`).
std::vector<std::string> bug_names();
/// Switches on bug `name` in `options`. Returns false for an unknown name.
bool enable_bug(const std::string& name, SimOptions* options);

}  // namespace cset::sim
