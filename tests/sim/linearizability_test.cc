#include "check/linearizability.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "check/partition.h"
#include "check/window.h"

namespace cset::check {
namespace {

// An operation with its fields in declaration order (aggregate initialization
// of a partial field list would trip -Wmissing-field-initializers).
Operation make_op(uint64_t client, OpKind kind, std::string key, std::vector<std::string> members,
                  int64_t invoke, int64_t complete, Outcome outcome, uint64_t count = 0) {
  Operation o;
  o.client = client;
  o.kind = kind;
  o.key = std::move(key);
  o.members = std::move(members);
  o.invoke = invoke;
  o.complete = complete;
  o.outcome = outcome;
  o.count = count;
  return o;
}

using namespace std::string_literals;
using Strings = std::vector<std::string>;

// Builders: client, [invoke, complete], result.
Operation add(uint64_t client, Strings members, int64_t invoke, int64_t complete, uint64_t added,
              std::string key = "k") {
  return make_op(client, OpKind::kAdd, std::move(key), std::move(members), invoke, complete,
                 Outcome::kOk, added);
}
Operation rem(uint64_t client, Strings members, int64_t invoke, int64_t complete, uint64_t removed,
              std::string key = "k") {
  return make_op(client, OpKind::kRem, std::move(key), std::move(members), invoke, complete,
                 Outcome::kOk, removed);
}
Operation strict(uint64_t client, std::string member, int64_t invoke, int64_t complete,
                 bool added) {
  Operation op =
      make_op(client, OpKind::kAddStrict, "k", {std::move(member)}, invoke, complete, Outcome::kOk);
  op.flag = added;
  return op;
}
Operation has(uint64_t client, std::string member, int64_t invoke, int64_t complete, bool present,
              std::string key = "k") {
  Operation op = make_op(client, OpKind::kContains, std::move(key), {std::move(member)}, invoke,
                         complete, Outcome::kOk);
  op.flag = present;
  return op;
}
Operation members(uint64_t client, int64_t invoke, int64_t complete, Strings result) {
  Operation op = make_op(client, OpKind::kMembers, "k", {}, invoke, complete, Outcome::kOk);
  op.result_members = std::move(result);
  return op;
}
Operation size(uint64_t client, int64_t invoke, int64_t complete, uint64_t n) {
  return make_op(client, OpKind::kSize, "k", {}, invoke, complete, Outcome::kOk, n);
}
Operation unknown(Operation op) {
  op.outcome = Outcome::kUnknown;
  op.count = 0;
  op.flag = false;
  op.result_members.clear();
  return op;
}
Operation failed(Operation op) {
  op = unknown(std::move(op));
  op.outcome = Outcome::kFail;
  return op;
}

CheckOptions without_client_order() {
  CheckOptions o;
  o.client_order = false;
  return o;
}
CheckOptions with_max_states(uint64_t n) {
  CheckOptions o;
  o.max_states = n;
  return o;
}

Verdict verdict(const History& h, CheckOptions options = {}) {
  return check_history(h, options).verdict;
}

constexpr Verdict kYes = Verdict::kLinearizable;
constexpr Verdict kNo = Verdict::kNotLinearizable;

TEST(LinearizabilityTest, EmptyAndSequentialHistoriesPass) {
  EXPECT_EQ(verdict({}), kYes);
  History h = {add(1, {"a"}, 0, 10, 1),    has(1, "a", 20, 30, true), rem(2, {"a"}, 40, 50, 1),
               has(1, "a", 60, 70, false), members(3, 80, 90, {}),    size(3, 91, 92, 0)};
  CheckResult r = check_history(h);
  EXPECT_TRUE(r.ok()) << r.explanation;
  EXPECT_EQ(r.objects, 1u);  // whole-key reads tie the key into one object
}

TEST(LinearizabilityTest, StaleReadIsCaught) {
  History h = {add(1, {"a"}, 0, 10, 1), has(2, "a", 20, 30, false)};
  CheckResult r = check_history(h);
  EXPECT_EQ(r.verdict, kNo);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.members, Strings{"a"});
  EXPECT_EQ(r.excerpt, (std::vector<size_t>{0, 1}));
  EXPECT_NE(r.explanation.find("not linearizable: key \"k\", member \"a\""), std::string::npos)
      << r.explanation;
  EXPECT_NE(r.explanation.find("#2 contradicts the set {\"a\"}"), std::string::npos)
      << r.explanation;
  // Concurrent with the add, the same read is fine.
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 10, 1), has(2, "a", 5, 30, false)}), kYes);
}

TEST(LinearizabilityTest, LostAddIsCaught) {
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 10, 1), members(2, 20, 30, {})}), kNo);
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 10, 1), size(2, 20, 30, 0)}), kNo);
  EXPECT_EQ(
      verdict({add(1, {"a"}, 0, 10, 1), has(1, "b", 11, 12, false), has(2, "a", 20, 30, false)}),
      kNo);
}

