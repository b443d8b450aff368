#include "set/state_machine.h"

#include <array>
#include <limits>
#include <map>
#include <set>

#include "set/command.h"
#include "set/encoding.h"
#include "set/memory_kv.h"

namespace cset::set {
namespace {

constexpr std::string_view kMetaApplied = "A";
constexpr std::string_view kMetaConfig = "C";
constexpr std::string_view kMetaFormat = "F";
constexpr char kMetaCardinalityTag = 'K';
constexpr char kMetaSessionTag = 'S';
constexpr std::string_view kMetaClock = "SC";
constexpr std::string_view kMetaSessionPrefix = "SS";
constexpr std::string_view kMetaResultPrefix = "SR";
constexpr std::string_view kSnapshotMagic = "CSETSNAP";
constexpr uint8_t kSnapshotVersion = 2;
constexpr uint8_t kSnapshotVersion1 = 1;
constexpr uint8_t kStateFormatVersion1 = 1;
constexpr size_t kSessionRecordBytes = 24;

// Codes of a stored session result (the "SR" records): a persisted format,
// independent of the Code enum's numbering.
enum class StoredCode : uint8_t { kOk = 0, kExists = 1, kTooBig = 2 };
constexpr uint8_t kMaxStoredCode = 2;

std::string cardinality_key(std::string_view key) {
  std::string k(1, kMetaCardinalityTag);
  k.append(key);
  return k;
}

std::string fixed64(uint64_t v) {
  std::string out;
  detail::put_fixed64(out, v);
  return out;
}

Status corrupt(std::string message) { return Status(Code::kCorrupt, std::move(message)); }

bool known_format(std::string_view value) {
  return value.size() == 1 && (static_cast<uint8_t>(value[0]) == kStateFormatVersion1 ||
                               static_cast<uint8_t>(value[0]) == kStateFormatVersion);
}

// ---- session records ----

std::string session_key(uint64_t id) {
  std::string k(kMetaSessionPrefix);
  detail::put_fixed64(k, id);
  return k;
}

std::string result_key(uint64_t id, uint64_t sequence) {
  std::string k(kMetaResultPrefix);
  detail::put_fixed64(k, id);
  detail::put_fixed64(k, sequence);
  return k;
}

std::string encode_session(const SessionInfo& info) {
  std::string v;
  detail::put_fixed64(v, info.last_active_ms);
  detail::put_fixed64(v, info.timeout_ms);
  detail::put_fixed64(v, info.lowest_unacked);
  return v;
}

std::optional<SessionInfo> decode_session(std::string_view v) {
  if (v.size() != kSessionRecordBytes) return std::nullopt;
  return SessionInfo{detail::read_fixed64(v), detail::read_fixed64(v.substr(8)),
                     detail::read_fixed64(v.substr(16))};
}

uint64_t expire_at(const SessionInfo& info) {
  uint64_t at = info.last_active_ms + info.timeout_ms;
  return at < info.last_active_ms ? UINT64_MAX : at;  // saturating
}

// What a retry must match: the command's op, key and arguments.
uint32_t fingerprint(const Command& command) {
  std::string text(1, static_cast<char>(command.op));
  detail::put_bytes(text, command.key);
  for (const std::string& arg : command.args) detail::put_bytes(text, arg);
  return detail::crc32c(text);
}

struct StoredResult {
  StoredCode code = StoredCode::kOk;
  uint64_t count = 0;
  uint32_t fingerprint = 0;
};

std::string encode_result(const StoredResult& r) {
  std::string v(1, static_cast<char>(r.code));
  detail::put_varint(v, r.count);
  detail::put_fixed32(v, r.fingerprint);
  return v;
}

std::optional<StoredResult> decode_result(std::string_view v) {
  detail::Reader in(v);
  uint8_t code = 0;
  StoredResult r;
  std::string_view fp;
  if (!in.get_u8(code) || code > kMaxStoredCode || !in.get_varint(r.count) || !in.get_raw(4, fp) ||
      !in.done()) {
    return std::nullopt;
  }
  r.code = static_cast<StoredCode>(code);
  r.fingerprint = detail::read_fixed32(fp);
  return r;
}

// The result statuses the set commands produce (apply_set_command), and back.
Status status_of(StoredCode code) {
  switch (code) {
    case StoredCode::kExists:
      return Status(Code::kExists, "member already present");
    case StoredCode::kTooBig:
      return Status(Code::kTooBig, "key longer than 2^32-1 bytes");
    case StoredCode::kOk:
      break;
  }
  return Status::ok();
}

StoredCode stored_code_of(const Status& status) {
  if (status.code() == Code::kExists) return StoredCode::kExists;
  if (status.code() == Code::kTooBig) return StoredCode::kTooBig;
  return StoredCode::kOk;
}

// Decodes a u64be meta value. Errors: kCorrupt when it is not 8 bytes.
Result<uint64_t> parse_u64(std::string_view value, std::string_view what) {
  if (value.size() != 8) return corrupt("state machine: malformed " + std::string(what));
  return detail::read_fixed64(value);
}

// Collects up to `count` + 1 keys of [start, end) of one space, stripping
// `strip` leading bytes from each.
Result<ScanPage> scan_page(const KvView& kv, Space space, std::string_view start,
                           std::string_view end, size_t strip, size_t count) {
  if (count == 0) return Status(Code::kInvalid, "scan count must be at least 1");
  ScanPage page;
  Status st = kv.scan(space, start, end, [&](std::string_view k, std::string_view) {
    if (page.items.size() == count) {
      page.next_cursor.emplace(k.substr(strip));
      return false;
    }
    page.items.emplace_back(k.substr(strip));
    return true;
  });
  if (!st.is_ok()) return st;
  return page;
}

}  // namespace

std::string data_prefix(std::string_view key) {
  std::string out;
  out.reserve(4 + key.size());
  detail::put_fixed32(out, static_cast<uint32_t>(key.size()));
  out.append(key);
  return out;
}

std::string data_key(std::string_view key, std::string_view member) {
  std::string out = data_prefix(key);
  out.append(member);
  return out;
}

// Pending writes of one apply() call over the Kv: reads see earlier commands
// of the same batch; to_batch() is the net effect.
class StateMachine::Overlay {
 public:
  explicit Overlay(const Kv& kv) : kv_(kv) {}

