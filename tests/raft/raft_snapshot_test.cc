// Log compaction and InstallSnapshot (dissertation chapter 5, §5.3 chunked
// transfer), on the harness of harness.h.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace cset::raft::test {
namespace {

void small_chunks(Options& o) { o.snapshot_chunk_bytes = 8; }

// Leader 1 commits ten entries while 3 is cut off, then compacts its log past
// them, so 3 can only catch up by snapshot. Returns the snapshot's index.
Index leader_compacts_while_3_away(Cluster& c) {
  EXPECT_TRUE(c.campaign(1));
  c.isolate(3);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(c.propose(1, {"v" + std::to_string(i)}).ok());
  c.stabilize();
  Index applied = c.node(1).sm.applied;
  EXPECT_EQ(applied, 12u);
  c.compact(1, applied);
  EXPECT_EQ(c.storage(1).first_index(), applied + 1);
  return applied;
}

std::vector<std::string> values_0_to_9() {
  std::vector<std::string> out;
  for (int i = 0; i < 10; ++i) out.push_back("v" + std::to_string(i));
  return out;
}

int count_snapshot_chunks(const std::vector<Message>& seen) {
  int n = 0;
  for (const auto& m : seen) n += m.type == MessageType::kSnapshot;
  return n;
}

TEST(RaftSnapshot, CompactedLeaderSendsChunkedSnapshot) {
  Cluster c({1, 2, 3}, small_chunks);
  const Index snap = leader_compacts_while_3_away(c);
  const std::string image = c.storage(1).snapshot().data;
  ASSERT_GT(image.size(), 5 * 8u);
  c.heal();
  std::vector<Message> to_3;
  c.set_drop_filter([&](const Message& m) {
    if (m.to == 3) to_3.push_back(m);
    return false;
  });
  c.run(3);
  // Every chunk but the last is exactly 8 bytes, in order, ending with done.
  std::string reassembled;
  for (const auto& m : to_3) {
    if (m.type != MessageType::kSnapshot) continue;
    EXPECT_EQ(m.snapshot_offset, reassembled.size());
    EXPECT_EQ(m.snapshot_meta.index, snap);
    if (!m.snapshot_done) {
      EXPECT_EQ(m.snapshot_chunk.size(), 8u);
    }
    reassembled += m.snapshot_chunk;
  }
  EXPECT_EQ(reassembled, image);
  EXPECT_EQ(count_snapshot_chunks(to_3), static_cast<int>((image.size() + 7) / 8));
  ASSERT_EQ(c.node(3).installed.size(), 1u);
  EXPECT_EQ(c.node(3).installed[0].meta.index, snap);
  EXPECT_EQ(c.node(3).installed[0].data, image);
  EXPECT_EQ(c.storage(3).snapshot().meta.index, snap);
  EXPECT_EQ(c.node(3).sm.values(), values_0_to_9());
  EXPECT_EQ(c.node(3).sm.config_at(snap).voters, (std::vector<NodeId>{1, 2, 3}));
  // Replication continues normally after the snapshot.
  ASSERT_TRUE(c.propose(1, {"after"}).ok());
  c.stabilize();
  EXPECT_EQ(c.node(3).sm.values().back(), "after");
  EXPECT_EQ(c.raft(3).last_index(), c.raft(1).last_index());
  auto peers = c.raft(1).peers();
  EXPECT_EQ(peers[2].state, ProgressState::kReplicate);
  EXPECT_EQ(peers[2].match, c.raft(1).last_index());
}

TEST(RaftSnapshot, TransferTranscript) {
  // A snapshot of one entry's state ("3:v\n", 4 bytes) in 3-byte chunks. The
  // leader had optimistically sent entry 3 to node 3 (lost), so its first
  // probe after the heartbeat is rejected; only then does it find that entry
  // 3 is compacted and switch to the snapshot.
  Cluster c({1, 2, 3}, [](Options& o) { o.snapshot_chunk_bytes = 3; });
  ASSERT_TRUE(c.campaign(1));
  c.isolate(3);
  ASSERT_TRUE(c.propose(1, {"v"}).ok());
  c.stabilize();
  c.compact(1, 3);
  c.heal();
  c.tick(1);
  c.trace(true);
  c.stabilize();
  EXPECT_EQ(c.take_transcript(), expected(R"(
> 1 ready
  leader_messages:
    1->2 Heartbeat term=2 commit=3
    1->3 Heartbeat term=2 commit=2
> 2 ready
  messages:
    2->1 HeartbeatResponse term=2
> 3 ready
  hard_state term=2 vote=1 commit=2
  messages:
    3->1 HeartbeatResponse term=2
  committed: 2@2 noop
> 1 ready
  leader_messages:
    1->3 Append term=2 index=3 log_term=2 commit=3
> 3 ready
  messages:
    3->1 AppendResponse term=2 index=3 reject hint=2 hint_term=2
> 1 ready
  leader_messages:
    1->3 Snapshot term=2 snap=3@2 offset=0 len=3
> 3 ready
  messages:
    3->1 SnapshotResponse term=2 index=3 offset=3
> 1 ready
  leader_messages:
    1->3 Snapshot term=2 snap=3@2 offset=3 len=1 done
> 3 ready
  hard_state term=2 vote=1 commit=3
  snapshot: 3@2 voters=1,2,3 tb=1 bytes=4
  messages:
    3->1 SnapshotResponse term=2 index=3 offset=4 done
> 1 ready
  leader_messages:
    1->3 Append term=2 index=3 log_term=2 commit=3
> 3 ready
  messages:
    3->1 AppendResponse term=2 index=3)"));
  EXPECT_EQ(c.node(3).sm.values(), std::vector<std::string>{"v"});
}

TEST(RaftSnapshot, FollowerNeverExposesAHalfSnapshot) {
  // Until the last chunk arrives the follower's Ready holds no snapshot, its
  // storage and log are unchanged, and it applies nothing.
  Cluster c({1, 2, 3}, small_chunks);
  leader_compacts_while_3_away(c);
  const Index last_before = c.raft(3).last_index();
  c.heal();
  c.set_drop_filter(
      [](const Message& m) { return m.type == MessageType::kSnapshot && m.snapshot_done; });
  c.run(5);
  EXPECT_TRUE(c.node(3).installed.empty());
  EXPECT_TRUE(c.storage(3).snapshot().empty());
  EXPECT_EQ(c.storage(3).last_index(), last_before);
  EXPECT_EQ(c.raft(3).first_index(), 1u);
  EXPECT_EQ(c.raft(3).last_index(), last_before);
  EXPECT_LE(c.raft(3).commit_index(), last_before);
  EXPECT_TRUE(c.node(3).sm.values().empty());
  c.heal();
  c.run(25);  // the last chunk is re-sent after an unanswered election timeout
  ASSERT_EQ(c.node(3).installed.size(), 1u);
  EXPECT_EQ(c.node(3).sm.values(), values_0_to_9());
}

TEST(RaftSnapshot, DroppedChunkIsResentAndTransferCompletes) {
  // The second chunk is lost. The leader sends one chunk at a time, so it
  // waits; after an election timeout without an answer it re-sends the chunk
  // from the last acknowledged offset and the transfer completes.
  Cluster c({1, 2, 3}, small_chunks);
  leader_compacts_while_3_away(c);
  const std::string image = c.storage(1).snapshot().data;
  c.heal();
  std::vector<uint64_t> offsets;
  c.set_drop_filter([&](const Message& m) {
    if (m.type != MessageType::kSnapshot) return false;
    offsets.push_back(m.snapshot_offset);
    return offsets.size() == 2;  // lose the second chunk once
  });
  c.run(30);
  ASSERT_GE(offsets.size(), 4u);
  EXPECT_EQ(offsets[0], 0u);
  EXPECT_EQ(offsets[1], 8u);
  EXPECT_EQ(offsets[2], 8u);
  EXPECT_EQ(offsets[3], 16u);
  ASSERT_EQ(c.node(3).installed.size(), 1u);
  EXPECT_EQ(c.node(3).installed[0].data, image);
  EXPECT_EQ(c.node(3).sm.values(), values_0_to_9());
}

TEST(RaftSnapshot, OutOfOrderChunkIsRefusedWithTheReceivedOffset) {
  Cluster c({1, 2, 3}, small_chunks);
  leader_compacts_while_3_away(c);
  const Snapshot s = c.storage(1).snapshot();
  const Term term = c.raft(1).term();
  auto chunk = [&](uint64_t offset) {
    Message m;
    m.type = MessageType::kSnapshot;
    m.from = 1;
    m.to = 3;
    m.term = term;
    m.snapshot_meta = s.meta;
    m.snapshot_offset = offset;
    m.snapshot_chunk = s.data.substr(offset, 8);
    m.snapshot_done = offset + 8 >= s.data.size();
    return m;
  };
  // Chunks of that snapshot, stepped by hand into a fresh node 3.
  Cluster d({1, 2, 3}, small_chunks);
  d.stabilize();
  d.trace(true);
  d.step(chunk(0));
  d.handle_ready(3);
  d.step(chunk(16));  // 8..16 missing
  d.handle_ready(3);
  d.step(chunk(0));  // a duplicate of the first chunk restarts cleanly
  d.handle_ready(3);
  EXPECT_EQ(d.take_transcript(), expected(R"(
3 becomes Follower term=2
> 3 ready
  hard_state term=2 vote=0 commit=1
  messages:
    3->1 SnapshotResponse term=2 index=12 offset=8
> 3 ready
  messages:
    3->1 SnapshotResponse term=2 index=12 offset=8 reject
> 3 ready
  messages:
    3->1 SnapshotResponse term=2 index=12 offset=8)"));
}

TEST(RaftSnapshot, FollowerRestartedMidTransferStartsOver) {
  // The follower crashes after two chunks (a partial snapshot lives only in
  // memory); the chunk re-sent after a timeout is refused with offset 0 and
  // the leader restarts the transfer from the beginning.
  Cluster c({1, 2, 3}, small_chunks);
  leader_compacts_while_3_away(c);
  const std::string image = c.storage(1).snapshot().data;
  c.heal();
  int chunks_delivered = 0;
  std::vector<uint64_t> offsets;
  c.set_drop_filter([&](const Message& m) {
    if (m.type == MessageType::kSnapshot) {
      offsets.push_back(m.snapshot_offset);
      ++chunks_delivered;
    }
    return false;
  });
  c.tick(1);
  for (int i = 0; i < 100 && chunks_delivered < 2; ++i) {
    c.process_readies();
    c.deliver();
  }
  ASSERT_EQ(chunks_delivered, 2);
  // 3's answer to the second chunk is lost with it.
  c.crash(3);
  c.restart(3);
  c.run(30);
  ASSERT_EQ(c.node(3).installed.size(), 1u);
  EXPECT_EQ(c.node(3).installed[0].data, image);
  EXPECT_EQ(c.node(3).sm.values(), values_0_to_9());
  // 0, 8, then after an election timeout without an answer 8 again (refused:
  // the restarted node has nothing), then from 0 to the end.
  ASSERT_GE(offsets.size(), 5u);
  EXPECT_EQ(offsets[0], 0u);
  EXPECT_EQ(offsets[1], 8u);
  EXPECT_EQ(offsets[2], 8u);
  EXPECT_EQ(offsets[3], 0u);
  EXPECT_EQ(offsets[4], 8u);
}

TEST(RaftSnapshot, LeaderChangeMidTransferLeavesNoStuckFollower) {
  // The leader dies halfway through a transfer; the new leader still has the
  // entries and catches the follower up by appends. The abandoned partial
  // snapshot must not wedge the follower: it can still campaign later.
  Cluster c({1, 2, 3}, small_chunks);
  leader_compacts_while_3_away(c);
  c.heal();
  int chunks = 0;
  c.set_drop_filter([&](const Message& m) {
    chunks += m.type == MessageType::kSnapshot;
    return false;
  });
  c.tick(1);
  for (int i = 0; i < 100 && chunks < 2; ++i) {
    c.process_readies();
    c.deliver();
  }
  ASSERT_EQ(chunks, 2);
  c.crash(1);
  c.heal();
  c.run(60);
  ASSERT_EQ(c.leader(), 2u);
  EXPECT_EQ(c.node(3).sm.values(), values_0_to_9());
  EXPECT_TRUE(c.node(3).installed.empty());
  // Now 2 goes away and 1 comes back: 3 must be able to lead (its log is the
  // most up to date of the two).
  c.crash(2);
  c.restart(1);
  c.run(80);
  EXPECT_EQ(c.leader(), 3u);
}

TEST(RaftSnapshot, NoImageMeansNoChunkUntilOneExists) {
  // Storage that has no image to give (total_bytes 0: csetd builds images on
  // demand, and building one can fail) must never produce an empty "done"
  // chunk: the follower would install an empty state. The leader sends
  // nothing and asks again an election timeout later.
  Cluster c({1, 2, 3}, small_chunks);
  const Index snap = leader_compacts_while_3_away(c);
  Snapshot with_image = c.storage(1).snapshot();
  ASSERT_FALSE(with_image.data.empty());
  Snapshot metadata_only = with_image;
  metadata_only.data.clear();
  ASSERT_TRUE(c.storage(1).create_snapshot(metadata_only, 0).is_ok());
  c.heal();  // (also clears the drop filter)
  int chunks_to_3 = 0;
  c.set_drop_filter([&](const Message& m) {
    chunks_to_3 += m.to == 3 && m.type == MessageType::kSnapshot;
    return false;
  });
  c.run(25);
  EXPECT_EQ(chunks_to_3, 0);
  EXPECT_EQ(c.storage(3).snapshot().meta.index, 0u);
  EXPECT_TRUE(c.node(3).sm.values().empty());
  // The image is back: the transfer starts within an election timeout.
  ASSERT_TRUE(c.storage(1).create_snapshot(with_image, 0).is_ok());
  c.run(25);
  EXPECT_GT(chunks_to_3, 0);
  EXPECT_EQ(c.storage(3).snapshot().meta.index, snap);
  EXPECT_EQ(c.node(3).sm.values(), values_0_to_9());
}

TEST(RaftSnapshot, RestartFromSnapshotAndLog) {
  // A node whose storage holds a snapshot plus later entries restarts into
  // the same state (state machine rebuilt from the snapshot, then the log).
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.propose(1, {"a" + std::to_string(i)}).ok());
  c.stabilize();
  c.compact(2, 5);
  ASSERT_TRUE(c.propose(1, {"b"}).ok());
  c.stabilize();
  const Term term = c.raft(2).term();
  c.crash(2);
  c.restart(2, /*keep_state_machine=*/false);
  c.stabilize();
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).first_index(), 6u);
  EXPECT_EQ(c.node(2).sm.values(), (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "b"}));
  c.run(3);
  EXPECT_EQ(c.raft(2).leader_id(), 1u);
}

TEST(RaftSnapshot, KeptEntriesLetASlightlyLaggingFollowerAvoidASnapshot) {
  Cluster c({1, 2, 3});
  ASSERT_TRUE(c.campaign(1));
  c.isolate(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.propose(1, {"k" + std::to_string(i)}).ok());
  c.stabilize();
  c.compact(1, 5, /*keep=*/4);  // keeps 2..5: node 3 has up to 2
  c.heal();
  c.run(3);
  EXPECT_TRUE(c.node(3).installed.empty());
  EXPECT_EQ(c.node(3).sm.values(), (std::vector<std::string>{"k0", "k1", "k2"}));
}

}  // namespace
}  // namespace cset::raft::test
