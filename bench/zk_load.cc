// zk_load: bench/compare's load generator for ZooKeeper, on Debian's C client
// (libzookeeper-st-dev, the single-threaded build of the official client).
//
// Load model, the same as cset bench's: --clients sessions, each its own TCP
// connection (client i to server i mod n of --servers) with one request in
// flight; all of them driven by one thread and one poll() loop, so the load
// generator costs at most one core, as cset bench does. Operations:
//   create  zoo_acreate of a fresh persistent znode <root>/<16 bytes>, empty
//           data, open ACL: the ZooKeeper equivalent of adding a new member.
//   exists  zoo_aexists of <root>/present, no watch. Served from the local
//           server's memory: NOT linearizable (ZooKeeper's reads are
//           sequentially consistent per session unless preceded by a sync).
// Requests completed during the warm-up are neither counted nor timed; the
// measured window is --seconds long, then no new request is issued and the
// outstanding ones are drained (at most --drain-ms). A request's latency runs
// from the zoo_a* call (which writes it to the socket) to its completion.
//
// Output: one JSON line with the keys of cset bench --json (requests, errors,
// errors_by_code, seconds, ops_per_sec, p50_ms, p90_ms, p99_ms, p999_ms,
// max_ms), plus "tool". Exit 0 when at least one request completed without an
// error, 3 otherwise (e.g. no server reachable), 2 on a usage error.
//
// Build (bench/CMakeLists.txt, when libzookeeper-st-dev is installed):
//   cmake --build --preset release --target zk_load
#include <poll.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Op { kCreate, kExists };

struct Options {
  std::vector<std::string> servers;
  int clients = 1;
  Op op = Op::kCreate;
  double seconds = 10;
  double warmup_seconds = 1;
  int session_timeout_ms = 30000;
  int connect_timeout_ms = 20000;
  int drain_ms = 5000;
};

struct Load;

// One session: its handle, its counter of fresh names, and its request in flight.
struct Client {
  Load* load = nullptr;
  zhandle_t* zh = nullptr;
  int id = 0;
  uint64_t next_name = 0;
  bool connected = false;
  bool in_flight = false;
  Clock::time_point sent;
};

// Shared state of the run; only the poll loop's thread touches it.
struct Load {
  Op op = Op::kCreate;
  std::string root;          // "/cset_bench_<run id>"
  std::string present_path;  // root + "/present"
  Clock::time_point measure_from;
  Clock::time_point stop_at;
  bool running = false;  // requests are issued only while true
  uint64_t requests = 0;
  uint64_t errors = 0;
  std::map<std::string, uint64_t> errors_by_code;
  std::vector<uint32_t> latencies_us;
};

void issue(Client& c);

// Counts a completed request if it completed inside the measured window,
// then issues the next one.
void complete(Client& c, int rc) {
  Load& load = *c.load;
  c.in_flight = false;
  const auto done = Clock::now();
  if (done >= load.measure_from && done <= load.stop_at) {
    ++load.requests;
    if (rc != ZOK) {
      ++load.errors;
      ++load.errors_by_code[zerror(rc)];
    } else {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - c.sent).count();
      load.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    }
  }
  if (rc == ZOK || rc == ZNODEEXISTS || rc == ZNONODE) issue(c);
  // Connection-level errors: the poll loop re-issues once the session is back.
}

void on_created(int rc, const char* /*value*/, const void* data) {
  complete(*static_cast<Client*>(const_cast<void*>(data)), rc);
}

void on_stat(int rc, const struct Stat* /*stat*/, const void* data) {
  complete(*static_cast<Client*>(const_cast<void*>(data)), rc);
}

void issue(Client& c) {
  Load& load = *c.load;
  if (!load.running || c.in_flight || !c.connected || Clock::now() >= load.stop_at) return;
  c.in_flight = true;
  c.sent = Clock::now();
  int rc;
  if (load.op == Op::kCreate) {
    char path[96];
    // 16 bytes no other request of this run uses: client id, then a counter.
    std::snprintf(path, sizeof path, "%s/%04x%012" PRIx64, load.root.c_str(), c.id & 0xffff,
                  static_cast<uint64_t>(c.next_name++ & 0xffffffffffffULL));
    rc = zoo_acreate(c.zh, path, nullptr, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, on_created, &c);
  } else {
    rc = zoo_aexists(c.zh, load.present_path.c_str(), 0, on_stat, &c);
  }
  if (rc != ZOK) {  // not sent: count it, retry on a later loop turn
    c.in_flight = false;
    ++load.errors;
    ++load.errors_by_code[zerror(rc)];
  }
}