  Result<std::optional<std::string>> get(Space s, std::string_view key) const {
    const auto& pending = pending_[static_cast<size_t>(s)];
    auto it = pending.find(key);
    if (it != pending.end()) return it->second;
    return kv_.get(s, key);
  }
  void put(Space s, std::string key, std::string value) {
    pending_[static_cast<size_t>(s)].insert_or_assign(std::move(key), std::move(value));
  }
  void del(Space s, std::string key) {
    pending_[static_cast<size_t>(s)].insert_or_assign(std::move(key), std::nullopt);
  }

  /// Every present key starting with `prefix`, merged with the pending writes.
  Result<std::vector<std::string>> keys_with_prefix(Space s, std::string_view prefix) const {
    return keys_in_range(s, prefix, detail::prefix_successor(prefix));
  }

  /// Every present key in [start, end) (end empty: no bound), merged with
  /// the pending writes.
  Result<std::vector<std::string>> keys_in_range(Space s, std::string_view prefix,
                                                 const std::string& end) const {
    std::map<std::string, bool, std::less<>> keys;  // key -> present
    Status st = kv_.scan(s, prefix, end, [&](std::string_view k, std::string_view) {
      keys.emplace(std::string(k), true);
      return true;
    });
    if (!st.is_ok()) return st;
    const auto& pending = pending_[static_cast<size_t>(s)];
    for (auto it = pending.lower_bound(prefix);
         it != pending.end() && (end.empty() || it->first < end); ++it) {
      keys.insert_or_assign(it->first, it->second.has_value());
    }
    std::vector<std::string> out;
    for (auto& [k, present] : keys) {
      if (present) out.push_back(k);
    }
    return out;
  }

  Result<uint64_t> cardinality(std::string_view key) const {
    auto v = get(Space::kMeta, cardinality_key(key));
    if (!v.ok()) return v.status();
    if (!v->has_value()) return uint64_t{0};
    return parse_u64(**v, "cardinality");
  }
  void set_cardinality(std::string_view key, uint64_t n) {
    if (n == 0) {
      del(Space::kMeta, cardinality_key(key));
    } else {
      put(Space::kMeta, cardinality_key(key), fixed64(n));
    }
  }

