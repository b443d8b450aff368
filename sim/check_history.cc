#include "sim/check_history.h"

#include <cstdio>

#include "sim/check/linearizability.h"

namespace cset::sim {

namespace {

check::OpKind to_check_kind(SimOp::Kind k) {
  switch (k) {
    case SimOp::Kind::kAdd:
      return check::OpKind::kAdd;
    case SimOp::Kind::kAddStrict:
      return check::OpKind::kAddStrict;
    case SimOp::Kind::kRem:
      return check::OpKind::kRem;
    case SimOp::Kind::kContains:
      return check::OpKind::kContains;
    case SimOp::Kind::kMembers:
      return check::OpKind::kMembers;
    case SimOp::Kind::kSize:
      return check::OpKind::kSize;
    case SimOp::Kind::kOpenSession:
      break;  // never in a history
  }
  return check::OpKind::kAdd;
}

}  // namespace

check::History to_check_history(const std::vector<SimOp>& history, uint64_t end_us) {
  check::History out;
  out.reserve(history.size());
  for (const SimOp& s : history) {
    check::Operation op;
    // Negative ids are the settle probes: each its own connection.
    op.client = s.client >= 0 ? static_cast<uint64_t>(s.client)
                              : 1'000'000 + static_cast<uint64_t>(-static_cast<int64_t>(s.client));
    op.kind = to_check_kind(s.kind);
    op.key = s.key;
    op.members = s.members;
    op.invoke = static_cast<int64_t>(s.invoke_us);
    // A session write: one logical request, however many attempts.
    op.session = s.session;
    op.seq = s.seq;
    op.attempts = s.attempts > 1 ? static_cast<uint64_t>(s.attempts) : 1;
    op.deduplicated = s.deduplicated && s.outcome == SimOp::Outcome::kOk;
    switch (s.outcome) {
      case SimOp::Outcome::kOk:
        op.outcome = check::Outcome::kOk;
        op.complete = static_cast<int64_t>(s.complete_us);
        switch (s.kind) {
          case SimOp::Kind::kAddStrict:
            op.flag = !s.exists;
            break;
          case SimOp::Kind::kContains:
            op.flag = s.present;
            break;
          case SimOp::Kind::kMembers:
            op.result_members = s.result_members;
            break;
          default:
            op.count = s.count;
            break;
        }
        break;
      case SimOp::Outcome::kFail:
        op.outcome = check::Outcome::kFail;
        op.complete = static_cast<int64_t>(s.complete_us);
        break;
      default:
        // Unknown, or still pending when the run ended.
        op.outcome = check::Outcome::kUnknown;
        op.complete =
            static_cast<int64_t>(s.outcome == SimOp::Outcome::kPending ? end_us : s.complete_us);
        break;
    }
    if (op.complete < op.invoke) op.complete = op.invoke;
    out.push_back(std::move(op));
  }
  return out;
}

LinearizabilityVerdict check_sim_history(const std::vector<SimOp>& history, uint64_t end_us) {
  // Deterministic budgets (states, not time), sized for one simulated run: a
  // run that exhausts them fails as inconclusive, never passes.
  check::CheckOptions options;
  options.max_states = 400'000;
  options.max_excerpt_states = 50'000;
  options.max_cache_bytes = uint64_t{256} << 20;
  check::CheckResult r = check::check_history(to_check_history(history, end_us), options);
  LinearizabilityVerdict v;
  v.ok = r.ok();
  if (!v.ok) v.explanation = r.explanation;
  return v;
}

int check_history_command(const std::string& path) {
  check::CheckResult r = check::check_history_file(path);
  if (r.verdict == check::Verdict::kInvalidHistory) {
    std::fprintf(stderr, "%s\n", r.explanation.c_str());
    return 2;
  }
  if (r.ok()) {
    std::printf("linearizable (%zu objects, %llu states)\n", r.objects,
                static_cast<unsigned long long>(r.states_explored));
    return 0;
  }
  std::printf("%s\n", r.explanation.c_str());
  return 1;
}

}  // namespace cset::sim
