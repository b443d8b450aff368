#include "storage/rocks_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cassert>
#include <cstdarg>
#include <cstdio>
#include <random>
#include <set>
#include <shared_mutex>

#include "raft/codec.h"
#include "storage/format.h"
#include "storage/wal_scan.h"

namespace cset::storage {

using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::Term;

namespace {

constexpr const char* kFamilies[] = {"default",   kLogFamily,    kRaftStateFamily,
                                     kDataFamily, kSmMetaFamily, kNodeFamily};
constexpr size_t kFamilyCount = 6;
constexpr uint64_t kResumeMinFreeBytes = 1 << 20;
enum Family : size_t { kDefault = 0, kLog, kRaftState, kData, kSmMeta, kNode };

/// Maps a RocksDB status to ours. NoSpace first: it is an IOError subcode.
Status from_rocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::ok();
  const std::string message = context + ": " + s.ToString();
  if (s.IsNoSpace()) return Status(Code::kNoSpace, message);
  if (s.IsCorruption()) return Status(Code::kCorrupt, message);
  if (s.IsInvalidArgument() || s.IsNotSupported()) return Status(Code::kInvalid, message);
  return Status(Code::kIo, message);
}

std::string random_incarnation() {
  std::random_device rd;
  std::string out;
  while (out.size() < kIncarnationBytes) {
    const uint32_t r = rd();
    for (int i = 0; i < 4 && out.size() < kIncarnationBytes; ++i) {
      out.push_back(static_cast<char>(r >> (8 * i)));
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

struct RocksStore::Handles {
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  rocksdb::ColumnFamilyHandle* operator[](size_t i) const { return cf[i]; }
};

/// Logs background errors and turns RocksDB's own automatic recovery off:
/// recovery happens in RocksStore::resume(), from the write path, so the
/// store's write_failed() state and RocksDB's agree.
class RocksStore::ErrorListener : public rocksdb::EventListener {
 public:
  explicit ErrorListener(std::function<void(const std::string&)> warn) : warn_(std::move(warn)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason /*reason*/,
                         rocksdb::Status* error) override {
    warn_("storage: RocksDB background error: " + error->ToString());
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status /*error*/,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

 private:
  std::function<void(const std::string&)> warn_;
};

namespace {

/// RocksDB's info log, routed to StoreOptions::warn (errors only) instead of a LOG file in the data
/// directory: that file shares the disk, and once an append to it fails for lack of space, Debian's
/// RocksDB 7.8 (built with assertions) aborts the process at the next log line
/// (WritableFileWriter::AssertFalseAndGetStatusForPrevError).
class RocksLogger final : public rocksdb::Logger {
 public:
  explicit RocksLogger(std::function<void(const std::string&)> warn)
      : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL), warn_(std::move(warn)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::ERROR_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    warn_(std::string("storage: rocksdb: ") + line);
  }

 private:
  std::function<void(const std::string&)> warn_;
};

}  // namespace

// ---------------------------------------------------------------------------
// set::Kv on the data and sm_meta column families. Every call looks db_ up
// under db_mu_ (a recovering reopen replaces it); a view pins a RocksDB
// snapshot of one instance, so no reopen happens while one is alive.

class RocksStore::View final : public set::KvView {
 public:
  /// `snapshot`: a point-in-time view (counted in open_views_) or the latest
  /// state (Kv's own reads).
  View(const RocksStore* store, bool snapshot) : store_(store) {
    if (!snapshot) return;
    std::shared_lock lock(store_->db_mu_);
    store_->open_views_.fetch_add(1);
    pinned_ = true;
    if (store_->db_ != nullptr) snapshot_ = store_->db_->GetSnapshot();
  }
  ~View() override {
    if (!pinned_) return;
    std::shared_lock lock(store_->db_mu_);
    if (snapshot_ != nullptr) store_->db_->ReleaseSnapshot(snapshot_);
    store_->open_views_.fetch_sub(1);
  }
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  Result<std::optional<std::string>> get(set::Space s, std::string_view key) const override {
    std::shared_lock lock(store_->db_mu_);
    if (!usable()) return store_->closed();
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    std::string value;
    rocksdb::Status st =
        store_->db_->Get(ro, family(s), rocksdb::Slice(key.data(), key.size()), &value);
    if (st.IsNotFound()) return std::optional<std::string>();
    if (!st.ok()) return from_rocks(st, "storage: kv get");
    return std::optional<std::string>(std::move(value));
  }

  Status scan(set::Space s, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    std::shared_lock lock(store_->db_mu_);
    if (!usable()) return store_->closed();
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    rocksdb::Slice upper(end.data(), end.size());
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, family(s)));
    for (it->Seek(rocksdb::Slice(start.data(), start.size())); it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key();
      const rocksdb::Slice v = it->value();
      if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
    }
    return from_rocks(it->status(), "storage: kv scan");
  }

 private:
  // REQUIRES: db_mu_ held.
  bool usable() const { return store_->db_ != nullptr && (!pinned_ || snapshot_ != nullptr); }
  rocksdb::ColumnFamilyHandle* family(set::Space s) const {
    return store_->family(s == set::Space::kData ? kData : kSmMeta);
  }

  const RocksStore* store_;
  bool pinned_ = false;
  const rocksdb::Snapshot* snapshot_ = nullptr;  // null: the latest state
};

class RocksStore::Kv final : public set::Kv {
 public:
  explicit Kv(RocksStore* store) : store_(store), current_(store, /*snapshot=*/false) {}

  Result<std::optional<std::string>> get(set::Space s, std::string_view key) const override {
    return current_.get(s, key);
  }
  Status scan(set::Space s, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    return current_.scan(s, start, end, fn);
  }

  Status write(const set::WriteBatch& batch, bool sync) override {
    if (store_->write_failed_.load()) {
      std::lock_guard lock(store_->mu_);
      Status r = store_->resume_locked();
      if (!r) return r;
    }
    std::shared_lock lock(store_->db_mu_);
    if (store_->db_ == nullptr) return store_->closed();
    rocksdb::WriteBatch wb;
    for (const set::WriteOp& op : batch.ops) {
      rocksdb::ColumnFamilyHandle* cf = family(op.space);
      rocksdb::Status st = op.kind == set::WriteOp::Kind::kPut ? wb.Put(cf, op.key, op.value)
                                                               : wb.Delete(cf, op.key);
      if (!st.ok()) return from_rocks(st, "storage: kv batch");
    }
    return store_->write_db(&wb, sync, "kv write");
  }

  std::unique_ptr<set::KvView> view() const override {
    return std::make_unique<View>(store_, /*snapshot=*/true);
  }

  // One write batch: delete everything in both spaces, put the source's
  // contents, and (during install_snapshot) the log-side changes. Memory:
  // the whole image is held in the batch (docs/storage.md, "Limits").
  // The source is read without db_mu_ (it may be a view of this store);
  // holding mu_ keeps db_ and its handles from changing meanwhile.
  Status replace_all(const set::KvView& source) override {
    std::lock_guard lock(store_->mu_);
    if (store_->write_failed_.load()) {
      Status r = store_->resume_locked();
      if (!r) return r;
    }
    rocksdb::WriteBatch wb;
    for (set::Space s : {set::Space::kData, set::Space::kMeta}) {
      rocksdb::ColumnFamilyHandle* cf = nullptr;
      {
        std::shared_lock db_lock(store_->db_mu_);
        if (store_->db_ == nullptr) return store_->closed();
        Status st = clear_space(&wb, s);
        if (!st) return st;
        cf = family(s);
      }
      rocksdb::Status put_status;
      Status st = source.scan(s, "", "", [&](std::string_view k, std::string_view v) {
        put_status =
            wb.Put(cf, rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()));
        return put_status.ok();
      });
      if (!st) return st;
      if (!put_status.ok()) return from_rocks(put_status, "storage: replace_all batch");
    }
    const bool installing = store_->pending_install_ && !store_->pending_install_->consumed;
    if (installing) {
      Status st = store_->add_install_locked(&wb);
      if (!st) return st;
    }
    std::shared_lock db_lock(store_->db_mu_);
    if (store_->db_ == nullptr) return store_->closed();
    Status st = store_->write_db(&wb, /*sync=*/true, "replace_all");
    if (st && installing) store_->finish_install_locked();
    return st;
  }

 private:
  // REQUIRES: db_mu_ held.
  rocksdb::ColumnFamilyHandle* family(set::Space s) const {
    return store_->family(s == set::Space::kData ? kData : kSmMeta);
  }

  // REQUIRES: db_mu_ held, db_ open.
  Status clear_space(rocksdb::WriteBatch* wb, set::Space s) {
    std::unique_ptr<rocksdb::Iterator> it(
        store_->db_->NewIterator(rocksdb::ReadOptions(), family(s)));
    it->SeekToFirst();
    if (!it->Valid()) return from_rocks(it->status(), "storage: replace_all scan");
    const std::string first = it->key().ToString();
    it->SeekToLast();
    if (!it->Valid()) return from_rocks(it->status(), "storage: replace_all scan");
    const std::string last = it->key().ToString();
    rocksdb::Status st = wb->DeleteRange(family(s), first, last);
    if (st.ok()) st = wb->Delete(family(s), last);
    return from_rocks(st, "storage: replace_all batch");
  }

  RocksStore* store_;
  View current_;
};

// ---------------------------------------------------------------------------
// Opening

RocksStore::RocksStore(StoreOptions options) : options_(std::move(options)) {
  while (options_.dir.size() > 1 && options_.dir.back() == '/') options_.dir.pop_back();
}

RocksStore::~RocksStore() {
  kv_.reset();
  close_db();
}

void RocksStore::close_db() {
  if (db_ != nullptr) {
    if (handles_) {
      for (rocksdb::ColumnFamilyHandle* h : handles_->cf) {
        if (h != nullptr) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      }
    }
    db_->Close().PermitUncheckedError();
    delete db_;
    db_ = nullptr;
  }
  if (handles_) handles_->cf.clear();
}

rocksdb::ColumnFamilyHandle* RocksStore::family(size_t i) const { return (*handles_)[i]; }

Status RocksStore::closed() const {
  return Status(Code::kIo, "storage: " + options_.dir +
                               ": closed after a failed attempt to reopen it (disk full?); "
                               "the next write retries");
}

void RocksStore::warn(const std::string& message) const {
  if (options_.warn) {
    options_.warn(message);
  } else {
    std::fprintf(stderr, "%s\n", message.c_str());
  }
}

Status RocksStore::corrupt(const std::string& what) const {
  return Status(Code::kCorrupt, "data directory " + options_.dir + ": " + what);
}

Result<std::unique_ptr<RocksStore>> RocksStore::open(const StoreOptions& options) {
  if (options.dir.empty()) return Status(Code::kInvalid, "storage: no data directory given");
  if (options.create_if_missing && options.node_id == raft::kNoNode) {
    return Status(Code::kInvalid, "storage: creating a data directory needs a node id");
  }
  if (!options.new_incarnation.empty() && options.new_incarnation.size() != kIncarnationBytes) {
    return Status(Code::kInvalid, "storage: an incarnation id is 16 bytes");
  }
  std::unique_ptr<RocksStore> store(new RocksStore(options));
  if (!store->options_.fs) store->options_.fs = rocksdb::FileSystem::Default();
  store->env_ = rocksdb::NewCompositeEnv(store->options_.fs);

  rocksdb::FileSystem* fs = store->options_.fs.get();
  const std::string& dir = store->options_.dir;
  const bool exists = fs->FileExists(dir + "/CURRENT", rocksdb::IOOptions(), nullptr).ok();
  if (!exists) {
    if (!options.create_if_missing) {
      return Status(Code::kInvalid, "data directory " + dir + " holds no store (" + dir +
                                        "/CURRENT is missing) and creation was not asked for");
    }
    std::vector<std::string> children;
    if (fs->GetChildren(dir, rocksdb::IOOptions(), &children, nullptr).ok()) {
      for (const std::string& name : children) {
        if (name.rfind("MANIFEST-", 0) == 0 ||
            (name.size() > 4 && (name.compare(name.size() - 4, 4, ".sst") == 0 ||
                                 name.compare(name.size() - 4, 4, ".log") == 0))) {
          return store->corrupt("holds " + name +
                                " but no CURRENT file: refusing to create a "
                                "new store over the remains of one");
        }
      }
    }
  } else {
    Status s = store->check_wal_files();
    if (!s) return s;
  }
  if (!exists) {
    // Made here so RocksDB does not log an error about a missing directory.
    rocksdb::IOStatus made = fs->CreateDirIfMissing(dir, rocksdb::IOOptions(), nullptr);
    if (!made.ok()) return from_rocks(made, "data directory " + dir + ": cannot create it");
  }
  Status s = store->open_db(!exists, store->options_.verify_checksums_on_open && exists);
  if (!s) return s;
  store->kv_ = std::make_unique<Kv>(store.get());
  s = store->check_identity(!exists);
  if (!s) return s;
  s = store->load_raft_state();
  if (!s) return s;
  return store;
}

// Refuses a WAL damaged in the middle (RocksDB's recovery modes cannot tell
// it from a torn tail reliably); warns about a torn tail, which RocksDB drops.
Status RocksStore::check_wal_files() {
  auto scans = scan_wal_files(options_.fs.get(), options_.dir);
  if (!scans.ok()) return scans.status();
  for (const WalScanResult& r : *scans) {
    if (r.outcome == WalScanResult::Outcome::kCorrupt) {
      return corrupt("write-ahead log " + r.file + " is damaged at offset " +
                     std::to_string(r.offset) + " of " + std::to_string(r.size) + ": " + r.detail);
    }
    if (r.outcome == WalScanResult::Outcome::kTornTail) {
      warn("storage: " + r.file + ": dropping a torn final record (" +
           std::to_string(r.size - r.offset) + " bytes at offset " + std::to_string(r.offset) +
           ", after " + std::to_string(r.records) +
           " complete records): a write interrupted by a crash or a full disk, never "
           "acknowledged");
    }
  }
  return Status::ok();
}

Status RocksStore::open_db(bool creating, bool verify_checksums) {
  const std::string& dir = options_.dir;
  auto cache = rocksdb::NewLRUCache(static_cast<size_t>(options_.block_cache_mb) << 20);
  block_cache_ = cache;

  rocksdb::DBOptions db;
  db.env = env_.get();
  db.create_if_missing = creating;
  db.create_missing_column_families = creating;
  db.paranoid_checks = true;
  // A torn tail is tolerated, corruption in the middle stops the open
  // (docs/storage.md, "WAL recovery mode").
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db.track_and_verify_wals_in_manifest = true;
  db.recycle_log_file_num = 0;  // recycled WALs hide torn tails
  db.manual_wal_flush = false;  // every write reaches the file before Write() returns
  db.allow_mmap_reads = false;
  db.allow_mmap_writes = false;
  db.max_bgerror_resume_count = 0;  // resume() recovers, not a background thread
  // Closing never writes (no flush at close), so a store whose disk is full
  // can be closed and reopened by resume(); the WAL holds everything.
  db.avoid_flush_during_shutdown = true;
  db.max_background_jobs = 2;
  db.max_total_wal_size = 256ull << 20;  // bounds WAL replay at restart
  db.max_open_files = 1000;
  db.keep_log_file_num = 4;
  db.max_log_file_size = 8ull << 20;
  db.stats_dump_period_sec = 0;
  db.stats_persist_period_sec = 0;
  db.info_log = std::make_shared<RocksLogger>([this](const std::string& m) { warn(m); });
  listener_ = std::make_shared<ErrorListener>([this](const std::string& m) { warn(m); });
  db.listeners.push_back(listener_);

  auto family_options = [&](bool bloom, uint64_t buffer_mb) {
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    table.cache_index_and_filter_blocks = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
    // Partitioned index and filters: one monolithic filter block of a big
    // table file is several MiB, more than one shard of the block cache
    // (64 MiB / 64 shards), so it was evicted at once and read again from
    // disk by every point lookup: applying SADDs to a set of millions of
    // members slowed down as it grew (seen by bench/restart_time).
    table.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
    table.partition_filters = bloom;
    table.metadata_block_size = 4096;
    table.cache_index_and_filter_blocks_with_high_priority = true;
    table.pin_top_level_index_and_filter = true;
    if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    if (bloom) {
      // A bloom filter over the memtable's whole keys: the existence check of
      // every added member (mostly absent) skips the skiplist search.
      cf.memtable_prefix_bloom_size_ratio = 0.05;
      cf.memtable_whole_key_filtering = true;
    }
    cf.write_buffer_size = static_cast<size_t>(std::max<uint64_t>(buffer_mb, 1)) << 20;
    cf.max_write_buffer_number = 2;
    cf.paranoid_file_checks = true;  // re-read every new table file before using it
    cf.force_consistency_checks = true;
    return cf;
  };
  const uint64_t big = options_.write_buffer_mb;
  const uint64_t small = std::max<uint64_t>(big / 4, 1);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < kFamilyCount; ++i) {
    const bool large = i == kLog || i == kData;
    descriptors.emplace_back(kFamilies[i],
                             family_options(i == kData || i == kSmMeta, large ? big : small));
  }