  WriteBatch to_batch() const {
    WriteBatch batch;
    for (Space s : {Space::kData, Space::kMeta}) {
      for (const auto& [k, v] : pending_[static_cast<size_t>(s)]) {
        if (v) {
          batch.put(s, k, *v);
        } else {
          batch.del(s, k);
        }
      }
    }
    return batch;
  }

 private:
  const Kv& kv_;
  std::array<std::map<std::string, std::optional<std::string>, std::less<>>, 2> pending_;
};

StateMachine::StateMachine(Kv* kv, SessionLimits limits) : kv_(kv), limits_(limits) {}

Status StateMachine::load() {
  auto format = kv_->get(Space::kMeta, kMetaFormat);
  if (!format.ok()) return format.status();
  if (format->has_value() && !known_format(**format)) {
    return corrupt("state machine: unknown format version in the data");
  }
  auto applied = kv_->get(Space::kMeta, kMetaApplied);
  if (!applied.ok()) return applied.status();
  raft::Index applied_index = 0;
  if (applied->has_value()) {
    auto v = parse_u64(**applied, "applied index");
    if (!v.ok()) return v.status();
    applied_index = *v;
  }
  auto config = kv_->get(Space::kMeta, kMetaConfig);
  if (!config.ok()) return config.status();
  raft::Index config_index = 0;
  std::string config_bytes;
  if (config->has_value()) {
    if ((*config)->size() < 8) return corrupt("state machine: malformed configuration record");
    config_index = detail::read_fixed64(**config);
    config_bytes = (*config)->substr(8);
  }
  applied_index_ = applied_index;
  config_index_ = config_index;
  config_bytes_ = std::move(config_bytes);
  format_version_ = format->has_value() ? static_cast<uint8_t>((**format)[0]) : 0;
  return load_sessions();
}

Status StateMachine::apply_command(Overlay& overlay, const raft::Entry& entry,
                                   ApplyResult& result) {
  auto decoded = decode_command(entry.data);
  if (!decoded.ok()) {
    result.status = decoded.status();
    return Status::ok();  // deterministic: every node fails this entry alike
  }
  const Command& command = *decoded;
  Status st = advance_clock(overlay, command.time_ms);
  if (!st.is_ok()) return st;
  if (command.op == Op::kRegister)
    return register_session(overlay, entry.index, command.timeout_ms);
  if (command.session) return apply_in_session(overlay, command, result);
  return apply_set_command(overlay, command, result);
}

Status StateMachine::apply_set_command(Overlay& overlay, const Command& command,
                                       ApplyResult& result) const {
  const bool has_key = command.op != Op::kDel;
  if (has_key && command.key.size() > std::numeric_limits<uint32_t>::max()) {
    result.status = Status(Code::kTooBig, "key longer than 2^32-1 bytes");
    return Status::ok();
  }
  switch (command.op) {
    case Op::kAdd:
    case Op::kAddStrict:
    case Op::kRem: {
      const bool adding = command.op != Op::kRem;
      auto card = overlay.cardinality(command.key);
      if (!card.ok()) return card.status();
      uint64_t changed = 0;
      for (const std::string& member : command.args) {
        std::string key = data_key(command.key, member);
        auto present = overlay.get(Space::kData, key);
        if (!present.ok()) return present.status();
        if (present->has_value() == adding) continue;  // nothing to change
        if (adding) {
          overlay.put(Space::kData, std::move(key), "");
        } else {
          overlay.del(Space::kData, std::move(key));
        }
        ++changed;
      }
      if (command.op == Op::kAddStrict && changed == 0) {
        result.status = Status(Code::kExists, "member already present");
      }
      overlay.set_cardinality(command.key, adding ? *card + changed : *card - changed);
      result.count = changed;
      return Status::ok();
    }
    case Op::kDel: {
      for (const std::string& key : command.args) {
        if (key.size() > std::numeric_limits<uint32_t>::max()) continue;  // cannot exist
        auto card = overlay.cardinality(key);
        if (!card.ok()) return card.status();
        if (*card == 0) continue;
        auto members = overlay.keys_with_prefix(Space::kData, data_prefix(key));
        if (!members.ok()) return members.status();
        for (std::string& k : *members) overlay.del(Space::kData, std::move(k));
        overlay.set_cardinality(key, 0);
        ++result.count;
      }
      return Status::ok();
    }
    case Op::kRegister:
      break;
  }
  return Status(Code::kInvalid, "unreachable op");
}

Result<std::vector<ApplyResult>> StateMachine::apply(const std::vector<raft::Entry>& entries,
                                                     bool sync) {
  auto results = apply_entries(entries, sync);
  if (!results.ok()) {
    // Nothing reached the Kv: rebuild the clock and the session table, which
    // the failed call may have changed in memory, from it.
    Status reloaded = load();
    if (!reloaded.is_ok()) return reloaded;
  }
  return results;
}

Result<std::vector<ApplyResult>> StateMachine::apply_entries(
    const std::vector<raft::Entry>& entries, bool sync) {
  Overlay overlay(*kv_);
  std::vector<ApplyResult> results;
  raft::Index next = applied_index_;
  std::optional<std::pair<raft::Index, std::string>> config;
  for (const raft::Entry& entry : entries) {
    if (entry.index <= applied_index_ && results.empty()) continue;  // replayed
    if (entry.index != next + 1) {
      return Status(Code::kInvalid, "apply: entry " + std::to_string(entry.index) +
                                        " does not follow " + std::to_string(next));
    }
    next = entry.index;
    ApplyResult& result = results.emplace_back();
    result.index = entry.index;
    result.type = entry.type;
    switch (entry.type) {
      case raft::EntryType::kNoop:
        break;
      case raft::EntryType::kConfig:
        overlay.put(Space::kMeta, std::string(kMetaConfig), fixed64(entry.index) + entry.data);
        config.emplace(entry.index, entry.data);
        break;
      case raft::EntryType::kNormal: {
        Status st = apply_command(overlay, entry, result);
        if (!st.is_ok()) return st;
        break;
      }
      default:
        result.status = corrupt("unknown entry type");
    }
  }
  if (results.empty()) return results;
  overlay.put(Space::kMeta, std::string(kMetaApplied), fixed64(next));
  if (format_version_ != kStateFormatVersion) {
    overlay.put(Space::kMeta, std::string(kMetaFormat),
                std::string(1, static_cast<char>(kStateFormatVersion)));
  }
  Status st = kv_->write(overlay.to_batch(), sync);
  if (!st.is_ok()) return st;
  format_version_ = kStateFormatVersion;
  applied_index_ = next;
  if (config) {
    config_index_ = config->first;
    config_bytes_ = std::move(config->second);
  }
  return results;
}

Result<bool> StateMachine::contains(std::string_view key, std::string_view member) const {
  auto v = kv_->get(Space::kData, data_key(key, member));
  if (!v.ok()) return v.status();
  return v->has_value();
}

Result<uint64_t> StateMachine::size(std::string_view key) const {
  auto v = kv_->get(Space::kMeta, cardinality_key(key));
  if (!v.ok()) return v.status();
  if (!v->has_value()) return uint64_t{0};
  return parse_u64(**v, "cardinality");
}

Result<bool> StateMachine::exists(std::string_view key) const {
  auto n = size(key);
  if (!n.ok()) return n.status();
  return *n > 0;
}

Result<std::vector<std::string>> StateMachine::members(std::string_view key, uint64_t limit) const {
  auto n = size(key);
  if (!n.ok()) return n.status();
  if (*n > limit) {
    return Status(Code::kTooBig, "set has " + std::to_string(*n) + " members, over the reply " +
                                     "limit of " + std::to_string(limit) + "; use SSCAN");
  }
  std::string prefix = data_prefix(key);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(*n));
  Status st = kv_->scan(Space::kData, prefix, detail::prefix_successor(prefix),
                        [&](std::string_view k, std::string_view) {
                          out.emplace_back(k.substr(prefix.size()));
                          return true;
                        });
  if (!st.is_ok()) return st;
  return out;
}

