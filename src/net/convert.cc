#include "net/convert.h"

#include <string>

#include "raft/codec.h"

namespace cset::net {
namespace {

static_assert(static_cast<int>(raft::MessageType::kPreVote) == MSG_PRE_VOTE);
static_assert(static_cast<int>(raft::MessageType::kPreVoteResponse) == MSG_PRE_VOTE_RESPONSE);
static_assert(static_cast<int>(raft::MessageType::kVote) == MSG_VOTE);
static_assert(static_cast<int>(raft::MessageType::kVoteResponse) == MSG_VOTE_RESPONSE);
static_assert(static_cast<int>(raft::MessageType::kAppend) == MSG_APPEND);
static_assert(static_cast<int>(raft::MessageType::kAppendResponse) == MSG_APPEND_RESPONSE);
static_assert(static_cast<int>(raft::MessageType::kHeartbeat) == MSG_HEARTBEAT);
static_assert(static_cast<int>(raft::MessageType::kHeartbeatResponse) == MSG_HEARTBEAT_RESPONSE);
static_assert(static_cast<int>(raft::MessageType::kSnapshot) == MSG_SNAPSHOT);
static_assert(static_cast<int>(raft::MessageType::kSnapshotResponse) == MSG_SNAPSHOT_RESPONSE);
static_assert(static_cast<int>(raft::MessageType::kTimeoutNow) == MSG_TIMEOUT_NOW);
static_assert(static_cast<int>(raft::MessageType::kReadIndex) == MSG_READ_INDEX);
static_assert(static_cast<int>(raft::MessageType::kReadIndexResponse) == MSG_READ_INDEX_RESPONSE);
static_assert(static_cast<int>(raft::EntryType::kNormal) == ENTRY_NORMAL);
static_assert(static_cast<int>(raft::EntryType::kNoop) == ENTRY_NOOP);
static_assert(static_cast<int>(raft::EntryType::kConfig) == ENTRY_CONFIG);

Status corrupt(std::string what) { return Status(Code::kCorrupt, "peer frame: " + what); }

Result<raft::SnapshotMeta> meta_from_proto(const SnapshotMeta& proto) {
  raft::SnapshotMeta meta;
  meta.index = proto.index();
  meta.term = proto.term();
  Result<raft::Configuration> config = raft::decode_configuration(proto.config());
  if (!config.ok()) return corrupt("snapshot configuration: " + config.status().message());
  if (Status s = raft::check_configuration(*config); !s.is_ok()) {
    return corrupt("snapshot configuration: " + s.message());
  }
  meta.config = std::move(config).value();
  return meta;
}

}  // namespace

void to_proto(const raft::Message& m, RaftMessage* out) {
  out->Clear();
  out->set_type(static_cast<MessageType>(m.type));
  out->set_from(m.from);
  out->set_to(m.to);
  out->set_term(m.term);
  out->set_log_term(m.log_term);
  out->set_index(m.index);
  out->set_commit(m.commit);
  out->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const raft::Entry& e : m.entries) {
    Entry* p = out->add_entries();
    p->set_term(e.term);
    p->set_index(e.index);
    p->set_type(static_cast<EntryType>(e.type));
    p->set_data(e.data);
  }
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint);
  out->set_reject_hint_term(m.reject_hint_term);
  out->set_transfer(m.transfer);
  out->set_context(m.context);
  if (!(m.snapshot_meta == raft::SnapshotMeta{})) {
    SnapshotMeta* meta = out->mutable_snapshot_meta();
    meta->set_index(m.snapshot_meta.index);
    meta->set_term(m.snapshot_meta.term);
    meta->set_config(raft::encode_configuration(m.snapshot_meta.config));
  }
  out->set_snapshot_offset(m.snapshot_offset);
  out->set_snapshot_chunk(m.snapshot_chunk);
  out->set_snapshot_done(m.snapshot_done);
}

Result<raft::Message> from_proto(const RaftMessage& p) {
  raft::Message m;
  if (p.type() < MSG_PRE_VOTE || p.type() > MSG_READ_INDEX_RESPONSE) {
    return corrupt("unknown raft message type " + std::to_string(p.type()));
  }
  m.type = static_cast<raft::MessageType>(p.type());
  m.from = p.from();
  m.to = p.to();
  m.term = p.term();
  m.log_term = p.log_term();
  m.index = p.index();
  m.commit = p.commit();
  m.entries.reserve(static_cast<size_t>(p.entries_size()));
  for (const Entry& e : p.entries()) {
    if (e.type() < ENTRY_NORMAL || e.type() > ENTRY_CONFIG) {
      return corrupt("unknown entry type " + std::to_string(e.type()));
    }
    m.entries.push_back(
        raft::Entry{e.term(), e.index(), static_cast<raft::EntryType>(e.type()), e.data()});
  }
  m.reject = p.reject();
  m.reject_hint = p.reject_hint();
  m.reject_hint_term = p.reject_hint_term();
  m.transfer = p.transfer();
  m.context = p.context();
  if (p.has_snapshot_meta()) {
    Result<raft::SnapshotMeta> meta = meta_from_proto(p.snapshot_meta());
    if (!meta.ok()) return meta.status();
    m.snapshot_meta = std::move(meta).value();
  }
  m.snapshot_offset = p.snapshot_offset();
  m.snapshot_chunk = p.snapshot_chunk();
  m.snapshot_done = p.snapshot_done();
  return m;
}

PeerFrame make_raft_frame(const raft::Message& message) {
  PeerFrame frame;
  to_proto(message, frame.mutable_raft());
  return frame;
}

Status check_frame(const PeerFrame& frame) {
  switch (frame.body_case()) {
    case PeerFrame::BODY_NOT_SET:
      return corrupt("no body");
    case PeerFrame::kRaft: {
      Result<raft::Message> m = from_proto(frame.raft());
      return m.ok() ? Status::ok() : m.status();
    }
    default:
      return Status::ok();
  }
}

const char* frame_kind(const PeerFrame& frame) {
  switch (frame.body_case()) {
    case PeerFrame::kHandshake:
      return "handshake";
    case PeerFrame::kHandshakeReply:
      return "handshake_reply";
    case PeerFrame::kRaft:
      return "raft";
    case PeerFrame::kForwardRequest:
      return "forward_request";
    case PeerFrame::kForwardReply:
      return "forward_reply";
    case PeerFrame::kForwardAccepted:
      return "forward_accepted";
    case PeerFrame::kForwardBatch:
      return "forward_batch";
    case PeerFrame::BODY_NOT_SET:
      break;
  }
  return "empty";
}

}  // namespace cset::net
