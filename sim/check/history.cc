#include "check/history.h"

#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cset::check {
namespace {

using Json = nlohmann::json;

constexpr const char* kKindNames[] = {"add", "add_strict", "rem", "contains", "members", "size"};
constexpr const char* kOutcomeNames[] = {"ok", "fail", "unknown"};

Status invalid(std::string message) { return Status(Code::kInvalid, std::move(message)); }

// Well-formed UTF-8 as defined by the Unicode Standard, Table 3-7 (no
// overlong forms, no surrogates, nothing above U+10FFFF): exactly what a
// JSON library accepts in a string.
bool is_utf8(std::string_view s) {
  size_t i = 0;
  auto byte = [&](size_t at) { return static_cast<uint8_t>(s[at]); };
  auto in = [](uint8_t b, uint8_t lo, uint8_t hi) { return b >= lo && b <= hi; };
  while (i < s.size()) {
    uint8_t b0 = byte(i);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;
    if (in(b0, 0xc2, 0xdf)) {
      n = 2;
    } else if (in(b0, 0xe0, 0xef)) {
      n = 3;
      if (b0 == 0xe0) lo = 0xa0;
      if (b0 == 0xed) hi = 0x9f;
    } else if (in(b0, 0xf0, 0xf4)) {
      n = 4;
      if (b0 == 0xf0) lo = 0x90;
      if (b0 == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (i + n > s.size() || !in(byte(i + 1), lo, hi)) return false;
    for (size_t k = 2; k < n; ++k) {
      if (!in(byte(i + k), 0x80, 0xbf)) return false;
    }
    i += n;
  }
  return true;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out.push_back(kDigits[static_cast<uint8_t>(c) >> 4]);
    out.push_back(kDigits[static_cast<uint8_t>(c) & 0xf]);
  }
  return out;
}

bool from_hex(std::string_view hex, std::string& out) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]);
    int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

Json bytes_to_json(std::string_view bytes) {
  if (is_utf8(bytes)) return Json(std::string(bytes));
  return Json{{"hex", to_hex(bytes)}};
}

bool bytes_from_json(const Json& j, std::string& out) {
  if (j.is_string()) {
    out = j.get<std::string>();
    return true;
  }
  if (j.is_object() && j.size() == 1 && j.contains("hex") && j["hex"].is_string()) {
    return from_hex(j["hex"].get<std::string>(), out);
  }
  return false;
}

Json list_to_json(const std::vector<std::string>& items) {
  Json a = Json::array();
  for (const std::string& s : items) a.push_back(bytes_to_json(s));
  return a;
}

bool list_from_json(const Json& j, std::vector<std::string>& out) {
  if (!j.is_array()) return false;
  out.clear();
  for (const Json& item : j) {
    if (!bytes_from_json(item, out.emplace_back())) return false;
  }
  return true;
}

template <typename Int>
bool int_from_json(const Json& j, Int& out) {
  if (!j.is_number_integer()) return false;
  if (j.is_number_unsigned()) {
    auto v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max())) return false;
    out = static_cast<Int>(v);
    return true;
  }
  auto v = j.get<int64_t>();
  if (v < 0 && std::numeric_limits<Int>::min() == 0) return false;
  out = static_cast<Int>(v);
  return true;
}

bool single_member(OpKind k) { return k == OpKind::kAddStrict || k == OpKind::kContains; }
bool whole_key(OpKind k) { return k == OpKind::kMembers || k == OpKind::kSize; }

Json result_to_json(const Operation& op) {
  switch (op.kind) {
    case OpKind::kAdd:
    case OpKind::kRem:
    case OpKind::kSize:
      return Json(op.count);
    case OpKind::kAddStrict:
      return Json(op.flag ? "ok" : "exists");
    case OpKind::kContains:
      return Json(op.flag);
    case OpKind::kMembers:
      return list_to_json(op.result_members);
  }
  return Json();
}

bool result_from_json(const Json& j, Operation& op) {
  switch (op.kind) {
    case OpKind::kAdd:
    case OpKind::kRem:
    case OpKind::kSize:
      return int_from_json(j, op.count);
    case OpKind::kAddStrict:
      if (j == "ok" || j == "exists") {
        op.flag = j == "ok";
        return true;
      }
      return false;
    case OpKind::kContains:
      if (!j.is_boolean()) return false;
      op.flag = j.get<bool>();
      return true;
    case OpKind::kMembers:
      return list_from_json(j, op.result_members);
  }
  return false;
}