TEST(LinearizabilityTest, AddThatSucceedsTwiceIsCaught) {
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 10, 1), add(2, {"a"}, 20, 30, 1)}), kNo);
  EXPECT_EQ(verdict({strict(1, "a", 0, 10, true), strict(2, "a", 20, 30, true)}), kNo);
  // A concurrent remove in between makes both answers possible.
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 10, 1), rem(3, {"a"}, 5, 25, 1), add(2, {"a"}, 20, 30, 1)}),
            kYes);
}

TEST(LinearizabilityTest, StrictAddAnswersExistsOnlyForPresentMembers) {
  EXPECT_EQ(verdict({strict(1, "a", 0, 10, true), strict(2, "a", 20, 30, false)}), kYes);
  EXPECT_EQ(verdict({strict(1, "a", 0, 10, false)}), kNo);
  EXPECT_EQ(verdict({strict(1, "a", 0, 10, false), add(2, {"a"}, 0, 10, 1)}), kYes);
}

TEST(LinearizabilityTest, UnknownAddMayHaveHappenedOrNot) {
  Operation maybe = unknown(add(1, {"a"}, 0, 5, 0));
  // A later read sees it: it must be taken to have happened.
  EXPECT_EQ(verdict({maybe, has(2, "a", 10, 20, true)}), kYes);
  // It never happened: fine too.
  EXPECT_EQ(verdict({maybe, has(2, "a", 10, 20, false)}), kYes);
  // It may happen late, after a read that missed it.
  EXPECT_EQ(verdict({maybe, has(2, "a", 10, 20, false), has(2, "a", 30, 40, true)}), kYes);
  // But once seen it cannot vanish without a remove.
  EXPECT_EQ(verdict({maybe, has(2, "a", 10, 20, true), has(2, "a", 30, 40, false)}), kNo);
  // It cannot take effect before it was invoked.
  EXPECT_EQ(verdict({has(2, "a", 0, 5, true), unknown(add(1, {"a"}, 10, 20, 0))}), kNo);
  // The count of an unknown add is not known either.
  EXPECT_EQ(verdict({add(3, {"a"}, 0, 1, 1), unknown(add(1, {"a", "b"}, 2, 3, 0)),
                     members(2, 10, 20, {"a", "b"})}),
            kYes);
}

TEST(LinearizabilityTest, FailedOperationsNeverHappened) {
  EXPECT_EQ(verdict({failed(add(1, {"a"}, 0, 5, 0)), has(2, "a", 10, 20, true)}), kNo);
  EXPECT_EQ(verdict({failed(add(1, {"a"}, 0, 5, 0)), has(2, "a", 10, 20, false)}), kYes);
  // Unknown and failed reads constrain nothing.
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 5, 1), unknown(has(2, "a", 10, 20, false)),
                     failed(members(2, 30, 40, {}))}),
            kYes);
}

// With "a" present, client 1 adds "b" then removes "a"; a concurrent SMEMBERS
// answering {} is allowed by each member alone ("a" absent after the remove,
// "b" absent before the add) but no single moment has the set empty.
TEST(LinearizabilityTest, WholeKeyReadNeedsTheWholeSet) {
  auto history = [](Operation read) {
    return History{add(1, {"a"}, 0, 1, 1), add(1, {"b"}, 10, 20, 1), rem(1, {"a"}, 30, 40, 1),
                   std::move(read)};
  };
  CheckResult r = check_history(history(members(2, 5, 50, {})));
  EXPECT_EQ(r.verdict, kNo) << r.explanation;
  EXPECT_TRUE(r.whole_key);
  EXPECT_EQ(r.members, (Strings{"a", "b"}));
  EXPECT_EQ(verdict(history(members(2, 5, 50, {"a"}))), kYes);
  EXPECT_EQ(verdict(history(members(2, 5, 50, {"a", "b"}))), kYes);
  EXPECT_EQ(verdict(history(members(2, 5, 50, {"b"}))), kYes);
  EXPECT_EQ(verdict(history(size(2, 5, 50, 0))), kNo);
  EXPECT_EQ(verdict(history(size(2, 5, 50, 1))), kYes);
  EXPECT_EQ(verdict(history(size(2, 5, 50, 2))), kYes);
  EXPECT_EQ(verdict(history(size(2, 5, 50, 3))), kNo);
  // The per-member projections of the failing history are each linearizable:
  // this is exactly what checking member by member would have accepted.
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 1, 1), rem(1, {"a"}, 30, 40, 1), has(2, "a", 5, 50, false)}),
            kYes);
  EXPECT_EQ(verdict({add(1, {"b"}, 10, 20, 1), has(2, "b", 5, 50, false)}), kYes);
}

TEST(LinearizabilityTest, MembersReadsMustListExactlyTheSet) {
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 1, 1), members(2, 5, 6, {"a", "a"})}), kNo);
  EXPECT_EQ(verdict({add(1, {"a"}, 0, 1, 1), members(2, 5, 6, {"a", "ghost"})}), kNo);
  EXPECT_EQ(verdict({add(1, {"b", "a"}, 0, 1, 2), members(2, 5, 6, {"a", "b"})}), kYes);
}