Result<ScanPage> StateMachine::scan_members(std::string_view key, std::string_view cursor,
                                            size_t count) const {
  std::string prefix = data_prefix(key);
  std::string start = prefix + std::string(cursor);
  return scan_page(*kv_, Space::kData, start, detail::prefix_successor(prefix), prefix.size(),
                   count);
}

Result<ScanPage> StateMachine::scan_keys(std::string_view cursor, size_t count) const {
  std::string prefix(1, kMetaCardinalityTag);
  return scan_page(*kv_, Space::kMeta, prefix + std::string(cursor),
                   detail::prefix_successor(prefix), 1, count);
}

// ---- Sessions (Raft dissertation §6.3) ----

Status StateMachine::load_sessions() {
  sessions_.clear();
  by_activity_.clear();
  by_expiry_.clear();
  clock_ms_ = 0;
  auto clock = kv_->get(Space::kMeta, kMetaClock);
  if (!clock.ok()) return clock.status();
  if (clock->has_value()) {
    auto v = parse_u64(**clock, "log clock");
    if (!v.ok()) return v.status();
    clock_ms_ = *v;
  }
  Status bad;
  Status st =
      kv_->scan(Space::kMeta, kMetaSessionPrefix, detail::prefix_successor(kMetaSessionPrefix),
                [&](std::string_view k, std::string_view v) {
                  auto info = decode_session(v);
                  if (k.size() != kMetaSessionPrefix.size() + 8 || !info) {
                    bad = corrupt("state machine: malformed session record");
                    return false;
                  }
                  uint64_t id = detail::read_fixed64(k.substr(kMetaSessionPrefix.size()));
                  sessions_.emplace(id, *info);
                  by_activity_.emplace(info->last_active_ms, id);
                  by_expiry_.emplace(expire_at(*info), id);
                  return true;
                });
  if (!st.is_ok()) return st;
  return bad;
}

