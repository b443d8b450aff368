// The disk seam: a RocksDB FileSystem wrapper through which every file access
// of a RocksStore goes, able to lose what was never synced (as a power cut
// does) and to fail writes and syncs on demand (disk full, I/O error).
//
// Models: LevelDB's db/fault_injection_test.cc and RocksDB's
// utilities/fault_injection_fs (ideas only; this is our own code).
//
// ## What a power cut keeps (DurabilityModel)
// Fed, in order, with the events of one "generation" (from one open of the
// directory to the crash), the model decides what survives:
// - a file's contents survive up to the size it had at its last successful
//   fsync/fdatasync; bytes appended after it are lost;
// - a file created in this generation survives only if its directory was
//   fsynced after the creation (else the name is lost with the file);
// - a rename keeps the new name when the source name was durable or the
//   target name already existed durably (its contents are then the source's);
// - deletions are taken as durable at once (a deleted file never reappears;
//   real file systems may resurrect it when the directory was not synced:
//   a simplification we state rather than hide).
// Files not touched in the generation are kept as they are.
//
// ## Two ways to apply it
// - In process: FaultFs records the events in its own model; after
//   deactivate() (the "crash": every later mutation fails and changes
//   nothing) and closing the store, power_cut() truncates and deletes files.
// - Across processes: with a journal path, FaultFs also appends each event as
//   one line to that file, written after the event took effect for syncs,
//   renames and deletions, and before it for creations. A parent process that
//   SIGKILLs the writer rebuilds the model with DurabilityModel::load_journal()
//   and applies it: the page cache survives SIGKILL, so without this step a
//   missing fsync would go unnoticed. A journal line lost to the kill only
//   makes the model keep less than was synced for a write the writer had not
//   yet reported, never more.
//
// ## Injected faults
// set_free_bytes(): appends past the budget write what fits and then fail
// with NoSpace, as a full disk does; GetFreeSpace reports the budget.
// set_write_fault()/set_sync_fault(): every append / every file or directory
// sync fails with NoSpace or IOError (a failed sync makes nothing durable).
//
// Thread-safety: all methods may be called from any thread (RocksDB calls the
// file system from its background threads).
#pragma once

#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cset/status.h"

namespace cset::storage {

/// What survives a power cut, per file path (see the file comment).
/// Thread-safety: internally synchronized.
class DurabilityModel {
 public:
  /// Before `path` is created (or truncated by re-creation).
  void on_create(const std::string& path);
  /// `path` (which existed before) was reopened for appending at `size` bytes.
  void on_reopen(const std::string& path, uint64_t size);
  /// After a successful fsync of `path` while it held `size` bytes.
  void on_sync(const std::string& path, uint64_t size);
  /// After a successful fsync of directory `dir`.
  void on_dir_sync(const std::string& dir);
  /// After `from` was renamed (or hard-linked, `link`) to `to`; `to_existed`:
  /// whether `to` existed before.
  void on_rename(const std::string& from, const std::string& to, bool to_existed, bool link);
  /// After `path` was deleted.
  void on_delete(const std::string& path);

  /// Applies the power cut to the real files: truncates each tracked file to
  /// its synced size and deletes files whose name is not durable. Uses POSIX
  /// calls directly (the store is closed by then). Errors: kIo.
  Status power_cut() const;

  /// Rebuilds a model from a journal written by FaultFs (an incomplete last
  /// line is ignored). Errors: kIo (unreadable), kCorrupt (malformed line).
  static Result<std::unique_ptr<DurabilityModel>> load_journal(const std::string& path);

  /// Number of tracked files (tests).
  size_t tracked_files() const;

 private:
  struct FileState {
    uint64_t synced_bytes = 0;
    bool name_durable = false;
  };
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
};

enum class Fault : uint8_t { kNone, kNoSpace, kIo };

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  /// `base`: the real file system (rocksdb::FileSystem::Default() when null).
  /// `journal_path`: when non-empty, every durability event is also appended
  /// to this file (see the file comment). Errors of opening it surface as
  /// IOError on the first file operation.
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = nullptr,
                   std::string journal_path = "");
  ~FaultFs() override;

  const char* Name() const override { return "CsetFaultFs"; }

  // Controls.
  /// Bytes that appends may still write in total (nullopt = unlimited).
  void set_free_bytes(std::optional<uint64_t> bytes);
  void set_write_fault(Fault fault);
  void set_sync_fault(Fault fault);
  /// The power cut begins: from now on every mutation fails with IOError and
  /// changes nothing on disk. Irreversible for this FaultFs.
  void deactivate();
  bool active() const { return active_.load(); }
  /// Applies the model: call after deactivate() and after the store is closed.
  Status power_cut() const { return model_.power_cut(); }
  const DurabilityModel& model() const { return model_; }

  // Counters (tests): successful file syncs, of which of WAL files (*.log),
  // and directory syncs.
  uint64_t file_syncs() const { return file_syncs_.load(); }
  uint64_t wal_syncs() const { return wal_syncs_.load(); }
  uint64_t dir_syncs() const { return dir_syncs_.load(); }

  // rocksdb::FileSystem overrides.
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& d, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& s, const std::string& t,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& s, const std::string& t,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o,
                                 uint64_t* free, rocksdb::IODebugContext* dbg) override;

  // Used by the file wrappers (not for callers).
  /// Checks active and the write fault; reserves up to `want` bytes of the
  /// budget and returns how many may be written (< want: write them, then
  /// fail with NoSpace).
  rocksdb::IOStatus reserve_append(size_t want, size_t* allowed);
  rocksdb::IOStatus check_sync() const;
  rocksdb::IOStatus check_mutation() const;
  void record_sync(const std::string& path, uint64_t size);
  void record_dir_sync(const std::string& dir);

 private:
  void journal(const std::string& line);
  void record_create(const std::string& path);

  std::atomic<bool> active_{true};
  std::atomic<Fault> write_fault_{Fault::kNone};
  std::atomic<Fault> sync_fault_{Fault::kNone};
  std::mutex budget_mu_;
  std::optional<uint64_t> free_bytes_;
  std::atomic<uint64_t> file_syncs_{0};
  std::atomic<uint64_t> wal_syncs_{0};
  std::atomic<uint64_t> dir_syncs_{0};
  DurabilityModel model_;
  std::mutex journal_mu_;
  int journal_fd_ = -1;
  std::atomic<int> journal_errno_{0};
};

}  // namespace cset::storage
