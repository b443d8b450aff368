#include "storage/fault_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace cset::storage {

namespace {

std::string normal(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string parent_of(const std::string& path) {
  const std::string p = normal(path);
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

bool is_wal(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".log") == 0;
}

rocksdb::IOStatus fault_status(Fault fault, const char* what) {
  switch (fault) {
    case Fault::kNoSpace:
      return rocksdb::IOStatus::NoSpace("injected", what);
    case Fault::kIo:
      return rocksdb::IOStatus::IOError("injected I/O error", what);
    case Fault::kNone:
      break;
  }
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus inactive_status() {
  return rocksdb::IOStatus::IOError("simulated power cut: file system inactive");
}

}  // namespace

// ---------------------------------------------------------------------------
// DurabilityModel

void DurabilityModel::on_create(const std::string& path) {
  std::lock_guard lock(mu_);
  files_[normal(path)] = FileState{0, false};
}

void DurabilityModel::on_reopen(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = files_.try_emplace(normal(path), FileState{size, true});
  if (!inserted) it->second.synced_bytes = std::min(it->second.synced_bytes, size);
}

void DurabilityModel::on_sync(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = files_.try_emplace(normal(path), FileState{size, true});
  if (!inserted) it->second.synced_bytes = size;
}

void DurabilityModel::on_dir_sync(const std::string& dir) {
  std::lock_guard lock(mu_);
  const std::string d = normal(dir);
  for (auto& [path, state] : files_) {
    if (parent_of(path) == d) state.name_durable = true;
  }
}

void DurabilityModel::on_rename(const std::string& from, const std::string& to, bool to_existed,
                                bool link) {
  std::lock_guard lock(mu_);
  const std::string f = normal(from);
  const std::string t = normal(to);
  FileState source{0, true};  // untracked: a file of an earlier generation, all of it durable
  auto it = files_.find(f);
  if (it != files_.end()) {
    source = it->second;
    if (!link) files_.erase(it);
  } else {
    // An untracked source keeps its full current size.
    struct stat st;
    source.synced_bytes = ::stat(t.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  bool to_durable = to_existed;
  auto old = files_.find(t);
  if (old != files_.end()) to_durable = old->second.name_durable;
  files_[t] = FileState{source.synced_bytes, source.name_durable || to_durable};
}

void DurabilityModel::on_delete(const std::string& path) {
  std::lock_guard lock(mu_);
  files_.erase(normal(path));
}

size_t DurabilityModel::tracked_files() const {
  std::lock_guard lock(mu_);
  return files_.size();
}

Status DurabilityModel::power_cut() const {
  std::lock_guard lock(mu_);
  for (const auto& [path, state] : files_) {
    if (!state.name_durable) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return Status(Code::kIo, "power cut: unlink " + path + ": " + std::strerror(errno));
      }
      continue;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return Status(Code::kIo, "power cut: stat " + path + ": " + std::strerror(errno));
    }
    if (static_cast<uint64_t>(st.st_size) > state.synced_bytes &&
        ::truncate(path.c_str(), static_cast<off_t>(state.synced_bytes)) != 0) {
      return Status(Code::kIo, "power cut: truncate " + path + ": " + std::strerror(errno));
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<DurabilityModel>> DurabilityModel::load_journal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kIo, "cannot read journal " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  auto model = std::make_unique<DurabilityModel>();
  size_t pos = 0;
  while (true) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // incomplete last line (killed mid-write)
    std::vector<std::string> f;
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    size_t start = 0;
    while (true) {
      size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    auto bad = [&] { return Status(Code::kCorrupt, "journal " + path + ": bad line: " + line); };
    auto number = [&](const std::string& s, uint64_t* v) {
      if (s.empty()) return false;
      char* e = nullptr;
      *v = std::strtoull(s.c_str(), &e, 10);
      return *e == '\0';
    };
    uint64_t n = 0;
    if (f[0] == "C" && f.size() == 2) {
      model->on_create(f[1]);
    } else if (f[0] == "O" && f.size() == 3 && number(f[2], &n)) {
      model->on_reopen(f[1], n);
    } else if (f[0] == "S" && f.size() == 3 && number(f[2], &n)) {
      model->on_sync(f[1], n);
    } else if (f[0] == "D" && f.size() == 2) {
      model->on_dir_sync(f[1]);
    } else if ((f[0] == "R" || f[0] == "L") && f.size() == 4) {
      model->on_rename(f[1], f[2], f[3] == "1", f[0] == "L");
    } else if (f[0] == "X" && f.size() == 2) {
      model->on_delete(f[1]);
    } else {
      return bad();
    }
  }
  return model;
}

// ---------------------------------------------------------------------------
// File wrappers

namespace {

class TrackedWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedWritableFile(std::unique_ptr<rocksdb::FSWritableFile>&& target, FaultFs* fs,
                      std::string path, uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(target)),
        fs_(fs),
        path_(std::move(path)),
        size_(size) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    return append(data, [&](const rocksdb::Slice& d) {
      return FSWritableFileOwnerWrapper::Append(d, o, dbg);
    });
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& /*info*/,
                           rocksdb::IODebugContext* dbg) override {
    return Append(data, o, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->check_mutation();
    if (!s.ok()) return s;
    size_t allowed = 0;
    s = fs_->reserve_append(data.size(), &allowed);
    if (!s.ok()) return s;
    rocksdb::Slice part(data.data(), allowed);
    s = FSWritableFileOwnerWrapper::PositionedAppend(part, offset, o, dbg);
    if (!s.ok()) return s;
    uint64_t end = offset + allowed;
    uint64_t cur = size_.load();
    while (end > cur && !size_.compare_exchange_weak(cur, end)) {
    }
    if (allowed < data.size()) return rocksdb::IOStatus::NoSpace("injected: disk full", path_);
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& o,
                                     const rocksdb::DataVerificationInfo& /*info*/,
                                     rocksdb::IODebugContext* dbg) override {
    return PositionedAppend(data, offset, o, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->check_mutation();
    if (!s.ok()) return s;
    s = FSWritableFileOwnerWrapper::Truncate(size, o, dbg);
    if (s.ok()) size_.store(size);
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return sync([&] { return FSWritableFileOwnerWrapper::Sync(o, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return sync([&] { return FSWritableFileOwnerWrapper::Fsync(o, dbg); });
  }
  rocksdb::IOStatus RangeSync(uint64_t /*offset*/, uint64_t /*nbytes*/,
                              const rocksdb::IOOptions& /*o*/,
                              rocksdb::IODebugContext* /*dbg*/) override {
    // sync_file_range gives no durability guarantee (no metadata, no device
    // cache flush): the model ignores it, so it may as well not happen.
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    // Closing after a power cut must not flush buffered data to disk; the
    // POSIX writer has no user-space buffer, so closing is harmless.
    return FSWritableFileOwnerWrapper::Close(o, dbg);
  }

 private:
  template <typename Fn>
  rocksdb::IOStatus append(const rocksdb::Slice& data, Fn&& write) {
    rocksdb::IOStatus s = fs_->check_mutation();
    if (!s.ok()) return s;
    size_t allowed = 0;
    s = fs_->reserve_append(data.size(), &allowed);
    if (!s.ok()) return s;
    if (allowed > 0) {
      s = write(rocksdb::Slice(data.data(), allowed));
      if (!s.ok()) return s;
      size_.fetch_add(allowed);
    }
    if (allowed < data.size()) return rocksdb::IOStatus::NoSpace("injected: disk full", path_);
    return rocksdb::IOStatus::OK();
  }

  template <typename Fn>
  rocksdb::IOStatus sync(Fn&& do_sync) {
    rocksdb::IOStatus s = fs_->check_sync();
    if (!s.ok()) return s;
    const uint64_t size = size_.load();
    s = do_sync();
    if (s.ok()) fs_->record_sync(path_, size);
    return s;
  }

  FaultFs* fs_;
  const std::string path_;
  std::atomic<uint64_t> size_;
};

class TrackedRandomRWFile : public rocksdb::FSRandomRWFileOwnerWrapper {
 public:
  TrackedRandomRWFile(std::unique_ptr<rocksdb::FSRandomRWFile>&& target, FaultFs* fs,
                      std::string path)
      : FSRandomRWFileOwnerWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}

  rocksdb::IOStatus Write(uint64_t offset, const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->check_mutation();
    if (!s.ok()) return s;
    size_t allowed = 0;
    s = fs_->reserve_append(data.size(), &allowed);
    if (!s.ok()) return s;
    s = FSRandomRWFileOwnerWrapper::Write(offset, rocksdb::Slice(data.data(), allowed), o, dbg);
    if (s.ok() && allowed < data.size()) {
      return rocksdb::IOStatus::NoSpace("injected: disk full", path_);
    }
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return sync([&] { return FSRandomRWFileOwnerWrapper::Sync(o, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return sync([&] { return FSRandomRWFileOwnerWrapper::Fsync(o, dbg); });
  }

 private:
  template <typename Fn>
  rocksdb::IOStatus sync(Fn&& do_sync) {
    rocksdb::IOStatus s = fs_->check_sync();
    if (!s.ok()) return s;
    s = do_sync();
    struct stat st;
    if (s.ok() && ::stat(path_.c_str(), &st) == 0) {
      // Overwrites inside the synced range are not modelled (RocksDB does
      // not use random-write files with our options).
      fs_->record_sync(path_, static_cast<uint64_t>(st.st_size));
    }
    return s;
  }

  FaultFs* fs_;
  const std::string path_;
};

class TrackedDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  TrackedDirectory(std::unique_ptr<rocksdb::FSDirectory>&& target, FaultFs* fs, std::string name)
      : FSDirectoryWrapper(std::move(target)), fs_(fs), name_(std::move(name)) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->check_sync();
    if (!s.ok()) return s;
    s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->record_dir_sync(name_);
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& d) override {
    rocksdb::IOStatus s = fs_->check_sync();
    if (!s.ok()) return s;
    s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
    if (s.ok()) fs_->record_dir_sync(name_);
    return s;
  }

 private:
  FaultFs* fs_;
  const std::string name_;
};

}  // namespace

// ---------------------------------------------------------------------------
// FaultFs

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base, std::string journal_path)
    : FileSystemWrapper(base ? base : rocksdb::FileSystem::Default()) {
  if (!journal_path.empty()) {
    journal_fd_ = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (journal_fd_ < 0) journal_errno_.store(errno);
  }
}

FaultFs::~FaultFs() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

void FaultFs::set_free_bytes(std::optional<uint64_t> bytes) {
  std::lock_guard lock(budget_mu_);
  free_bytes_ = bytes;
}

void FaultFs::set_write_fault(Fault fault) { write_fault_.store(fault); }
void FaultFs::set_sync_fault(Fault fault) { sync_fault_.store(fault); }
void FaultFs::deactivate() { active_.store(false); }

rocksdb::IOStatus FaultFs::check_mutation() const {
  if (!active_.load()) return inactive_status();
  if (const int err = journal_errno_.load(); err != 0) {
    return rocksdb::IOStatus::IOError("fault fs journal", std::strerror(err));
  }
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultFs::check_sync() const {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  return fault_status(sync_fault_.load(), "sync");
}

rocksdb::IOStatus FaultFs::reserve_append(size_t want, size_t* allowed) {
  rocksdb::IOStatus s = fault_status(write_fault_.load(), "write");
  if (!s.ok()) return s;
  std::lock_guard lock(budget_mu_);
  if (!free_bytes_) {
    *allowed = want;
    return rocksdb::IOStatus::OK();
  }
  *allowed = static_cast<size_t>(std::min<uint64_t>(want, *free_bytes_));
  *free_bytes_ -= *allowed;
  return rocksdb::IOStatus::OK();
}

void FaultFs::journal(const std::string& line) {
  if (journal_fd_ < 0) return;
  std::lock_guard lock(journal_mu_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(journal_fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      journal_errno_.store(errno);  // later mutations fail: the model would be wrong
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void FaultFs::record_create(const std::string& path) {
  model_.on_create(path);
  journal("C\t" + normal(path) + "\n");
}

void FaultFs::record_sync(const std::string& path, uint64_t size) {
  file_syncs_.fetch_add(1);
  if (is_wal(path)) wal_syncs_.fetch_add(1);
  model_.on_sync(path, size);
  journal("S\t" + normal(path) + "\t" + std::to_string(size) + "\n");
}

void FaultFs::record_dir_sync(const std::string& dir) {
  dir_syncs_.fetch_add(1);
  model_.on_dir_sync(dir);
  journal("D\t" + normal(dir) + "\n");
}

rocksdb::IOStatus FaultFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                           std::unique_ptr<rocksdb::FSWritableFile>* r,
                                           rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  record_create(f);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->NewWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<TrackedWritableFile>(std::move(file), this, f, 0);
  return s;
}

rocksdb::IOStatus FaultFs::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                              std::unique_ptr<rocksdb::FSWritableFile>* r,
                                              rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  uint64_t size = 0;
  if (!target()->GetFileSize(f, rocksdb::IOOptions(), &size, dbg).ok()) {
    size = 0;
    record_create(f);
  } else {
    model_.on_reopen(f, size);
    journal("O\t" + normal(f) + "\t" + std::to_string(size) + "\n");
  }
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReopenWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<TrackedWritableFile>(std::move(file), this, f, size);
  return s;
}

rocksdb::IOStatus FaultFs::ReuseWritableFile(const std::string& f, const std::string& old,
                                             const rocksdb::FileOptions& o,
                                             std::unique_ptr<rocksdb::FSWritableFile>* r,
                                             rocksdb::IODebugContext* dbg) {
  // Recycling renames `old` to `f` and overwrites it: model it as a deletion
  // and a fresh file (RocksStore disables recycling anyway).
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  record_create(f);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReuseWritableFile(f, old, o, &file, dbg);
  if (!s.ok()) return s;
  model_.on_delete(old);
  journal("X\t" + normal(old) + "\n");
  *r = std::make_unique<TrackedWritableFile>(std::move(file), this, f, 0);
  return s;
}

rocksdb::IOStatus FaultFs::NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                           std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                           rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  if (!target()->FileExists(f, rocksdb::IOOptions(), dbg).ok()) record_create(f);
  std::unique_ptr<rocksdb::FSRandomRWFile> file;
  s = target()->NewRandomRWFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<TrackedRandomRWFile>(std::move(file), this, f);
  return s;
}

rocksdb::IOStatus FaultFs::NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                        std::unique_ptr<rocksdb::FSDirectory>* r,
                                        rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, o, &dir, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<TrackedDirectory>(std::move(dir), this, name);
  return s;
}

rocksdb::IOStatus FaultFs::DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                                      rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  s = target()->DeleteFile(f, o, dbg);
  if (s.ok()) {
    model_.on_delete(f);
    journal("X\t" + normal(f) + "\n");
  }
  return s;
}

rocksdb::IOStatus FaultFs::Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                                    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  s = target()->Truncate(f, size, o, dbg);
  if (s.ok()) {
    // Durable only after a sync; until then the model keeps at most `size`.
    model_.on_reopen(f, size);
    journal("O\t" + normal(f) + "\t" + std::to_string(size) + "\n");
  }
  return s;
}

rocksdb::IOStatus FaultFs::CreateDir(const std::string& d, const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  return target()->CreateDir(d, o, dbg);
}

rocksdb::IOStatus FaultFs::CreateDirIfMissing(const std::string& d, const rocksdb::IOOptions& o,
                                              rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  return target()->CreateDirIfMissing(d, o, dbg);
}

rocksdb::IOStatus FaultFs::DeleteDir(const std::string& d, const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus s = check_mutation();
  if (!s.ok()) return s;
  return target()->DeleteDir(d, o, dbg);
}

rocksdb::IOStatus FaultFs::RenameFile(const std::string& s, const std::string& t,
                                      const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus st = check_mutation();
  if (!st.ok()) return st;
  const bool existed = target()->FileExists(t, o, dbg).ok();
  st = target()->RenameFile(s, t, o, dbg);
  if (st.ok()) {
    model_.on_rename(s, t, existed, /*link=*/false);
    journal("R\t" + normal(s) + "\t" + normal(t) + "\t" + (existed ? "1" : "0") + "\n");
  }
  return st;
}

rocksdb::IOStatus FaultFs::LinkFile(const std::string& s, const std::string& t,
                                    const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus st = check_mutation();
  if (!st.ok()) return st;
  const bool existed = target()->FileExists(t, o, dbg).ok();
  st = target()->LinkFile(s, t, o, dbg);
  if (st.ok()) {
    model_.on_rename(s, t, existed, /*link=*/true);
    journal("L\t" + normal(s) + "\t" + normal(t) + "\t" + (existed ? "1" : "0") + "\n");
  }
  return st;
}

rocksdb::IOStatus FaultFs::GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o,
                                        uint64_t* free, rocksdb::IODebugContext* dbg) {
  {
    std::lock_guard lock(budget_mu_);
    if (free_bytes_) {
      *free = *free_bytes_;
      return rocksdb::IOStatus::OK();
    }
  }
  return target()->GetFreeSpace(path, o, free, dbg);
}

}  // namespace cset::storage