TEST(LinearizabilityTest, ConcurrentOperationsWithSeveralValidOrders) {
  // Three writers and two readers all overlap; several orders explain it.
  History h = {add(1, {"a"}, 0, 100, 1),        rem(2, {"a"}, 10, 90, 1),
               add(3, {"a"}, 20, 80, 1),        has(4, "a", 30, 70, true),
               has(5, "a", 40, 60, false),      has(4, "a", 110, 120, true),
               add(6, {"x", "a"}, 105, 130, 1), members(7, 140, 150, {"a", "x"})};
  CheckResult r = check_history(h);
  EXPECT_TRUE(r.ok()) << r.explanation;
  // Only one order works here (rem must fall between the two adds), and a
  // final read that contradicts it fails.
  h.back() = members(7, 140, 150, {"x"});
  EXPECT_EQ(verdict(h), kNo);
}

TEST(LinearizabilityTest, MultiMemberCountsAreChecked) {
  EXPECT_EQ(verdict({add(1, {"a", "b"}, 0, 1, 2), add(1, {"b", "c", "c"}, 2, 3, 1),
                     rem(2, {"a", "c", "z"}, 4, 5, 2)}),
            kYes);
  EXPECT_EQ(verdict({add(1, {"a", "b"}, 0, 1, 2), add(1, {"b", "c"}, 2, 3, 2)}), kNo);
  EXPECT_EQ(verdict({add(1, {"a", "b"}, 0, 1, 2), rem(2, {"a", "b"}, 4, 5, 1)}), kNo);
}

TEST(LinearizabilityTest, KeysAreIndependentAndTheFailingKeyIsNamed) {
  History h = {add(1, {"a"}, 0, 10, 1, "k1"), has(2, "a", 20, 30, true, "k1"),
               add(3, {"a"}, 0, 10, 1, "k2"), has(4, "a", 20, 30, false, "k2"),
               has(5, "a", 20, 30, false, "k3")};
  CheckResult r = check_history(h);
  EXPECT_EQ(r.verdict, kNo);
  EXPECT_EQ(r.key, "k2");
  EXPECT_EQ(r.objects, 3u);
  // Overlapping operations of one client are tied into one object across
  // keys (their order is checked); the report still names the key at fault.
  h[2].client = 1;
  h[3].client = 2;
  r = check_history(h);
  EXPECT_EQ(r.verdict, kNo);
  EXPECT_EQ(r.objects, 2u);
  EXPECT_EQ(r.key, "k2") << r.explanation;
}

TEST(LinearizabilityTest, PipelinedOperationsKeepTheirOrder) {
  // One connection sends an add and then a read without waiting: the read
  // must see the add, though real time alone would allow either order.
  History h = {add(1, {"a"}, 0, 100, 1), has(1, "a", 1, 100, false)};
  EXPECT_EQ(verdict(h), kNo);
  EXPECT_EQ(verdict(h, without_client_order()), kYes);
  // On two connections, either order is fine.
  h[1].client = 2;
  EXPECT_EQ(verdict(h), kYes);
}

TEST(LinearizabilityTest, PipelinedAfterAnUnknownOperation) {
  // The unknown add took effect before the pipelined read or never; the read
  // missed it, so it never did, and a later read cannot see it.
  Operation maybe = unknown(add(1, {"a"}, 0, 50, 0));
  EXPECT_EQ(verdict({maybe, has(1, "a", 10, 60, false)}), kYes);
  History h = {maybe, has(1, "a", 10, 60, false), has(2, "a", 70, 80, true)};
  EXPECT_EQ(verdict(h), kNo);
  EXPECT_EQ(verdict(h, without_client_order()), kYes);
}

// A session request (docs/sessions.md) whose reply was lost and which was
// retried is ONE operation: invoked at its first attempt, completed at the
// definitive answer, with that answer's result (history.h).
Operation retried(Operation op, uint64_t session, uint64_t seq, uint64_t attempts,
                  bool deduplicated) {
  op.session = session;
  op.seq = seq;
  op.attempts = attempts;
  op.deduplicated = deduplicated;
  return op;
}

TEST(LinearizabilityTest, DeduplicatedRetryIsOneOperation) {
  // Client 1's CSET.ADD took effect at its first attempt (client 2 sees the
  // member early), the reply was lost, and the retry was answered OK from
  // the session table: correct.
  History good = {retried(strict(1, "a", 0, 100, true), 7, 1, 2, true), has(2, "a", 10, 20, true),
                  strict(2, "a", 30, 40, false), members(2, 110, 120, {"a"})};
  CheckResult r = check_history(good);
  EXPECT_TRUE(r.ok()) << r.explanation;

  // The bug sessions exist to prevent: the retry applied again and answered
  // EXISTS for the client's own first attempt. As one operation, nothing
  // else added "a", so it cannot be present: not linearizable.
  History bad = {retried(strict(1, "a", 0, 100, false), 7, 1, 2, false), has(2, "a", 10, 20, true),
                 members(2, 110, 120, {"a"})};
  r = check_history(bad);
  EXPECT_EQ(r.verdict, kNo);
  EXPECT_NE(r.explanation.find("session 7 seq 1 (2 attempts)"), std::string::npos) << r.explanation;
  // Recorded as two operations (an unknown first attempt and an answered
  // retry), the same run would pass: why a retry must be recorded once.
  History split = {unknown(strict(1, "a", 0, 50, true)), strict(1, "a", 60, 100, false),
                   has(2, "a", 10, 20, true), members(2, 110, 120, {"a"})};
  EXPECT_EQ(verdict(split), kYes);
}

