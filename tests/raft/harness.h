// Test harness for the consensus core (raft/raft.h): a small cluster of Raft
// nodes in one process, each with its own MemoryStorage and a toy state
// machine, joined by a message router that can drop, cut and partition.
//
// The harness plays the caller of raft.h's Ready/advance loop exactly as the
// contract says: leader_messages go out first, then the snapshot, entries and
// hard state are written to the node's MemoryStorage, then `messages` go out,
// then committed entries and read states are collected, then advance(). The
// pieces are also available one by one (take_ready / persist / send / apply /
// advance) so a test can stop between them, e.g. to show that a leader does
// not count itself before its own disk has caught up.
//
// Messages travel through one FIFO queue; nothing is delivered until a test
// calls deliver() or stabilize(). Cuts and partitions are checked at delivery
// time; a message that is not delivered is dropped (and traced).
//
// ## Transcripts
// With trace(true) every Ready handled, message dropped and role change is
// recorded as one line of text, so protocol tests read as a script: the steps
// in C++ and the exact exchange expected as a raw string (after etcd-io/raft's
// testdata/*.txt). Formats:
//   entry    `3@2 "data"` = index 3 at term 2; `2@2 noop`;
//            `1@1 config voters=1,2,3 tb=1 [out=... out_tb=...] [learners=...]`
//   message  `1->2 Vote term=2 index=1 log_term=1` (fields by type, see
//            format_message)
//   ready    `> 1 ready` followed by indented parts (hard_state, entries,
//            snapshot, leader_messages, messages, committed, read_states)
//   role     `1 becomes Leader term=2`
//
// Time: nothing ticks on its own; tick(), run() and campaign() advance logical
// time. Randomness: each node's Options.random_seed (fixed by default, so
// every test is deterministic).
//
// Thread-compatible; tests only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cset/status.h"
#include "raft/raft.h"
#include "raft/storage.h"
#include "raft/types.h"

namespace cset::raft::test {

std::string format_entry(const Entry& entry);
std::string format_entries(const std::vector<Entry>& entries);  // ", "-joined
std::string format_message(const Message& message);
/// Multi-line rendering of one Ready of node `id` (no trailing newline).
std::string format_ready(NodeId id, const Ready& ready);

/// The toy state machine: the data of every applied kNormal entry, in order,
/// plus the configurations applied. Its snapshot image is the data joined by
/// '\n' (test data never holds a newline).
struct StateMachine {
  Index applied = 0;
  std::vector<std::pair<Index, std::string>> data;  // (index, data) of kNormal entries
  std::map<Index, Configuration> configs;           // configurations by index
  Configuration snapshot_config;                    // from the last snapshot restored
  Index snapshot_index = 0;

  void apply(const Entry& entry);
  void restore(const Snapshot& snapshot);
  /// The image of the state at `index` (REQUIRES: snapshot_index <= index <= applied).
  std::string image(Index index) const;
  /// The configuration in force at `index`.
  Configuration config_at(Index index) const;
  /// The data values applied, in order (for comparisons between nodes).
  std::vector<std::string> values() const;
};

struct Node {
  NodeId id = kNoNode;
  Options options;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Raft> raft;  // null while crashed
  StateMachine sm;
  std::vector<ReadState> read_states;  // every read state handed out, in order
  std::vector<Snapshot> installed;     // every snapshot handed out in a Ready
  bool disk_broken = false;            // persisting fails (see persist())
};

class Cluster {
 public:
  using OptionsFn = std::function<void(Options&)>;

  /// Bootstraps `ids` as the initial voters: each persists
  /// Raft::bootstrap_entry(config) and HardState{1, 0, 1} before create().
  /// `logs[id]` optionally gives the terms of entries 2, 3, ... of that node's
  /// log (kNormal entries with data "<index>@<term>"); its hard state term is
  /// then the last of them (or `terms[id]` when given).
  explicit Cluster(std::vector<NodeId> ids, OptionsFn tweak = {},
                   QuorumMode mode = QuorumMode::kTiebreak,
                   std::map<NodeId, std::vector<Term>> logs = {},
                   std::map<NodeId, Term> terms = {});

  Node& node(NodeId id);
  Raft& raft(NodeId id);
  MemoryStorage& storage(NodeId id);
  std::vector<NodeId> ids() const;
  bool up(NodeId id) const;