void watcher(zhandle_t* /*zh*/, int type, int state, const char* /*path*/, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto& c = *static_cast<Client*>(ctx);
  c.connected = (state == ZOO_CONNECTED_STATE);
}

// One turn of the event loop over every handle: poll for at most `max_wait_ms`,
// then let each handle process its I/O (and fire completions).
void pump(std::vector<Client>& clients, int max_wait_ms) {
  std::vector<pollfd> fds(clients.size());
  int wait_ms = max_wait_ms;
  for (size_t i = 0; i < clients.size(); ++i) {
    int fd = -1, interest = 0;
    timeval tv{};
    fds[i] = pollfd{-1, 0, 0};
    if (zookeeper_interest(clients[i].zh, &fd, &interest, &tv) != ZOK || fd < 0) continue;
    fds[i].fd = fd;
    if (interest & ZOOKEEPER_READ) fds[i].events |= POLLIN;
    if (interest & ZOOKEEPER_WRITE) fds[i].events |= POLLOUT;
    const int tv_ms = static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000);
    wait_ms = std::min(wait_ms, std::max(tv_ms, 0));
  }
  ::poll(fds.data(), fds.size(), wait_ms);
  for (size_t i = 0; i < clients.size(); ++i) {
    int events = 0;
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) events |= ZOOKEEPER_READ;
    if (fds[i].revents & POLLOUT) events |= ZOOKEEPER_WRITE;
    zookeeper_process(clients[i].zh, events);
  }
}

double percentile_ms(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  i = std::clamp<size_t>(i, 1, sorted.size()) - 1;
  return sorted[i] / 1000.0;
}

