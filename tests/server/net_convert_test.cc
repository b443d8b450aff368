// raft::Message <-> RaftMessage: every field survives a round trip through
// protobuf bytes, and hostile protos answer kCorrupt.
#include <gtest/gtest.h>

#include <string>

#include "net/convert.h"
#include "raft/codec.h"

namespace cset::net {
namespace {

raft::Configuration joint_configuration() {
  raft::Configuration c;
  c.mode = raft::QuorumMode::kMajority;
  c.voters = {1, 2, 4};
  c.tiebreaker = 1;
  c.outgoing_voters = {1, 2, 3};
  c.outgoing_tiebreaker = 2;
  c.learners = {7};
  c.members = {{1, "a"}, {2, std::string("b\0b", 3)}, {3, "c"}, {4, "d"}, {7, "learner"}};
  c.removed = {5, 6};
  return c;
}

raft::Message full_message(raft::MessageType type) {
  raft::Message m;
  m.type = type;
  m.from = 0x7FFFFFFFFFFFFFFFull;
  m.to = 2;
  m.term = 0xFFFFFFFFFFFFFFFFull;
  m.log_term = 41;
  m.index = 1000;
  m.commit = 999;
  m.entries = {
      raft::Entry{40, 1001, raft::EntryType::kNormal, std::string("\0data\r\n", 7)},
      raft::Entry{41, 1002, raft::EntryType::kNoop, ""},
      raft::Entry{41, 1003, raft::EntryType::kConfig,
                  raft::encode_configuration(joint_configuration())},
  };
  m.reject = true;
  m.reject_hint = 17;
  m.reject_hint_term = 3;
  m.transfer = true;
  m.context = std::string("ctx\0\xff", 5);
  m.snapshot_meta.index = 900;
  m.snapshot_meta.term = 39;
  m.snapshot_meta.config = joint_configuration();
  m.snapshot_offset = size_t{3} << 20;
  m.snapshot_chunk = std::string(4096, '\x5a');
  m.snapshot_done = true;
  return m;
}

void expect_same(const raft::Message& a, const raft::Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.log_term, b.log_term);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.commit, b.commit);
  EXPECT_EQ(a.entries, b.entries);
  EXPECT_EQ(a.reject, b.reject);
  EXPECT_EQ(a.reject_hint, b.reject_hint);
  EXPECT_EQ(a.reject_hint_term, b.reject_hint_term);
  EXPECT_EQ(a.transfer, b.transfer);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.snapshot_meta, b.snapshot_meta);
  EXPECT_EQ(a.snapshot_offset, b.snapshot_offset);
  EXPECT_EQ(a.snapshot_chunk, b.snapshot_chunk);
  EXPECT_EQ(a.snapshot_done, b.snapshot_done);
}

// Through the wire bytes, not just the in-memory proto.
raft::Message round_trip(const raft::Message& m) {
  const std::string bytes = make_raft_frame(m).SerializeAsString();
  PeerFrame parsed;
  EXPECT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(parsed.has_raft());
  Result<raft::Message> back = from_proto(parsed.raft());
  EXPECT_TRUE(back.ok()) << back.status().to_string();
  return back.ok() ? *back : raft::Message{};
}

TEST(NetConvert, EveryFieldOfEveryMessageTypeRoundTrips) {
  for (int t = 0; t <= static_cast<int>(raft::MessageType::kReadIndexResponse); ++t) {
    SCOPED_TRACE(t);
    const raft::Message m = full_message(static_cast<raft::MessageType>(t));
    expect_same(m, round_trip(m));
  }
}

TEST(NetConvert, DefaultMessageRoundTripsWithoutSnapshotMeta) {
  raft::Message m;
  m.type = raft::MessageType::kHeartbeat;
  m.from = 1;
  m.to = 2;
  RaftMessage proto;
  to_proto(m, &proto);
  EXPECT_FALSE(proto.has_snapshot_meta());
  expect_same(m, round_trip(m));
}

TEST(NetConvert, SnapshotMetaWithOnlyAConfigIsKept) {
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.snapshot_meta.config = joint_configuration();  // index and term 0
  RaftMessage proto;
  to_proto(m, &proto);
  EXPECT_TRUE(proto.has_snapshot_meta());
  expect_same(m, round_trip(m));
}

TEST(NetConvert, ToProtoClearsTheTarget) {
  RaftMessage proto;
  to_proto(full_message(raft::MessageType::kAppend), &proto);
  raft::Message small;
  small.from = 3;
  to_proto(small, &proto);
  EXPECT_EQ(proto.entries_size(), 0);
  EXPECT_FALSE(proto.has_snapshot_meta());
  EXPECT_TRUE(proto.snapshot_chunk().empty());
}

TEST(NetConvert, ProtoHasAFieldForEveryMessageField) {
  // raft::Message has 17 fields (types.h); a new one must get a wire field.
  EXPECT_EQ(RaftMessage::descriptor()->field_count(), 17);
}

TEST(NetConvert, UnknownMessageTypeIsCorrupt) {
  RaftMessage proto;
  to_proto(full_message(raft::MessageType::kAppend), &proto);
  proto.set_type(static_cast<MessageType>(13));
  Result<raft::Message> m = from_proto(proto);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.code(), Code::kCorrupt);
  proto.set_type(static_cast<MessageType>(-1));
  EXPECT_EQ(from_proto(proto).code(), Code::kCorrupt);
}

TEST(NetConvert, UnknownEntryTypeIsCorrupt) {
  RaftMessage proto;
  to_proto(full_message(raft::MessageType::kAppend), &proto);
  proto.mutable_entries(1)->set_type(static_cast<EntryType>(3));
  EXPECT_EQ(from_proto(proto).code(), Code::kCorrupt);
}

TEST(NetConvert, UndecodableSnapshotConfigurationIsCorrupt) {
  RaftMessage proto;
  to_proto(full_message(raft::MessageType::kSnapshot), &proto);
  proto.mutable_snapshot_meta()->set_config("\x01garbage");
  EXPECT_EQ(from_proto(proto).code(), Code::kCorrupt);
  proto.mutable_snapshot_meta()->set_config("");
  EXPECT_EQ(from_proto(proto).code(), Code::kCorrupt);
}

TEST(NetConvert, SnapshotConfigurationBreakingInvariantsIsCorrupt) {
  raft::Configuration bad = joint_configuration();
  bad.voters = {4, 2, 1};  // unsorted
  RaftMessage proto;
  to_proto(full_message(raft::MessageType::kSnapshot), &proto);
  proto.mutable_snapshot_meta()->set_config(raft::encode_configuration(bad));
  Result<raft::Message> m = from_proto(proto);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.code(), Code::kCorrupt);
  EXPECT_NE(m.status().message().find("snapshot configuration"), std::string::npos);
}

TEST(NetConvert, CheckFrame) {
  EXPECT_EQ(check_frame(PeerFrame()).code(), Code::kCorrupt);
  EXPECT_TRUE(check_frame(make_raft_frame(full_message(raft::MessageType::kVote))).is_ok());
  PeerFrame bad = make_raft_frame(full_message(raft::MessageType::kVote));
  bad.mutable_raft()->set_type(static_cast<MessageType>(99));
  EXPECT_EQ(check_frame(bad).code(), Code::kCorrupt);
  PeerFrame fwd;
  fwd.mutable_forward_request()->set_request_id(1);
  EXPECT_TRUE(check_frame(fwd).is_ok());
  EXPECT_STREQ(frame_kind(fwd), "forward_request");
  EXPECT_STREQ(frame_kind(PeerFrame()), "empty");
}

}  // namespace
}  // namespace cset::net