  if (!creating) {
    std::vector<std::string> names;
    rocksdb::Status st = rocksdb::DB::ListColumnFamilies(db, dir, &names);
    if (!st.ok()) {
      if (st.IsIOError() && !st.IsNoSpace()) return from_rocks(st, "data directory " + dir);
      return corrupt("cannot read its column families: " + st.ToString());
    }
    std::set<std::string> have(names.begin(), names.end());
    std::set<std::string> want(std::begin(kFamilies), std::end(kFamilies));
    if (have != want) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ",") + n;
      return corrupt("not a consistent-set store (column families: " + list + ")");
    }
  }

  handles_ = std::make_unique<Handles>();
  rocksdb::Status st = rocksdb::DB::Open(db, dir, descriptors, &handles_->cf, &db_);
  if (!st.ok()) {
    db_ = nullptr;
    handles_->cf.clear();
    if (st.IsCorruption()) return corrupt(st.ToString());
    if (st.IsIOError() && !st.IsNoSpace()) {
      return Status(Code::kIo, "data directory " + dir + ": cannot open: " + st.ToString());
    }
    if (st.IsNoSpace())
      return Status(Code::kNoSpace, "data directory " + dir + ": " + st.ToString());
    return corrupt("cannot open: " + st.ToString());
  }
  if (verify_checksums) {
    st = db_->VerifyChecksum();
    if (!st.ok()) {
      if (st.IsCorruption()) return corrupt(st.ToString());
      return from_rocks(st, "data directory " + dir + ": verifying checksums");
    }
  }
  return Status::ok();
}

