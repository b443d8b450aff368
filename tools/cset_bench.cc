#include "tools/cset_bench.h"

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "resp/reply_reader.h"

namespace cset::cli {
namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

constexpr size_t kReadBytes = 64 << 10;
constexpr auto kReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kTimeoutCheckEvery = std::chrono::milliseconds(50);

const char* op_name(BenchOp op) {
  switch (op) {
    case BenchOp::kFresh:
      return "fresh";
    case BenchOp::kAdd:
      return "add";
    case BenchOp::kRem:
      return "rem";
    case BenchOp::kHas:
      return "has";
    case BenchOp::kMembers:
      return "members";
  }
  return "?";
}

void append_bulk(std::string* out, std::string_view s) {
  out->push_back('$');
  out->append(std::to_string(s.size()));
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

void append_command(std::string* out, std::initializer_list<std::string_view> args) {
  out->push_back('*');
  out->append(std::to_string(args.size()));
  out->append("\r\n");
  for (std::string_view a : args) append_bulk(out, a);
}

struct Pending {
  bool measured_kind = true;  // false for AUTH
  Clock::time_point sent{};   // set when its bytes go to the socket
};

class Bench;

// One connection: keeps up to `pipeline` requests in flight.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Bench* bench, asio::io_context& io, Endpoint endpoint)
      : bench(bench), socket(io), endpoint(std::move(endpoint)) {}

  Bench* bench;
  tcp::socket socket;
  Endpoint endpoint;
  bool open = false;
  bool attempted = false;  // its first connection attempt has finished
  bool writing = false;
  uint64_t generation = 0;  // bumped on every (re)connect; stale handlers see a new one
  std::string out;          // requests not yet handed to the socket
  std::string in_flight_bytes;
  size_t unsent = 0;  // requests in `out` (the last `unsent` entries of inflight)
  std::string in;
  std::deque<Pending> inflight;
  std::array<char, kReadBytes> buffer{};
};

class Bench {
 public:
  explicit Bench(const BenchOptions& o)
      : o_(o), rng_(o.seed != 0 ? o.seed : std::random_device{}()), tick_(io_) {
    samples_.reserve(std::min<uint64_t>(o.requests != 0 ? o.requests : 1 << 20, kMaxSamples));
    run_prefix_ = static_cast<uint32_t>(rng_() & 0xffffff);
    for (const auto& [op, weight] : o.mix) {
      for (uint32_t i = 0; i < weight; ++i) ops_.push_back(op);
    }
  }

  Result<BenchResult> run() {
    for (int i = 0; i < o_.clients; ++i) {
      const Endpoint& e = o_.endpoints[o_.all_endpoints ? i % o_.endpoints.size() : 0];
      auto c = std::make_shared<Conn>(this, io_, e);
      conns_.push_back(c);
      connect(c);
    }
    // The clock starts when every first connection attempt has finished.
    io_.run_one_for(std::chrono::milliseconds(o_.request_timeout_ms));
    while (attempts_done_ < o_.clients &&
           io_.run_one_for(std::chrono::milliseconds(o_.request_timeout_ms)) > 0) {
    }
    if (result_.connections_opened == 0) {
      return Status(Code::kUnavailable, "no connection could be opened (" + first_error_ + ")");
    }
    start_ = Clock::now();
    warmup_end_ = start_ + to_duration(o_.warmup_seconds);
    end_ = o_.requests != 0 ? Clock::time_point::max() : warmup_end_ + to_duration(o_.seconds);
    started_ = true;
    for (auto& c : conns_) fill(c);
    schedule_tick();
    io_.restart();
    io_.run();
    finish();
    return result_;
  }

  // ---- connection lifecycle --------------------------------------------------

