#include "storage/wal_scan.h"

#include <algorithm>
#include <cctype>

#include "storage/crc32c.h"

namespace cset::storage {

namespace {

constexpr uint64_t kBlockSize = 32768;
constexpr uint64_t kHeaderSize = 7;
enum RecordType : uint8_t { kZero = 0, kFull = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

uint32_t le32(const std::string& b, uint64_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}

struct Header {
  uint32_t crc;
  uint32_t length;
  uint8_t type;
};

Header header_at(const std::string& b, uint64_t at) {
  return Header{le32(b, at),
                static_cast<uint32_t>(static_cast<uint8_t>(b[at + 4])) |
                    static_cast<uint32_t>(static_cast<uint8_t>(b[at + 5])) << 8,
                static_cast<uint8_t>(b[at + 6])};
}

bool crc_ok(const std::string& b, uint64_t at, const Header& h) {
  uint32_t crc = crc32c_extend(0, &h.type, 1);
  crc = crc32c_extend(crc, b.data() + at + kHeaderSize, h.length);
  return crc32c_mask(crc) == h.crc;
}

// Whether a complete record with a valid checksum starts anywhere after `from`.
bool valid_record_after(const std::string& b, uint64_t from) {
  for (uint64_t at = from; at + kHeaderSize <= b.size(); ++at) {
    const uint64_t left_in_block = kBlockSize - at % kBlockSize;
    if (left_in_block < kHeaderSize) continue;
    Header h = header_at(b, at);
    if (h.type < kFull || h.type > kLast || h.length == 0) continue;
    if (kHeaderSize + h.length > left_in_block || at + kHeaderSize + h.length > b.size()) continue;
    if (crc_ok(b, at, h)) return true;
  }
  return false;
}

}  // namespace

WalScanResult scan_wal_bytes(const std::string& file, const std::string& b) {
  WalScanResult r;
  r.file = file;
  r.size = b.size();
  auto corrupt = [&](uint64_t at, std::string what) {
    r.outcome = WalScanResult::Outcome::kCorrupt;
    r.offset = at;
    r.detail = std::move(what);
    return r;
  };
  // The physical record at `bad` is incomplete; the logical record it
  // belongs to starts at `start`.
  auto torn = [&](uint64_t start, uint64_t bad) {
    if (valid_record_after(b, bad + 1)) {
      return corrupt(bad, "a record that cannot be complete is followed by valid records");
    }
    r.outcome = WalScanResult::Outcome::kTornTail;
    r.offset = start;
    return r;
  };
  bool in_fragment = false;
  uint64_t fragment_start = 0;
  uint64_t pos = 0;
  while (pos < b.size()) {
    const uint64_t left_in_block = kBlockSize - pos % kBlockSize;
    if (left_in_block < kHeaderSize) {  // block trailer: zero padding
      pos += std::min<uint64_t>(left_in_block, b.size() - pos);
      continue;
    }
    if (b.size() - pos < kHeaderSize) return torn(in_fragment ? fragment_start : pos, pos);
    const Header h = header_at(b, pos);
    if (h.type == kZero && h.length == 0) {
      // RocksDB skips the rest of the block (preallocated, never written).
      if (in_fragment) return corrupt(pos, "zeroed header inside a fragmented record");
      pos += left_in_block;
      continue;
    }
    // A record running past the end of the file is a torn write (checked
    // first, as RocksDB does, so random bytes appended by a crash are a tail).
    if (pos + kHeaderSize + h.length > b.size()) {
      return torn(in_fragment ? fragment_start : pos, pos);
    }
    if (kHeaderSize + h.length > left_in_block) {
      return corrupt(pos, "record length " + std::to_string(h.length) + " crosses a block end");
    }
    if (h.type < kFull || h.type > kLast) {
      return corrupt(pos, "unknown record type " + std::to_string(h.type));
    }
    if (!crc_ok(b, pos, h)) return corrupt(pos, "checksum mismatch");
    switch (h.type) {
      case kFull:
        if (in_fragment) return corrupt(pos, "full record inside a fragmented record");
        ++r.records;
        break;
      case kFirst:
        if (in_fragment) return corrupt(pos, "first fragment inside a fragmented record");
        in_fragment = true;
        fragment_start = pos;
        break;
      case kMiddle:
        if (!in_fragment) return corrupt(pos, "middle fragment without a first one");
        break;
      case kLast:
        if (!in_fragment) return corrupt(pos, "last fragment without a first one");
        in_fragment = false;
        ++r.records;
        break;
      default:
        break;
    }
    pos += kHeaderSize + h.length;
  }
  if (in_fragment) return torn(fragment_start, b.size());
  return r;
}

Result<std::vector<WalScanResult>> scan_wal_files(rocksdb::FileSystem* fs, const std::string& dir) {
  std::vector<std::string> children;
  rocksdb::IOStatus s = fs->GetChildren(dir, rocksdb::IOOptions(), &children, nullptr);
  if (!s.ok()) return Status(Code::kIo, "cannot list " + dir + ": " + s.ToString());
  std::sort(children.begin(), children.end());
  std::vector<WalScanResult> out;
  for (const std::string& name : children) {
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".log") != 0) continue;
    if (!std::all_of(name.begin(), name.end() - 4, [](char c) { return std::isdigit(c); })) {
      continue;
    }
    const std::string path = dir + "/" + name;
    std::string bytes;
    s = rocksdb::ReadFileToString(fs, path, &bytes);
    if (!s.ok()) return Status(Code::kIo, "cannot read " + path + ": " + s.ToString());
    out.push_back(scan_wal_bytes(path, bytes));
  }
  return out;
}

}  // namespace cset::storage