Status RocksStore::check_identity(bool creating) {
  const std::string where = options_.dir + " (column family 'node')";
  rocksdb::ColumnFamilyHandle* node = (*handles_)[kNode];
  auto get = [&](const char* key, std::string* value) {
    return db_->Get(rocksdb::ReadOptions(), node, key, value);
  };
  std::string version;
  rocksdb::Status st = get(kFormatVersionKey, &version);
  if (st.IsNotFound()) {
    // Never initialized: only a directory whose creation was interrupted
    // before the identity was written, with nothing else in it.
    bool empty = true;
    for (size_t f : {kLog, kRaftState, kData, kSmMeta, kNode}) {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), (*handles_)[f]));
      it->SeekToFirst();
      if (it->Valid() || !it->status().ok()) empty = false;
    }
    if (!empty) return corrupt("no format version recorded in " + where);
    if (!creating && !options_.create_if_missing) {
      return corrupt("no identity recorded in " + where + " (creation was interrupted)");
    }
    if (options_.node_id == raft::kNoNode) {
      return Status(Code::kInvalid, "storage: creating a data directory needs a node id");
    }
    identity_.format_version = kStoreFormatVersion;
    identity_.node_id = options_.node_id;
    identity_.cluster_id = options_.cluster_id;
    identity_.incarnation =
        options_.new_incarnation.empty() ? random_incarnation() : options_.new_incarnation;
    rocksdb::WriteBatch wb;
    std::string v;
    put_u32be(&v, identity_.format_version);
    wb.Put(node, kFormatVersionKey, v).PermitUncheckedError();
    v.clear();
    put_u64be(&v, identity_.node_id);
    wb.Put(node, kNodeIdKey, v).PermitUncheckedError();
    if (!identity_.cluster_id.empty()) {
      wb.Put(node, kClusterIdKey, identity_.cluster_id).PermitUncheckedError();
    }
    wb.Put(node, kIncarnationKey, identity_.incarnation).PermitUncheckedError();
    return write_db(&wb, /*sync=*/true, "creating the identity record");
  }
  if (!st.ok()) return from_rocks(st, "data directory " + where);
  if (version.size() != 4) return corrupt("malformed format version in " + where);
  identity_.format_version = get_u32be(version.data());
  if (identity_.format_version != kStoreFormatVersion) {
    return corrupt("format version " + std::to_string(identity_.format_version) + " in " + where +
                   "; this build reads version " + std::to_string(kStoreFormatVersion));
  }
  std::string id;
  st = get(kNodeIdKey, &id);
  if (!st.ok() || id.size() != 8) return corrupt("missing or malformed node id in " + where);
  identity_.node_id = get_u64be(id.data());
  st = get(kIncarnationKey, &identity_.incarnation);
  if (!st.ok() || identity_.incarnation.size() != kIncarnationBytes) {
    return corrupt("missing or malformed incarnation id in " + where);
  }
  st = get(kClusterIdKey, &identity_.cluster_id);
  if (st.IsNotFound()) {
    identity_.cluster_id.clear();
  } else if (!st.ok()) {
    return from_rocks(st, "data directory " + where);
  }
  if (options_.node_id != raft::kNoNode && options_.node_id != identity_.node_id) {
    return Status(Code::kInvalid, "data directory " + options_.dir + " belongs to node " +
                                      std::to_string(identity_.node_id) + " (recorded in " + where +
                                      "), not to node " + std::to_string(options_.node_id));
  }
  if (!options_.cluster_id.empty()) return set_cluster_id(options_.cluster_id);
  return Status::ok();
}

