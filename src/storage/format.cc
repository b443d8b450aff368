#include "storage/format.h"

#include "storage/crc32c.h"

namespace cset::storage {

void put_u32be(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void put_u64be(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint32_t get_u32be(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint64_t get_u64be(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string log_key(raft::Index index) {
  std::string key;
  key.reserve(8);
  put_u64be(&key, index);
  return key;
}

Result<raft::Index> parse_log_key(std::string_view key) {
  if (key.size() != 8) {
    return Status(Code::kCorrupt, "log key of " + std::to_string(key.size()) + " bytes, not 8");
  }
  return get_u64be(key.data());
}

namespace {

constexpr size_t kLogHeaderBytes = 4 + 8 + 1;  // crc, term, type

uint32_t entry_crc(raft::Index index, std::string_view term_type_data) {
  std::string index_bytes;
  put_u64be(&index_bytes, index);
  uint32_t crc = crc32c_extend(0, index_bytes.data(), index_bytes.size());
  return crc32c_extend(crc, term_type_data.data(), term_type_data.size());
}

}  // namespace

std::string encode_log_value(const raft::Entry& entry) {
  std::string value;
  value.reserve(kLogHeaderBytes + entry.data.size());
  value.resize(4);
  put_u64be(&value, entry.term);
  value.push_back(static_cast<char>(entry.type));
  value.append(entry.data);
  const uint32_t crc = entry_crc(entry.index, std::string_view(value).substr(4));
  std::string crc_bytes;
  put_u32be(&crc_bytes, crc);
  value.replace(0, 4, crc_bytes);
  return value;
}

Result<raft::Entry> decode_log_value(raft::Index index, std::string_view value) {
  if (value.size() < kLogHeaderBytes) {
    return Status(Code::kCorrupt, "log entry " + std::to_string(index) + ": value of " +
                                      std::to_string(value.size()) + " bytes is too short");
  }
  const uint32_t stored = get_u32be(value.data());
  if (entry_crc(index, value.substr(4)) != stored) {
    return Status(Code::kCorrupt, "log entry " + std::to_string(index) + ": checksum mismatch");
  }
  const auto type = static_cast<uint8_t>(value[12]);
  if (type > static_cast<uint8_t>(raft::EntryType::kConfig)) {
    return Status(Code::kCorrupt,
                  "log entry " + std::to_string(index) + ": unknown type " + std::to_string(type));
  }
  raft::Entry e;
  e.index = index;
  e.term = get_u64be(value.data() + 4);
  e.type = static_cast<raft::EntryType>(type);
  e.data.assign(value.substr(kLogHeaderBytes));
  return e;
}

std::string frame(std::string_view payload) {
  std::string out;
  out.reserve(4 + payload.size());
  put_u32be(&out, crc32c(payload));
  out.append(payload);
  return out;
}

Result<std::string_view> unframe(std::string_view framed, std::string_view what) {
  if (framed.size() < 4 || get_u32be(framed.data()) != crc32c(framed.substr(4))) {
    return Status(Code::kCorrupt, std::string(what) + ": checksum mismatch");
  }
  return framed.substr(4);
}

}  // namespace cset::storage