  void connect(const std::shared_ptr<Conn>& c) {
    ++c->generation;
    uint64_t gen = c->generation;
    auto resolver = std::make_shared<tcp::resolver>(io_);
    resolver->async_resolve(
        c->endpoint.host, std::to_string(c->endpoint.port),
        [this, c, gen, resolver](const asio::error_code& ec, tcp::resolver::results_type r) {
          if (gen != c->generation) return;
          if (ec) return connect_failed(c, ec.message());
          asio::async_connect(c->socket, r,
                              [this, c, gen](const asio::error_code& ec2, const tcp::endpoint&) {
                                if (gen != c->generation) return;
                                if (ec2) return connect_failed(c, ec2.message());
                                connected(c);
                              });
        });
  }

  void connect_failed(const std::shared_ptr<Conn>& c, const std::string& why) {
    if (first_error_.empty()) first_error_ = c->endpoint.to_string() + ": " + why;
    count_first_attempt(c);
    retry_later(c);
  }

  void connected(const std::shared_ptr<Conn>& c) {
    c->socket.set_option(tcp::no_delay(true));
    c->open = true;
    if (!c->attempted) ++result_.connections_opened;
    count_first_attempt(c);
    if (!c->endpoint.password.empty()) {
      append_command(&c->out, {"AUTH", c->endpoint.password});
      c->inflight.push_back({false, {}});
      ++c->unsent;
    }
    read(c);
    if (started_) fill(c);
    flush(c);
  }

  void count_first_attempt(const std::shared_ptr<Conn>& c) {
    if (!c->attempted) ++attempts_done_;
    c->attempted = true;
  }

  void retry_later(const std::shared_ptr<Conn>& c) {
    if (stopping_) return;
    auto t = std::make_shared<asio::steady_timer>(io_, kReconnectDelay);
    t->async_wait([this, c, t](const asio::error_code&) {
      if (stopping_) return;
      asio::error_code ignored;
      c->socket.close(ignored);
      c->socket = tcp::socket(io_);
      connect(c);
    });
  }

  // Every request in flight on `c` gets `code`; the connection is reopened.
  void fail_connection(const std::shared_ptr<Conn>& c, const std::string& code) {
    if (!c->open) return;
    c->open = false;
    ++c->generation;
    Clock::time_point now = Clock::now();
    for (const Pending& p : c->inflight) {
      if (p.measured_kind) complete(now, p, code);
    }
    c->inflight.clear();
    c->out.clear();
    c->in.clear();
    c->unsent = 0;
    c->writing = false;
    asio::error_code ignored;
    c->socket.close(ignored);
    retry_later(c);
  }

  // ---- requests ----------------------------------------------------------------

  // Duration mode: until the end. Request mode: freely during the warm-up,
  // then only as many as are still needed to complete `requests`.
  bool may_issue() const {
    if (stopping_) return false;
    Clock::time_point now = Clock::now();
    if (o_.requests == 0) return now < end_;
    return now < warmup_end_ || result_.requests + outstanding_ < o_.requests;
  }

  void fill(const std::shared_ptr<Conn>& c) {
    if (!c->open) return;
    while (c->inflight.size() < static_cast<size_t>(o_.pipeline) && may_issue()) {
      append_request(&c->out);
      c->inflight.push_back({true, {}});
      ++c->unsent;
      ++outstanding_;
    }
    flush(c);
  }

  void append_request(std::string* out) {
    BenchOp op = ops_[rng_() % ops_.size()];
    std::string key = o_.key_prefix + ":" + std::to_string(rng_() % o_.keys);
    std::string member;
    if (op == BenchOp::kFresh) {
      char buf[17];
      std::snprintf(buf, sizeof(buf), "%06x%010llx", run_prefix_,
                    static_cast<unsigned long long>(fresh_counter_++ & 0xffffffffffULL));
      member.assign(buf, 16);
    } else if (op != BenchOp::kMembers) {
      member = "m" + std::to_string(rng_() % o_.members);
    }
    switch (op) {
      case BenchOp::kFresh:
      case BenchOp::kAdd:
        append_command(out, {"SADD", key, member});
        break;
      case BenchOp::kRem:
        append_command(out, {"SREM", key, member});
        break;
      case BenchOp::kHas:
        append_command(out, {"SISMEMBER", key, member});
        break;
      case BenchOp::kMembers:
        append_command(out, {"SMEMBERS", key});
        break;
    }
  }

