#include "raft/codec.h"

#include <algorithm>
#include <utility>

namespace cset::raft {

namespace {

Status corrupt(const std::string& what) { return Status(Code::kCorrupt, "raft codec: " + what); }

Status invalid(const std::string& what) { return Status(Code::kInvalid, "configuration: " + what); }

void put_bytes(std::string* out, std::string_view bytes) {
  put_varint(out, bytes.size());
  out->append(bytes);
}

void put_ids(std::string* out, const std::vector<NodeId>& ids) {
  put_varint(out, ids.size());
  for (NodeId id : ids) put_varint(out, id);
}

// Reads fields off the front of the input; every getter returns false on
// malformed or truncated input and never reads past the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool done() const { return in_.empty(); }

  bool byte(uint8_t* out) {
    if (in_.empty()) return false;
    *out = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return true;
  }

  bool varint(uint64_t* out) { return get_varint(&in_, out); }

  bool bytes(std::string_view* out) {
    uint64_t size = 0;
    if (!varint(&size) || size > in_.size()) return false;
    *out = in_.substr(0, size);
    in_.remove_prefix(size);
    return true;
  }

  bool string(std::string* out) {
    std::string_view view;
    if (!bytes(&view)) return false;
    out->assign(view);
    return true;
  }

  // A count of items each at least `min_item_bytes` long: bounded by the
  // bytes left, so a corrupt count cannot make us allocate.
  bool count(uint64_t* out, size_t min_item_bytes) {
    return varint(out) && *out <= in_.size() / min_item_bytes;
  }

  bool ids(std::vector<NodeId>* out) {
    uint64_t n = 0;
    if (!count(&n, 1)) return false;
    out->clear();
    out->reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t id = 0;
      if (!varint(&id)) return false;
      out->push_back(id);
    }
    return true;
  }

  bool version() {
    uint8_t v = 0;
    return byte(&v) && v == kCodecVersion;
  }

 private:
  std::string_view in_;
};

bool read_members(Reader* r, std::vector<Member>* out) {
  uint64_t n = 0;
  if (!r->count(&n, 2)) return false;  // id and context length: >= 2 bytes
  out->clear();
  out->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Member m;
    if (!r->varint(&m.id) || !r->string(&m.context)) return false;
    out->push_back(std::move(m));
  }
  return true;
}

bool read_configuration(Reader* r, Configuration* c) {
  uint8_t mode = 0;
  if (!r->version() || !r->byte(&mode) || mode > static_cast<uint8_t>(QuorumMode::kMajority)) {
    return false;
  }
  c->mode = static_cast<QuorumMode>(mode);
  return r->varint(&c->tiebreaker) && r->ids(&c->voters) && r->varint(&c->outgoing_tiebreaker) &&
         r->ids(&c->outgoing_voters) && r->ids(&c->learners) && read_members(r, &c->members) &&
         r->ids(&c->removed) && r->done();
}

bool strictly_sorted(const std::vector<NodeId>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == kNoNode || (i > 0 && ids[i - 1] >= ids[i])) return false;
  }
  return true;
}

bool holds(const std::vector<NodeId>& sorted_ids, NodeId id) {
  return std::binary_search(sorted_ids.begin(), sorted_ids.end(), id);
}

Status check_half(const std::vector<NodeId>& voters, NodeId tiebreaker, const char* name) {
  if (!strictly_sorted(voters)) {
    return invalid(std::string(name) + " not sorted, unique and non-zero");
  }
  if (voters.empty() ? tiebreaker != kNoNode : !holds(voters, tiebreaker)) {
    return invalid(std::string(name) + " tie-breaker " + std::to_string(tiebreaker) +
                   " is not one of its voters");
  }
  return Status::ok();
}

}  // namespace

void put_varint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

bool get_varint(std::string_view* in, uint64_t* value) {
  uint64_t result = 0;
  for (int i = 0; i < 10; ++i) {
    if (in->empty()) return false;
    const auto b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (i == 9 && b > 1) return false;  // bits beyond 64, or an 11th byte
    result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 0) return false;  // overlong: a final zero group
      *value = result;
      return true;
    }
  }
  return false;
}

