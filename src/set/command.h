// State machine commands: what a kNormal raft log entry carries.
//
// A command is decided once, replicated, and decoded by every node for as
// long as the entry stays in a log, so its encoding is versioned and a
// decoder treats its input as hostile: malformed bytes decode to kCorrupt,
// never to a crash, an out-of-bounds read or a huge allocation.
//
// ## Format, version 2 (encoded), version 1 (still decoded)
// varint and bytes as in raft/codec.h (minimal unsigned LEB128; bytes =
// varint length + raw bytes, any content: empty, \0, \r\n, invalid UTF-8).
//
//   Command := 0x02 (version)  flags:u8  time_ms:u64be  [session]  op:u8  body
//   Command := 0x01 (version)  flags:u8                 [session]  op:u8  body
//   flags   := bit 0: a session section follows; bits 1..7: must be 0
//   time_ms := the proposing leader's wall clock, ms since the Unix epoch; 0 =
//              unknown (the state machine's clock does not move). Fixed width
//              at byte offset 2, so the leader stamps an encoded command in
//              place (stamp_command_time) just before proposing it.
//   session := length:varint, then `length` bytes:
//                session_id:varint  sequence:varint  lowest_unacked:varint
//              Bytes after these three fields inside the section are
//              skipped, so a later version may append fields.
//   op/body := 1 ADD         key:bytes  count:varint(>=1)  member:bytes * count
//              2 ADD_STRICT  key:bytes  member:bytes
//              3 REM         key:bytes  count:varint(>=1)  member:bytes * count
//              4 DEL         count:varint(>=1)  key:bytes * count
//              5 REGISTER    timeout_ms:varint            (version 2 only; never
//                                                          with a session section)
// A version-1 entry decodes with time_ms = 0; encode_command() always writes
// version 2.
//
// Nothing may follow the body. Unknown versions, flags or ops are kCorrupt:
// every node runs the same decoder over the same bytes, so an undecodable
// entry fails the same way everywhere (StateMachine::apply).
//
// The session section and REGISTER implement client sessions (exactly-once
// retries, Raft dissertation §6.3; docs/sessions.md): REGISTER opens a
// session whose id is the log index of its entry; a command with a session
// section is applied at most once per (session_id, sequence).
//
// Semantics (StateMachine::apply):
//   ADD        SADD: adds every member; result = members newly added
//              (a member repeated in one command counts once).
//   ADD_STRICT CSET.ADD: adds one member; ok, or kExists when present.
//   REM        SREM: result = members removed.
//   DEL        DEL: removes whole sets; result = keys that existed.
//   REGISTER   CSET.SESSION: opens a client session (StateMachine::apply);
//              timeout_ms 0 = the default.
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

inline constexpr uint8_t kCommandFormatVersion = 2;

enum class Op : uint8_t {
  kAdd = 1,
  kAddStrict = 2,
  kRem = 3,
  kDel = 4,
  kRegister = 5,
};

/// The client-session header of a write (see the format above).
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
  /// The proposing leader's wall clock (ms since the Unix epoch); 0 = unknown.
  uint64_t time_ms = 0;
  /// REGISTER: the session timeout asked for (ms; 0 = the default). Else 0.
  uint64_t timeout_ms = 0;

  bool operator==(const Command&) const = default;

  static Command add(std::string key, std::vector<std::string> members);
  static Command add_strict(std::string key, std::string member);
  static Command rem(std::string key, std::vector<std::string> members);
  static Command del(std::vector<std::string> keys);
  static Command register_session(uint64_t timeout_ms);
};

/// Checks the shape rules above (argument counts; REGISTER has no key, no
/// arguments and no session section). Errors: kInvalid.
Status validate_command(const Command& command);

/// Encodes `command` in the current format. REQUIRES: validate_command() ok.
std::string encode_command(const Command& command);

/// Decodes bytes produced by encode_command(). Errors: kCorrupt for anything
/// truncated, malformed, of an unknown version/flag/op, or with trailing bytes.
Result<Command> decode_command(std::string_view data);

/// Overwrites the time_ms field of an encoded command (the leader's stamp).
/// Returns false, leaving `data` unchanged, when `data` is not version 2 or
/// too short to hold the field (such an entry then fails to decode alike on
/// every node, or is a version-1 entry without a clock).
bool stamp_command_time(std::string& data, uint64_t time_ms);

const char* to_string(Op op);

}  // namespace cset::set
