// Client connections: RESP in, commands executed one at a time in the order
// sent, replies out. Memory per connection is bounded: reading pauses while
// too many commands wait or too many reply bytes are unsent (a client that
// never reads its replies stops being read).
#include <spdlog/spdlog.h>

#include <variant>

#include "resp/commands.h"
#include "resp/glob.h"
#include "resp/parser.h"
#include "resp/writer.h"
#include "server/server_impl.h"
#include "set/command.h"

namespace cset::server {

namespace {

constexpr size_t kMaxQueuedCommands = 4096;
constexpr size_t kMaxUnsentBytes = 8 << 20;
constexpr size_t kReadChunk = 64 << 10;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// SCAN/SSCAN cursors are unsigned 64-bit decimal integers (what Redis
// clients parse) that encode where the scan resumes: up to the first 7 bytes
// of the next key or member, big-endian, shifted left 3 bits, with the
// number of bytes in the low 3 bits. "0" is the start and the end. A
// position longer than 7 bytes resumes from its 7-byte prefix, so a few
// items may be returned again (SCAN allows that); the server makes every
// page end at a position whose prefix differs from where it started, so a
// scan always progresses.
constexpr size_t kCursorPrefixBytes = 7;

std::string cursor_prefix(const std::string& position) {
  return position.substr(0, std::min(position.size(), kCursorPrefixBytes));
}

std::string encode_cursor(const std::string& position) {
  std::string p = cursor_prefix(position);
  uint64_t v = 0;
  for (size_t i = 0; i < kCursorPrefixBytes; ++i) {
    v = (v << 8) | (i < p.size() ? static_cast<uint8_t>(p[i]) : 0);
  }
  v = (v << 3) | p.size();
  return std::to_string(v);
}

std::optional<std::string> decode_cursor(const std::string& cursor) {
  if (cursor.empty() || cursor.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : cursor) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  size_t len = v & 7;
  if (len > kCursorPrefixBytes) return std::nullopt;
  uint64_t bytes = v >> 3;
  std::string out(kCursorPrefixBytes, '\0');
  for (size_t i = kCursorPrefixBytes; i-- > 0;) {
    out[i] = static_cast<char>(bytes & 0xff);
    bytes >>= 8;
  }
  if (bytes != 0) return std::nullopt;
  out.resize(len);
  return out;
}

/// Extends a scan page until its next position has another cursor prefix
/// than `start` (or the scan ends), so that resuming from the prefix moves on.
template <typename Fetch>
Result<set::ScanPage> scan_with_progress(const std::string& start, Fetch fetch) {
  auto page = fetch(start);
  if (!page.ok()) return page;
  while (page->next_cursor && cursor_prefix(*page->next_cursor) == cursor_prefix(start) &&
         !start.empty() && cursor_prefix(start).size() == kCursorPrefixBytes) {
    auto more = fetch(*page->next_cursor);
    if (!more.ok()) return more;
    page->items.insert(page->items.end(), more->items.begin(), more->items.end());
    page->next_cursor = more->next_cursor;
  }
  return page;
}

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl* server, asio::ip::tcp::socket socket, uint64_t id)
      : server_(server), socket_(std::move(socket)), id_(id), parser_(server->limits()) {
    parser_.set_authenticated(server_->options().requirepass.empty());
    authenticated_ = server_->options().requirepass.empty();
  }

  void start() { read_more(); }

  void close() {
    closed_ = true;
    asio::error_code ec;
    socket_.close(ec);
  }

