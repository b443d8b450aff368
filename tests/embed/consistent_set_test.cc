// The embeddable replica (include/cset/consistent_set.h), through its public
// API only: replicas wired by in-memory streams (push and pull) and by TCP, a
// restart from a data directory, a stream cut and re-piped, the quorum rules,
// the CSET.ADD / CSET.REM semantics, linearizable reads on every replica,
// cluster_size(), the handshake's refusals and the destructor's promise.
#include "cset/consistent_set.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "embed/tcp_pipe.h"

namespace cset {
namespace {

using Set = ConsistentSet;
using Clock = std::chrono::steady_clock;
constexpr auto kWait = std::chrono::seconds(20);  // upper bound on any one answer

const std::error_code kOk;
const std::error_code kExistsError = make_error_code(kAlreadyPresent);
const std::error_code kNoQuorumError = make_error_code(Code::kNoQuorum);
const std::error_code kTimeoutError = make_error_code(Code::kTimeout);
// What a helper returns when no callback came within kWait (never a real code).
const std::error_code kNoAnswer = std::make_error_code(std::errc::timed_out);

Set::Options options(uint64_t id, std::vector<uint64_t> members, std::string dir = "") {
  Set::Options o;
  o.id = id;
  o.members = std::move(members);
  o.data_dir = std::move(dir);
  o.heartbeat_ms = 30;
  o.election_timeout_ms = 300;
  o.write_timeout_ms = 8000;
  o.random_seed = id * 7919;
  return o;
}

std::unique_ptr<Set> make(const Set::Options& o) {
  auto s = Set::create(o);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

template <typename T>
T wait_for(std::future<T>& f, T fallback) {
  if (f.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "no callback within " << kWait.count() << " s";
    return fallback;
  }
  return f.get();
}

std::error_code add(Set& s, const std::string& key, const std::string& member) {
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  s.add(key, member, [p](std::error_code ec) { p->set_value(ec); });
  return wait_for(f, kNoAnswer);
}

std::error_code rem(Set& s, const std::string& key, const std::string& member) {
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  s.rem(key, member, [p](std::error_code ec) { p->set_value(ec); });
  return wait_for(f, kNoAnswer);
}

std::pair<std::error_code, bool> contains(Set& s, const std::string& key, const std::string& m) {
  using R = std::pair<std::error_code, bool>;
  auto p = std::make_shared<std::promise<R>>();
  auto f = p->get_future();
  s.contains(key, m, [p](std::error_code ec, bool v) { p->set_value({ec, v}); });
  return wait_for(f, R{kNoAnswer, false});
}

std::pair<std::error_code, std::vector<std::string>> members(Set& s, const std::string& key) {
  using R = std::pair<std::error_code, std::vector<std::string>>;
  auto p = std::make_shared<std::promise<R>>();
  auto f = p->get_future();
  s.members(key, [p](std::error_code ec, std::vector<std::string> v) { p->set_value({ec, v}); });
  return wait_for(f, R{kNoAnswer, {}});
}

std::pair<std::error_code, uint64_t> size(Set& s, const std::string& key) {
  using R = std::pair<std::error_code, uint64_t>;
  auto p = std::make_shared<std::promise<R>>();
  auto f = p->get_future();
  s.size(key, [p](std::error_code ec, uint64_t v) { p->set_value({ec, v}); });
  return wait_for(f, R{kNoAnswer, 0});
}

// Every replica answers the same members, size and membership tests.
void expect_agree(const std::vector<Set*>& sets, const std::string& key,
                  const std::vector<std::string>& expected, const std::string& absent) {
  for (Set* s : sets) {
    SCOPED_TRACE("replica " + std::to_string(s->id()));
    auto m = members(*s, key);
    EXPECT_FALSE(m.first) << m.first.message();
    EXPECT_EQ(m.second, expected);
    auto n = size(*s, key);
    EXPECT_FALSE(n.first) << n.first.message();
    EXPECT_EQ(n.second, expected.size());
    for (const auto& e : expected) {
      auto c = contains(*s, key, e);
      EXPECT_FALSE(c.first) << c.first.message();
      EXPECT_TRUE(c.second) << e;
    }
    auto c = contains(*s, key, absent);
    EXPECT_FALSE(c.first) << c.first.message();
    EXPECT_FALSE(c.second) << absent;
  }
}

// An in-memory link: each stream's output is written into the other.
struct Link {
  std::shared_ptr<ReplicaStream> a, b;
  void cut() {
    a->close();
    b->close();
  }
};

Link link(Set& x, Set& y) {
  Link l{x.create_stream(), y.create_stream()};
  std::weak_ptr<ReplicaStream> wa = l.a, wb = l.b;
  l.a->set_output([wb](std::string_view bytes) {
    if (auto s = wb.lock()) s->write(bytes);
  });
  l.b->set_output([wa](std::string_view bytes) {
    if (auto s = wa.lock()) s->write(bytes);
  });
  return l;
}

// An in-memory link that can lose everything one replica sends the other
// (frames vanish whole; the stream stays open): a lost reply.
struct LossyLink {
  Link link;
  std::shared_ptr<std::atomic<bool>> drop_a_to_b = std::make_shared<std::atomic<bool>>(false);
};

LossyLink lossy_link(Set& x, Set& y) {
  LossyLink l{{x.create_stream(), y.create_stream()}};
  std::weak_ptr<ReplicaStream> wa = l.link.a, wb = l.link.b;
  l.link.a->set_output([wb, drop = l.drop_a_to_b](std::string_view bytes) {
    if (drop->load()) return;
    if (auto s = wb.lock()) s->write(bytes);
  });
  l.link.b->set_output([wa](std::string_view bytes) {
    if (auto s = wa.lock()) s->write(bytes);
  });
  return l;
}

struct Cluster {
  std::vector<std::unique_ptr<Set>> sets;
  std::map<std::pair<size_t, size_t>, Link> links;  // (i, j), i < j, 0-based

  void link_all() {
    for (size_t i = 0; i < sets.size(); ++i)
      for (size_t j = i + 1; j < sets.size(); ++j) links[{i, j}] = link(*sets[i], *sets[j]);
  }
  // Cuts every link of replica i.
  void isolate(size_t i) {
    for (auto& [k, l] : links)
      if (k.first == i || k.second == i) l.cut();
  }
  std::vector<Set*> all() const {
    std::vector<Set*> v;
    for (auto& s : sets) v.push_back(s.get());
    return v;
  }
};

Cluster make_cluster(size_t n, const std::function<void(Set::Options&)>& tweak = nullptr) {
  Cluster c;
  std::vector<uint64_t> ids;
  for (size_t i = 1; i <= n; ++i) ids.push_back(i);
  for (uint64_t id : ids) {
    Set::Options o = options(id, ids);
    if (tweak) tweak(o);
    c.sets.push_back(make(o));
  }
  return c;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cset-embed-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------

TEST(EmbedTest, InMemoryStreamsAddDuplicateAndRem) {
  Cluster c = make_cluster(3);
  c.link_all();
  EXPECT_EQ(add(*c.sets[0], "k", "alice"), kOk);
  // CSET.ADD of a present member: already_present, from any replica.
  EXPECT_EQ(add(*c.sets[1], "k", "alice"), kExistsError);
  EXPECT_EQ(add(*c.sets[2], "k", "alice"), kExistsError);
  EXPECT_EQ(add(*c.sets[2], "k", "bob"), kOk);
  EXPECT_EQ(rem(*c.sets[1], "k", "alice"), kOk);
  // CSET.REM of an absent member is not an error.
  EXPECT_EQ(rem(*c.sets[0], "k", "alice"), kOk);
  EXPECT_EQ(rem(*c.sets[2], "k", "never-added"), kOk);
  // Removed, it can be added again.
  EXPECT_EQ(add(*c.sets[2], "k", "alice"), kOk);
  expect_agree(c.all(), "k", {"alice", "bob"}, "never-added");
}

TEST(EmbedTest, ReadsAgreeOnEveryReplicaAndSetsAreSeparate) {
  Cluster c = make_cluster(3);
  c.link_all();
  // The one-argument calls use Options::default_set ("default").
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  c.sets[0]->add("m1", [p](std::error_code ec) { p->set_value(ec); });
  EXPECT_EQ(wait_for(f, kNoAnswer), kOk);
  for (int i = 0; i < 6; ++i) {
    std::string member = "x" + std::to_string(i);
    EXPECT_EQ(add(*c.sets[i % 3], "other", member), kOk);
  }
  // Binary-safe members.
  EXPECT_EQ(add(*c.sets[1], "other", std::string("a\0b\r\n", 5)), kOk);
  expect_agree(c.all(), "default", {"m1"}, "x0");
  expect_agree(c.all(), "other", {std::string("a\0b\r\n", 5), "x0", "x1", "x2", "x3", "x4", "x5"},
               "m1");
  expect_agree(c.all(), "empty", {}, "m1");
}

TEST(EmbedTest, ClusterSizeIsTheNumberOfVoters) {
  Cluster three = make_cluster(3);
  for (auto& s : three.sets) EXPECT_EQ(s->cluster_size(), 3u);
  // One voter is a quorum by itself: no stream needed.
  auto one = make(options(7, {7}));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->cluster_size(), 1u);
  EXPECT_EQ(add(*one, "k", "solo"), kOk);
  EXPECT_EQ(add(*one, "k", "solo"), kExistsError);
  auto m = members(*one, "k");
  EXPECT_EQ(m.second, std::vector<std::string>{"solo"});
  EXPECT_EQ(one->leader_id(), 7u);
}

TEST(EmbedTest, PullModeStreams) {
  // Streams read with read() instead of an output callback, pumped by a thread.
  Cluster c = make_cluster(3);
  std::vector<std::shared_ptr<ReplicaStream>> ends;
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = i + 1; j < 3; ++j) {
      ends.push_back(c.sets[i]->create_stream());
      ends.push_back(c.sets[j]->create_stream());
    }
  }
  std::atomic<bool> stop{false};
  std::thread pump([&] {
    while (!stop) {
      for (size_t k = 0; k < ends.size(); k += 2) {
        ends[k + 1]->write(ends[k]->read(1000));  // small reads: any chunking works
        ends[k]->write(ends[k + 1]->read());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  EXPECT_EQ(add(*c.sets[2], "k", "pulled"), kOk);
  EXPECT_EQ(add(*c.sets[0], "k", "pulled"), kExistsError);
  expect_agree(c.all(), "k", {"pulled"}, "pushed");
  for (auto& e : ends) EXPECT_NE(e->peer_id(), 0u);
  stop = true;
  pump.join();
}

TEST(EmbedTest, TcpStreams) {
  Cluster c = make_cluster(3);
  asio::io_context io;
  std::vector<std::shared_ptr<embed::TcpPipe>> pipes;
  for (size_t i = 0; i < 3; ++i) {
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    for (size_t j = i + 1; j < 3; ++j) {
      asio::ip::tcp::socket dialer(io), accepted(io);
      dialer.connect(acceptor.local_endpoint());
      acceptor.accept(accepted);
      pipes.push_back(embed::TcpPipe::start(std::move(accepted), c.sets[i]->create_stream()));
      pipes.push_back(embed::TcpPipe::start(std::move(dialer), c.sets[j]->create_stream()));
    }
  }
  auto work = asio::make_work_guard(io);
  std::thread net([&] { io.run(); });
  EXPECT_EQ(add(*c.sets[0], "k", "tcp"), kOk);
  EXPECT_EQ(add(*c.sets[1], "k", "tcp"), kExistsError);
  EXPECT_EQ(add(*c.sets[2], "k", "more"), kOk);
  EXPECT_EQ(rem(*c.sets[1], "k", "more"), kOk);
  expect_agree(c.all(), "k", {"tcp"}, "more");
  for (auto& p : pipes) EXPECT_NE(p->stream()->peer_id(), 0u);
  // A socket cut closes its stream; raft goes on over the others.
  pipes[0]->close();
  EXPECT_EQ(add(*c.sets[1], "k", "after-cut"), kOk);
  c.sets.clear();
  work.reset();
  io.stop();
  net.join();
}

TEST(EmbedTest, RestartFromDataDirectoryKeepsDataAndRejoins) {
  TempDir dir;
  std::vector<uint64_t> ids{1, 2, 3};
  std::vector<std::unique_ptr<Set>> sets;
  for (uint64_t id : ids) sets.push_back(make(options(id, ids, dir.sub(std::to_string(id)))));
  std::map<std::pair<int, int>, Link> links;
  links[{0, 1}] = link(*sets[0], *sets[1]);
  links[{0, 2}] = link(*sets[0], *sets[2]);
  links[{1, 2}] = link(*sets[1], *sets[2]);
  EXPECT_EQ(add(*sets[0], "k", "before"), kOk);
  EXPECT_TRUE(contains(*sets[2], "k", "before").second);
  const uint64_t applied = sets[2]->applied_index();
  ASSERT_GT(applied, 0u);

  // Replica 3 stops; the other two are a quorum and keep writing.
  sets[2].reset();
  EXPECT_EQ(add(*sets[1], "k", "while-down"), kOk);

  // Restarted from its directory: its state is there before any stream.
  sets[2] = make(options(3, ids, dir.sub("3")));
  ASSERT_TRUE(sets[2]);
  EXPECT_GE(sets[2]->applied_index(), applied);
  EXPECT_EQ(sets[2]->cluster_size(), 3u);
  links[{0, 2}] = link(*sets[0], *sets[2]);
  links[{1, 2}] = link(*sets[1], *sets[2]);
  EXPECT_EQ(add(*sets[2], "k", "before"), kExistsError);
  EXPECT_EQ(add(*sets[2], "k", "after"), kOk);
  expect_agree({sets[0].get(), sets[1].get(), sets[2].get()}, "k",
               {"after", "before", "while-down"}, "never");
}

TEST(EmbedTest, StreamCutAndRepipedCatchesUpThroughSnapshot) {
  // Small snapshots, so the cut-off replica needs an InstallSnapshot.
  Cluster c = make_cluster(3, [](Set::Options& o) {
    o.snapshot_entries = 8;
    o.snapshot_keep_entries = 2;
  });
  c.link_all();
  EXPECT_EQ(add(*c.sets[0], "k", "m0"), kOk);
  c.isolate(2);
  std::vector<std::string> expected{"m0"};
  for (int i = 1; i <= 20; ++i) {
    std::string m = "m" + std::to_string(100 + i);
    EXPECT_EQ(add(*c.sets[i % 2], "k", m), kOk);
    expected.push_back(m);
  }
  std::sort(expected.begin(), expected.end());
  const uint64_t behind = c.sets[2]->applied_index();
  EXPECT_LT(behind + 10, c.sets[0]->applied_index());
  // Re-piped: new streams for the same peers; writes resume from replica 3.
  c.links[{0, 2}] = link(*c.sets[0], *c.sets[2]);
  c.links[{1, 2}] = link(*c.sets[1], *c.sets[2]);
  EXPECT_EQ(add(*c.sets[2], "k", "m999"), kOk);
  expected.push_back("m999");
  expect_agree(c.all(), "k", expected, "m100");
}

// Issue 9: a write whose reply is lost is sent again in the replica's client
// session (Raft dissertation §6.3) and answered as the first time: "added",
// never "already present" for its own first attempt; applied once.
TEST(EmbedTest, RetryAfterALostReplyGivesTheOriginalAnswer) {
  Cluster c = make_cluster(3);
  c.link_all();
  ASSERT_EQ(add(*c.sets[0], "k", "warm-up"), kOk);  // a leader, and sessions open
  ASSERT_EQ(add(*c.sets[1], "k", "warm-up-1"), kOk);
  ASSERT_EQ(add(*c.sets[2], "k", "warm-up-2"), kOk);
  const uint64_t leader = c.sets[0]->leader_id();
  ASSERT_NE(leader, 0u);
  const size_t l = leader - 1;
  const size_t f = (l + 1) % 3;  // a follower, the add's origin
  // Everything the leader sends the follower is lost from now on.
  LossyLink lossy = lossy_link(*c.sets[l], *c.sets[f]);
  c.links[{std::min(l, f), std::max(l, f)}].cut();
  // Both ends handshaken before anything is lost.
  auto until = Clock::now() + kWait;
  while ((lossy.link.a->peer_id() == 0 || lossy.link.b->peer_id() == 0) && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_NE(lossy.link.b->peer_id(), 0u);
  ASSERT_EQ(add(*c.sets[f], "k", "through-the-new-link"), kOk);
  lossy.drop_a_to_b->store(true);
  const uint64_t applied_before = c.sets[l]->applied_index();
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto answer = p->get_future();
  c.sets[f]->add("k", "once", [p](std::error_code ec) { p->set_value(ec); });
  // The leader applies it; its reply is lost.
  auto deadline = Clock::now() + kWait;
  while (c.sets[l]->applied_index() == applied_before && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GT(c.sets[l]->applied_index(), applied_before) << "the leader never applied the add";
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout)
      << "answered although every reply was lost";
  // The stream is cut and piped again: the follower sends the same request.
  lossy.link.cut();
  c.links[{std::min(l, f), std::max(l, f)}] = link(*c.sets[l], *c.sets[f]);
  EXPECT_EQ(wait_for(answer, kNoAnswer), kOk) << "the retry did not report the first attempt's add";
  // A true duplicate is still refused, and the member is there once.
  EXPECT_EQ(add(*c.sets[f], "k", "once"), kExistsError);
  expect_agree(c.all(), "k", {"once", "through-the-new-link", "warm-up", "warm-up-1", "warm-up-2"},
               "never");
}

// The replica's session expires while it is idle: the next write is refused
// SESSIONEXPIRED by the state machine (not applied), numbered again in a new
// session and applied once; the user sees a plain success.
TEST(EmbedTest, ExpiredSessionIsReplacedWithoutAnError) {
  auto expired = std::make_shared<std::atomic<int>>(0);
  Cluster c = make_cluster(3, [expired](Set::Options& o) {
    o.session_timeout_ms = 200;
    o.log = [expired](const std::string& m) {
      if (m.find("expired; writes go on in a new session") != std::string::npos) ++*expired;
    };
  });
  c.link_all();
  ASSERT_EQ(add(*c.sets[1], "k", "a"), kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // idle past the timeout
  EXPECT_EQ(add(*c.sets[1], "k", "b"), kOk);
  EXPECT_GE(expired->load(), 1) << "the session never expired: the test proves nothing";
  EXPECT_EQ(add(*c.sets[1], "k", "b"), kExistsError);
  EXPECT_EQ(rem(*c.sets[1], "k", "a"), kOk);
  expect_agree(c.all(), "k", {"b"}, "a");
}

TEST(EmbedTest, NewerStreamToTheSamePeerReplacesTheOlder) {
  Cluster c = make_cluster(2);
  Link first = link(*c.sets[0], *c.sets[1]);
  EXPECT_EQ(add(*c.sets[0], "k", "one"), kOk);
  std::promise<std::string> closed;
  auto closed_f = closed.get_future();
  first.a->set_on_close([&closed](const std::string& why) { closed.set_value(why); });
  Link second = link(*c.sets[0], *c.sets[1]);
  ASSERT_EQ(closed_f.wait_for(kWait), std::future_status::ready);
  EXPECT_NE(closed_f.get().find("replaced by a newer stream"), std::string::npos);
  EXPECT_TRUE(first.a->closed());
  EXPECT_FALSE(second.a->closed());
  EXPECT_EQ(add(*c.sets[1], "k", "two"), kOk);
  expect_agree(c.all(), "k", {"one", "two"}, "three");
}

TEST(EmbedTest, NoQuorumWhenTwoOfThreeAreCutOffThenWritesAgain) {
  Cluster c = make_cluster(3, [](Set::Options& o) { o.write_timeout_ms = 1500; });
  c.link_all();
  EXPECT_EQ(add(*c.sets[0], "k", "before"), kOk);

  // Every link cut: no replica has a quorum.
  for (auto& [k, l] : c.links) l.cut();
  auto start = Clock::now();
  std::error_code ec = add(*c.sets[0], "k", "cut-off");
  auto waited = Clock::now() - start;
  EXPECT_TRUE(ec == kNoQuorumError || ec == kTimeoutError) << ec.message();
  // The request waited (was "queued") for the write timeout before failing.
  EXPECT_GE(waited, std::chrono::milliseconds(1400));
  EXPECT_EQ(contains(*c.sets[1], "k", "before").first, kNoQuorumError);
  ec = add(*c.sets[2], "k", "cut-off-too");
  EXPECT_TRUE(ec == kNoQuorumError || ec == kTimeoutError) << ec.message();
  const bool never_applied = ec == kNoQuorumError;

  // Re-piped: writes succeed again.
  c.link_all();
  std::error_code again = add(*c.sets[0], "k", "after");
  for (int i = 0; i < 5 && again != kOk; ++i) again = add(*c.sets[0], "k", "after");
  EXPECT_EQ(again, kOk);
  EXPECT_TRUE(contains(*c.sets[2], "k", "after").second);
  // NOQUORUM means it never happened.
  if (never_applied) {
    EXPECT_FALSE(contains(*c.sets[2], "k", "cut-off-too").second);
  }
}

TEST(EmbedTest, MajoritySideContinuesMinorityRefuses) {
  Cluster c = make_cluster(3, [](Set::Options& o) { o.write_timeout_ms = 1500; });
  c.link_all();
  EXPECT_EQ(add(*c.sets[1], "k", "before"), kOk);
  c.isolate(0);
  EXPECT_EQ(add(*c.sets[1], "k", "majority"), kOk);
  EXPECT_EQ(add(*c.sets[2], "k", "majority-too"), kOk);
  std::error_code ec = add(*c.sets[0], "k", "minority");
  EXPECT_TRUE(ec == kNoQuorumError || ec == kTimeoutError) << ec.message();
  EXPECT_EQ(size(*c.sets[0], "k").first, kNoQuorumError);
  EXPECT_EQ(size(*c.sets[2], "k").second, 3u);
}

TEST(EmbedTest, HandshakeRefusesAnotherClusterAndNonMembers) {
  Set::Options oa = options(1, {1, 2});
  oa.cluster_id = "ours";
  auto a = make(oa);
  Set::Options other = options(2, {1, 2});
  other.cluster_id = "someone-else";
  auto b = make(other);
  Set::Options os = options(9, {9});
  os.cluster_id = "ours";  // the same cluster id, but not a member of a's configuration
  auto stranger = make(os);
  ASSERT_TRUE(a && b && stranger);
  Link ab = link(*a, *b);
  Link as = link(*a, *stranger);
  auto deadline = Clock::now() + kWait;
  while ((!ab.a->closed() || !ab.b->closed() || !as.a->closed()) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(ab.a->closed());
  EXPECT_TRUE(ab.b->closed());
  EXPECT_NE(ab.a->close_reason().find("another cluster"), std::string::npos)
      << ab.a->close_reason();
  EXPECT_TRUE(as.a->closed());
  EXPECT_NE(as.a->close_reason().find("not a member"), std::string::npos) << as.a->close_reason();
  EXPECT_EQ(ab.a->peer_id(), 0u);
}

TEST(EmbedTest, ErrorsLimitsAndTheDestructorsPromise) {
  // Error codes carry the SPEC.md code words.
  EXPECT_EQ(std::string(error_category().name()), "cset");
  EXPECT_EQ(kExistsError.message().rfind("EXISTS", 0), 0u);
  EXPECT_EQ(kNoQuorumError.message().rfind("NOQUORUM", 0), 0u);
  EXPECT_EQ(make_error_code(Code::kTimeout).value(), static_cast<int>(Code::kTimeout));
  EXPECT_FALSE(make_error_code(Code::kOk));
  // Options are checked.
  EXPECT_EQ(Set::create(options(0, {1})).code(), Code::kInvalid);
  EXPECT_EQ(Set::create(options(4, {1, 2})).code(), Code::kInvalid);

  auto alone = make(options(1, {1, 2, 3}));
  ASSERT_TRUE(alone);
  // Over the member limit: TOOBIG, nothing sent.
  EXPECT_EQ(add(*alone, "k", std::string(64 * 1024 + 1, 'x')), make_error_code(Code::kTooBig));
  // A replica without streams has no quorum: its request waits; the
  // destructor fails it (never left the replica: NOQUORUM) before returning.
  std::atomic<int> answered{0};
  std::error_code got;
  alone->add("k", "pending", [&](std::error_code ec) {
    got = ec;
    answered++;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(answered.load(), 0);
  alone.reset();
  EXPECT_EQ(answered.load(), 1);
  EXPECT_EQ(got, kNoQuorumError);
}

}  // namespace
}  // namespace cset