std::optional<SessionInfo> StateMachine::session(uint64_t id) const {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second;
}

void StateMachine::put_session(Overlay& overlay, uint64_t id, const SessionInfo& info) {
  auto it = sessions_.find(id);
  if (it != sessions_.end()) {
    by_activity_.erase({it->second.last_active_ms, id});
    by_expiry_.erase({expire_at(it->second), id});
    it->second = info;
  } else {
    sessions_.emplace(id, info);
  }
  by_activity_.emplace(info.last_active_ms, id);
  by_expiry_.emplace(expire_at(info), id);
  overlay.put(Space::kMeta, session_key(id), encode_session(info));
}

Status StateMachine::drop_session(Overlay& overlay, uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return Status::ok();
  auto results = overlay.keys_with_prefix(Space::kMeta, result_key(id, 0).substr(0, 10));
  if (!results.ok()) return results.status();
  for (std::string& k : *results) overlay.del(Space::kMeta, std::move(k));
  overlay.del(Space::kMeta, session_key(id));
  by_activity_.erase({it->second.last_active_ms, id});
  by_expiry_.erase({expire_at(it->second), id});
  sessions_.erase(it);
  return Status::ok();
}

// The clock moves to max(clock, time_ms) — never back — and every session
// it passes expires.
Status StateMachine::advance_clock(Overlay& overlay, uint64_t time_ms) {
  if (time_ms <= clock_ms_) return Status::ok();
  clock_ms_ = time_ms;
  overlay.put(Space::kMeta, std::string(kMetaClock), fixed64(clock_ms_));
  while (!by_expiry_.empty() && by_expiry_.begin()->first < clock_ms_) {
    Status st = drop_session(overlay, by_expiry_.begin()->second);
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

Status StateMachine::register_session(Overlay& overlay, raft::Index index, uint64_t timeout_ms) {
  // Over the cap: the least recently active sessions go first (the lowest
  // id among equals: by_activity_ orders by (last_active, id)).
  while (!sessions_.empty() && sessions_.size() >= limits_.max_sessions) {
    Status st = drop_session(overlay, by_activity_.begin()->second);
    if (!st.is_ok()) return st;
  }
  SessionInfo info;
  info.last_active_ms = clock_ms_;
  info.timeout_ms = timeout_ms == 0 || timeout_ms > limits_.default_timeout_ms
                        ? limits_.default_timeout_ms
                        : timeout_ms;
  put_session(overlay, index, info);
  return Status::ok();
}

Status StateMachine::apply_in_session(Overlay& overlay, const Command& command,
                                      ApplyResult& result) {
  const SessionHeader& header = *command.session;
  auto it = sessions_.find(header.session_id);
  if (it == sessions_.end()) {
    result.status =
        Status(Code::kSessionExpired, "client session " + std::to_string(header.session_id) +
                                          " is unknown or expired; nothing changed");
    return Status::ok();
  }
  SessionInfo info = it->second;
  info.last_active_ms = clock_ms_;
  if (header.lowest_unacked > info.lowest_unacked) {
    // The client has seen every reply below lowest_unacked: drop them.
    auto acked =
        overlay.keys_in_range(Space::kMeta, result_key(header.session_id, info.lowest_unacked),
                              result_key(header.session_id, header.lowest_unacked));
    if (!acked.ok()) return acked.status();
    for (std::string& k : *acked) overlay.del(Space::kMeta, std::move(k));
    info.lowest_unacked = header.lowest_unacked;
  }
  put_session(overlay, header.session_id, info);
  const std::string key = result_key(header.session_id, header.sequence);
  auto stored = overlay.get(Space::kMeta, key);
  if (!stored.ok()) return stored.status();
  const uint32_t print = fingerprint(command);
  if (stored->has_value()) {
    auto r = decode_result(**stored);
    if (!r) return corrupt("state machine: malformed session result");
    if (r->fingerprint != print) {
      result.status = Status(Code::kErr, "sequence " + std::to_string(header.sequence) +
                                             " of session " + std::to_string(header.session_id) +
                                             " was used by another request; nothing changed");
      return Status::ok();
    }
    result.status = status_of(r->code);
    result.count = r->count;
    result.duplicate = true;
    return Status::ok();
  }
  if (header.sequence < info.lowest_unacked) {
    result.status = Status(Code::kErr, "sequence " + std::to_string(header.sequence) +
                                           " of session " + std::to_string(header.session_id) +
                                           " was already acknowledged; nothing changed");
    return Status::ok();
  }
  if (header.sequence - info.lowest_unacked >= limits_.max_unacked) {
    result.status =
        Status(Code::kErr, "too many unacknowledged requests in session " +
                               std::to_string(header.session_id) + " (at most " +
                               std::to_string(limits_.max_unacked) + "); nothing changed");
    return Status::ok();
  }
  Status st = apply_set_command(overlay, command, result);
  if (!st.is_ok()) return st;
  overlay.put(Space::kMeta, key,
              encode_result(StoredResult{stored_code_of(result.status), result.count, print}));
  return Status::ok();
}

// ---- Snapshots ----

Result<std::string> StateMachine::encode_snapshot() const {
  std::unique_ptr<KvView> view = kv_->view();
  std::string out(kSnapshotMagic);
  out.push_back(static_cast<char>(kSnapshotVersion));
  for (Space s : {Space::kData, Space::kMeta}) {
    std::string body;
    uint64_t count = 0;
    Status st = view->scan(s, "", "", [&](std::string_view k, std::string_view v) {
      detail::put_bytes(body, k);
      detail::put_bytes(body, v);
      ++count;
      return true;
    });
    if (!st.is_ok()) return st;
    out.push_back(static_cast<char>(s));
    detail::put_varint(out, count);
    out.append(body);
  }
  detail::put_fixed32(out, detail::crc32c(out));
  return out;
}

namespace {

// Parses the framing of a snapshot image into `image` (one batch per image).
Status parse_snapshot(std::string_view data, WriteBatch& image) {
  const size_t header = kSnapshotMagic.size() + 1;
  if (data.size() < header + 4) return corrupt("snapshot: too short");
  std::string_view body = data.substr(0, data.size() - 4);
  if (detail::read_fixed32(data.substr(data.size() - 4)) != detail::crc32c(body)) {
    return corrupt("snapshot: checksum mismatch");
  }
  if (body.substr(0, kSnapshotMagic.size()) != kSnapshotMagic)
    return corrupt("snapshot: bad magic");
  const auto version = static_cast<uint8_t>(body[kSnapshotMagic.size()]);
  if (version != kSnapshotVersion && version != kSnapshotVersion1) {
    return corrupt("snapshot: unknown version");
  }
  detail::Reader in(body.substr(header));
  for (Space s : {Space::kData, Space::kMeta}) {
    uint8_t space = 0;
    uint64_t count = 0;
    if (!in.get_u8(space) || space != static_cast<uint8_t>(s))
      return corrupt("snapshot: bad space");
    if (!in.get_varint(count) || count > in.remaining() / 2) return corrupt("snapshot: bad count");
    std::string_view previous;
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view k;
      std::string_view v;
      if (!in.get_bytes(k) || !in.get_bytes(v)) return corrupt("snapshot: truncated entry");
      if (i > 0 && k <= previous) return corrupt("snapshot: keys out of order");
      previous = k;
      image.put(s, std::string(k), std::string(v));
    }
  }
  if (!in.done()) return corrupt("snapshot: trailing bytes");
  return Status::ok();
}

// Checks one "S" metadata record of an image: the clock, a session, or a
// stored result (whose session id goes to `result_owners`).
Status check_session_key(std::string_view k, std::string_view v, std::set<uint64_t>& sessions,
                         std::set<uint64_t>& result_owners) {
  if (k == kMetaClock) {
    return v.size() == 8 ? Status::ok() : corrupt("snapshot: malformed log clock");
  }
  if (k.substr(0, 2) == kMetaSessionPrefix) {
    if (k.size() != 10 || !decode_session(v)) return corrupt("snapshot: malformed session");
    sessions.insert(detail::read_fixed64(k.substr(2)));
    return Status::ok();
  }
  if (k.substr(0, 2) == kMetaResultPrefix) {
    if (k.size() != 18 || !decode_result(v)) return corrupt("snapshot: malformed session result");
    result_owners.insert(detail::read_fixed64(k.substr(2)));
    return Status::ok();
  }
  return corrupt("snapshot: unknown session metadata key");
}

// Checks the key layout of a parsed image, and returns its applied index.
Result<raft::Index> check_image(const WriteBatch& image) {
  std::map<std::string, uint64_t, std::less<>> counted;   // key -> members in kData
  std::map<std::string, uint64_t, std::less<>> recorded;  // key -> "K" counter
  std::set<uint64_t> sessions;                            // "SS" ids
  std::set<uint64_t> result_owners;                       // session ids of "SR" records
  raft::Index applied = 0;
  for (const WriteOp& op : image.ops) {
    std::string_view k = op.key;
    if (op.space == Space::kData) {
      if (k.size() < 4 || detail::read_fixed32(k) > k.size() - 4 || !op.value.empty()) {
        return corrupt("snapshot: malformed set entry");
      }
      ++counted[std::string(k.substr(4, detail::read_fixed32(k)))];
    } else if (k == kMetaApplied) {
      auto v = parse_u64(op.value, "applied index");
      if (!v.ok()) return v.status();
      applied = *v;
    } else if (k == kMetaFormat) {
      if (!known_format(op.value)) return corrupt("snapshot: unknown state format version");
    } else if (k == kMetaConfig) {
      if (op.value.size() < 8) return corrupt("snapshot: malformed configuration record");
    } else if (!k.empty() && k[0] == kMetaCardinalityTag) {
      auto v = parse_u64(op.value, "cardinality");
      if (!v.ok()) return v.status();
      recorded[std::string(k.substr(1))] = *v;
    } else if (!k.empty() && k[0] == kMetaSessionTag) {
      Status st = check_session_key(k, op.value, sessions, result_owners);
      if (!st.is_ok()) return st;
    } else {
      return corrupt("snapshot: unknown metadata key");
    }
  }
  if (counted != recorded) return corrupt("snapshot: set sizes do not match their members");
  for (uint64_t id : result_owners) {
    if (!sessions.count(id)) return corrupt("snapshot: a session result without its session");
  }
  return applied;
}

}  // namespace

Status StateMachine::restore_snapshot(std::string_view data, raft::Index index) {
  if (index < applied_index_) {
    return Status(Code::kInvalid, "snapshot at " + std::to_string(index) +
                                      " is behind the applied index " +
                                      std::to_string(applied_index_));
  }
  WriteBatch image;
  Status st = parse_snapshot(data, image);
  if (!st.is_ok()) return st;
  auto applied = check_image(image);
  if (!applied.ok()) return applied.status();
  if (*applied != index) {
    return corrupt("snapshot: image covers index " + std::to_string(*applied) +
                   ", its metadata says " + std::to_string(index));
  }
  MemoryKv staged;
  st = staged.write(image, false);
  if (!st.is_ok()) return st;
  image.ops.clear();
  st = kv_->replace_all(staged);
  if (!st.is_ok()) return st;
  return load();
}

}  // namespace cset::set