template <size_t N>
bool name_to_enum(const Json& j, const char* const (&names)[N], uint8_t& out) {
  if (!j.is_string()) return false;
  for (size_t i = 0; i < N; ++i) {
    if (j.get<std::string>() == names[i]) {
      out = static_cast<uint8_t>(i);
      return true;
    }
  }
  return false;
}

}  // namespace

const char* to_string(OpKind kind) { return kKindNames[static_cast<size_t>(kind)]; }
const char* to_string(Outcome outcome) { return kOutcomeNames[static_cast<size_t>(outcome)]; }

Status validate_history(const History& history) {
  std::map<std::pair<uint64_t, uint64_t>, size_t> session_requests;  // (session, seq) -> #N
  for (size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    std::string where = "history op #" + std::to_string(i + 1) + ": ";
    if (static_cast<size_t>(op.kind) > static_cast<size_t>(OpKind::kSize)) {
      return invalid(where + "unknown op");
    }
    if (static_cast<size_t>(op.outcome) > static_cast<size_t>(Outcome::kUnknown)) {
      return invalid(where + "unknown outcome");
    }
    if (op.complete < op.invoke) return invalid(where + "completes before it is invoked");
    if (single_member(op.kind) && op.members.size() != 1) {
      return invalid(where + to_string(op.kind) + " takes exactly one member");
    }
    if (whole_key(op.kind) && !op.members.empty()) {
      return invalid(where + to_string(op.kind) + " takes no members");
    }
    if ((op.kind == OpKind::kAdd || op.kind == OpKind::kRem) && op.members.empty()) {
      return invalid(where + to_string(op.kind) + " needs at least one member");
    }
    bool has_result = op.count != 0 || op.flag || !op.result_members.empty();
    if (op.outcome != Outcome::kOk && has_result) {
      return invalid(where + "a result recorded for an operation that is not ok");
    }
    if (op.kind != OpKind::kMembers && !op.result_members.empty()) {
      return invalid(where + "result members recorded for " + to_string(op.kind));
    }
    if (op.attempts == 0) return invalid(where + "attempts must be at least 1");
    if (op.session == 0 && (op.seq != 0 || op.deduplicated)) {
      return invalid(where + "seq or deduplicated without a session");
    }
    if (op.deduplicated && op.outcome != Outcome::kOk) {
      return invalid(where + "deduplicated on an operation that is not ok");
    }
    if (op.session != 0) {
      if (op.kind != OpKind::kAdd && op.kind != OpKind::kAddStrict && op.kind != OpKind::kRem) {
        return invalid(where + "a session request must be a write");
      }
      auto [it, fresh] = session_requests.emplace(std::pair(op.session, op.seq), i + 1);
      if (!fresh) {
        return invalid(where + "session " + std::to_string(op.session) + " sequence " +
                       std::to_string(op.seq) + " is already op #" + std::to_string(it->second) +
                       " (a retried session request is one operation: record it once)");
      }
    }
  }
  return Status::ok();
}

std::string to_json_line(const Operation& op) {
  Json j;
  j["client"] = op.client;
  j["op"] = to_string(op.kind);
  j["key"] = bytes_to_json(op.key);
  if (single_member(op.kind)) {
    j["member"] = bytes_to_json(op.members.empty() ? std::string() : op.members[0]);
  } else if (!whole_key(op.kind)) {
    j["members"] = list_to_json(op.members);
  }
  j["invoke"] = op.invoke;
  j["complete"] = op.complete;
  j["outcome"] = to_string(op.outcome);
  if (op.outcome == Outcome::kOk) j["result"] = result_to_json(op);
  if (op.session != 0) {
    j["session"] = op.session;
    j["seq"] = op.seq;
  }
  if (op.attempts != 1) j["attempts"] = op.attempts;
  if (op.deduplicated) j["deduplicated"] = true;
  return j.dump(-1, ' ', false);
}