TEST(LinearizabilityTest, DoubleAppliedSessionRemoveIsCaught) {
  // "a" is added; client 1 removes it (session request, 2 attempts, answer
  // 1); client 2 sees it gone, adds it back, and later sees it gone again:
  // the retry removed it a second time.
  History h = {add(2, {"a"}, 0, 5, 1), retried(rem(1, {"a"}, 10, 100, 1), 3, 8, 2, false),
               has(2, "a", 20, 25, false), add(2, {"a"}, 30, 40, 1), has(2, "a", 50, 60, false)};
  EXPECT_EQ(verdict(h), kNo);
  // Deduplicated correctly, "a" stays: linearizable.
  h[1].deduplicated = true;
  h[4].flag = true;
  EXPECT_EQ(verdict(h), kYes);
}

TEST(LinearizabilityTest, RetriedSessionRequestIsNotHeldToItsClientsOrder) {
  // Client 1 pipelines an add and a read. Sent once, the add comes first and
  // the read must see it; retried (through another connection) the add may
  // take effect after the read.
  Operation sent_once = retried(add(1, {"a"}, 0, 100, 1), 5, 1, 1, false);
  History h = {sent_once, has(1, "a", 10, 20, false)};
  EXPECT_EQ(verdict(h), kNo);
  h[0].attempts = 2;
  EXPECT_EQ(verdict(h), kYes);
  // Still one effect: a later read must see it.
  h.push_back(has(2, "a", 120, 130, false));
  EXPECT_EQ(verdict(h), kNo);
}

TEST(LinearizabilityTest, ExcerptIsSmallAndShowsTheViolation) {
  History h;
  int64_t t = 0;
  for (int i = 0; i < 200; ++i) {  // a long, correct prefix on the same member
    h.push_back(add(1, {"a"}, t, t + 5, 1));
    h.push_back(has(2, "a", t + 3, t + 8, i % 2 == 0));
    h.push_back(rem(3, {"a"}, t + 10, t + 15, 1));
    t += 20;
  }
  h.push_back(add(1, {"a"}, t, t + 5, 1));
  h.push_back(has(2, "a", t + 6, t + 8, true));
  h.push_back(has(2, "a", t + 9, t + 10, false));  // stale: #603
  h.push_back(has(2, "a", t + 11, t + 12, true));
  for (int i = 0; i < 50; ++i) h.push_back(has(2, "a", t + 20 + i, t + 20 + i, true));
  CheckResult r = check_history(h);
  ASSERT_EQ(r.verdict, kNo);
  EXPECT_LE(r.excerpt.size(), 3u) << r.explanation;
  EXPECT_NE(std::find(r.excerpt.begin(), r.excerpt.end(), 602u), r.excerpt.end()) << r.explanation;
  EXPECT_NE(r.explanation.find("#603 client 2"), std::string::npos) << r.explanation;
  // Deterministic report.
  EXPECT_EQ(check_history(h).explanation, r.explanation);
}

TEST(LinearizabilityTest, OutOfBudgetFailsNeverPasses) {
  // Twelve concurrent unknown adds and a whole-key read: thousands of states.
  History h;
  for (int i = 0; i < 12; ++i) h.push_back(unknown(add(i, {std::to_string(i)}, 0, 10, 0)));
  h.push_back(members(99, 20, 30, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}));
  h.push_back(members(98, 20, 30, {}));  // and a violation no search this small can reach
  CheckOptions tiny = with_max_states(10);
  tiny.max_excerpt_states = 10;
  CheckResult r = check_history(h, tiny);
  EXPECT_EQ(r.verdict, Verdict::kInconclusive) << r.explanation;
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.explanation.find("state budget"), std::string::npos) << r.explanation;
  h.pop_back();
  EXPECT_EQ(check_history(h, tiny).verdict, Verdict::kInconclusive);
  // Time budget, with a clock that advances one millisecond per reading.
  uint64_t fake_ms = 0;
  CheckOptions timed{.max_time_ms = 3, .now_ms = [&] { return fake_ms++; }};
  History slow;
  for (int i = 0; i < 14; ++i) slow.push_back(unknown(add(i, {std::to_string(i)}, 0, 10, 0)));
  slow.push_back(size(99, 20, 30, 14));
  slow.push_back(size(99, 31, 32, 15));  // unreachable: the search explores everything
  r = check_history(slow, timed);
  EXPECT_EQ(r.verdict, Verdict::kInconclusive) << r.explanation;
  EXPECT_NE(r.explanation.find("time budget"), std::string::npos) << r.explanation;
  // With enough budget the same search answers.
  EXPECT_EQ(check_history(slow).verdict, kNo);
}