std::string encode_configuration(const Configuration& config) {
  std::string out;
  out.push_back(static_cast<char>(kCodecVersion));
  out.push_back(static_cast<char>(config.mode));
  put_varint(&out, config.tiebreaker);
  put_ids(&out, config.voters);
  put_varint(&out, config.outgoing_tiebreaker);
  put_ids(&out, config.outgoing_voters);
  put_ids(&out, config.learners);
  put_varint(&out, config.members.size());
  for (const Member& m : config.members) {
    put_varint(&out, m.id);
    put_bytes(&out, m.context);
  }
  put_ids(&out, config.removed);
  return out;
}

Result<Configuration> decode_configuration(std::string_view bytes) {
  Reader r(bytes);
  Configuration config;
  if (!read_configuration(&r, &config)) return corrupt("malformed configuration");
  return config;
}

std::string encode_entry(const Entry& entry) {
  std::string out;
  out.reserve(entry.data.size() + 24);
  out.push_back(static_cast<char>(kCodecVersion));
  put_varint(&out, entry.term);
  put_varint(&out, entry.index);
  out.push_back(static_cast<char>(entry.type));
  put_bytes(&out, entry.data);
  return out;
}

Result<Entry> decode_entry(std::string_view bytes) {
  Reader r(bytes);
  Entry entry;
  uint8_t type = 0;
  if (!r.version() || !r.varint(&entry.term) || !r.varint(&entry.index) || !r.byte(&type) ||
      type > static_cast<uint8_t>(EntryType::kConfig) || !r.string(&entry.data) || !r.done()) {
    return corrupt("malformed entry");
  }
  entry.type = static_cast<EntryType>(type);
  return entry;
}

std::string encode_hard_state(const HardState& hard_state) {
  std::string out;
  out.push_back(static_cast<char>(kCodecVersion));
  put_varint(&out, hard_state.term);
  put_varint(&out, hard_state.vote);
  put_varint(&out, hard_state.commit);
  return out;
}

Result<HardState> decode_hard_state(std::string_view bytes) {
  Reader r(bytes);
  HardState hs;
  if (!r.version() || !r.varint(&hs.term) || !r.varint(&hs.vote) || !r.varint(&hs.commit) ||
      !r.done()) {
    return corrupt("malformed hard state");
  }
  return hs;
}

std::string encode_snapshot_meta(const SnapshotMeta& meta) {
  std::string out;
  out.push_back(static_cast<char>(kCodecVersion));
  put_varint(&out, meta.index);
  put_varint(&out, meta.term);
  put_bytes(&out, encode_configuration(meta.config));
  return out;
}

Result<SnapshotMeta> decode_snapshot_meta(std::string_view bytes) {
  Reader r(bytes);
  SnapshotMeta meta;
  std::string_view config_bytes;
  if (!r.version() || !r.varint(&meta.index) || !r.varint(&meta.term) || !r.bytes(&config_bytes) ||
      !r.done()) {
    return corrupt("malformed snapshot metadata");
  }
  Reader config_reader(config_bytes);
  if (!read_configuration(&config_reader, &meta.config)) {
    return corrupt("malformed configuration in snapshot metadata");
  }
  return meta;
}

Status check_configuration(const Configuration& c) {
  if (Status s = check_half(c.voters, c.tiebreaker, "voters"); !s.is_ok()) return s;
  if (Status s = check_half(c.outgoing_voters, c.outgoing_tiebreaker, "outgoing voters");
      !s.is_ok()) {
    return s;
  }
  if (!strictly_sorted(c.learners)) return invalid("learners not sorted, unique and non-zero");
  if (!strictly_sorted(c.removed)) return invalid("removed not sorted, unique and non-zero");
  for (NodeId id : c.learners) {
    if (holds(c.voters, id))
      return invalid("node " + std::to_string(id) + " is both a learner and a voter");
  }
  for (NodeId id : c.removed) {
    if (holds(c.voters, id) || holds(c.learners, id)) {
      return invalid("removed node " + std::to_string(id) + " is still a member");
    }
  }
  const std::vector<NodeId> nodes = c.all_nodes();
  std::vector<NodeId> member_ids;
  member_ids.reserve(c.members.size());
  for (const Member& m : c.members) member_ids.push_back(m.id);
  if (member_ids != nodes) {
    return invalid("members do not match the voters and learners (or are not sorted)");
  }
  return Status::ok();
}

}  // namespace cset::raft
