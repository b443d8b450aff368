// Parsing an argument vector into a typed request (commands.h).
#include "resp/commands.h"

#include <limits>

#include "resp/text.h"

namespace cset::resp {

namespace {

using Args = std::span<const std::string_view>;

// Redis prints arguments in its error messages with "%.128s".
constexpr size_t kEchoBytes = 128;

Status err(std::string message) { return Status(Code::kErr, std::move(message)); }
Status syntax_error() { return err("syntax error"); }
Status not_an_integer() { return err("value is not an integer or out of range"); }

std::string owned(std::string_view text) { return std::string(text); }

std::vector<std::string> owned_all(Args args) {
  return std::vector<std::string>(args.begin(), args.end());
}

Status unknown_command(Args args) {
  std::string message = "unknown command '";
  message += printable_prefix(args.empty() ? std::string_view() : args[0], kEchoBytes);
  message += "', with args beginning with: ";
  // Redis 7: "'%.*s' " per argument while the list is under 128 bytes.
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < kEchoBytes; ++i) {
    const size_t budget = kEchoBytes - list.size();
    list += '\'';
    list += printable_prefix(args[i], budget);
    list += "' ";
  }
  return err(message + list);
}

Status wrong_arity(const CommandSpec& spec) {
  return err("wrong number of arguments for '" + std::string(spec.full_name) + "' command");
}

bool arity_ok(const CommandSpec& spec, size_t argc) {
  if (spec.arity >= 0) return argc == static_cast<size_t>(spec.arity);
  return argc >= static_cast<size_t>(-spec.arity);
}

// ---- size limits -----------------------------------------------------------

std::optional<Status> too_big(std::string_view what, std::string_view value, size_t limit) {
  if (value.size() <= limit) return std::nullopt;
  return Status(Code::kTooBig, std::string(what) + " is " + std::to_string(value.size()) +
                                   " bytes, over the limit of " + std::to_string(limit));
}

std::optional<Status> check_key(std::string_view key, const Limits& limits) {
  return too_big("key", key, limits.max_key_bytes);
}

std::optional<Status> check_members(Args members, const Limits& limits) {
  for (std::string_view member : members) {
    if (auto status = too_big("member", member, limits.max_member_bytes)) return status;
  }
  return std::nullopt;
}

std::optional<Status> check_keys(Args keys, const Limits& limits) {
  for (std::string_view key : keys) {
    if (auto status = check_key(key, limits)) return status;
  }
  return std::nullopt;
}

std::optional<Status> check_request(Args args, const Limits& limits) {
  uint64_t total = 0;
  for (std::string_view arg : args) total += arg.size();
  if (total <= limits.max_request_bytes) return std::nullopt;
  return Status(Code::kTooBig,
                "request exceeds " + std::to_string(limits.max_request_bytes) + " bytes");
}

// ---- set commands ------------------------------------------------------------

// KEY MEMBER [MEMBER ...] with the key and member limits.
Result<std::pair<std::string, std::vector<std::string>>> key_and_members(Args args,
                                                                         const Limits& limits) {
  if (auto status = check_key(args[1], limits)) return *status;
  if (auto status = check_members(args.subspan(2), limits)) return *status;
  return std::pair{owned(args[1]), owned_all(args.subspan(2))};
}

Result<std::pair<std::string, std::string>> key_and_member(Args args, const Limits& limits) {
  if (auto status = check_key(args[1], limits)) return *status;
  if (auto status = too_big("member", args[2], limits.max_member_bytes)) return *status;
  return std::pair{owned(args[1]), owned(args[2])};
}

// [MATCH pattern] [COUNT count] [TYPE type] from args[first]; TYPE only for SCAN.
// Redis's scanGenericCommand: COUNT must be an integer >= 1, the last
// occurrence of an option wins, anything else is a syntax error.
Status parse_scan_options(Args args, size_t first, bool allow_type,
                          std::optional<std::string>& match, int64_t& count,
                          std::optional<std::string>* type) {
  for (size_t i = first; i < args.size(); i += 2) {
    const bool has_value = i + 1 < args.size();
    if (iequals(args[i], "count") && has_value) {
      std::optional<int64_t> value = parse_int64(args[i + 1]);
      if (!value) return not_an_integer();
      if (*value < 1) return syntax_error();
      count = *value;
    } else if (iequals(args[i], "match") && has_value) {
      match = owned(args[i + 1]);
    } else if (iequals(args[i], "type") && has_value && allow_type) {
      *type = owned(args[i + 1]);
    } else {
      return syntax_error();
    }
  }
  return Status::ok();
}

Result<Request> parse_sscan(Args args, const Limits& limits) {
  if (auto status = check_key(args[1], limits)) return *status;
  Sscan request{owned(args[1]), owned(args[2]), std::nullopt, kDefaultScanCount};
  if (request.cursor.empty()) return err("invalid cursor");
  Status status = parse_scan_options(args, 3, false, request.match, request.count, nullptr);
  if (!status) return status;
  return Request(std::move(request));
}

Result<Request> parse_scan(Args args) {
  Scan request{owned(args[1]), std::nullopt, kDefaultScanCount, std::nullopt};
  if (request.cursor.empty()) return err("invalid cursor");
  Status status = parse_scan_options(args, 2, true, request.match, request.count, &request.type);
  if (!status) return status;
  return Request(std::move(request));
}

Result<Request> parse_set_command(const CommandSpec& spec, Args args, const Limits& limits) {
  switch (spec.id) {
    case CommandId::kSadd:
    case CommandId::kSrem:
    case CommandId::kSmismember: {
      auto parts = key_and_members(args, limits);
      if (!parts) return parts.status();
      auto& [key, members] = *parts;
      if (spec.id == CommandId::kSadd) return Request(Sadd{std::move(key), std::move(members)});
      if (spec.id == CommandId::kSrem) return Request(Srem{std::move(key), std::move(members)});
      return Request(Smismember{std::move(key), std::move(members)});
    }
    case CommandId::kSismember:
    case CommandId::kCsetAdd:
    case CommandId::kCsetRem: {
      auto parts = key_and_member(args, limits);
      if (!parts) return parts.status();
      auto& [key, member] = *parts;
      if (spec.id == CommandId::kSismember) {
        return Request(Sismember{std::move(key), std::move(member)});
      }
      if (spec.id == CommandId::kCsetAdd)
        return Request(CsetAdd{std::move(key), std::move(member)});
      return Request(CsetRem{std::move(key), std::move(member)});
    }
    case CommandId::kSmembers:
    case CommandId::kScard:
      if (auto status = check_key(args[1], limits)) return *status;
      if (spec.id == CommandId::kSmembers) return Request(Smembers{owned(args[1])});
      return Request(Scard{owned(args[1])});
    case CommandId::kSscan:
      return parse_sscan(args, limits);
    case CommandId::kDel:
    case CommandId::kExists:
      if (auto status = check_keys(args.subspan(1), limits)) return *status;
      if (spec.id == CommandId::kDel) return Request(Del{owned_all(args.subspan(1))});
      return Request(Exists{owned_all(args.subspan(1))});
    case CommandId::kScan:
      return parse_scan(args);
    default:
      return err("internal error: not a set command");
  }
}

// ---- connection commands -----------------------------------------------------

Status invalid_client_name() {
  return err("Client names cannot contain spaces, newlines or special characters.");
}

Result<Request> parse_hello(Args args) {
  Hello hello;
  if (args.size() >= 2) {
    std::optional<int64_t> version = parse_int64(args[1]);
    if (!version) return err("Protocol version is not an integer or out of range");
    // As Redis: clients probing for RESP3 look for the NOPROTO code word.
    if (*version < 2 || *version > 3) {
      return Status(Code::kNoProto, "unsupported protocol version");
    }
    hello.protover = static_cast<int>(*version);
  }
  for (size_t j = 2; j < args.size(); ++j) {
    const size_t more = args.size() - 1 - j;
    if (iequals(args[j], "auth") && more >= 2) {
      hello.auth = Hello::Credentials{owned(args[j + 1]), owned(args[j + 2])};
      j += 2;
    } else if (iequals(args[j], "setname") && more >= 1) {
      if (!valid_client_name(args[j + 1])) return invalid_client_name();
      hello.setname = owned(args[j + 1]);
      j += 1;
    } else {
      return err("Syntax error in HELLO option '" + printable_prefix(args[j], kEchoBytes) + "'");
    }
  }
  return Request(std::move(hello));
}

Result<Request> parse_client(const CommandSpec& spec, Args args) {
  switch (spec.id) {
    case CommandId::kClientSetname:
      if (!valid_client_name(args[2])) return invalid_client_name();
      return Request(ClientSetname{owned(args[2])});
    case CommandId::kClientGetname:
      return Request(ClientGetname{});
    case CommandId::kClientId:
      return Request(ClientId{});
    case CommandId::kClientInfo:
      return Request(ClientInfo{});
    case CommandId::kClientSetinfo: {
      std::string attribute = to_lower(args[2]);
      if (attribute != "lib-name" && attribute != "lib-ver") {
        return err("Unrecognized option '" + printable_prefix(args[2], kEchoBytes) + "'");
      }
      if (!valid_client_name(args[3])) {
        return err(printable_prefix(args[2], kEchoBytes) +
                   " cannot contain spaces, newlines or special characters.");
      }
      return Request(ClientSetinfo{std::move(attribute), owned(args[3])});
    }
    default:
      return err("internal error: not a CLIENT subcommand");
  }
}

Result<Request> parse_connection_command(const CommandSpec& spec, Args args) {
  switch (spec.id) {
    case CommandId::kPing:
      if (args.size() > 2) return wrong_arity(spec);
      if (args.size() == 2) return Request(Ping{owned(args[1])});
      return Request(Ping{});
    case CommandId::kEcho:
      return Request(Echo{owned(args[1])});
    case CommandId::kHello:
      return parse_hello(args);
    case CommandId::kAuth:
      if (args.size() > 3) return syntax_error();
      if (args.size() == 3) return Request(Auth{owned(args[1]), owned(args[2])});
      return Request(Auth{std::nullopt, owned(args[1])});
    case CommandId::kQuit:
      return Request(Quit{});
    case CommandId::kSelect: {
      std::optional<int64_t> db = parse_int64(args[1]);
      if (!db || *db < std::numeric_limits<int>::min() || *db > std::numeric_limits<int>::max()) {
        return not_an_integer();
      }
      if (*db != 0) return err("DB index is out of range");
      return Request(Select{0});
    }
    default:
      return parse_client(spec, args);
  }
}

// ---- server commands ----------------------------------------------------------

Result<Request> parse_command_query(const CommandSpec& spec, Args args) {
  CommandQuery query;
  switch (spec.id) {
    case CommandId::kCommand:
      query.sub = CommandQuery::Sub::kAll;
      break;
    case CommandId::kCommandCount:
      query.sub = CommandQuery::Sub::kCount;
      break;
    case CommandId::kCommandDocs:
      query.sub = CommandQuery::Sub::kDocs;
      break;
    case CommandId::kCommandInfo:
      query.sub = CommandQuery::Sub::kInfo;
      break;
    case CommandId::kCommandGetkeys:
      query.sub = CommandQuery::Sub::kGetKeys;
      break;
    case CommandId::kCommandList: {
      query.sub = CommandQuery::Sub::kList;
      if (args.size() == 2) return Request(std::move(query));
      if (args.size() != 5 || !iequals(args[2], "filterby")) return syntax_error();
      if (iequals(args[3], "module")) {
        query.filter = CommandQuery::Filter::kModule;
      } else if (iequals(args[3], "aclcat")) {
        query.filter = CommandQuery::Filter::kAclCat;
      } else if (iequals(args[3], "pattern")) {
        query.filter = CommandQuery::Filter::kPattern;
      } else {
        return syntax_error();
      }
      query.filter_value = owned(args[4]);
      return Request(std::move(query));
    }
    default:
      return err("internal error: not a COMMAND subcommand");
  }
  if (args.size() > 2) query.args = owned_all(args.subspan(2));
  return Request(std::move(query));
}

// ---- cluster commands ----------------------------------------------------------

Result<uint64_t> parse_node_id(std::string_view text) {
  std::optional<int64_t> id = parse_int64(text);
  if (!id || *id < 1) {
    return err("invalid node id '" + printable_prefix(text, kEchoBytes) +
               "': expected an integer from 1 to 9223372036854775807");
  }
  return static_cast<uint64_t>(*id);
}

Result<Request> parse_cluster_command(const CommandSpec& spec, Args args) {
  switch (spec.id) {
    case CommandId::kCsetNodes:
      return Request(CsetNodes{});
    case CommandId::kCsetStatus:
      return Request(CsetStatus{});
    case CommandId::kCsetNodeAdd: {
      if (args.size() > 5) return syntax_error();
      auto id = parse_node_id(args[2]);
      if (!id) return id.status();
      if (!valid_address(args[3])) {
        return err("invalid address '" + printable_prefix(args[3], kEchoBytes) +
                   "': expected HOST:PORT");
      }
      CsetNodeAdd add{*id, owned(args[3]), false};
      if (args.size() == 5) {
        if (iequals(args[4], "voter")) {
          add.voter = true;
        } else if (!iequals(args[4], "learner")) {
          return syntax_error();
        }
      }
      return Request(std::move(add));
    }
    case CommandId::kCsetNodePromote:
    case CommandId::kCsetNodeRemove:
    case CommandId::kCsetLeaderTransfer: {
      auto id = parse_node_id(args[2]);
      if (!id) return id.status();
      if (spec.id == CommandId::kCsetNodePromote) return Request(CsetNodePromote{*id});
      if (spec.id == CommandId::kCsetNodeRemove) return Request(CsetNodeRemove{*id});
      return Request(CsetLeaderTransfer{*id});
    }
    default:
      return err("internal error: not a cluster command");
  }
}

// ---- client sessions --------------------------------------------------------------

// An integer from `min` to 2^63-1.
Result<uint64_t> parse_count(std::string_view text, int64_t min) {
  std::optional<int64_t> value = parse_int64(text);
  if (!value || *value < min) return not_an_integer();
  return static_cast<uint64_t>(*value);
}

Result<Request> parse_session(Args args) {
  CsetSession session;
  if (args.size() == 1) return Request(session);
  if (args.size() != 3 || !iequals(args[1], "timeout")) return syntax_error();
  auto timeout = parse_count(args[2], 1);
  if (!timeout) return timeout.status();
  session.timeout_ms = *timeout;
  return Request(session);
}

Result<Request> dispatch(const CommandSpec& spec, Args args, const Limits& limits);

bool wrappable(CommandId id) {
  return id == CommandId::kSadd || id == CommandId::kSrem || id == CommandId::kDel ||
         id == CommandId::kCsetAdd || id == CommandId::kCsetRem;
}

Result<Request> parse_seq(Args args, const Limits& limits) {
  CsetSeq seq;
  auto session = parse_count(args[1], 1);
  if (!session) return session.status();
  auto sequence = parse_count(args[2], 0);
  if (!sequence) return sequence.status();
  auto lowest = parse_count(args[3], 0);
  if (!lowest) return lowest.status();
  if (*lowest > *sequence) {
    return err("lowest unacknowledged sequence above the request's own sequence");
  }
  seq.session = *session;
  seq.sequence = *sequence;
  seq.lowest_unacked = *lowest;
  // Resolved before it is parsed, so CSET.SEQ never nests (no recursion).
  auto spec = resolve_command(args.subspan(4));
  if (!spec) return spec.status();
  if (!wrappable((*spec)->id)) {
    return err("CSET.SEQ wraps only SADD, SREM, DEL, CSET.ADD and CSET.REM");
  }
  auto inner = dispatch(**spec, args.subspan(4), limits);
  if (!inner) return inner.status();
  Request& request = *inner;
  if (auto* r = std::get_if<Sadd>(&request)) {
    seq.write = std::move(*r);
  } else if (auto* r = std::get_if<Srem>(&request)) {
    seq.write = std::move(*r);
  } else if (auto* r = std::get_if<Del>(&request)) {
    seq.write = std::move(*r);
  } else if (auto* r = std::get_if<CsetAdd>(&request)) {
    seq.write = std::move(*r);
  } else if (auto* r = std::get_if<CsetRem>(&request)) {
    seq.write = std::move(*r);
  } else {
    return err("CSET.SEQ wraps only SADD, SREM, DEL, CSET.ADD and CSET.REM");
  }
  return Request(std::move(seq));
}

Result<Request> dispatch(const CommandSpec& spec, Args args, const Limits& limits) {
  switch (spec.id) {
    case CommandId::kSadd:
    case CommandId::kSrem:
    case CommandId::kSismember:
    case CommandId::kSmismember:
    case CommandId::kSmembers:
    case CommandId::kScard:
    case CommandId::kSscan:
    case CommandId::kDel:
    case CommandId::kExists:
    case CommandId::kScan:
    case CommandId::kCsetAdd:
    case CommandId::kCsetRem:
      return parse_set_command(spec, args, limits);
    case CommandId::kPing:
    case CommandId::kEcho:
    case CommandId::kHello:
    case CommandId::kAuth:
    case CommandId::kQuit:
    case CommandId::kSelect:
    case CommandId::kClientSetname:
    case CommandId::kClientGetname:
    case CommandId::kClientId:
    case CommandId::kClientSetinfo:
    case CommandId::kClientInfo:
      return parse_connection_command(spec, args);
    case CommandId::kCommand:
    case CommandId::kCommandCount:
    case CommandId::kCommandDocs:
    case CommandId::kCommandInfo:
    case CommandId::kCommandList:
    case CommandId::kCommandGetkeys:
      return parse_command_query(spec, args);
    case CommandId::kInfo: {
      Info info;
      for (std::string_view section : args.subspan(1)) info.sections.push_back(to_lower(section));
      return Request(std::move(info));
    }
    case CommandId::kConfigGet:
      return Request(ConfigGet{owned_all(args.subspan(2))});
    case CommandId::kClientHelp:
    case CommandId::kCommandHelp:
    case CommandId::kConfigHelp:
    case CommandId::kCsetNodeHelp:
    case CommandId::kCsetLeaderHelp:
      return Request(Help{find_command(spec.full_name.substr(0, spec.full_name.find('|')))});
    case CommandId::kCsetNodes:
    case CommandId::kCsetStatus:
    case CommandId::kCsetNodeAdd:
    case CommandId::kCsetNodePromote:
    case CommandId::kCsetNodeRemove:
    case CommandId::kCsetLeaderTransfer:
      return parse_cluster_command(spec, args);
    case CommandId::kCsetSession:
      return parse_session(args);
    case CommandId::kCsetSeq:
      return parse_seq(args, limits);
    case CommandId::kClient:
    case CommandId::kConfig:
    case CommandId::kCsetNode:
    case CommandId::kCsetLeader:
      break;  // a container alone never passes its arity (-2)
  }
  return err("internal error: unhandled command");
}

}  // namespace

