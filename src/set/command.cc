#include "set/command.h"

#include "set/encoding.h"

namespace cset::set {
namespace {

constexpr uint8_t kVersion1 = 1;
constexpr size_t kTimeOffset = 2;  // version, flags, then time_ms (version 2)
constexpr uint8_t kFlagSession = 0x01;
constexpr uint8_t kKnownFlags = kFlagSession;

Status corrupt(const char* what) { return Status(Code::kCorrupt, std::string("command: ") + what); }

bool has_key(Op op) { return op != Op::kDel && op != Op::kRegister; }

void encode_session(std::string& out, const SessionHeader& session) {
  std::string section;
  detail::put_varint(section, session.session_id);
  detail::put_varint(section, session.sequence);
  detail::put_varint(section, session.lowest_unacked);
  detail::put_bytes(out, section);
}

bool decode_session(detail::Reader& in, SessionHeader& session) {
  std::string_view section;
  if (!in.get_bytes(section)) return false;
  detail::Reader s(section);
  // Trailing bytes inside the section are fields of a later version: skipped.
  return s.get_varint(session.session_id) && s.get_varint(session.sequence) &&
         s.get_varint(session.lowest_unacked);
}

// Reads `count:varint(>=1)  item:bytes * count`.
bool decode_list(detail::Reader& in, std::vector<std::string>& items) {
  uint64_t count = 0;
  // Every item takes at least one byte, which bounds the allocation.
  if (!in.get_varint(count) || count == 0 || count > in.remaining()) return false;
  items.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view item;
    if (!in.get_bytes(item)) return false;
    items.emplace_back(item);
  }
  return true;
}

}  // namespace

Command Command::add(std::string key, std::vector<std::string> members) {
  Command c;
  c.op = Op::kAdd;
  c.key = std::move(key);
  c.args = std::move(members);
  return c;
}
Command Command::add_strict(std::string key, std::string member) {
  Command c;
  c.op = Op::kAddStrict;
  c.key = std::move(key);
  c.args.push_back(std::move(member));
  return c;
}
Command Command::rem(std::string key, std::vector<std::string> members) {
  Command c;
  c.op = Op::kRem;
  c.key = std::move(key);
  c.args = std::move(members);
  return c;
}
Command Command::del(std::vector<std::string> keys) {
  Command c;
  c.op = Op::kDel;
  c.args = std::move(keys);
  return c;
}
Command Command::register_session(uint64_t timeout_ms) {
  Command c;
  c.op = Op::kRegister;
  c.timeout_ms = timeout_ms;
  return c;
}

const char* to_string(Op op) {
  switch (op) {
    case Op::kAdd:
      return "ADD";
    case Op::kAddStrict:
      return "ADD_STRICT";
    case Op::kRem:
      return "REM";
    case Op::kDel:
      return "DEL";
    case Op::kRegister:
      return "REGISTER";
  }
  return "?";
}

Status validate_command(const Command& command) {
  switch (command.op) {
    case Op::kAdd:
    case Op::kRem:
    case Op::kDel:
      if (command.args.empty())
        return Status(Code::kInvalid, "command needs at least one argument");
      break;
    case Op::kAddStrict:
      if (command.args.size() != 1) return Status(Code::kInvalid, "ADD_STRICT takes one member");
      break;
    case Op::kRegister:
      if (!command.args.empty() || !command.key.empty() || command.session) {
        return Status(Code::kInvalid, "REGISTER takes no key, argument or session");
      }
      break;
    default:
      return Status(Code::kInvalid, "unknown op");
  }
  if (command.op == Op::kDel && !command.key.empty()) {
    return Status(Code::kInvalid, "DEL carries its keys as arguments");
  }
  if (command.op != Op::kRegister && command.timeout_ms != 0) {
    return Status(Code::kInvalid, "only REGISTER carries a timeout");
  }
  return Status::ok();
}

std::string encode_command(const Command& command) {
  std::string out;
  out.push_back(static_cast<char>(kCommandFormatVersion));
  out.push_back(static_cast<char>(command.session ? kFlagSession : 0));
  detail::put_fixed64(out, command.time_ms);
  if (command.session) encode_session(out, *command.session);
  out.push_back(static_cast<char>(command.op));
  if (has_key(command.op)) detail::put_bytes(out, command.key);
  if (command.op == Op::kRegister) {
    detail::put_varint(out, command.timeout_ms);
  } else if (command.op == Op::kAddStrict) {
    detail::put_bytes(out, command.args.at(0));
  } else {
    detail::put_varint(out, command.args.size());
    for (const std::string& arg : command.args) detail::put_bytes(out, arg);
  }
  return out;
}

Result<Command> decode_command(std::string_view data) {
  detail::Reader in(data);
  uint8_t version = 0;
  uint8_t flags = 0;
  uint8_t op = 0;
  if (!in.get_u8(version)) return corrupt("empty");
  if (version != kVersion1 && version != kCommandFormatVersion) {
    return corrupt("unknown format version");
  }
  if (!in.get_u8(flags)) return corrupt("truncated flags");
  if ((flags & ~kKnownFlags) != 0) return corrupt("unknown flags");
  Command command;
  if (version != kVersion1 && !in.get_fixed64(command.time_ms)) return corrupt("truncated time");
  if (flags & kFlagSession) {
    command.session.emplace();
    if (!decode_session(in, *command.session)) return corrupt("bad session section");
  }
  if (!in.get_u8(op)) return corrupt("truncated op");
  const Op last_op = version == kVersion1 ? Op::kDel : Op::kRegister;
  if (op < static_cast<uint8_t>(Op::kAdd) || op > static_cast<uint8_t>(last_op)) {
    return corrupt("unknown op");
  }
  command.op = static_cast<Op>(op);
  if (has_key(command.op)) {
    std::string_view key;
    if (!in.get_bytes(key)) return corrupt("truncated key");
    command.key.assign(key);
  }
  if (command.op == Op::kRegister) {
    if (command.session) return corrupt("REGISTER with a session section");
    if (!in.get_varint(command.timeout_ms)) return corrupt("truncated timeout");
  } else if (command.op == Op::kAddStrict) {
    std::string_view member;
    if (!in.get_bytes(member)) return corrupt("truncated member");
    command.args.emplace_back(member);
  } else if (!decode_list(in, command.args)) {
    return corrupt("bad argument list");
  }
  if (!in.done()) return corrupt("trailing bytes");
  return command;
}

bool stamp_command_time(std::string& data, uint64_t time_ms) {
  if (data.size() < kTimeOffset + 8 || static_cast<uint8_t>(data[0]) != kCommandFormatVersion) {
    return false;
  }
  std::string field;
  detail::put_fixed64(field, time_ms);
  data.replace(kTimeOffset, 8, field);
  return true;
}

}  // namespace cset::set