  void flush(const std::shared_ptr<Conn>& c) {
    if (!c->open || c->writing || c->out.empty()) return;
    Clock::time_point now = Clock::now();
    for (size_t i = c->inflight.size() - c->unsent; i < c->inflight.size(); ++i) {
      c->inflight[i].sent = now;
    }
    c->unsent = 0;
    c->in_flight_bytes.swap(c->out);
    c->out.clear();
    c->writing = true;
    uint64_t gen = c->generation;
    asio::async_write(c->socket, asio::buffer(c->in_flight_bytes),
                      [this, c, gen](const asio::error_code& ec, size_t) {
                        if (gen != c->generation) return;
                        c->writing = false;
                        if (ec) return fail_connection(c, "CONNECTION");
                        flush(c);
                      });
  }

  void read(const std::shared_ptr<Conn>& c) {
    uint64_t gen = c->generation;
    c->socket.async_read_some(
        asio::buffer(c->buffer), [this, c, gen](const asio::error_code& ec, size_t n) {
          if (gen != c->generation) return;
          if (ec) return fail_connection(c, "CONNECTION");
          c->in.append(c->buffer.data(), n);
          size_t pos = 0;
          Clock::time_point now = Clock::now();
          while (pos < c->in.size()) {
            resp::ReadResult r = resp::read_reply(std::string_view(c->in).substr(pos));
            if (r.status == resp::ReadStatus::kIncomplete) break;
            if (r.status == resp::ReadStatus::kMalformed || c->inflight.empty()) {
              return fail_connection(c, "PROTOCOL");
            }
            pos += r.consumed;
            Pending p = c->inflight.front();
            c->inflight.pop_front();
            if (!p.measured_kind) {
              if (r.reply.type == resp::Reply::Type::kError) {
                first_error_ = "AUTH: " + r.reply.text;
                return fail_connection(c, "AUTH");
              }
              continue;
            }
            std::string code;
            if (r.reply.type == resp::Reply::Type::kError) {
              code = r.reply.text.substr(0, r.reply.text.find(' '));
              if (code.empty()) code = "ERR";
            }
            complete(now, p, code);
          }
          c->in.erase(0, pos);
          fill(c);
          read(c);
        });
  }