Status RocksStore::set_cluster_id(const std::string& cluster_id) {
  std::lock_guard lock(mu_);
  if (cluster_id.empty()) return Status(Code::kInvalid, "storage: empty cluster id");
  if (!identity_.cluster_id.empty()) {
    if (identity_.cluster_id == cluster_id) return Status::ok();
    return Status(Code::kInvalid, "data directory " + options_.dir + " belongs to cluster '" +
                                      identity_.cluster_id + "' (recorded in " + options_.dir +
                                      " (column family 'node')), not to cluster '" + cluster_id +
                                      "'");
  }
  Status recovered = resume_locked();
  if (!recovered) return recovered;
  rocksdb::WriteBatch wb;
  wb.Put((*handles_)[kNode], kClusterIdKey, cluster_id).PermitUncheckedError();
  Status s = write_locked(&wb, /*sync=*/true, "recording the cluster id");
  if (s) identity_.cluster_id = cluster_id;
  return s;
}

Status RocksStore::load_raft_state() {
  rocksdb::ColumnFamilyHandle* rs = (*handles_)[kRaftState];
  auto read = [&](const char* key, std::string* framed) -> Result<bool> {
    rocksdb::Status st = db_->Get(rocksdb::ReadOptions(), rs, key, framed);
    if (st.IsNotFound()) return false;
    if (!st.ok()) {
      if (st.IsCorruption()) return corrupt(st.ToString());
      return from_rocks(st, "data directory " + options_.dir);
    }
    return true;
  };
  const std::string where = " in " + options_.dir + " (column family 'raft_state')";
  std::string v;
  auto found = read(kHardStateKey, &v);
  if (!found.ok()) return found.status();
  if (*found) {
    auto payload = unframe(v, "hard state" + where);
    if (!payload.ok()) return corrupt(payload.status().message());
    auto hs = raft::decode_hard_state(*payload);
    if (!hs.ok()) return corrupt("hard state" + where + ": " + hs.status().message());
    hard_state_ = *hs;
  }
  Term offset_term = 0;
  found = read(kLogOffsetKey, &v);
  if (!found.ok()) return found.status();
  if (*found) {
    auto payload = unframe(v, "log offset" + where);
    if (!payload.ok()) return corrupt(payload.status().message());
    if (payload->size() != 16) return corrupt("malformed log offset" + where);
    offset_ = get_u64be(payload->data());
    offset_term = get_u64be(payload->data() + 8);
  }
  found = read(kSnapshotMetaKey, &v);
  if (!found.ok()) return found.status();
  if (*found) {
    auto payload = unframe(v, "snapshot metadata" + where);
    if (!payload.ok()) return corrupt(payload.status().message());
    auto meta = raft::decode_snapshot_meta(*payload);
    if (!meta.ok()) return corrupt("snapshot metadata" + where + ": " + meta.status().message());
    snapshot_meta_ = *meta;
  }
  if (offset_ > snapshot_meta_.index) {
    return corrupt("the log was compacted to " + std::to_string(offset_) +
                   ", past the snapshot at " + std::to_string(snapshot_meta_.index));
  }

  // Log bounds: the first key must follow the offset; the last gives last_.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), (*handles_)[kLog]));
  it->SeekToFirst();
  last_ = offset_;
  if (it->Valid()) {
    auto first = parse_log_key(it->key().ToStringView());
    if (!first.ok()) return corrupt(first.status().message() + " in column family 'log'");
    if (*first != offset_ + 1) {
      return corrupt("the log starts at " + std::to_string(*first) + " but should start at " +
                     std::to_string(offset_ + 1));
    }
    it->SeekToLast();
    if (!it->Valid()) return corrupt("cannot read the end of the log: " + it->status().ToString());
    auto last = parse_log_key(it->key().ToStringView());
    if (!last.ok()) return corrupt(last.status().message() + " in column family 'log'");
    last_ = *last;
  }
  if (!it->status().ok()) return corrupt("reading the log: " + it->status().ToString());
  if (hard_state_.commit > last_) {
    return corrupt("the hard state's commit index " + std::to_string(hard_state_.commit) +
                   " is beyond the last log index " + std::to_string(last_));
  }
  runs_.assign(1, TermRun{offset_, offset_term});
  // Rebuilt from what is durable (open, or a reopen after a failed write).
  clear_recent_locked();
  return load_term_runs();
}