Result<Operation> parse_json_line(std::string_view line) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid("not a JSON object");
  Operation op;
  uint8_t kind = 0;
  uint8_t outcome = 0;
  if (!j.contains("op") || !name_to_enum(j["op"], kKindNames, kind)) {
    return invalid("missing or unknown \"op\"");
  }
  op.kind = static_cast<OpKind>(kind);
  if (!j.contains("outcome") || !name_to_enum(j["outcome"], kOutcomeNames, outcome)) {
    return invalid("missing or unknown \"outcome\"");
  }
  op.outcome = static_cast<Outcome>(outcome);
  if (!j.contains("client") || !int_from_json(j["client"], op.client)) {
    return invalid("\"client\" must be a non-negative integer");
  }
  if (!j.contains("key") || !bytes_from_json(j["key"], op.key)) {
    return invalid("\"key\" must be a string or {\"hex\": ...}");
  }
  if (single_member(op.kind)) {
    if (!j.contains("member") || !bytes_from_json(j["member"], op.members.emplace_back())) {
      return invalid(std::string(to_string(op.kind)) + " needs \"member\"");
    }
  } else if (!whole_key(op.kind)) {
    if (!j.contains("members") || !list_from_json(j["members"], op.members)) {
      return invalid(std::string(to_string(op.kind)) + " needs a \"members\" array");
    }
  }
  if (!j.contains("invoke") || !int_from_json(j["invoke"], op.invoke) || !j.contains("complete") ||
      !int_from_json(j["complete"], op.complete)) {
    return invalid("\"invoke\" and \"complete\" must be integers");
  }
  if (op.outcome == Outcome::kOk) {
    if (!j.contains("result") || !result_from_json(j["result"], op)) {
      return invalid(std::string("missing or malformed \"result\" for ") + to_string(op.kind));
    }
  } else if (j.contains("result")) {
    return invalid("a \"result\" on an operation that is not ok");
  }
  // Optional session fields (absent in older files: a plain request sent once).
  if (j.contains("session") && !int_from_json(j["session"], op.session)) {
    return invalid("\"session\" must be a non-negative integer");
  }
  if (j.contains("seq") && !int_from_json(j["seq"], op.seq)) {
    return invalid("\"seq\" must be a non-negative integer");
  }
  if (j.contains("attempts") && !int_from_json(j["attempts"], op.attempts)) {
    return invalid("\"attempts\" must be a non-negative integer");
  }
  if (j.contains("deduplicated")) {
    if (!j["deduplicated"].is_boolean()) return invalid("\"deduplicated\" must be true or false");
    op.deduplicated = j["deduplicated"].get<bool>();
  }
  return op;
}

std::string to_jsonl(const History& history) {
  std::string out;
  for (const Operation& op : history) {
    out += to_json_line(op);
    out += '\n';
  }
  return out;
}

Result<History> parse_jsonl(std::string_view text) {
  History history;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto op = parse_json_line(line);
    if (!op.ok()) {
      return invalid("line " + std::to_string(line_number) + ": " + op.status().message());
    }
    history.push_back(std::move(*op));
  }
  return history;
}

Status write_history_file(const std::string& path, const History& history) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status(Code::kIo, "cannot open " + path + " for writing");
  out << to_jsonl(history);
  out.flush();
  if (!out) return Status(Code::kIo, "cannot write " + path);
  return Status::ok();
}

Result<History> read_history_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kIo, "cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status(Code::kIo, "cannot read " + path);
  auto history = parse_jsonl(text.str());
  if (!history.ok()) return invalid(path + ": " + history.status().message());
  return history;
}

std::string quote(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : bytes) {
    auto b = static_cast<uint8_t>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (b >= 0x20 && b < 0x7f) {
          out.push_back(c);
        } else {
          out += "\\x";
          out.push_back(kDigits[b >> 4]);
          out.push_back(kDigits[b & 0xf]);
        }
    }
  }
  out += '"';
  return out;
}

std::string describe(const Operation& op, size_t number) {
  std::string out = "#" + std::to_string(number) + " client " + std::to_string(op.client);
  if (op.session != 0) {
    out += " session " + std::to_string(op.session) + " seq " + std::to_string(op.seq);
  }
  if (op.attempts > 1) out += " (" + std::to_string(op.attempts) + " attempts)";
  out += " [" + std::to_string(op.invoke) + ", ";
  out += op.outcome == Outcome::kUnknown ? "?" : std::to_string(op.complete);
  out += "] " + std::string(to_string(op.kind)) + "(" + quote(op.key);
  for (const std::string& m : op.members) out += ", " + quote(m);
  out += ") -> ";
  if (op.outcome == Outcome::kFail) return out + "fail";
  if (op.outcome == Outcome::kUnknown) {
    return out + "unknown (gave up at " + std::to_string(op.complete) + ")";
  }
  switch (op.kind) {
    case OpKind::kAdd:
    case OpKind::kRem:
    case OpKind::kSize:
      return out + std::to_string(op.count) + (op.deduplicated ? " (from the session table)" : "");
    case OpKind::kAddStrict:
      return out + (op.flag ? "OK" : "EXISTS") +
             (op.deduplicated ? " (from the session table)" : "");
    case OpKind::kContains:
      return out + (op.flag ? "true" : "false");
    case OpKind::kMembers: {
      out += "{";
      for (size_t i = 0; i < op.result_members.size(); ++i) {
        out += (i ? ", " : "") + quote(op.result_members[i]);
      }
      return out + "}";
    }
  }
  return out;
}

}  // namespace cset::check
