// cset::ConsistentSet and cset::ReplicaStream: the public face of the
// embedded replica (include/cset/consistent_set.h) over embed::Core, and the
// error category of the SPEC.md codes.
#include "cset/consistent_set.h"

#include "embed/core.h"
#include "set/command.h"

namespace cset {

// ---------------------------------------------------------------------------
// Errors.

namespace {

const char* meaning(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kErr:
      return "bad request";
    case Code::kNoQuorum:
      return "no quorum within the write timeout; nothing changed";
    case Code::kTimeout:
      return "the commit was not confirmed in time; the outcome is unknown";
    case Code::kNoSpace:
      return "the replica cannot persist (disk full or I/O error); nothing changed";
    case Code::kBusy:
      return "a configuration change is already in flight";
    case Code::kRemoved:
      return "this replica was removed from the cluster";
    case Code::kTooBig:
      return "key, member or reply over its limit";
    case Code::kExists:
      return "already present";
    case Code::kSessionExpired:
      return "the client session expired";
    case Code::kCorrupt:
      return "corrupt data";
    case Code::kIo:
      return "I/O error";
    case Code::kInvalid:
      return "invalid argument";
    default:
      return "internal error";
  }
}

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "cset"; }
  std::string message(int value) const override {
    Code code = static_cast<Code>(value);
    return std::string(code_word(code)) + ": " + meaning(code);
  }
};

std::error_code to_error(const Status& s) { return make_error_code(s.code()); }

}  // namespace

const std::error_category& error_category() {
  static const Category category;  // immutable: not mutable global state
  return category;
}

std::error_code make_error_code(Code code) {
  if (code == Code::kOk) return {};
  return {static_cast<int>(code), error_category()};
}

// ---------------------------------------------------------------------------
// ReplicaStream.

ReplicaStream::ReplicaStream(std::shared_ptr<embed::StreamState> state,
                             std::weak_ptr<embed::Core> core)
    : state_(std::move(state)), core_(std::move(core)) {}

ReplicaStream::~ReplicaStream() { close(); }

void ReplicaStream::write(std::string_view bytes) {
  if (auto core = core_.lock()) core->stream_input(state_, std::string(bytes));
}

void ReplicaStream::set_output(Output output) {
  if (auto core = core_.lock()) core->stream_set_output(state_, std::move(output));
}

std::string ReplicaStream::read(size_t max_bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::string& buffer = state_->pull_buffer;
  if (max_bytes >= buffer.size()) return std::exchange(buffer, std::string());
  std::string out = buffer.substr(0, max_bytes);
  buffer.erase(0, max_bytes);
  return out;
}

void ReplicaStream::set_on_close(OnClose on_close) {
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->notified) {
      state_->on_close = std::move(on_close);
      return;
    }
    reason = state_->reason;
  }
  if (on_close) on_close(reason);
}

void ReplicaStream::close() {
  if (auto core = core_.lock()) {
    core->stream_close(state_, "closed by the application");
  } else if (embed::Core::mark_closed(*state_, "closed by the application")) {
    embed::Core::notify_closed(*state_);
  }
}

bool ReplicaStream::closed() const { return state_->closed; }
uint64_t ReplicaStream::peer_id() const { return state_->peer; }

std::string ReplicaStream::close_reason() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->reason;
}

// ---------------------------------------------------------------------------
// ConsistentSet.

ConsistentSet::ConsistentSet(std::shared_ptr<embed::Core> core) : core_(std::move(core)) {}

ConsistentSet::~ConsistentSet() { core_->shutdown(); }

Result<std::unique_ptr<ConsistentSet>> ConsistentSet::create(Options options) {
  auto core = embed::Core::open(std::move(options));
  if (!core.ok()) return core.status();
  core.value()->start();
  return std::unique_ptr<ConsistentSet>(new ConsistentSet(std::move(core).value()));
}

namespace {

// ok; EXISTS (and the state machine's other refusals) as the error.
embed::WriteCallback write_done(ConsistentSet::Callback done) {
  return [done = std::move(done)](const Status& s, const set::ApplyResult& r) {
    if (!s.is_ok()) return done(to_error(s));
    done(to_error(r.status));
  };
}

}  // namespace

void ConsistentSet::add(std::string member, Callback done) {
  add(core_->options().default_set, std::move(member), std::move(done));
}

void ConsistentSet::add(std::string key, std::string member, Callback done) {
  const Options& o = core_->options();
  if (key.size() > o.max_key_bytes || member.size() > o.max_member_bytes) {
    core_->post([done = std::move(done)] { done(make_error_code(Code::kTooBig)); });
    return;
  }
  core_->submit_write(set::Command::add_strict(std::move(key), std::move(member)),
                      write_done(std::move(done)));
}

void ConsistentSet::rem(std::string member, Callback done) {
  rem(core_->options().default_set, std::move(member), std::move(done));
}

void ConsistentSet::rem(std::string key, std::string member, Callback done) {
  const Options& o = core_->options();
  if (key.size() > o.max_key_bytes || member.size() > o.max_member_bytes) {
    core_->post([done = std::move(done)] { done(make_error_code(Code::kTooBig)); });
    return;
  }
  core_->submit_write(set::Command::rem(std::move(key), {std::move(member)}),
                      write_done(std::move(done)));
}

void ConsistentSet::contains(std::string member, ContainsCallback done) {
  contains(core_->options().default_set, std::move(member), std::move(done));
}

void ConsistentSet::contains(std::string key, std::string member, ContainsCallback done) {
  embed::Core* core = core_.get();
  core->submit_read([core, key = std::move(key), member = std::move(member),
                     done = std::move(done)](const Status& s) {
    if (!s.is_ok()) return done(to_error(s), false);
    auto r = core->sm().contains(key, member);
    if (!r.ok()) return done(to_error(r.status()), false);
    done({}, *r);
  });
}

void ConsistentSet::members(MembersCallback done) {
  members(core_->options().default_set, std::move(done));
}

void ConsistentSet::members(std::string key, MembersCallback done) {
  embed::Core* core = core_.get();
  core->submit_read([core, key = std::move(key), done = std::move(done)](const Status& s) {
    if (!s.is_ok()) return done(to_error(s), {});
    auto r = core->sm().members(key, core->options().max_reply_members);
    if (!r.ok()) return done(to_error(r.status()), {});
    done({}, std::move(r).value());
  });
}

void ConsistentSet::size(SizeCallback done) { size(core_->options().default_set, std::move(done)); }

void ConsistentSet::size(std::string key, SizeCallback done) {
  embed::Core* core = core_.get();
  core->submit_read([core, key = std::move(key), done = std::move(done)](const Status& s) {
    if (!s.is_ok()) return done(to_error(s), 0);
    auto r = core->sm().size(key);
    if (!r.ok()) return done(to_error(r.status()), 0);
    done({}, *r);
  });
}

size_t ConsistentSet::cluster_size() const { return core_->voters_; }
uint64_t ConsistentSet::id() const { return core_->options().id; }
uint64_t ConsistentSet::leader_id() const { return core_->leader_; }
uint64_t ConsistentSet::applied_index() const { return core_->applied_; }

std::shared_ptr<ReplicaStream> ConsistentSet::create_stream() { return core_->create_stream(); }

}  // namespace cset
