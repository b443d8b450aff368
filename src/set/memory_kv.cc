#include "set/memory_kv.h"

#include <atomic>

namespace cset::set {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;

size_t space_index(Space s) { return static_cast<size_t>(s); }

Status scan_map(const Map& map, std::string_view start, std::string_view end,
                const std::function<bool(std::string_view, std::string_view)>& fn) {
  for (auto it = map.lower_bound(start); it != map.end(); ++it) {
    if (!end.empty() && std::string_view(it->first) >= end) break;
    if (!fn(it->first, it->second)) break;
  }
  return Status::ok();
}

// A view over one immutable version of the data.
class MemoryView final : public KvView {
 public:
  explicit MemoryView(std::shared_ptr<const std::array<Map, 2>> data) : data_(std::move(data)) {}

  Result<std::optional<std::string>> get(Space s, std::string_view key) const override {
    const Map& map = (*data_)[space_index(s)];
    auto it = map.find(key);
    if (it == map.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Status scan(Space s, std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    return scan_map((*data_)[space_index(s)], start, end, fn);
  }

 private:
  std::shared_ptr<const std::array<Map, 2>> data_;
};

}  // namespace

MemoryKv::MemoryKv(Options options) : options_(options), data_(std::make_shared<Data>()) {}

std::shared_ptr<const MemoryKv::Data> MemoryKv::snapshot() const {
  std::shared_lock lock(mu_);
  return data_;
}

Result<std::optional<std::string>> MemoryKv::get(Space s, std::string_view key) const {
  return MemoryView(snapshot()).get(s, key);
}

Status MemoryKv::scan(Space s, std::string_view start, std::string_view end,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const {
  // The scan runs over a shared immutable version without holding the lock,
  // so `fn` may call back into this object.
  return MemoryView(snapshot()).scan(s, start, end, fn);
}

std::unique_ptr<KvView> MemoryKv::view() const { return std::make_unique<MemoryView>(snapshot()); }

size_t MemoryKv::size(Space s) const { return (*snapshot())[space_index(s)].size(); }

void MemoryKv::apply(Data& data, const WriteBatch& batch) {
  for (const WriteOp& op : batch.ops) {
    Map& map = data[space_index(op.space)];
    if (op.kind == WriteOp::Kind::kPut) {
      map.insert_or_assign(op.key, op.value);
    } else {
      auto it = map.find(op.key);
      if (it != map.end()) map.erase(it);
    }
  }
}

Status MemoryKv::write(const WriteBatch& batch, bool sync) {
  std::unique_lock lock(mu_);
  if (!write_error_.is_ok()) return write_error_;
  if (data_.use_count() > 1) {
    // A reader or view holds this version: write a fresh copy. The acquire
    // fence pairs with the release in a reader's shared_ptr decrement, so a
    // version seen as unshared is really no longer read.
    data_ = std::make_shared<Data>(*data_);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  apply(*data_, batch);
  if (options_.model_power_loss) {
    unsynced_.push_back(batch);
    if (sync) {
      for (const WriteBatch& b : unsynced_) apply(durable_, b);
      unsynced_.clear();
    }
  }
  return Status::ok();
}

Status MemoryKv::replace_all(const KvView& source) {
  auto fresh = std::make_shared<Data>();
  for (Space s : {Space::kData, Space::kMeta}) {
    Map& map = (*fresh)[space_index(s)];
    Status st = source.scan(s, "", "", [&](std::string_view k, std::string_view v) {
      map.emplace_hint(map.end(), std::string(k), std::string(v));
      return true;
    });
    if (!st.is_ok()) return st;
  }
  std::unique_lock lock(mu_);
  if (!write_error_.is_ok()) return write_error_;
  data_ = std::move(fresh);
  if (options_.model_power_loss) {  // a snapshot install is durable when it returns
    durable_ = *data_;
    unsynced_.clear();
  }
  return Status::ok();
}

Status MemoryKv::drop_unsynced() {
  if (!options_.model_power_loss) {
    return Status(Code::kInvalid, "drop_unsynced needs Options::model_power_loss");
  }
  std::unique_lock lock(mu_);
  data_ = std::make_shared<Data>(durable_);
  unsynced_.clear();
  return Status::ok();
}

void MemoryKv::set_write_error(Status error) {
  std::unique_lock lock(mu_);
  write_error_ = std::move(error);
}

}  // namespace cset::set