// Terms never decrease along the log, so the index where each term starts is
// found by bisection with O(terms * log(entries)) point reads, not a scan.
Status RocksStore::load_term_runs() {
  if (last_ == offset_) return Status::ok();
  struct Point {
    Index index;
    Term term;
  };
  auto term_at = [&](Index i) -> Result<Term> {
    auto e = read_entry(i);
    if (!e.ok()) return e.status();
    return e->term;
  };
  std::vector<Point> stack;
  auto lo_term = term_at(offset_ + 1);
  if (!lo_term.ok()) return lo_term.status();
  auto hi_term = term_at(last_);
  if (!hi_term.ok()) return hi_term.status();
  if (*lo_term < runs_[0].term || *hi_term < *lo_term) {
    return corrupt("log terms decrease between " + std::to_string(offset_) + " and " +
                   std::to_string(last_));
  }
  if (*lo_term != runs_[0].term) runs_.push_back(TermRun{offset_ + 1, *lo_term});
  // Iterative bisection over (lo, hi] intervals, left to right.
  std::vector<std::pair<Point, Point>> work{{Point{offset_ + 1, *lo_term}, Point{last_, *hi_term}}};
  while (!work.empty()) {
    auto [lo, hi] = work.back();
    work.pop_back();
    if (lo.term == hi.term) continue;
    if (hi.term < lo.term) {
      return corrupt("log terms decrease between " + std::to_string(lo.index) + " and " +
                     std::to_string(hi.index));
    }
    if (hi.index == lo.index + 1) {
      runs_.push_back(TermRun{hi.index, hi.term});
      continue;
    }
    const Index mid = lo.index + (hi.index - lo.index) / 2;
    auto t = term_at(mid);
    if (!t.ok()) return t.status();
    // Push the right half first so the left half is handled first.
    work.push_back({Point{mid, *t}, hi});
    work.push_back({lo, Point{mid, *t}});
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Reads

Result<Entry> RocksStore::read_entry(Index index) const {
  std::string value;
  rocksdb::Status st = db_->Get(rocksdb::ReadOptions(), (*handles_)[kLog], log_key(index), &value);
  if (st.IsNotFound()) {
    return corrupt("log entry " + std::to_string(index) + " is missing (a gap in the log)");
  }
  if (st.IsCorruption()) return corrupt(st.ToString());
  if (!st.ok()) return from_rocks(st, "storage: reading log entry " + std::to_string(index));
  auto e = decode_log_value(index, value);
  if (!e.ok()) return corrupt(e.status().message());
  return e;
}

HardState RocksStore::hard_state() const {
  std::lock_guard lock(mu_);
  return hard_state_;
}

Index RocksStore::first_index() const {
  std::lock_guard lock(mu_);
  return offset_ + 1;
}

Index RocksStore::last_index() const {
  std::lock_guard lock(mu_);
  return last_;
}

Term RocksStore::term_locked(Index i) const {
  auto it = std::upper_bound(runs_.begin(), runs_.end(), i,
                             [](Index v, const TermRun& r) { return v < r.first; });
  return std::prev(it)->term;
}

Result<Term> RocksStore::term(Index i) const {
  std::lock_guard lock(mu_);
  if (i < offset_) {
    return Status(Code::kCompacted, "term of " + std::to_string(i) + " compacted");
  }
  if (i > last_) {
    return Status(Code::kUnavailable, "term of " + std::to_string(i) + " unavailable");
  }
  return term_locked(i);
}

raft::Snapshot RocksStore::snapshot() const {
  std::lock_guard lock(mu_);
  raft::Snapshot s;
  s.meta = snapshot_meta_;
  if (snapshot_data_ && image_meta_.index == snapshot_meta_.index) s.data = *snapshot_data_;
  return s;
}

RocksStore::MemoryUsage RocksStore::memory_usage() const {
  MemoryUsage m;
  std::shared_lock lock(db_mu_);
  if (db_ == nullptr) return m;
  if (!db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables,
                                     &m.memtable_bytes)) {
    m.memtable_bytes = 0;
  }
  if (!db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimateTableReadersMem,
                                     &m.table_readers_bytes)) {
    m.table_readers_bytes = 0;
  }
  if (block_cache_) m.block_cache_bytes = block_cache_->GetUsage();
  return m;
}

raft::SnapshotMeta RocksStore::snapshot_meta() const {
  std::lock_guard lock(mu_);
  return snapshot_meta_;
}

raft::SnapshotChunk RocksStore::snapshot_chunk(uint64_t offset, uint64_t max_bytes) const {
  std::shared_ptr<const std::string> data;
  raft::SnapshotChunk c;
  {
    std::lock_guard lock(mu_);
    c.meta = snapshot_meta_;
    if (image_current_locked()) {
      data = snapshot_data_;
      c.meta = image_meta_;
    }
  }
  if (!data && snapshot_source_) {
    // Built outside mu_: the source reads the state machine and term().
    auto image = snapshot_source_();
    if (!image.ok()) {
      warn("storage: building a snapshot image failed: " + image.status().to_string());
    } else {
      std::lock_guard lock(mu_);
      if (image->meta.index >= snapshot_meta_.index && !image->data.empty()) {
        image_meta_ = image->meta;
        snapshot_data_ = std::make_shared<const std::string>(std::move(image->data));
        data = snapshot_data_;
        c.meta = image_meta_;
      }
    }
  }
  if (data) {
    c.total_bytes = data->size();
    if (offset < c.total_bytes) c.bytes = data->substr(offset, max_bytes);
  }
  return c;
}