// When the whole object is too big to search, a violation can still be
// proved on a small window around the place where the search got stuck.
TEST(LinearizabilityTest, ViolationProvedOnAWindowWhenTheWholeSearchRunsOut) {
  History h;
  for (int i = 0; i < 30; ++i) {  // unknown writes make the full search expensive
    h.push_back(unknown(add(100 + i, {"a"}, 10 * i, 10 * i + 5, 0)));
    h.push_back(unknown(rem(200 + i, {"a"}, 10 * i + 2, 10 * i + 7, 0)));
  }
  h.push_back(add(1, {"b"}, 400, 410, 1));
  h.push_back(members(2, 420, 430, {"a"}));  // "b" was lost
  for (int i = 0; i < 20; ++i) h.push_back(has(3, "b", 440 + 10 * i, 445 + 10 * i, true));
  CheckResult r = check_history(h, with_max_states(20));
  ASSERT_EQ(r.verdict, kNo) << r.explanation;
  EXPECT_LE(r.excerpt.size(), 4u) << r.explanation;
  EXPECT_NE(std::find(r.excerpt.begin(), r.excerpt.end(), 61u), r.excerpt.end()) << r.explanation;
}

TEST(LinearizabilityTest, InvalidHistoriesAreReportedAsSuch) {
  Operation bad = add(1, {"a"}, 10, 5, 1);
  CheckResult r = check_history({bad});
  EXPECT_EQ(r.verdict, Verdict::kInvalidHistory);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(check_history_file("/nonexistent/history.jsonl").verdict, Verdict::kInvalidHistory);
}

TEST(LinearizabilityTest, ChecksHistoryFiles) {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("cset-check-test-" + std::to_string(::getpid()) + ".jsonl"))
                         .string();
  History h = {add(1, {"\0"s}, 0, 10, 1), has(2, "\0"s, 20, 30, false)};
  ASSERT_TRUE(write_history_file(path, h).is_ok());
  CheckResult r = check_history_file(path);
  EXPECT_EQ(r.verdict, kNo);
  EXPECT_NE(r.explanation.find("member \"\\x00\""), std::string::npos) << r.explanation;
  h[1].flag = true;
  ASSERT_TRUE(write_history_file(path, h).is_ok());
  EXPECT_TRUE(check_history_file(path).ok());
  std::remove(path.c_str());
}

// Histories recorded from a real sequential execution, with intervals drawn
// around each operation's true moment, are always linearizable, whatever the
// overlap, outcomes and reads.
TEST(LinearizabilityTest, RandomCorrectHistoriesPass) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::set<std::pair<std::string, std::string>> truth;
    History h;
    const int n = 5 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const int64_t at = 100 * i;
      std::string key = "k" + std::to_string(rng() % 2);
      std::string m = std::to_string(rng() % 4);
      Operation op = make_op(static_cast<uint64_t>(i), OpKind::kAdd, key, {},
                             at - int64_t(rng() % 250), at + int64_t(rng() % 250), Outcome::kOk);
      switch (rng() % 6) {
        case 0: {
          op.members = {m, std::to_string(rng() % 4)};
          std::set<std::string> distinct(op.members.begin(), op.members.end());
          for (const std::string& x : distinct) op.count += truth.emplace(key, x).second;
          break;
        }
        case 1:
          op.kind = OpKind::kRem;
          op.members = {m};
          op.count = truth.erase({key, m});
          break;
        case 2:
          op.kind = OpKind::kAddStrict;
          op.members = {m};
          op.flag = truth.emplace(key, m).second;
          break;
        case 3:
          op.kind = OpKind::kContains;
          op.members = {m};
          op.flag = truth.count({key, m}) > 0;
          break;
        case 4:
          op.kind = OpKind::kMembers;
          for (const auto& [k, x] : truth) {
            if (k == key) op.result_members.push_back(x);
          }
          std::shuffle(op.result_members.begin(), op.result_members.end(), rng);
          break;
        default:
          op.kind = OpKind::kSize;
          for (const auto& [k, x] : truth) op.count += k == key;
      }
      if (rng() % 8 == 0) op = unknown(op);  // it happened, but the client never heard
      h.push_back(op);
      if (rng() % 10 == 0) {  // an unknown write that never happened
        Operation ghost =
            make_op(1000u + i, OpKind::kRem, key, {m}, at, at + 10, Outcome::kUnknown);
        h.push_back(ghost);
      }
    }
    CheckResult r = check_history(h);
    ASSERT_TRUE(r.ok()) << "round " << round << "\n" << r.explanation << to_jsonl(h);
  }
}

// ---- Cross-check against brute force on small random histories ----

