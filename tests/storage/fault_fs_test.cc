// FaultFs and DurabilityModel (storage/fault_fs.h), and RocksStore under
// injected faults: a power cut keeps exactly what was synced, a disk-full or
// I/O error fails the write cleanly and the store recovers by itself once
// space returns, with nothing acknowledged lost. Also a real full disk: a
// small tmpfs mounted for the test (fails when mounting is not permitted).
#include "storage/fault_fs.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "test_util.h"

namespace cset::storage {
namespace {

using namespace cset::storage::testing;  // NOLINT
using raft::Entry;
using raft::HardState;
using raft::Index;

std::unique_ptr<rocksdb::FSWritableFile> create(FaultFs& fs, const std::string& path) {
  std::unique_ptr<rocksdb::FSWritableFile> f;
  rocksdb::IOStatus s = fs.NewWritableFile(path, rocksdb::FileOptions(), &f, nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

void append(rocksdb::FSWritableFile& f, const std::string& bytes) {
  ASSERT_TRUE(f.Append(bytes, rocksdb::IOOptions(), nullptr).ok());
}

void sync(rocksdb::FSWritableFile& f) { ASSERT_TRUE(f.Sync(rocksdb::IOOptions(), nullptr).ok()); }

void sync_dir(FaultFs& fs, const std::string& dir) {
  std::unique_ptr<rocksdb::FSDirectory> d;
  ASSERT_TRUE(fs.NewDirectory(dir, rocksdb::IOOptions(), &d, nullptr).ok());
  ASSERT_TRUE(d->Fsync(rocksdb::IOOptions(), nullptr).ok());
}

// The same script for the in-process model and the journal: f1 durable up to
// its sync, f2 created after the directory sync (lost), f3 renamed over a
// durable name (kept, synced part only).
void script(FaultFs& fs, const TempDir& dir) {
  auto f1 = create(fs, dir.sub("f1"));
  append(*f1, "abc");
  sync(*f1);
  append(*f1, "def");  // never synced
  write_file(dir.sub("old"), "previous generation");
  sync_dir(fs, dir.path());
  auto f2 = create(fs, dir.sub("f2"));
  append(*f2, "synced but its name is not");
  sync(*f2);
  auto f3 = create(fs, dir.sub("f3.tmp"));
  append(*f3, "new contents");
  sync(*f3);
  append(*f3, "+unsynced");
  ASSERT_TRUE(fs.RenameFile(dir.sub("f3.tmp"), dir.sub("old"), rocksdb::IOOptions(), nullptr).ok());
}

void expect_power_cut_result(const TempDir& dir) {
  EXPECT_EQ(read_file(dir.sub("f1")), "abc");
  EXPECT_FALSE(std::filesystem::exists(dir.sub("f2")));
  EXPECT_FALSE(std::filesystem::exists(dir.sub("f3.tmp")));
  EXPECT_EQ(read_file(dir.sub("old")), "new contents");
}

TEST(FaultFsTest, PowerCutKeepsOnlySyncedBytesAndDurableNames) {
  TempDir dir;
  FaultFs fs;
  script(fs, dir);
  fs.deactivate();
  ASSERT_TRUE(fs.power_cut().is_ok());
  expect_power_cut_result(dir);
}

TEST(FaultFsTest, JournalRebuildsTheSameModelInAnotherProcess) {
  TempDir dir;
  TempDir side;
  const std::string journal = side.sub("journal");
  {
    FaultFs fs(nullptr, journal);
    script(fs, dir);
  }
  // A torn last journal line (the writer killed mid-line) is ignored.
  write_file(journal, read_file(journal) + "S\t" + dir.sub("f1") + "\t9");
  auto model = DurabilityModel::load_journal(journal);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ASSERT_TRUE((*model)->power_cut().is_ok());
  expect_power_cut_result(dir);
  write_file(journal, "Q\tnonsense\n");
  EXPECT_EQ(DurabilityModel::load_journal(journal).code(), Code::kCorrupt);
}

TEST(FaultFsTest, DeactivatedFsRefusesEveryMutation) {
  TempDir dir;
  FaultFs fs;
  auto f = create(fs, dir.sub("f"));
  fs.deactivate();
  EXPECT_FALSE(f->Append("x", rocksdb::IOOptions(), nullptr).ok());
  EXPECT_FALSE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  std::unique_ptr<rocksdb::FSWritableFile> g;
  EXPECT_FALSE(fs.NewWritableFile(dir.sub("g"), rocksdb::FileOptions(), &g, nullptr).ok());
  EXPECT_FALSE(fs.DeleteFile(dir.sub("f"), rocksdb::IOOptions(), nullptr).ok());
  EXPECT_TRUE(std::filesystem::exists(dir.sub("f")));
}

TEST(FaultFsTest, FreeByteBudgetWritesWhatFitsThenFailsWithNoSpace) {
  TempDir dir;
  FaultFs fs;
  auto f = create(fs, dir.sub("f"));
  fs.set_free_bytes(5);
  rocksdb::IOStatus s = f->Append("0123456789", rocksdb::IOOptions(), nullptr);
  EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
  uint64_t free = 99;
  ASSERT_TRUE(fs.GetFreeSpace(dir.path(), rocksdb::IOOptions(), &free, nullptr).ok());
  EXPECT_EQ(free, 0u);
  ASSERT_TRUE(f->Close(rocksdb::IOOptions(), nullptr).ok());
  EXPECT_EQ(read_file(dir.sub("f")), "01234");
}

// ---- RocksStore under faults ----

class StoreFaultTest : public ::testing::Test {
 protected:
  void open() {
    fs_ = std::make_shared<FaultFs>();
    StoreOptions o = options_for(dir_.path());
    o.fs = fs_;
    o.test_skip_log_sync = skip_sync_;
    o.warn = [this](const std::string& m) { warnings_.push_back(m); };
    store_ = must_open(o);
    ASSERT_NE(store_, nullptr);
  }
  // Power cut: every mutation from now on fails, the store is closed, and
  // whatever was never synced is dropped.
  void crash() {
    fs_->deactivate();
    store_.reset();
    ASSERT_TRUE(fs_->power_cut().is_ok());
  }
  std::vector<Entry> batch(Index from, Index to, raft::Term term = 1) {
    std::vector<Entry> out;
    for (Index i = from; i <= to; ++i)
      out.push_back(entry(i, term, "payload-" + std::to_string(i)));
    return out;
  }

  TempDir dir_;
  bool skip_sync_ = false;
  std::shared_ptr<FaultFs> fs_;
  std::unique_ptr<RocksStore> store_;
  std::vector<std::string> warnings_;
};

TEST_F(StoreFaultTest, PowerCutKeepsSyncedWritesAndDropsUnsyncedOnes) {
  open();
  ASSERT_TRUE(store_->save(batch(1, 10), HardState{1, 1, 10}, true).is_ok());
  ASSERT_TRUE(store_->save(batch(11, 20), HardState{1, 1, 20}, false).is_ok());
  set::WriteBatch kv;
  kv.put(set::Space::kMeta, "A", "10");
  ASSERT_TRUE(store_->kv().write(kv, false).is_ok());
  crash();
  open();
  EXPECT_EQ(store_->last_index(), 10u);
  EXPECT_EQ(store_->hard_state(), (HardState{1, 1, 10}));
  EXPECT_FALSE(store_->kv().get(set::Space::kMeta, "A").value().has_value());
  EXPECT_TRUE(store_->verify_log().is_ok());
  // A later synced write makes the earlier unsynced kv write durable too
  // (one write-ahead log for every column family).
  ASSERT_TRUE(store_->kv().write(kv, false).is_ok());
  ASSERT_TRUE(store_->save(batch(11, 12), HardState{1, 1, 12}, true).is_ok());
  crash();
  open();
  EXPECT_EQ(store_->last_index(), 12u);
  EXPECT_EQ(*store_->kv().get(set::Space::kMeta, "A").value(), "10");
}

TEST_F(StoreFaultTest, WithoutTheFsyncAPowerCutLosesAcknowledgedWrites) {
  skip_sync_ = true;  // the test-only switch that removes save()'s fsync
  open();
  ASSERT_TRUE(store_->save(batch(1, 10), HardState{1, 1, 10}, true).is_ok());
  crash();
  skip_sync_ = false;
  open();
  EXPECT_LT(store_->last_index(), 10u) << "the power cut model missed a missing fsync";
}

TEST_F(StoreFaultTest, DiskFullFailsCleanlyKeepsReadsAndRecoversBySelf) {
  open();
  ASSERT_TRUE(store_->save(batch(1, 5), HardState{1, 1, 5}, true).is_ok());
  fs_->set_free_bytes(0);
  Status s = store_->save(batch(6, 8), HardState{1, 1, 8}, true);
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.to_string();
  EXPECT_TRUE(store_->write_failed());
  // Nothing changed, reads still work.
  EXPECT_EQ(store_->last_index(), 5u);
  EXPECT_EQ(store_->hard_state().commit, 5u);
  EXPECT_EQ(indexes(*store_, 1, 6, kNoLimit).size(), 5u);
  set::WriteBatch kv;
  kv.put(set::Space::kData, "m", "");
  EXPECT_EQ(store_->kv().write(kv, true).code(), Code::kNoSpace);
  EXPECT_EQ(store_->resume().code(), Code::kNoSpace);
  // Space returns: the next write resumes by itself.
  fs_->set_free_bytes(std::nullopt);
  ASSERT_TRUE(store_->save(batch(6, 8), HardState{1, 1, 8}, true).is_ok());
  EXPECT_FALSE(store_->write_failed());
  ASSERT_TRUE(store_->kv().write(kv, true).is_ok());
  store_.reset();
  open();
  EXPECT_EQ(store_->last_index(), 8u);
  EXPECT_EQ(store_->hard_state().commit, 8u);
  EXPECT_TRUE(store_->kv().get(set::Space::kData, "m").value().has_value());
  EXPECT_TRUE(store_->verify_log().is_ok());
}

TEST_F(StoreFaultTest, RecoveryWaitsForOpenViewsAndReadersKeepWorkingAcrossIt) {
  open();
  ASSERT_TRUE(store_->save(batch(1, 5), HardState{1, 1, 5}, true).is_ok());
  set::WriteBatch kv;
  kv.put(set::Space::kData, "m", "1");
  ASSERT_TRUE(store_->kv().write(kv, true).is_ok());
  // Readers on other threads while the store fails and recovers (reopens).
  std::atomic<bool> stop{false};
  std::atomic<int> read_errors{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto e = store_->entries(1, 6, kNoLimit);
        auto m = store_->kv().get(set::Space::kData, "m");
        if (!e.ok() || e->size() != 5 || !m.ok() || !m->has_value()) read_errors++;
        reads++;
      }
    });
  }
  for (int round = 0; round < 5; ++round) {
    fs_->set_free_bytes(0);
    EXPECT_EQ(store_->save(batch(6, 6), HardState{1, 1, 6}, true).code(), Code::kNoSpace);
    fs_->set_free_bytes(std::nullopt);
    auto view = store_->kv().view();  // pins this RocksDB instance
    EXPECT_EQ(store_->resume().code(), Code::kNoSpace);
    EXPECT_TRUE(store_->write_failed());
    EXPECT_TRUE(view->get(set::Space::kData, "m").value().has_value());
    view.reset();
    ASSERT_TRUE(store_->resume().is_ok());
    EXPECT_FALSE(store_->write_failed());
    EXPECT_EQ(store_->last_index(), 5u);
  }
  stop.store(true);
  for (auto& r : readers) r.join();
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  ASSERT_TRUE(store_->save(batch(6, 6), HardState{1, 1, 6}, true).is_ok());
  EXPECT_TRUE(store_->verify_log().is_ok());
}

TEST_F(StoreFaultTest, DiskFullInTheMiddleOfARecordLeavesAReadableLog) {
  // The disk fills up part-way through a WAL record: the half record must not
  // become "corruption in the middle" once later records follow it.
  for (uint64_t budget : {1u, 7u, 100u, 3000u}) {
    SCOPED_TRACE(budget);
    TempDir dir;
    fs_ = std::make_shared<FaultFs>();
    StoreOptions o = options_for(dir.path());
    o.fs = fs_;
    o.warn = [this](const std::string& m) { warnings_.push_back(m); };
    auto st = must_open(o);
    ASSERT_TRUE(st->save(batch(1, 3), HardState{1, 1, 3}, true).is_ok());
    fs_->set_free_bytes(budget);
    std::vector<Entry> big = batch(4, 40);
    for (Entry& e : big) e.data.assign(200, 'z');
    EXPECT_EQ(st->save(big, HardState{1, 1, 40}, true).code(), Code::kNoSpace);
    fs_->set_free_bytes(std::nullopt);
    ASSERT_TRUE(st->save(batch(4, 6), HardState{1, 1, 6}, true).is_ok());
    st.reset();
    auto again = RocksStore::open(o);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ((*again)->last_index(), 6u);
    EXPECT_EQ((*again)->entries(4, 5, kNoLimit)->at(0).data, "payload-4");
    EXPECT_TRUE((*again)->verify_log().is_ok());
  }
}

TEST_F(StoreFaultTest, SyncIoErrorFailsTheWriteAndNeedsAReopen) {
  // An fsync that fails with EIO leaves the file's state unknown (the
  // "fsyncgate" lesson): RocksDB treats it as fatal, the store stays
  // read-only until it is reopened, and nothing acknowledged is lost.
  open();
  ASSERT_TRUE(store_->save(batch(1, 2), HardState{1, 1, 2}, true).is_ok());
  fs_->set_sync_fault(Fault::kIo);
  EXPECT_EQ(store_->save(batch(3, 4), HardState{1, 1, 4}, true).code(), Code::kIo);
  EXPECT_EQ(store_->last_index(), 2u);
  fs_->set_sync_fault(Fault::kNone);
  Status again = store_->save(batch(3, 5), HardState{1, 1, 5}, true);
  EXPECT_EQ(again.code(), Code::kIo) << again.to_string();
  EXPECT_EQ(indexes(*store_, 1, 3, kNoLimit).size(), 2u);  // reads still work
  crash();
  open();
  EXPECT_GE(store_->last_index(), 2u);  // 3..4 may have reached the disk, unacknowledged
  EXPECT_EQ(indexes(*store_, 1, 3, kNoLimit).size(), 2u);
  ASSERT_TRUE(store_->save(batch(3, 5), HardState{1, 1, 5}, true).is_ok());
  EXPECT_EQ(store_->last_index(), 5u);
}

TEST_F(StoreFaultTest, WriteIoErrorIsReportedAsIoAndTheReopenedStoreWorks) {
  open();
  ASSERT_TRUE(store_->append(batch(1, 1)).is_ok());
  fs_->set_write_fault(Fault::kIo);
  EXPECT_EQ(store_->append(batch(2, 2)).code(), Code::kIo);
  EXPECT_TRUE(store_->write_failed());
  fs_->set_write_fault(Fault::kNone);
  store_.reset();
  open();
  EXPECT_EQ(store_->last_index(), 1u);
  ASSERT_TRUE(store_->append(batch(2, 3)).is_ok());
  EXPECT_EQ(store_->last_index(), 3u);
}

// A real full disk: a 16 MiB tmpfs, filled with a ballast file. The disk
// often fills up during a background flush, the case in which RocksDB 7.8's
// DB::Resume() could hang for good (about 1 run in 6); the store recovers by
// reopening instead, so this must pass every time (run it in a loop:
// --gtest_repeat=40). Needs the right to mount (root): without it the test
// fails, it does not skip.
TEST(RealDiskFullTest, WritesFailWithNoSpaceAndSucceedAfterSpaceIsFreed) {
  TempDir base;
  const std::string mnt = base.sub("mnt");
  std::filesystem::create_directories(mnt);
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=16m"), 0)
      << "cannot mount a 16 MiB tmpfs at " << mnt
      << " (this test needs root / CAP_SYS_ADMIN): " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  StoreOptions o = options_for(mnt + "/data");
  o.write_buffer_mb = 1;  // background flushes every ~1 MiB
  std::vector<std::string> warnings;
  std::mutex warnings_mu;
  o.warn = [&](const std::string& m) {
    std::lock_guard lock(warnings_mu);
    warnings.push_back(m);
  };
  auto st = must_open(o);
  ASSERT_NE(st, nullptr);
  ASSERT_TRUE(st->save({entry(1, 1, "first")}, HardState{1, 1, 1}, true).is_ok());
  auto payload = [](Index i) { return std::to_string(i) + std::string(1000, 'x'); };
  Index acked = 1;       // the last log index a save() acknowledged
  Index kv_written = 0;  // the last kv write that returned ok (unsynced)
  // Three rounds: fill the disk with a ballast file (leaving `headroom`
  // bytes, so the store itself fills the rest, in its WAL or in a flush),
  // write until NOSPACE, free the space, write again.
  for (uint64_t headroom : {0u, 3u << 20, 5u << 20}) {
    SCOPED_TRACE("headroom " + std::to_string(headroom));
    {
      FILE* ballast = std::fopen((mnt + "/ballast").c_str(), "w");
      ASSERT_NE(ballast, nullptr);
      std::string chunk(64 << 10, 'b');
      uint64_t written = 0;
      while (std::fwrite(chunk.data(), 1, chunk.size(), ballast) == chunk.size()) {
        written += chunk.size();
      }
      std::fclose(ballast);
      if (headroom > 0) std::filesystem::resize_file(mnt + "/ballast", written - headroom);
    }
    Status s;
    for (Index i = acked + 1; i < acked + 20000; ++i) {
      s = st->save({entry(i, 1, payload(i))}, HardState{1, 1, i}, true);
      if (!s) break;
      set::WriteBatch kv;
      kv.put(set::Space::kMeta, "applied", std::to_string(i));
      s = st->kv().write(kv, false);
      ASSERT_TRUE(s.is_ok() || s.code() == Code::kNoSpace) << s.to_string();
      acked = i;
      if (!s) break;
      kv_written = i;
    }
    ASSERT_EQ(s.code(), Code::kNoSpace) << s.to_string();
    EXPECT_TRUE(st->write_failed());
    EXPECT_EQ(st->last_index(), acked);
    const Index first = st->first_index();
    EXPECT_EQ(indexes(*st, first, acked + 1, kNoLimit).size(), acked - first + 1);  // reads work
    EXPECT_EQ(st->resume().code(), Code::kNoSpace);                                 // still full
    std::filesystem::remove(mnt + "/ballast");
    // The next write recovers by itself.
    s = st->save({entry(acked + 1, 1, payload(acked + 1))}, HardState{1, 1, acked + 1}, true);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ++acked;
    EXPECT_FALSE(st->write_failed());
    EXPECT_EQ(st->last_index(), acked);
    EXPECT_EQ(st->hard_state().commit, acked);
    // Compaction, so the next round's log fits on the 16 MiB disk.
    ASSERT_TRUE(st->create_snapshot(snapshot_at(acked, 1), 0).is_ok());
  }
  st.reset();
  auto again = must_open(o);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->last_index(), acked);
  EXPECT_EQ(again->hard_state().commit, acked);
  EXPECT_TRUE(again->verify_log().is_ok());
  // The last kv write was unsynced, but synced saves followed it.
  auto applied = again->kv().get(set::Space::kMeta, "applied");
  ASSERT_TRUE(applied.ok() && applied->has_value());
  EXPECT_EQ(std::stoull(**applied), kv_written);
  std::lock_guard lock(warnings_mu);
  std::string all;
  for (const std::string& w : warnings) all += w + "\n";
  EXPECT_NE(all.find("writable again"), std::string::npos) << all;
}

}  // namespace
}  // namespace cset::storage