Result<std::vector<Entry>> RocksStore::entries(Index lo, Index hi, uint64_t max_bytes) const {
  const rocksdb::Snapshot* snap = nullptr;
  std::shared_lock<std::shared_mutex> db_lock;  // taken under mu_, held while reading
  {
    std::lock_guard lock(mu_);
    if (lo <= offset_) {
      return Status(Code::kCompacted, "entries from " + std::to_string(lo) +
                                          " compacted; first index " + std::to_string(offset_ + 1));
    }
    if (hi > last_ + 1) {
      return Status(Code::kUnavailable, "entries up to " + std::to_string(hi) +
                                            " unavailable; last index " + std::to_string(last_));
    }
    if (lo > hi) return Status(Code::kInvalid, "entries: lo > hi");
    if (lo == hi) return std::vector<Entry>();
    if (!recent_.empty() && lo >= recent_.front().index) {
      // hi <= last_ + 1 and recent_ ends at last_: all of lo..hi-1 is here.
      std::vector<Entry> out;
      uint64_t bytes = 0;
      for (size_t i = lo - recent_.front().index; i < recent_.size() && out.size() < hi - lo; ++i) {
        const Entry& e = recent_[i];
        if (!out.empty() && bytes + e.data.size() > max_bytes) break;
        bytes += e.data.size();
        out.push_back(e);
      }
      return out;
    }
    db_lock = std::shared_lock(db_mu_);
    if (db_ == nullptr) return closed();
    // Pinned under the lock: a consistent view of exactly this log.
    snap = db_->GetSnapshot();
  }
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_, snap};

  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  const std::string upper = log_key(hi);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, (*handles_)[kLog]));
  std::vector<Entry> out;
  uint64_t bytes = 0;
  Index expect = lo;
  bool full = false;  // stopped by max_bytes
  for (it->Seek(log_key(lo)); it->Valid() && expect < hi; it->Next(), ++expect) {
    auto index = parse_log_key(it->key().ToStringView());
    if (!index.ok()) return corrupt(index.status().message() + " in column family 'log'");
    if (*index != expect) {
      return corrupt("log entry " + std::to_string(expect) + " is missing (a gap in the log)");
    }
    auto e = decode_log_value(expect, it->value().ToStringView());
    if (!e.ok()) return corrupt(e.status().message());
    if (!out.empty() && bytes + e->data.size() > max_bytes) {
      full = true;
      break;
    }
    bytes += e->data.size();
    out.push_back(std::move(e).value());
  }
  if (!it->status().ok()) {
    if (it->status().IsCorruption()) return corrupt(it->status().ToString());
    return from_rocks(it->status(), "storage: reading the log");
  }
  if (!full && expect < hi) {
    return corrupt("log entry " + std::to_string(expect) + " is missing (a gap in the log)");
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writes

Status RocksStore::write_db(rocksdb::WriteBatch* batch, bool sync, const char* what) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status st = db_->Write(wo, batch);
  if (!st.ok()) {
    // Set before write_failed_: a reader that sees the failure sees its kind.
    failed_no_space_.store(st.IsNoSpace());
    write_failed_.store(true);
    return from_rocks(st, std::string("storage: ") + what);
  }
  return Status::ok();
}

Status RocksStore::write_locked(rocksdb::WriteBatch* batch, bool sync, const char* what) {
  std::shared_lock lock(db_mu_);
  return write_db(batch, sync, what);
}

bool RocksStore::write_failed() const { return write_failed_.load(); }

// The reopen writes the memtables (the WAL's live contents, at most their
// arena size) to table files, plus a new WAL, MANIFEST and OPTIONS file.
uint64_t RocksStore::reopen_needed_bytes() const {
  uint64_t memtable_bytes = 0;
  if (db_ == nullptr ||
      !db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables, &memtable_bytes)) {
    memtable_bytes = 0;  // closed (a failed reopen): its flush output is on disk
  }
  return memtable_bytes + kResumeMinFreeBytes;
}

Status RocksStore::resume() {
  std::lock_guard lock(mu_);
  return resume_locked();
}

// Recovery by close and reopen, never DB::Resume(): in RocksDB 7.8 a flush
// that failed for lack of space can leave a memtable that no flush picks up
// again, and DB::Resume() then waits for it for good (WaitForFlushMemTables;
// docs/storage.md, "Disk full"). The reopen replays the WAL, which holds
// every acknowledged write (synced) and possibly some unsynced ones that
// reached the file, writes the memtables to table files (synced) and
// starts a new WAL: exactly what a restart of the process would recover.
Status RocksStore::resume_locked() {
  if (!write_failed_.load()) return Status::ok();
  if (!failed_no_space_.load()) {
    return Status(Code::kIo, "storage: " + options_.dir +
                                 ": cannot write after an I/O error; the store must be "
                                 "reopened (restart the node)");
  }
  // The reopen writes the WAL's contents to table files: wait for the room.
  const uint64_t needed = reopen_needed_bytes();
  uint64_t free_bytes = 0;
  if (options_.fs->GetFreeSpace(options_.dir, rocksdb::IOOptions(), &free_bytes, nullptr).ok() &&
      free_bytes < needed) {
    return Status(Code::kNoSpace, "storage: " + options_.dir + ": still no space (" +
                                      std::to_string(free_bytes) + " bytes free, " +
                                      std::to_string(needed) + " needed to recover)");
  }
  std::unique_lock db_lock(db_mu_);
  if (open_views_.load() > 0) {
    return Status(Code::kNoSpace, "storage: " + options_.dir +
                                      ": cannot recover while a snapshot view is open; retry");
  }
  close_db();
  clear_recent_locked();  // load_raft_state() rebuilds the log's view from the disk
  Status s = check_wal_files();
  if (s) s = open_db(/*creating=*/false, /*verify_checksums=*/false);
  if (!s) {
    close_db();
    warn("storage: " + options_.dir + ": reopening after a full disk failed: " + s.to_string());
    return s;
  }
  // The log's in-memory view is rebuilt from what is durable (a write that
  // failed may have reached the WAL whole; it was never acknowledged).
  hard_state_ = HardState{};
  offset_ = 0;
  last_ = 0;
  snapshot_meta_ = raft::SnapshotMeta{};
  s = load_raft_state();
  if (!s) {
    close_db();
    warn("storage: " + options_.dir + ": reopened after a full disk, but: " + s.to_string());
    return s;
  }
  if (!image_current_locked()) snapshot_data_.reset();
  failed_no_space_.store(false);
  write_failed_.store(false);
  warn("storage: " + options_.dir + ": writable again (reopened after a full disk)");
  return Status::ok();
}

Status RocksStore::sync() {
  if (write_failed_.load()) {
    Status r = resume();
    if (!r) return r;
  }
  std::shared_lock lock(db_mu_);
  if (db_ == nullptr) return closed();
  rocksdb::Status st = db_->SyncWAL();
  if (!st.ok()) {
    failed_no_space_.store(st.IsNoSpace());
    write_failed_.store(true);
    return from_rocks(st, "storage: sync");
  }
  return Status::ok();
}