  /// A node with empty storage that joins through a configuration change.
  void add_node(NodeId id);
  /// Crash: the Raft object is lost, and with it everything not persisted.
  void crash(NodeId id);
  /// Recreates the Raft from its storage (durable state only). The state
  /// machine is durable too unless `keep_state_machine` is false (then it is
  /// rebuilt from the storage's snapshot).
  void restart(NodeId id, bool keep_state_machine = true);
  /// Persisting fails from now on (until set false); see handle_ready().
  void break_disk(NodeId id, bool broken = true);

  // Network. Checked when a message is delivered.
  void cut(NodeId a, NodeId b);  // both directions
  void cut_one_way(NodeId from, NodeId to);
  void isolate(NodeId id);
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();  // clears cuts and the drop filter
  /// Extra drop rule (true = drop), e.g. to lose one snapshot chunk.
  void set_drop_filter(std::function<bool(const Message&)> drop);
  /// Called with the queue before every delivery pass (e.g. to reorder or
  /// duplicate messages in randomized tests).
  void set_queue_hook(std::function<void(std::deque<Message>&)> hook) {
    queue_hook_ = std::move(hook);
  }
  std::deque<Message>& queue() { return queue_; }
  /// Delivers the messages queued now that match `pred` (all when empty), in
  /// order, leaving the others queued. Returns how many were stepped.
  size_t deliver(const std::function<bool(const Message&)>& pred = {});
  /// Drops the queued messages that match `pred`.
  size_t drop_queued(const std::function<bool(const Message&)>& pred);
  /// Steps one message into its recipient directly (tracing role changes).
  void step(const Message& m);

  // The Ready loop, in pieces.
  Ready take_ready(NodeId id);
  /// Writes the snapshot, entries and hard state to storage. Returns false
  /// (writing nothing) when the disk is broken and there is something to write.
  bool persist(NodeId id, const Ready& rd);
  void send(const std::vector<Message>& msgs);
  void apply(NodeId id, const Ready& rd);
  void advance(NodeId id, const Ready& rd);
  /// One turn of the loop per the contract, checking on the way that
  /// leader_messages hold only what may go early and that every vote and
  /// acknowledgement in `messages` is durable. On a failed persist it sends only
  /// leader_messages, drops `messages`, skips advance() and calls
  /// set_storage_failed(true). Returns false when there was no ready.
  bool handle_ready(NodeId id);
  /// handle_ready() on every up node (in id order) until none has a ready.
  void process_readies();
  /// Alternates process_readies() and deliver() until nothing is queued and no
  /// node has a ready. Fails the test if that takes more than `max_rounds`.
  void stabilize(int max_rounds = 10000);

  // Time.
  void tick(NodeId id, int n = 1);  // ticks only; nothing is processed
  /// `n` times: tick every up node once, then stabilize().
  void run(int n);
  /// Ticks `id` alone until it campaigns (leaves the follower role), then
  /// stabilizes. Returns whether it became leader.
  bool campaign(NodeId id);
  /// The up leader with the highest term, or kNoNode.
  NodeId leader() const;

  // Client operations (traced).
  Result<Index> propose(NodeId id, std::vector<std::string> batch);
  Status read_index(NodeId id, std::string context);

  /// Takes a snapshot of `id`'s state machine at `index` (<= applied) into its
  /// storage, keeping `keep` entries before it.
  void compact(NodeId id, Index index, uint64_t keep = 0);

  // Transcript.
  void trace(bool on) { trace_ = on; }
  void note(std::string line);
  /// The lines recorded since the last call, '\n'-joined (no trailing newline).
  std::string take_transcript();

 private:
  Node& make_node(NodeId id);
  void create_raft(Node& n);
  bool deliverable(const Message& m) const;
  // Checks that every vote and acknowledgement in rd.messages is backed by
  // what persist() wrote (a test failure otherwise).
  void check_durable(NodeId id, const Ready& rd);
  // Runs `fn` on node `id` and traces a change of role or term.
  void watch(NodeId id, const std::function<void()>& fn);

  OptionsFn tweak_;
  std::map<NodeId, Node> nodes_;
  std::deque<Message> queue_;
  std::set<std::pair<NodeId, NodeId>> cuts_;
  std::function<bool(const Message&)> drop_filter_;
  std::function<void(std::deque<Message>&)> queue_hook_;
  bool trace_ = false;
  std::vector<std::string> transcript_;
};

/// Strips one leading newline from a raw-string transcript.
std::string expected(const char* raw);

}  // namespace cset::raft::test
