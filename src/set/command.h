// State machine commands: what a kNormal raft log entry carries.
//
// A command is decided once, replicated, and decoded by every node for as
// long as the entry stays in a log, so its encoding is versioned and a
// decoder treats its input as hostile: malformed bytes decode to kCorrupt,
// never to a crash, an out-of-bounds read or a huge allocation.
//
// ## Format, version 1
// varint and bytes as in raft/codec.h (minimal unsigned LEB128; bytes =
// varint length + raw bytes, any content: empty, \0, \r\n, invalid UTF-8).
//
//   Command := 0x01 (version)  flags:u8  [session]  op:u8  body
//   flags   := bit 0: a session section follows; bits 1..7: must be 0
//   session := length:varint, then `length` bytes:
//                session_id:varint  sequence:varint  lowest_unacked:varint
//              Bytes after these three fields inside the section are
//              skipped, so a later version may append fields.
//   op/body := 1 ADD         key:bytes  count:varint(>=1)  member:bytes * count
//              2 ADD_STRICT  key:bytes  member:bytes
//              3 REM         key:bytes  count:varint(>=1)  member:bytes * count
//              4 DEL         count:varint(>=1)  key:bytes * count
//
// Nothing may follow the body. Unknown versions, flags or ops are kCorrupt:
// every node runs the same decoder over the same bytes, so an undecodable
// entry fails the same way everywhere (StateMachine::apply).
//
// The session section is reserved for client sessions (exactly-once retries,
// Raft dissertation §6.3), which a later issue implements; today it is
// encoded and decoded but the state machine does not act on it.
//
// Semantics (StateMachine::apply):
//   ADD        SADD: adds every member; result = members newly added
//              (a member repeated in one command counts once).
//   ADD_STRICT CSET.ADD: adds one member; ok, or kExists when present.
//   REM        SREM: result = members removed.
//   DEL        DEL: removes whole sets; result = keys that existed.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cset/status.h"

namespace cset::set {

inline constexpr uint8_t kCommandFormatVersion = 1;

enum class Op : uint8_t {
  kAdd = 1,
  kAddStrict = 2,
  kRem = 3,
  kDel = 4,
};

/// The client-session header (reserved; see the format above).
struct SessionHeader {
  uint64_t session_id = 0;
  uint64_t sequence = 0;
  uint64_t lowest_unacked = 0;  // lowest sequence the client has not yet seen answered

  bool operator==(const SessionHeader&) const = default;
};

struct Command {
  Op op = Op::kAdd;
  /// ADD, ADD_STRICT, REM: the set's key. DEL: unused (empty).
  std::string key;
  /// ADD, REM: members (>= 1). ADD_STRICT: exactly one member. DEL: keys (>= 1).
  std::vector<std::string> args;
  std::optional<SessionHeader> session;

  bool operator==(const Command&) const = default;

  static Command add(std::string key, std::vector<std::string> members);
  static Command add_strict(std::string key, std::string member);
  static Command rem(std::string key, std::vector<std::string> members);
  static Command del(std::vector<std::string> keys);
};

/// Checks the shape rules above (argument counts). Errors: kInvalid.
Status validate_command(const Command& command);

/// Encodes `command` in the current format. REQUIRES: validate_command() ok.
std::string encode_command(const Command& command);

/// Decodes bytes produced by encode_command(). Errors: kCorrupt for anything
/// truncated, malformed, of an unknown version/flag/op, or with trailing bytes.
Result<Command> decode_command(std::string_view data);

const char* to_string(Op op);

}  // namespace cset::set