// Creates `path` through client 0 and waits (bounded) for the answer; an
// existing node is fine. Returns false when it could not be created.
bool create_sync(std::vector<Client>& clients, const std::string& path) {
  struct Done {
    bool done = false;
    int rc = 0;
  } done;
  int rc = zoo_acreate(
      clients[0].zh, path.c_str(), nullptr, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
      [](int r, const char*, const void* d) {
        auto* s = static_cast<Done*>(const_cast<void*>(d));
        s->done = true;
        s->rc = r;
      },
      &done);
  if (rc != ZOK) return false;
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (!done.done && Clock::now() < give_up) pump(clients, 50);
  return done.done && (done.rc == ZOK || done.rc == ZNODEEXISTS);
}

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --servers HOST:PORT[,HOST:PORT...] [--clients N] [--op create|exists]\n"
               "          [--seconds S] [--warmup S] [--session-timeout-ms MS] [--drain-ms MS]\n",
               argv0);
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    char* end = nullptr;
    if (a == "--servers") {
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t comma = v.find(',', pos);
        if (comma == std::string::npos) comma = v.size();
        if (comma > pos) o.servers.push_back(v.substr(pos, comma - pos));
        pos = comma + 1;
      }
    } else if (a == "--clients") {
      o.clients = static_cast<int>(std::strtol(v.c_str(), &end, 10));
      if (*end != '\0' || o.clients < 1 || o.clients > 4096) return false;
    } else if (a == "--op") {
      if (v == "create") {
        o.op = Op::kCreate;
      } else if (v == "exists") {
        o.op = Op::kExists;
      } else {
        return false;
      }
    } else if (a == "--seconds") {
      o.seconds = std::strtod(v.c_str(), &end);
      if (*end != '\0' || !(o.seconds > 0) || o.seconds > 3600) return false;
    } else if (a == "--warmup") {
      o.warmup_seconds = std::strtod(v.c_str(), &end);
      if (*end != '\0' || !(o.warmup_seconds >= 0) || o.warmup_seconds > 600) return false;
    } else if (a == "--session-timeout-ms") {
      o.session_timeout_ms = static_cast<int>(std::strtol(v.c_str(), &end, 10));
      if (*end != '\0' || o.session_timeout_ms < 1000) return false;
    } else if (a == "--drain-ms") {
      o.drain_ms = static_cast<int>(std::strtol(v.c_str(), &end, 10));
      if (*end != '\0' || o.drain_ms < 0) return false;
    } else {
      return false;
    }
  }
  return !o.servers.empty();
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse(argc, argv, opt)) {
    usage(argv[0]);
    return 2;
  }
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);

  Load load;
  load.op = opt.op;
  std::random_device rd;
  char root[48];
  std::snprintf(root, sizeof root, "/cset_bench_%08x", static_cast<unsigned>(rd()));
  load.root = root;
  load.present_path = load.root + "/present";

  std::vector<Client> clients(static_cast<size_t>(opt.clients));
  for (int i = 0; i < opt.clients; ++i) {
    Client& c = clients[static_cast<size_t>(i)];
    c.load = &load;
    c.id = i;
    const std::string& server = opt.servers[static_cast<size_t>(i) % opt.servers.size()];
    c.zh = zookeeper_init(server.c_str(), watcher, opt.session_timeout_ms, nullptr, &c, 0);
    if (c.zh == nullptr) {
      std::fprintf(stderr, "zk_load: zookeeper_init(%s): %s\n", server.c_str(),
                   std::strerror(errno));
      return 3;
    }
  }
  const auto connect_deadline = Clock::now() + std::chrono::milliseconds(opt.connect_timeout_ms);
  auto all_connected = [&] {
    return std::all_of(clients.begin(), clients.end(), [](const Client& c) { return c.connected; });
  };
  while (!all_connected() && Clock::now() < connect_deadline) pump(clients, 50);
  const auto connected =
      std::count_if(clients.begin(), clients.end(), [](const Client& c) { return c.connected; });
  if (connected < opt.clients) {
    std::fprintf(stderr, "zk_load: %ld of %d sessions connected within %d ms\n",
                 static_cast<long>(connected), opt.clients, opt.connect_timeout_ms);
    for (auto& c : clients) zookeeper_close(c.zh);
    return 3;
  }
  if (!create_sync(clients, load.root) || !create_sync(clients, load.present_path)) {
    std::fprintf(stderr, "zk_load: could not create %s\n", load.present_path.c_str());
    for (auto& c : clients) zookeeper_close(c.zh);
    return 3;
  }

  const auto start = Clock::now();
  load.measure_from =
      start + std::chrono::microseconds(static_cast<int64_t>(opt.warmup_seconds * 1e6));
  load.stop_at =
      load.measure_from + std::chrono::microseconds(static_cast<int64_t>(opt.seconds * 1e6));
  load.running = true;
  for (auto& c : clients) issue(c);
  while (Clock::now() < load.stop_at) {
    pump(clients, 20);
    for (auto& c : clients) issue(c);  // re-issue after a refused or lost request
  }
  load.running = false;
  const auto drain_deadline = Clock::now() + std::chrono::milliseconds(opt.drain_ms);
  auto any_in_flight = [&] {
    return std::any_of(clients.begin(), clients.end(), [](const Client& c) { return c.in_flight; });
  };
  while (any_in_flight() && Clock::now() < drain_deadline) pump(clients, 20);
  for (auto& c : clients) zookeeper_close(c.zh);

  std::sort(load.latencies_us.begin(), load.latencies_us.end());
  const auto& lat = load.latencies_us;
  std::string by_code = "{";
  for (const auto& [code, n] : load.errors_by_code) {
    if (by_code.size() > 1) by_code += ",";
    by_code += "\"" + code + "\":" + std::to_string(n);
  }
  by_code += "}";
  std::printf("{\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
              ",\"errors_by_code\":%s,\"seconds\":%.3f,\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,"
              "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"clients\":%d,"
              "\"tool\":\"bench/zk_load (ZooKeeper C client, async zoo_a%s)\"}\n",
              load.requests, load.errors, by_code.c_str(), opt.seconds,
              static_cast<double>(load.requests) / opt.seconds, percentile_ms(lat, 0.50),
              percentile_ms(lat, 0.90), percentile_ms(lat, 0.99), percentile_ms(lat, 0.999),
              lat.empty() ? 0.0 : lat.back() / 1000.0, opt.clients,
              opt.op == Op::kCreate ? "create" : "exists");
  return lat.empty() ? 3 : 0;
}