// Linearizable by exhaustive enumeration: every subset of the unknown writes
// that took effect, every order of what took effect that respects real time
// and client order, replayed on a std::set.
bool brute_force(const History& h, bool client_order) {
  std::vector<size_t> definite;
  std::vector<size_t> maybe;
  for (size_t i = 0; i < h.size(); ++i) {
    bool read = h[i].kind == OpKind::kContains || h[i].kind == OpKind::kMembers ||
                h[i].kind == OpKind::kSize;
    if (h[i].outcome == Outcome::kOk) definite.push_back(i);
    if (h[i].outcome == Outcome::kUnknown && !read) maybe.push_back(i);
  }
  auto before = [&](size_t a, size_t b) {  // must a precede b (both take effect)?
    if (h[a].outcome == Outcome::kOk && h[a].complete < h[b].invoke) return true;
    return client_order && h[a].client == h[b].client &&
           std::pair(h[a].invoke, a) < std::pair(h[b].invoke, b) && h[a].complete >= h[b].invoke;
  };
  auto legal = [&](const std::vector<size_t>& order) {
    std::set<std::pair<std::string, std::string>> set;
    for (size_t i : order) {
      const Operation& op = h[i];
      bool check = op.outcome == Outcome::kOk;
      uint64_t n = 0;
      switch (op.kind) {
        case OpKind::kAdd:
          for (const auto& m : op.members) n += set.emplace(op.key, m).second;
          if (check && n != op.count) return false;
          break;
        case OpKind::kRem:
          for (const auto& m : op.members) n += set.erase({op.key, m});
          if (check && n != op.count) return false;
          break;
        case OpKind::kAddStrict: {
          bool added = set.emplace(op.key, op.members[0]).second;
          if (check && added != op.flag) return false;
          break;
        }
        case OpKind::kContains:
          if (set.count({op.key, op.members[0]}) != (op.flag ? 1u : 0u)) return false;
          break;
        case OpKind::kMembers: {
          Strings got;
          for (const auto& [k, m] : set) {
            if (k == op.key) got.push_back(m);
          }
          Strings want = op.result_members;
          std::sort(want.begin(), want.end());
          if (got != want) return false;
          break;
        }
        case OpKind::kSize:
          for (const auto& [k, m] : set) n += k == op.key;
          if (n != op.count) return false;
          break;
      }
    }
    return true;
  };
  for (uint32_t subset = 0; subset < (1u << maybe.size()); ++subset) {
    std::vector<size_t> order = definite;
    for (size_t j = 0; j < maybe.size(); ++j) {
      if (subset & (1u << j)) order.push_back(maybe[j]);
    }
    std::sort(order.begin(), order.end());
    do {
      bool ok = true;
      for (size_t x = 0; x < order.size() && ok; ++x) {
        for (size_t y = x + 1; y < order.size() && ok; ++y) ok = !before(order[y], order[x]);
      }
      if (ok && legal(order)) return true;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  return false;
}

// Operations are unknown one time in `unknown_one_in`, failed as often.
History random_small_history(std::mt19937_64& rng, int unknown_one_in = 6) {
  History h;
  const int n = 2 + static_cast<int>(rng() % 6);
  const Strings pool = {"a", "b", "c"};
  for (int i = 0; i < n; ++i) {
    Operation op;
    op.client = rng() % 3;
    op.key = "k";
    op.invoke = static_cast<int64_t>(rng() % 20);
    op.complete = op.invoke + static_cast<int64_t>(rng() % 12);
    op.kind = static_cast<OpKind>(rng() % 6);
    const std::string m = pool[rng() % pool.size()];
    switch (op.kind) {
      case OpKind::kAdd:
      case OpKind::kRem:
        op.members = {m};
        if (rng() % 3 == 0) op.members.push_back(pool[rng() % pool.size()]);
        op.count = rng() % 3;
        break;
      case OpKind::kAddStrict:
      case OpKind::kContains:
        op.members = {m};
        op.flag = rng() % 2;
        break;
      case OpKind::kMembers:
        for (const std::string& x : pool) {
          if (rng() % 2) op.result_members.push_back(x);
        }
        break;
      case OpKind::kSize:
        op.count = rng() % 3;
        break;
    }
    switch (rng() % static_cast<uint64_t>(unknown_one_in)) {
      case 0:
        op = unknown(op);
        break;
      case 1:
        op = failed(op);
        break;
      default:
        break;
    }
    h.push_back(op);
  }
  return h;
}

TEST(LinearizabilityTest, AgreesWithBruteForce) {
  std::mt19937_64 rng(2024);
  int violations = 0;
  for (int round = 0; round < 3000; ++round) {
    History h = random_small_history(rng, round % 2 == 0 ? 6 : 3);
    for (bool client_order : {true, false}) {
      CheckOptions options;
      options.client_order = client_order;
      CheckResult r = check_history(h, options);
      ASSERT_NE(r.verdict, Verdict::kInconclusive);
      bool expected = brute_force(h, client_order);
      ASSERT_EQ(r.ok(), expected) << "round " << round << " client_order " << client_order << "\n"
                                  << r.explanation << to_jsonl(h);
      if (!expected) {
        ++violations;
        ASSERT_FALSE(r.excerpt.empty());
        for (size_t i : r.excerpt) ASSERT_LT(i, h.size());
        EXPECT_NE(r.explanation.find("not linearizable"), std::string::npos);
      }
    }
  }
  EXPECT_GT(violations, 500);  // the generator produces both kinds
}

// A linearizable history by construction: operations take effect at times
// 10, 20, 30... on a std::set, with intervals drawn around those moments;
// each client's invocations increase with their effect times (so client
// order holds); unknown writes take effect or not; failed ones do not.
History random_linearizable_history(std::mt19937_64& rng, int n) {
  const Strings pool = {"a", "b", "c"};
  std::set<std::pair<std::string, std::string>> truth;
  std::map<uint64_t, int64_t> last_invoke;
  History h;
  for (int i = 1; i <= n; ++i) {
    const int64_t at = 10 * i;
    Operation op;
    op.client = rng() % 4;
    op.key = "k" + std::to_string(rng() % 2);
    op.invoke = at - static_cast<int64_t>(rng() % 25);
    if (last_invoke.count(op.client)) op.invoke = std::max(op.invoke, last_invoke[op.client] + 1);
    last_invoke[op.client] = op.invoke;
    op.complete = at + static_cast<int64_t>(rng() % 25);
    const int outcome = static_cast<int>(rng() % 8);  // 0: unknown, took effect; 1: unknown,
                                                      // did not; 2: failed; else ok
    const bool applies = outcome != 1 && outcome != 2;
    const std::string m = pool[rng() % pool.size()];
    op.kind = static_cast<OpKind>(rng() % 6);
    switch (op.kind) {
      case OpKind::kAdd:
      case OpKind::kRem: {
        op.members = {m, pool[rng() % pool.size()]};
        std::set<std::string> distinct(op.members.begin(), op.members.end());
        for (const std::string& x : distinct) {
          if (!applies) break;
          op.count +=
              op.kind == OpKind::kAdd ? truth.emplace(op.key, x).second : truth.erase({op.key, x});
        }
        break;
      }
      case OpKind::kAddStrict:
        op.members = {m};
        op.flag = applies && truth.emplace(op.key, m).second;
        break;
      case OpKind::kContains:
        op.members = {m};
        op.flag = truth.count({op.key, m}) > 0;
        break;
      case OpKind::kMembers:
        for (const auto& [k, x] : truth) {
          if (k == op.key) op.result_members.push_back(x);
        }
        break;
      case OpKind::kSize:
        for (const auto& [k, x] : truth) op.count += k == op.key;
        break;
    }
    if (outcome <= 1) op = unknown(op);
    if (outcome == 2) op = failed(op);
    h.push_back(op);
  }
  return h;
}

// The excerpt machinery's soundness: every window of a linearizable history
// is linearizable under the window's rules (relaxed edges, any starting
// state, capped early writes), so a window that fails proves the history
// fails. Checked on every window of random linearizable histories.
TEST(LinearizabilityTest, WindowsOfLinearizableHistoriesNeverFail) {
  std::mt19937_64 rng(99);
  int checked = 0;
  for (int round = 0; round < 200; ++round) {
    History h = random_linearizable_history(rng, 8 + static_cast<int>(rng() % 10));
    for (bool client_order : {true, false}) {
      CheckOptions options;
      options.client_order = client_order;
      ASSERT_TRUE(check_history(h, options).ok()) << to_jsonl(h);
      std::vector<std::optional<int64_t>> edges = {std::nullopt};
      for (const Operation& op : h) edges.emplace_back(op.invoke);
      for (const detail::Object& object : detail::partition(h, client_order)) {
        for (const auto& t1 : edges) {
          for (const auto& t2 : edges) {
            if (t1 && t2 && *t2 <= *t1) continue;
            detail::Window w = detail::make_window(h, object, t1, t2);
            detail::Budget budget;
            budget.states_left = 1'000'000;
            budget.max_cache_bytes = uint64_t{1} << 30;
            auto v = detail::check_window(h, object, w, client_order, budget);
            ASSERT_EQ(v, detail::SearchVerdict::kLinearizable)
                << "round " << round << " window [" << (t1 ? std::to_string(*t1) : "-") << ", "
                << (t2 ? std::to_string(*t2) : "-") << ")\n"
                << to_jsonl(h);
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

// A plain reference search for mid-sized histories (up to 24 operations):
// depth-first over "which operation takes effect next", every unknown write
// free to take effect or never, memoized on (operations done, set contents).
// No reductions at all, so it is slow but obviously right.
class ReferenceChecker {
 public:
  ReferenceChecker(const History& h, bool client_order) : h_(h), client_order_(client_order) {
    for (size_t i = 0; i < h.size(); ++i) {
      bool read = h[i].kind == OpKind::kContains || h[i].kind == OpKind::kMembers ||
                  h[i].kind == OpKind::kSize;
      if (h[i].outcome == Outcome::kOk || (h[i].outcome == Outcome::kUnknown && !read)) {
        ops_.push_back(i);
      }
    }
  }

  bool linearizable() { return search(0, {}); }

 private:
  using Set = std::set<std::pair<std::string, std::string>>;

  bool must_precede(size_t a, size_t b) const {
    if (h_[a].outcome == Outcome::kOk && h_[a].complete < h_[b].invoke) return true;
    return client_order_ && h_[a].client == h_[b].client &&
           std::pair(h_[a].invoke, a) < std::pair(h_[b].invoke, b) &&
           h_[a].complete >= h_[b].invoke;
  }

  // Applies op i; false when a definite result disagrees.
  bool apply(size_t i, Set& set) const {
    const Operation& op = h_[i];
    const bool check = op.outcome == Outcome::kOk;
    uint64_t n = 0;
    std::set<std::string> distinct(op.members.begin(), op.members.end());
    switch (op.kind) {
      case OpKind::kAdd:
        for (const auto& m : distinct) n += set.emplace(op.key, m).second;
        return !check || n == op.count;
      case OpKind::kRem:
        for (const auto& m : distinct) n += set.erase({op.key, m});
        return !check || n == op.count;
      case OpKind::kAddStrict: {
        bool added = set.emplace(op.key, op.members[0]).second;
        return !check || added == op.flag;
      }
      case OpKind::kContains:
        return set.count({op.key, op.members[0]}) == (op.flag ? 1u : 0u);
      case OpKind::kMembers: {
        Strings got;
        for (const auto& [k, m] : set) {
          if (k == op.key) got.push_back(m);
        }
        Strings want = op.result_members;
        std::sort(want.begin(), want.end());
        return got == want;
      }
      case OpKind::kSize:
        for (const auto& [k, m] : set) n += k == op.key;
        return n == op.count;
    }
    return false;
  }

  bool search(uint32_t done, const Set& set) {
    bool all_definite = true;
    for (size_t j = 0; j < ops_.size(); ++j) {
      if (!(done >> j & 1) && h_[ops_[j]].outcome == Outcome::kOk) all_definite = false;
    }
    if (all_definite) return true;
    if (!seen_.emplace(done, set).second) return false;
    for (size_t j = 0; j < ops_.size(); ++j) {
      if (done >> j & 1) continue;
      bool ready = true;
      for (size_t i = 0; i < ops_.size() && ready; ++i) {
        if (!(done >> i & 1) && i != j && must_precede(ops_[i], ops_[j])) ready = false;
      }
      if (!ready) continue;
      Set next = set;
      if (apply(ops_[j], next) && search(done | 1u << j, next)) return true;
      // An unknown write may also never take effect.
      if (h_[ops_[j]].outcome == Outcome::kUnknown && search(done | 1u << j, set)) return true;
    }
    return false;
  }

  const History& h_;
  const bool client_order_;
  std::vector<size_t> ops_;
  std::set<std::pair<uint32_t, Set>> seen_;
};

// The checker (with its reductions: interchangeable unknown writes, just-in-
// time placement, windows) agrees with the plain reference on mid-sized
// histories, correct ones and ones with one result altered.
TEST(LinearizabilityTest, AgreesWithAPlainReferenceSearch) {
  std::mt19937_64 rng(31337);
  int violations = 0;
  for (int round = 0; round < 400; ++round) {
    History h = random_linearizable_history(rng, 10 + static_cast<int>(rng() % 12));
    if (rng() % 2) {  // alter one definite result
      Operation& op = h[rng() % h.size()];
      if (op.outcome == Outcome::kOk) {
        op.flag = !op.flag;
        op.count = op.count == 0 ? 1 : op.count - 1;
        if (op.kind == OpKind::kMembers) op.result_members.push_back("c");
        if (op.kind == OpKind::kAddStrict || op.kind == OpKind::kContains) op.count = 0;
        if (op.kind == OpKind::kMembers) op.count = 0;
      }
    }
    for (bool client_order : {true, false}) {
      CheckOptions options;
      options.client_order = client_order;
      CheckResult r = check_history(h, options);
      ASSERT_NE(r.verdict, Verdict::kInconclusive);
      ASSERT_NE(r.verdict, Verdict::kInvalidHistory) << r.explanation;
      bool expected = ReferenceChecker(h, client_order).linearizable();
      ASSERT_EQ(r.ok(), expected) << "round " << round << " client_order " << client_order << "\n"
                                  << r.explanation << to_jsonl(h);
      violations += !expected;
    }
  }
  EXPECT_GT(violations, 50);
}

// The example in docs/history-format.md is linearizable only because the
// unknown add_strict took effect.
TEST(LinearizabilityTest, DocumentedExampleIsLinearizable) {
  auto h = parse_jsonl(
      R"({"client":1,"op":"add","key":"k","members":["a",{"hex":"00ff"}],"invoke":100,"complete":130,"outcome":"ok","result":2}
{"client":2,"op":"contains","key":"k","member":"a","invoke":120,"complete":125,"outcome":"ok","result":false}
{"client":1,"op":"add_strict","key":"k","member":"b","invoke":140,"complete":900,"outcome":"unknown"}
{"client":3,"op":"members","key":"k","invoke":200,"complete":260,"outcome":"ok","result":["a",{"hex":"00ff"}]}
{"client":4,"op":"rem","key":"k","members":["a"],"invoke":300,"complete":310,"outcome":"fail"}
{"client":3,"op":"size","key":"k","invoke":950,"complete":960,"outcome":"ok","result":3}
)");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(check_history(*h).ok());
  (*h)[5].count = 4;
  EXPECT_EQ(check_history(*h).verdict, kNo);
}

}  // namespace
}  // namespace cset::check