bool valid_client_name(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

bool valid_address(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (host.front() == '[' ? (host.size() < 3 || host.back() != ']')
                          : host.find(':') != std::string_view::npos) {
    return false;  // a bare IPv6 address needs brackets
  }
  for (char c : host) {
    if (c <= ' ' || c > '~') return false;
  }
  std::optional<int64_t> number = parse_int64(port);
  return number && *number >= 1 && *number <= 65535;
}

Result<const CommandSpec*> resolve_command(std::span<const std::string_view> args) {
  if (args.empty()) return unknown_command(args);
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& candidate : command_table()) {
    if (iequals(candidate.name, args[0])) {
      spec = &candidate;
      break;
    }
  }
  if (spec == nullptr) return unknown_command(args);
  if (!spec->subcommands.empty() && args.size() >= 2) {
    const CommandSpec* sub = find_subcommand(*spec, args[1]);
    if (sub == nullptr) {
      return err("unknown subcommand '" + printable_prefix(args[1], kEchoBytes) + "'. Try " +
                 to_upper(spec->name) + " HELP.");
    }
    spec = sub;
  }
  if (!arity_ok(*spec, args.size())) return wrong_arity(*spec);
  return spec;
}

Result<ParsedRequest> parse_request(std::span<const std::string_view> args, const Limits& limits) {
  Result<const CommandSpec*> spec = resolve_command(args);
  if (!spec) return spec.status();
  if (auto status = check_request(args, limits)) return *status;
  Result<Request> request = dispatch(**spec, args, limits);
  if (!request) return request.status();
  return ParsedRequest{*spec, std::move(request).value()};
}

Result<ParsedRequest> parse_request(const std::vector<std::string>& args, const Limits& limits) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return parse_request(std::span<const std::string_view>(views), limits);
}

}  // namespace cset::resp