 private:
  void read_more() {
    if (closed_ || reading_ || close_after_write_) return;
    if (queue_.size() >= kMaxQueuedCommands || out_.size() >= kMaxUnsentBytes) return;
    reading_ = true;
    auto buf = parser_.prepare(kReadChunk);
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf.data(), buf.size()),
                            [this, self](const asio::error_code& ec, size_t n) {
                              reading_ = false;
                              if (ec) {
                                finish();
                                return;
                              }
                              parser_.commit(n);
                              drain_parser();
                              process();
                              read_more();
                            });
  }

  void drain_parser() {
    for (;;) {
      resp::ParseResult r = parser_.next();
      if (r.status == resp::ParseStatus::kNeedMore) return;
      Item item;
      item.arrival_ms = server_->now_ms();
      if (r.status == resp::ParseStatus::kCommand) {
        item.args.assign(r.args.begin(), r.args.end());
      } else {
        item.error = std::string(r.error);
        item.fatal = r.status == resp::ParseStatus::kProtocolError;
      }
      queue_.push_back(std::move(item));
      if (queue_.back().fatal) return;
    }
  }

  struct Item {
    std::vector<std::string> args;
    std::string error;
    bool fatal = false;
    uint64_t arrival_ms = 0;  // when it was read off the socket
  };

  void process() {
    // Replies wait while too many bytes are unsent: a client that does not
    // read its replies stops being served (and read), bounding memory.
    while (!busy_ && !queue_.empty() && !closed_ && out_.size() < kMaxUnsentBytes) {
      Item item = std::move(queue_.front());
      queue_.pop_front();
      if (!item.error.empty()) {
        resp::ReplyWriter w(&out_, protocol_, server_->error_counts());
        w.error(item.error);
        if (item.fatal) {
          close_after_write_ = true;
          queue_.clear();
        }
        continue;
      }
      arrival_ms_ = item.arrival_ms;
      execute(item.args);
    }
    flush();
    read_more();
  }

  void reply_done() {
    busy_ = false;
    process();
  }

  void execute(const std::vector<std::string>& args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    resp::ReplyWriter w(&out_, protocol_, server_->error_counts());
    auto spec = resp::resolve_command(views);
    if (!spec.ok()) {
      w.error(spec.status());
      return;
    }
    if (!authenticated_ && !((*spec)->flags & resp::kFlagNoAuth)) {
      w.error("NOAUTH Authentication required.");
      return;
    }
    auto parsed = resp::parse_request(views, server_->limits());
    if (!parsed.ok()) {
      w.error(parsed.status());
      return;
    }
    const bool needs_cluster = (*spec)->flags & (resp::kFlagWrite | resp::kFlagReadonly);
    if (server_->removed() && needs_cluster) {
      w.error("REMOVED this node has been removed from the cluster");
      return;
    }
    if (server_->waiting_to_join() && needs_cluster) {
      w.error(
          "NOQUORUM this node has not been added to a cluster yet (started with --join: "
          "add it with CSET.NODE ADD on a member); nothing changed");
      return;
    }
    std::visit([&](auto& req) { run(req); }, parsed->request);
  }

  // --- Writes -------------------------------------------------------------

  void write_command(
      set::Command cmd,
      std::function<void(const Status&, const set::ApplyResult&, resp::ReplyWriter&)> reply) {
    busy_ = true;
    auto self = shared_from_this();
    server_->submit_write(
        set::encode_command(cmd),
        [this, self, reply](const Status& s, const set::ApplyResult& r) {
          if (closed_) return;
          resp::ReplyWriter w(&out_, protocol_, server_->error_counts());
          if (!s.is_ok()) {
            w.error(s);
          } else {
            reply(s, r, w);
          }
          reply_done();
        },
        arrival_ms_);
  }

  using WriteReply = void (*)(const Status&, const set::ApplyResult&, resp::ReplyWriter&);

  static void reply_count(const Status&, const set::ApplyResult& a, resp::ReplyWriter& w) {
    w.integer(static_cast<int64_t>(a.count));
  }
  static void reply_strict_add(const Status&, const set::ApplyResult& a, resp::ReplyWriter& w) {
    if (a.status.code() == Code::kExists) {
      w.error("EXISTS member already present");
    } else {
      w.ok();
    }
  }
  static void reply_ok(const Status&, const set::ApplyResult&, resp::ReplyWriter& w) { w.ok(); }

  // The log command of each write and how its result is answered. A retry in
  // a session (CSET.SEQ) gets the stored result, so the same reply bytes.
  static std::pair<set::Command, WriteReply> write_of(resp::Sadd& r) {
    return {set::Command::add(std::move(r.key), std::move(r.members)), reply_count};
  }
  static std::pair<set::Command, WriteReply> write_of(resp::Srem& r) {
    return {set::Command::rem(std::move(r.key), std::move(r.members)), reply_count};
  }
  static std::pair<set::Command, WriteReply> write_of(resp::Del& r) {
    return {set::Command::del(std::move(r.keys)), reply_count};
  }
  static std::pair<set::Command, WriteReply> write_of(resp::CsetAdd& r) {
    return {set::Command::add_strict(std::move(r.key), std::move(r.member)), reply_strict_add};
  }
  static std::pair<set::Command, WriteReply> write_of(resp::CsetRem& r) {
    return {set::Command::rem(std::move(r.key), {std::move(r.member)}), reply_ok};
  }

  template <typename W>
  void run_write(W& r) {
    auto [command, reply] = write_of(r);
    write_command(std::move(command), reply);
  }
  void run(resp::Sadd& r) { run_write(r); }
  void run(resp::Srem& r) { run_write(r); }
  void run(resp::Del& r) { run_write(r); }
  void run(resp::CsetAdd& r) { run_write(r); }
  void run(resp::CsetRem& r) { run_write(r); }

  // Client sessions (docs/sessions.md): the session id is the log index of
  // the REGISTER entry.
  void run(resp::CsetSession& r) {
    write_command(set::Command::register_session(r.timeout_ms),
                  [](const Status&, const set::ApplyResult& a, resp::ReplyWriter& w) {
                    w.integer(static_cast<int64_t>(a.index));
                  });
  }
  void run(resp::CsetSeq& r) {
    auto [command, reply] = std::visit([](auto& inner) { return write_of(inner); }, r.write);
    command.session = set::SessionHeader{r.session, r.sequence, r.lowest_unacked};
    write_command(std::move(command), reply);
  }

  // --- Reads --------------------------------------------------------------

  void read_command(std::function<void(resp::ReplyWriter&)> reply) {
    busy_ = true;
    auto self = shared_from_this();
    server_->submit_read(
        [this, self, reply](const Status& s) {
          if (closed_) return;
          resp::ReplyWriter w(&out_, protocol_, server_->error_counts());
          if (!s.is_ok()) {
            w.error(s);
          } else {
            reply(w);
          }
          reply_done();
        },
        arrival_ms_);
  }

  set::StateMachine& sm() { return server_->sm(); }

  void run(resp::Sismember& r) {
    read_command([this, r](resp::ReplyWriter& w) {
      auto v = sm().contains(r.key, r.member);
      if (!v.ok()) return w.error(v.status());
      w.integer(*v ? 1 : 0);
    });
  }
  void run(resp::Smismember& r) {
    read_command([this, r](resp::ReplyWriter& w) {
      std::vector<int> out;
      for (const auto& m : r.members) {
        auto v = sm().contains(r.key, m);
        if (!v.ok()) return w.error(v.status());
        out.push_back(*v ? 1 : 0);
      }
      w.array_header(out.size());
      for (int v : out) w.integer(v);
    });
  }
  void run(resp::Smembers& r) {
    read_command([this, r](resp::ReplyWriter& w) {
      auto v = sm().members(r.key, server_->options().max_reply_members);
      if (!v.ok()) {
        if (v.code() == Code::kTooBig) {
          return w.error("TOOBIG the set has more than " +
                         std::to_string(server_->options().max_reply_members) +
                         " members (--max-reply-members); use SSCAN");
        }
        return w.error(v.status());
      }
      if (protocol_ == 3) {
        w.set_header(v->size());
        for (const auto& m : *v) w.bulk_string(m);
      } else {
        w.bulk_array(std::span<const std::string>(*v));
      }
    });
  }
  void run(resp::Scard& r) {
    read_command([this, r](resp::ReplyWriter& w) {
      auto v = sm().size(r.key);
      if (!v.ok()) return w.error(v.status());
      w.integer(static_cast<int64_t>(*v));
    });
  }
  void run(resp::Exists& r) {
    read_command([this, r](resp::ReplyWriter& w) {
      int64_t n = 0;
      for (const auto& k : r.keys) {
        auto v = sm().exists(k);
        if (!v.ok()) return w.error(v.status());
        n += *v ? 1 : 0;
      }
      w.integer(n);
    });
  }
  void run(resp::Sscan& r) {
    auto start = decode_cursor(r.cursor);
    if (!start) {
      resp::ReplyWriter w(&out_, protocol_, server_->error_counts());
      return w.error("ERR invalid cursor");
    }
    read_command([this, r, start](resp::ReplyWriter& w) {
      auto page = scan_with_progress(*start, [&](const std::string& from) {
        return sm().scan_members(r.key, from, static_cast<size_t>(r.count));
      });
      if (!page.ok()) return w.error(page.status());
      write_scan(w, *page, r.match);
    });
  }
  void run(resp::Scan& r) {
    auto start = decode_cursor(r.cursor);
    if (!start) {
      resp::ReplyWriter w(&out_, protocol_, server_->error_counts());
      return w.error("ERR invalid cursor");
    }
    read_command([this, r, start](resp::ReplyWriter& w) {
      auto page = scan_with_progress(*start, [&](const std::string& from) {
        return sm().scan_keys(from, static_cast<size_t>(r.count));
      });
      if (!page.ok()) return w.error(page.status());
      if (r.type && *r.type != "set") page->items.clear();
      write_scan(w, *page, r.match);
    });
  }
  void write_scan(resp::ReplyWriter& w, const set::ScanPage& page,
                  const std::optional<std::string>& match) {
    std::vector<std::string> items;
    for (const auto& i : page.items) {
      if (!match || resp::glob_match(*match, i)) items.push_back(i);
    }
    w.array_header(2);
    w.bulk_string(page.next_cursor ? encode_cursor(*page.next_cursor) : "0");
    w.bulk_array(std::span<const std::string>(items));
  }

  // --- Connection and server commands ------------------------------------

  resp::ReplyWriter writer() {
    return resp::ReplyWriter(&out_, protocol_, server_->error_counts());
  }

  void run(resp::Ping& r) {
    auto w = writer();
    if (r.message) {
      w.bulk_string(*r.message);
    } else {
      w.simple_string("PONG");
    }
  }
  void run(resp::Echo& r) { writer().bulk_string(r.message); }
  void run(resp::Quit&) {
    writer().ok();
    close_after_write_ = true;
    queue_.clear();
  }
  void run(resp::Select&) { writer().ok(); }
  bool check_password(const std::string& user, const std::string& pass) {
    return (user.empty() || user == "default") && pass == server_->options().requirepass;
  }
  void run(resp::Auth& r) {
    auto w = writer();
    if (server_->options().requirepass.empty()) {
      // AUTH default <any>: the default user has no password (Redis's nopass).
      if (r.username && *r.username == "default") return w.ok();
      return w.error(
          "ERR AUTH <password> called without any password configured for the default user. Are "
          "you sure your configuration is correct?");
    }
    if (!check_password(r.username.value_or(""), r.password)) {
      return w.error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    authenticated_ = true;
    parser_.set_authenticated(true);
    w.ok();
  }
  void run(resp::Hello& r) {
    auto w = writer();
    if (r.auth) {
      // Without --requirepass the default user has no password (Redis's
      // "nopass"): any password is accepted for it, as Redis does.
      bool nopass = server_->options().requirepass.empty() && r.auth->username == "default";
      if (!nopass && !check_password(r.auth->username, r.auth->password)) {
        return w.error("WRONGPASS invalid username-password pair or user is disabled.");
      }
      authenticated_ = true;
      parser_.set_authenticated(true);
    }
    if (!authenticated_)
      return w.error(
          "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
          "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
          "RESP protocol version at the same time");
    if (r.protover) protocol_ = *r.protover;
    if (r.setname) name_ = *r.setname;
    resp::ReplyWriter w2(&out_, protocol_);
    w2.map_header(7);
    w2.bulk_string("server");
    w2.bulk_string("redis");
    w2.bulk_string("version");
    w2.bulk_string("7.0.0");
    w2.bulk_string("proto");
    w2.integer(protocol_);
    w2.bulk_string("id");
    w2.integer(static_cast<int64_t>(id_));
    w2.bulk_string("mode");
    w2.bulk_string("standalone");  // Redis Cluster's slot commands are not served
    w2.bulk_string("role");
    w2.bulk_string("master");
    w2.bulk_string("modules");
    w2.array_header(0);
  }
  void run(resp::ClientSetname& r) {
    name_ = r.name;
    writer().ok();
  }
  void run(resp::ClientGetname&) {
    auto w = writer();
    if (name_.empty()) {
      w.null();
    } else {
      w.bulk_string(name_);
    }
  }
  void run(resp::ClientId&) { writer().integer(static_cast<int64_t>(id_)); }
  void run(resp::ClientSetinfo&) { writer().ok(); }
  void run(resp::ClientInfo&) {
    writer().bulk_string("id=" + std::to_string(id_) + " name=" + name_ +
                         " db=0 resp=" + std::to_string(protocol_) + "\n");
  }
  void run(resp::CommandQuery& r) {
    auto w = writer();
    resp::write_command_reply(r, w);
  }
  void run(resp::Help& r) {
    auto w = writer();
    resp::write_help(r, w);
  }
  void run(resp::Info& r) {
    writer().bulk_string(server_->info_text(r.sections, server_->connections_.size()));
  }
  void run(resp::ConfigGet& r) {
    // Answers what a Redis client asks for that has a meaning here.
    std::vector<std::pair<std::string, std::string>> known = {
        {"databases", "1"},
        {"maxclients", "10000"},
        {"appendonly", "yes"},
        {"save", ""},
        {"proto-max-bulk-len", std::to_string(server_->options().max_request_bytes)},
    };
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : known) {
      for (const auto& p : r.patterns) {
        if (resp::glob_match(p, k, true)) {
          out.emplace_back(k, v);
          break;
        }
      }
    }
    auto w = writer();
    w.map_header(out.size());
    for (const auto& [k, v] : out) {
      w.bulk_string(k);
      w.bulk_string(v);
    }
  }
  void run(resp::CsetNodes&) { server_->cset_nodes(&out_, protocol_); }
  void run(resp::CsetStatus&) { server_->cset_status(&out_, protocol_); }
  void admin(const std::string& what, uint64_t id, const std::string& address, bool voter) {
    busy_ = true;
    auto self = shared_from_this();
    server_->admin_command(what, id, address, voter, [this, self](const Status& s) {
      if (closed_) return;
      auto w = writer();
      if (s.is_ok()) {
        w.ok();
      } else {
        w.error(s);
      }
      reply_done();
    });
  }
  void run(resp::CsetNodeAdd& r) { admin("add", r.id, r.address, r.voter); }
  void run(resp::CsetNodePromote& r) { admin("promote", r.id, {}, true); }
  void run(resp::CsetNodeRemove& r) { admin("remove", r.id, {}, false); }
  void run(resp::CsetLeaderTransfer& r) { admin("transfer", r.id, {}, false); }
  template <typename T>
  void run(T&) {
    writer().error("ERR command not supported by this server");
  }

  // --- Output -------------------------------------------------------------

  void flush() {
    if (writing_ || out_.empty() || closed_) {
      if (!writing_ && out_.empty() && close_after_write_) finish();
      return;
    }
    writing_ = true;
    sending_.swap(out_);
    out_.clear();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(sending_),
                      [this, self](const asio::error_code& ec, size_t) {
                        writing_ = false;
                        sending_.clear();
                        if (ec) {
                          finish();
                          return;
                        }
                        process();  // flushes and reads more
                      });
  }

  void finish() {
    if (closed_) return;
    close();
    server_->forget(this);
  }

  Server::Impl* server_;
  asio::ip::tcp::socket socket_;
  uint64_t id_;
  resp::RequestParser parser_;
  std::deque<Item> queue_;
  uint64_t arrival_ms_ = 0;  // of the command being executed
  std::string out_;
  std::string sending_;
  int protocol_ = 2;
  std::string name_;
  bool authenticated_ = false;
  bool busy_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
};

void Server::Impl::start_accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
    if (stopping_) return;
    if (!ec) {
      asio::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      auto c = std::make_shared<Connection>(this, std::move(socket), next_connection_id_++);
      connections_.insert(c);
      metrics_.connections_total++;
      c->start();
    }
    start_accept();
  });
}

void Server::Impl::close_connections() {
  auto all = connections_;
  for (auto& c : all) c->close();
  connections_.clear();
}

void Server::Impl::forget(Connection* c) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == c) {
      connections_.erase(it);
      return;
    }
  }
}

}  // namespace cset::server