  void complete(Clock::time_point now, const Pending& p, const std::string& code) {
    --outstanding_;
    if (now < warmup_end_ || now > end_ || p.sent < start_) return;
    if (o_.requests != 0 && result_.requests >= o_.requests) return;
    ++result_.requests;
    if (!code.empty()) {
      ++result_.errors;
      ++result_.errors_by_code[code];
    }
    if (samples_.size() < kMaxSamples) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - p.sent).count();
      samples_.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    }
    last_completion_ = now;
    if (o_.requests != 0 && result_.requests >= o_.requests) stop();
  }

  // ---- time ------------------------------------------------------------------

  void schedule_tick() {
    tick_.expires_after(kTimeoutCheckEvery);
    tick_.async_wait([this](const asio::error_code& ec) {
      if (ec || stopping_) return;
      Clock::time_point now = Clock::now();
      if (now >= end_) return stop();
      auto limit = std::chrono::milliseconds(o_.request_timeout_ms);
      for (auto& c : conns_) {
        if (c->open && !c->inflight.empty() && c->unsent < c->inflight.size() &&
            now - c->inflight.front().sent > limit) {
          fail_connection(c, "TIMEOUT");
        } else if (c->open) {
          fill(c);  // a connection idle after the warm-up in request mode
        }
      }
      schedule_tick();
    });
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    stop_time_ = Clock::now();
    for (auto& c : conns_) {
      ++c->generation;
      asio::error_code ignored;
      c->socket.close(ignored);
    }
    tick_.cancel();
    io_.stop();
  }

  void finish() {
    result_.first_error = first_error_;
    Clock::time_point end = o_.requests != 0 ? last_completion_ : end_;
    if (end < warmup_end_) end = warmup_end_;
    result_.seconds = std::chrono::duration<double>(end - warmup_end_).count();
    result_.ops_per_second = result_.seconds > 0 ? result_.requests / result_.seconds : 0;
    if (samples_.empty()) return;
    std::sort(samples_.begin(), samples_.end());
    auto at = [&](double q) {
      size_t rank = static_cast<size_t>(q * static_cast<double>(samples_.size()));
      return samples_[std::min(rank, samples_.size() - 1)] / 1000.0;
    };
    result_.p50_ms = at(0.50);
    result_.p90_ms = at(0.90);
    result_.p99_ms = at(0.99);
    result_.p999_ms = at(0.999);
    result_.max_ms = samples_.back() / 1000.0;
    double sum = 0;
    for (uint32_t s : samples_) sum += s;
    result_.mean_ms = sum / static_cast<double>(samples_.size()) / 1000.0;
  }

  static Clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

 private:
  const BenchOptions& o_;
  std::mt19937_64 rng_;
  asio::io_context io_;
  asio::steady_timer tick_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<BenchOp> ops_;
  std::vector<uint32_t> samples_;
  BenchResult result_;
  std::string first_error_;
  uint32_t run_prefix_ = 0;
  uint64_t fresh_counter_ = 0;
  uint64_t outstanding_ = 0;
  int attempts_done_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  Clock::time_point start_{}, warmup_end_{}, end_{}, stop_time_{}, last_completion_{};
};

std::string fmt_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", ms);
  return buf;
}

std::string mix_text(const BenchOptions& o) {
  std::string s;
  for (const auto& [op, w] : o.mix) {
    if (!s.empty()) s += ",";
    s += std::string(op_name(op)) + "=" + std::to_string(w);
  }
  return s;
}

std::string endpoints_text(const BenchOptions& o) {
  std::string s;
  size_t n = o.all_endpoints ? o.endpoints.size() : 1;
  for (size_t i = 0; i < n; ++i) s += (i ? "," : "") + o.endpoints[i].to_string();
  return s;
}

}  // namespace