Status RocksStore::flush() {
  std::shared_lock lock(db_mu_);
  if (db_ == nullptr) return closed();
  std::vector<rocksdb::ColumnFamilyHandle*> all(handles_->cf.begin(), handles_->cf.end());
  rocksdb::Status st = db_->Flush(rocksdb::FlushOptions(), all);
  if (!st.ok()) {
    failed_no_space_.store(st.IsNoSpace());
    write_failed_.store(true);
    return from_rocks(st, "storage: flush");
  }
  return Status::ok();
}

void RocksStore::truncate_runs_locked(Index from) {
  // Keep runs that start before `from`; the run at offset_ always stays.
  while (runs_.size() > 1 && runs_.back().first >= from) runs_.pop_back();
}

void RocksStore::append_run_locked(Index index, Term term) {
  if (runs_.back().term != term) runs_.push_back(TermRun{index, term});
}

Status RocksStore::save(const std::vector<Entry>& entries,
                        const std::optional<HardState>& hard_state, bool sync) {
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index + 1) {
      return Status(Code::kInvalid, "storage: appended entries are not consecutive");
    }
  }
  std::lock_guard lock(mu_);
  Status recovered = resume_locked();  // before the batch: it reads the log's bounds
  if (!recovered) return recovered;
  rocksdb::ColumnFamilyHandle* log = (*handles_)[kLog];
  rocksdb::WriteBatch wb;
  // Entries the snapshot already covers are skipped (as MemoryStorage does).
  size_t skip = 0;
  while (skip < entries.size() && entries[skip].index <= offset_) ++skip;
  const bool appending = skip < entries.size();
  const Index start = appending ? entries[skip].index : 0;
  const Index new_last = appending ? entries.back().index : last_;
  if (appending) {
    if (start > last_ + 1) {
      return Status(Code::kInvalid, "storage: appending at " + std::to_string(start) +
                                        " leaves a gap after the last index " +
                                        std::to_string(last_));
    }
    for (size_t i = skip; i < entries.size(); ++i) {
      const Term before = i == skip ? term_locked(start - 1) : entries[i - 1].term;
      if (entries[i].term < before) {
        return Status(Code::kInvalid,
                      "storage: entry terms decrease at " + std::to_string(entries[i].index));
      }
      rocksdb::Status st = wb.Put(log, log_key(entries[i].index), encode_log_value(entries[i]));
      if (!st.ok()) return from_rocks(st, "storage: save batch");
    }
    if (new_last < last_) {  // a shorter conflicting suffix: drop the rest
      rocksdb::Status st = wb.DeleteRange(log, log_key(new_last + 1), log_key(last_ + 1));
      if (!st.ok()) return from_rocks(st, "storage: save batch");
    }
  }
  if (hard_state) {
    rocksdb::Status st =
        wb.Put((*handles_)[kRaftState], kHardStateKey, frame(raft::encode_hard_state(*hard_state)));
    if (!st.ok()) return from_rocks(st, "storage: save batch");
  }
  if (wb.Count() == 0) return Status::ok();
  Status s = write_locked(&wb, sync && !options_.test_skip_log_sync, "save");
  if (!s) return s;
  if (appending) {
    truncate_runs_locked(start);
    for (size_t i = skip; i < entries.size(); ++i) {
      append_run_locked(entries[i].index, entries[i].term);
    }
    last_ = new_last;
    remember_recent_locked(entries, skip);
  }
  if (hard_state) hard_state_ = *hard_state;
  return Status::ok();
}

void RocksStore::remember_recent_locked(const std::vector<Entry>& entries, size_t from) {
  const Index start = entries[from].index;
  // Written from `start` on: what the cache held from there is gone (a
  // conflicting suffix), and a cache that does not reach start - 1 would
  // leave a gap.
  while (!recent_.empty() && recent_.back().index >= start) {
    recent_bytes_ -= recent_.back().data.size();
    recent_.pop_back();
  }
  if (!recent_.empty() && recent_.back().index + 1 != start) {
    clear_recent_locked();
  }
  for (size_t i = from; i < entries.size(); ++i) {
    recent_.push_back(entries[i]);
    recent_bytes_ += entries[i].data.size();
  }
  while (!recent_.empty() &&
         (recent_.size() > kRecentEntriesMax || recent_bytes_ > kRecentBytesMax)) {
    recent_bytes_ -= recent_.front().data.size();
    recent_.pop_front();
  }
  assert(recent_.empty() || recent_.back().index == last_);
}

void RocksStore::clear_recent_locked() {
  recent_.clear();
  recent_bytes_ = 0;
}

void RocksStore::forget_recent_through_locked(Index index) {
  while (!recent_.empty() && recent_.front().index <= index) {
    recent_bytes_ -= recent_.front().data.size();
    recent_.pop_front();
  }
}

Status RocksStore::create_snapshot(raft::Snapshot snapshot, uint64_t keep_entries) {
  std::lock_guard lock(mu_);
  Status recovered = resume_locked();
  if (!recovered) return recovered;
  const Index index = snapshot.meta.index;
  if (index < snapshot_meta_.index || index < offset_) {
    return Status(Code::kInvalid, "storage: snapshot at " + std::to_string(index) +
                                      " older than the current one at " +
                                      std::to_string(snapshot_meta_.index));
  }
  if (index > last_) {
    return Status(Code::kInvalid, "storage: snapshot at " + std::to_string(index) +
                                      " beyond the last index " + std::to_string(last_));
  }
  if (term_locked(index) != snapshot.meta.term) {
    return Status(Code::kInvalid, "storage: snapshot term " + std::to_string(snapshot.meta.term) +
                                      " differs from the log's term at " + std::to_string(index));
  }
  const Index kept = std::min<uint64_t>(keep_entries, index - offset_);
  const Index new_offset = index - kept;
  rocksdb::WriteBatch wb;
  rocksdb::Status st = wb.Put((*handles_)[kRaftState], kSnapshotMetaKey,
                              frame(raft::encode_snapshot_meta(snapshot.meta)));
  const Term new_offset_term = term_locked(new_offset);
  if (st.ok() && new_offset > offset_) {
    st = wb.DeleteRange((*handles_)[kLog], log_key(offset_ + 1), log_key(new_offset + 1));
    std::string v;
    put_u64be(&v, new_offset);
    put_u64be(&v, new_offset_term);
    if (st.ok()) st = wb.Put((*handles_)[kRaftState], kLogOffsetKey, frame(v));
  }
  if (!st.ok()) return from_rocks(st, "storage: snapshot batch");
  // Synced: makes the applied state (earlier kv writes, same WAL) durable
  // before the log that could rebuild it is gone.
  Status s = write_locked(&wb, /*sync=*/true, "create_snapshot");
  if (!s) return s;
  snapshot_meta_ = std::move(snapshot.meta);
  if (!snapshot.data.empty()) {
    image_meta_ = snapshot_meta_;
    snapshot_data_ = std::make_shared<const std::string>(std::move(snapshot.data));
  } else if (!image_current_locked()) {
    snapshot_data_.reset();  // too old to send: built again when needed
  }
  if (new_offset > offset_) {
    std::vector<TermRun> runs{TermRun{new_offset, new_offset_term}};
    for (const TermRun& r : runs_) {
      if (r.first > new_offset) runs.push_back(r);
    }
    runs_ = std::move(runs);
    offset_ = new_offset;
    forget_recent_through_locked(new_offset);
  }
  return Status::ok();
}

