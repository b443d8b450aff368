// seed-usage: the original design's usage example with the embeddable
// library (include/cset/consistent_set.h): three replicas in one process,
// connected pairwise by create_stream() over TCP sockets on 127.0.0.1
// (ephemeral ports), then add, a refused duplicate add, rem — and every
// replica must agree. Exit 0 on success; 1 with a message on any failure;
// bounded to 30 s.
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cset/consistent_set.h"
#include "embed/tcp_pipe.h"

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point kDeadline = Clock::now() + std::chrono::seconds(30);

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "seed-usage: FAILED: %s\n", what.c_str());
  std::exit(1);
}

// Waits for a callback's result, within the program's deadline.
template <typename T>
T wait(std::future<T>& f, const std::string& what) {
  if (f.wait_until(kDeadline) != std::future_status::ready) fail(what + ": no answer in time");
  return f.get();
}

std::error_code add(cset::ConsistentSet& set, const std::string& member) {
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  set.add(member, [p](std::error_code ec) { p->set_value(ec); });
  return wait(f, "add " + member);
}

std::error_code rem(cset::ConsistentSet& set, const std::string& member) {
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  set.rem(member, [p](std::error_code ec) { p->set_value(ec); });
  return wait(f, "rem " + member);
}

std::vector<std::string> members(cset::ConsistentSet& set) {
  using R = std::pair<std::error_code, std::vector<std::string>>;
  auto p = std::make_shared<std::promise<R>>();
  auto f = p->get_future();
  set.members([p](std::error_code ec, std::vector<std::string> m) { p->set_value({ec, m}); });
  R r = wait(f, "members");
  if (r.first) fail("members on replica " + std::to_string(set.id()) + ": " + r.first.message());
  return r.second;
}

std::string show(const std::vector<std::string>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "}";
}

}  // namespace

int main() {
  // new ConsistentSet() x 3, in memory, one cluster of voters {1, 2, 3}.
  std::vector<std::unique_ptr<cset::ConsistentSet>> sets;
  for (uint64_t id = 1; id <= 3; ++id) {
    cset::ConsistentSet::Options o;
    o.id = id;
    o.members = {1, 2, 3};
    o.heartbeat_ms = 50;
    o.election_timeout_ms = 500;
    o.write_timeout_ms = 10000;
    auto s = cset::ConsistentSet::create(o);
    if (!s.ok()) fail("create replica " + std::to_string(id) + ": " + s.status().to_string());
    sets.push_back(std::move(s).value());
  }

  // stream.pipe(net.connect(port)).pipe(stream), for each pair: replica j
  // dials replica i (i < j) and each end pipes its own stream over the socket.
  asio::io_context io;
  std::vector<std::shared_ptr<cset::embed::TcpPipe>> pipes;
  for (size_t i = 0; i < sets.size(); ++i) {
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    for (size_t j = i + 1; j < sets.size(); ++j) {
      asio::ip::tcp::socket dialer(io), accepted(io);
      asio::error_code ec;
      dialer.connect(acceptor.local_endpoint(), ec);
      if (!ec) acceptor.accept(accepted, ec);
      if (ec) fail("TCP on 127.0.0.1: " + ec.message());
      pipes.push_back(cset::embed::TcpPipe::start(std::move(accepted), sets[i]->create_stream()));
      pipes.push_back(cset::embed::TcpPipe::start(std::move(dialer), sets[j]->create_stream()));
      std::printf("replica %zu <-> replica %zu: TCP via port %u\n", i + 1, j + 1,
                  acceptor.local_endpoint().port());
    }
  }
  auto work = asio::make_work_guard(io);
  std::thread net([&io] { io.run(); });

  for (auto& s : sets) {
    if (s->cluster_size() != 3)
      fail("cluster_size() of replica " + std::to_string(s->id()) + " is " +
           std::to_string(s->cluster_size()));
  }
  std::printf("cluster size: 3\n");

  // The usage example: add, a refused duplicate add, rem.
  std::error_code ec = add(*sets[0], "hello");
  if (ec) fail("add hello on replica 1: " + ec.message());
  std::printf("replica 1: add hello -> ok\n");

  ec = add(*sets[1], "hello");
  if (ec != cset::make_error_code(cset::kAlreadyPresent))
    fail("a duplicate add on replica 2 should be refused, got: " +
         (ec ? ec.message() : std::string("ok")));
  std::printf("replica 2: add hello -> refused (%s)\n", ec.message().c_str());

  ec = add(*sets[2], "world");
  if (ec) fail("add world on replica 3: " + ec.message());
  std::printf("replica 3: add world -> ok\n");

  ec = rem(*sets[1], "hello");
  if (ec) fail("rem hello on replica 2: " + ec.message());
  std::printf("replica 2: rem hello -> ok\n");

  // Every replica agrees (linearizable reads on each).
  for (auto& s : sets) {
    auto m = members(*s);
    std::printf("replica %llu: members %s\n", static_cast<unsigned long long>(s->id()),
                show(m).c_str());
    if (m != std::vector<std::string>{"world"})
      fail("replica " + std::to_string(s->id()) + " disagrees: " + show(m));
  }

  sets.clear();  // closes every stream, and so every pipe
  work.reset();
  io.stop();
  net.join();
  std::printf("seed-usage: ok\n");
  return 0;
}