Result<std::map<BenchOp, uint32_t>> parse_bench_mix(std::string_view text) {
  std::map<BenchOp, uint32_t> mix;
  auto weight_of = [](std::string_view w) -> std::optional<uint32_t> {
    if (w.empty() || w.size() > 6 || w.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    return static_cast<uint32_t>(std::stoul(std::string(w)));
  };
  std::vector<std::string_view> items;
  char sep = text.find('=') != std::string_view::npos ? ',' : ':';
  for (size_t pos = 0; pos <= text.size();) {
    size_t next = text.find(sep, pos);
    if (next == std::string_view::npos) next = text.size();
    items.push_back(text.substr(pos, next - pos));
    pos = next + 1;
  }
  if (sep == ':') {  // SPEC.md's add:rem:has weights
    static constexpr BenchOp kOrder[] = {BenchOp::kFresh, BenchOp::kRem, BenchOp::kHas};
    if (items.size() > 3) return Status(Code::kInvalid, "--mix A:R:H takes at most 3 weights");
    for (size_t i = 0; i < items.size(); ++i) {
      auto w = weight_of(items[i]);
      if (!w) return Status(Code::kInvalid, "--mix: bad weight '" + std::string(items[i]) + "'");
      if (*w > 0) mix[kOrder[i]] = *w;
    }
  } else {
    static const std::map<std::string, BenchOp, std::less<>> kNames = {
        {"fresh", BenchOp::kFresh}, {"add", BenchOp::kAdd},         {"rem", BenchOp::kRem},
        {"has", BenchOp::kHas},     {"members", BenchOp::kMembers},
    };
    for (std::string_view item : items) {
      size_t eq = item.find('=');
      auto name = kNames.find(item.substr(0, eq));
      auto w = eq == std::string_view::npos ? std::nullopt : weight_of(item.substr(eq + 1));
      if (name == kNames.end() || !w) {
        return Status(Code::kInvalid, "--mix: bad item '" + std::string(item) +
                                          "' (NAME=WEIGHT; names: fresh add rem has members)");
      }
      if (*w > 0) mix[name->second] = *w;
    }
  }
  uint64_t total = 0;
  for (const auto& [op, w] : mix) total += w;
  if (total == 0) return Status(Code::kInvalid, "--mix: every weight is 0");
  if (total > 10000) return Status(Code::kInvalid, "--mix: weights add up to more than 10000");
  return mix;
}

Result<BenchResult> run_bench(const BenchOptions& options) {
  if (options.endpoints.empty()) return Status(Code::kInvalid, "no endpoint");
  if (options.clients < 1 || options.clients > 10000) {
    return Status(Code::kInvalid, "--clients must be in [1, 10000]");
  }
  if (options.pipeline < 1 || options.pipeline > 10000) {
    return Status(Code::kInvalid, "--pipeline must be in [1, 10000]");
  }
  if (options.keys < 1 || options.members < 1 || options.mix.empty()) {
    return Status(Code::kInvalid, "--keys, --members and --mix must not be empty");
  }
  Bench bench(options);
  return bench.run();
}

std::string bench_report_text(const BenchOptions& o, const BenchResult& r) {
  std::ostringstream s;
  s << "cset bench: " << o.clients << " connections to " << endpoints_text(o) << ", pipeline "
    << o.pipeline << ", mix " << mix_text(o) << ", " << o.keys << " key(s), member space "
    << o.members << "\n";
  s << "requests " << r.requests << " in " << fmt_ms(r.seconds) << " s after " << o.warmup_seconds
    << " s warm-up; errors " << r.errors;
  if (!r.errors_by_code.empty()) {
    s << " (";
    bool first = true;
    for (const auto& [code, n] : r.errors_by_code) {
      s << (first ? "" : ", ") << code << " " << n;
      first = false;
    }
    s << ")";
  }
  s << "\n";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f", r.ops_per_second);
  s << "throughput " << buf << " ops/s\n";
  s << "latency ms: p50 " << fmt_ms(r.p50_ms) << " p90 " << fmt_ms(r.p90_ms) << " p99 "
    << fmt_ms(r.p99_ms) << " p99.9 " << fmt_ms(r.p999_ms) << " max " << fmt_ms(r.max_ms) << " mean "
    << fmt_ms(r.mean_ms) << "\n";
  return s.str();
}

std::string bench_report_json(const BenchOptions& o, const BenchResult& r) {
  std::ostringstream s;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f", r.ops_per_second);
  s << "{\"clients\":" << o.clients << ",\"pipeline\":" << o.pipeline << ",\"mix\":\""
    << mix_text(o) << "\",\"endpoints\":\"" << endpoints_text(o) << "\",\"requests\":" << r.requests
    << ",\"errors\":" << r.errors << ",\"errors_by_code\":{";
  bool first = true;
  for (const auto& [code, n] : r.errors_by_code) {
    s << (first ? "" : ",") << "\"" << code << "\":" << n;
    first = false;
  }
  s << "},\"connections_opened\":" << r.connections_opened << ",\"seconds\":" << fmt_ms(r.seconds)
    << ",\"ops_per_sec\":" << buf << ",\"p50_ms\":" << fmt_ms(r.p50_ms)
    << ",\"p90_ms\":" << fmt_ms(r.p90_ms) << ",\"p99_ms\":" << fmt_ms(r.p99_ms)
    << ",\"p999_ms\":" << fmt_ms(r.p999_ms) << ",\"max_ms\":" << fmt_ms(r.max_ms)
    << ",\"mean_ms\":" << fmt_ms(r.mean_ms) << "}";
  return s.str();
}

}  // namespace cset::cli