Status RocksStore::compact(Index index) {
  std::lock_guard lock(mu_);
  Status recovered = resume_locked();
  if (!recovered) return recovered;
  if (index <= offset_ + 1) return Status::ok();
  if (index > snapshot_meta_.index + 1) {
    return Status(Code::kInvalid, "storage: compacting to " + std::to_string(index) +
                                      " past the snapshot at " +
                                      std::to_string(snapshot_meta_.index));
  }
  if (index > last_ + 1) {
    return Status(Code::kInvalid, "storage: compacting to " + std::to_string(index) +
                                      " past the last index " + std::to_string(last_));
  }
  const Index new_offset = index - 1;
  const Term new_offset_term = term_locked(new_offset);
  rocksdb::WriteBatch wb;
  rocksdb::Status st = wb.DeleteRange((*handles_)[kLog], log_key(offset_ + 1), log_key(index));
  std::string v;
  put_u64be(&v, new_offset);
  put_u64be(&v, new_offset_term);
  if (st.ok()) st = wb.Put((*handles_)[kRaftState], kLogOffsetKey, frame(v));
  if (!st.ok()) return from_rocks(st, "storage: compact batch");
  // Not synced: losing a compaction only brings entries back.
  Status s = write_locked(&wb, /*sync=*/false, "compact");
  if (!s) return s;
  std::vector<TermRun> runs{TermRun{new_offset, new_offset_term}};
  for (const TermRun& r : runs_) {
    if (r.first > new_offset) runs.push_back(r);
  }
  runs_ = std::move(runs);
  offset_ = new_offset;
  forget_recent_through_locked(new_offset);
  return Status::ok();
}

Status RocksStore::install_snapshot(raft::Snapshot snapshot,
                                    const std::function<Status()>& restore) {
  {
    std::lock_guard lock(mu_);
    if (snapshot.meta.index <= snapshot_meta_.index) return Status::ok();  // out of date
    if (pending_install_) return Status(Code::kInvalid, "storage: an install is in progress");
    pending_install_ = PendingInstall{std::move(snapshot), false};
  }
  Status s = restore();
  std::lock_guard lock(mu_);
  const bool consumed = pending_install_->consumed;
  pending_install_.reset();
  if (!s) return s;
  if (!consumed) {
    return Status(Code::kInvalid, "storage: install_snapshot: restore did not replace the state");
  }
  return Status::ok();
}

Status RocksStore::add_install_locked(rocksdb::WriteBatch* batch) {
  const raft::SnapshotMeta& meta = pending_install_->snapshot.meta;
  rocksdb::Status st;
  if (last_ > offset_) {
    st = batch->DeleteRange((*handles_)[kLog], log_key(offset_ + 1), log_key(last_ + 1));
  }
  std::string v;
  put_u64be(&v, meta.index);
  put_u64be(&v, meta.term);
  if (st.ok()) st = batch->Put((*handles_)[kRaftState], kLogOffsetKey, frame(v));
  if (st.ok()) {
    st = batch->Put((*handles_)[kRaftState], kSnapshotMetaKey,
                    frame(raft::encode_snapshot_meta(meta)));
  }
  return from_rocks(st, "storage: install batch");
}

void RocksStore::finish_install_locked() {
  raft::Snapshot& snap = pending_install_->snapshot;
  offset_ = snap.meta.index;
  last_ = snap.meta.index;
  runs_.assign(1, TermRun{snap.meta.index, snap.meta.term});
  clear_recent_locked();
  snapshot_meta_ = snap.meta;
  image_meta_ = snap.meta;
  snapshot_data_ = std::make_shared<const std::string>(std::move(snap.data));
  pending_install_->consumed = true;
}

set::Kv& RocksStore::kv() { return *kv_; }

// ---------------------------------------------------------------------------
// Verification

Status RocksStore::verify_log() const {
  Index offset;
  Index last;
  HardState hs;
  std::vector<TermRun> runs;
  const rocksdb::Snapshot* snap;
  std::shared_lock<std::shared_mutex> db_lock;  // taken under mu_, held while reading
  {
    std::lock_guard lock(mu_);
    db_lock = std::shared_lock(db_mu_);
    if (db_ == nullptr) return closed();
    offset = offset_;
    last = last_;
    hs = hard_state_;
    runs = runs_;
    snap = db_->GetSnapshot();
  }
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_, snap};
  if (hs.commit > last) {
    return corrupt("hard state commit " + std::to_string(hs.commit) + " beyond the last index " +
                   std::to_string(last));
  }
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, (*handles_)[kLog]));
  Index expect = offset + 1;
  Term prev = runs.front().term;
  size_t run = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expect) {
    auto index = parse_log_key(it->key().ToStringView());
    if (!index.ok()) return corrupt(index.status().message());
    if (*index != expect) {
      return corrupt("log holds index " + std::to_string(*index) + " where " +
                     std::to_string(expect) + " was expected");
    }
    auto e = decode_log_value(expect, it->value().ToStringView());
    if (!e.ok()) return corrupt(e.status().message());
    if (e->term < prev) return corrupt("log term decreases at " + std::to_string(expect));
    prev = e->term;
    while (run + 1 < runs.size() && runs[run + 1].first <= expect) ++run;
    if (runs[run].term != e->term) {
      return corrupt("term index disagrees with the log at " + std::to_string(expect));
    }
  }
  if (!it->status().ok()) return corrupt("reading the log: " + it->status().ToString());
  if (expect != last + 1) {
    return corrupt("log ends at " + std::to_string(expect - 1) + ", expected " +
                   std::to_string(last));
  }
  return Status::ok();
}

}  // namespace cset::storage
