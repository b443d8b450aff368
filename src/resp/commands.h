// The command table of SPEC.md's client protocol, and the parsing of an
// argument vector (parser.h) into a typed request.
//
// ## The table
// One CommandSpec per command and per subcommand (CLIENT SETNAME is the
// subcommand "setname" of the container "client", full name
// "client|setname", as Redis 7 names it). It carries what COMMAND, COMMAND
// INFO, COMMAND DOCS, COMMAND COUNT, COMMAND LIST and COMMAND GETKEYS answer
// (write_command_reply() below), so redis-cli and redis-py work: arity in
// Redis's convention (N: exactly N arguments counting the name; -N: at least
// N), flags, key positions, ACL categories, and the documentation redis-cli
// shows as help and hints.
//
// ## Parsing
// parse_request() checks, in Redis's order: the command exists ("ERR unknown
// command 'x', with args beginning with: 'a' 'b' ", Redis 7's format), the
// subcommand exists ("ERR unknown subcommand 'x'. Try CLIENT HELP."), the
// arity ("ERR wrong number of arguments for 'sadd' command", with the full
// name for subcommands: 'client|setname'), then the command's own syntax
// ("ERR syntax error", "ERR value is not an integer or out of range", ...)
// and the size limits of limits.h ("TOOBIG key is N bytes, over the limit of
// M", "TOOBIG member is ...", "TOOBIG request exceeds N bytes"). Names and
// option words are ASCII case-insensitive. Commands that SPEC.md does not
// list (MULTI, EXEC, GET, HSET, ...) are unknown commands.
//
// resolve_command() runs only the first three checks, so a server can place
// its authentication check (NOAUTH) where Redis does: after the arity check,
// before the command's own syntax.
//
// Typed requests own their strings: they outlive the parser's buffer while
// a proposal commits.
//
// ## Client sessions (docs/sessions.md; Raft dissertation §6.3)
// `CSET.SESSION [TIMEOUT ms]` opens a session (an integer id);
// `CSET.SEQ session sequence lowest_unacked COMMAND args...` runs one write
// (SADD, SREM, DEL, CSET.ADD, CSET.REM) in it, at most once per (session,
// sequence). The wrapped command is parsed with every check of its own
// (arity, syntax, limits), and its errors are its own; CSET.SEQ's numbers
// are integers from 0 to 2^63-1 (the session id from 1), with
// lowest_unacked <= sequence.
//
// Thread-safety: the table is immutable; all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cset/status.h"
#include "resp/limits.h"

namespace cset::resp {

class ReplyWriter;

// ---------------------------------------------------------------------------
// The table.

enum class CommandId : uint8_t {
  kSadd,
  kSrem,
  kSismember,
  kSmismember,
  kSmembers,
  kScard,
  kSscan,
  kDel,
  kExists,
  kScan,
  kPing,
  kEcho,
  kHello,
  kAuth,
  kQuit,
  kSelect,
  kClient,
  kClientSetname,
  kClientGetname,
  kClientId,
  kClientSetinfo,
  kClientInfo,
  kClientHelp,
  kCommand,
  kCommandCount,
  kCommandDocs,
  kCommandInfo,
  kCommandList,
  kCommandGetkeys,
  kCommandHelp,
  kInfo,
  kConfig,
  kConfigGet,
  kConfigHelp,
  kCsetAdd,
  kCsetRem,
  kCsetNodes,
  kCsetStatus,
  kCsetNode,
  kCsetNodeAdd,
  kCsetNodePromote,
  kCsetNodeRemove,
  kCsetNodeHelp,
  kCsetLeader,
  kCsetLeaderTransfer,
  kCsetLeaderHelp,
  kCsetSession,
  kCsetSeq,
};

/// Command flags, named in COMMAND's reply as Redis names them.
enum CommandFlag : uint32_t {
  kFlagWrite = 1u << 0,         // "write": changes data (goes through the log)
  kFlagReadonly = 1u << 1,      // "readonly"
  kFlagDenyOom = 1u << 2,       // "denyoom"
  kFlagAdmin = 1u << 3,         // "admin"
  kFlagNoScript = 1u << 4,      // "noscript"
  kFlagLoading = 1u << 5,       // "loading"
  kFlagStale = 1u << 6,         // "stale"
  kFlagFast = 1u << 7,          // "fast"
  kFlagNoAuth = 1u << 8,        // "no_auth": allowed before AUTH
  kFlagAllowBusy = 1u << 9,     // "allow_busy"
  kFlagSkipSlowlog = 1u << 10,  // "skip_slowlog"
};

/// ACL categories, named in COMMAND's reply as "@name".
enum AclCategory : uint32_t {
  kCatKeyspace = 1u << 0,
  kCatRead = 1u << 1,
  kCatWrite = 1u << 2,
  kCatSet = 1u << 3,
  kCatAdmin = 1u << 4,
  kCatFast = 1u << 5,
  kCatSlow = 1u << 6,
  kCatDangerous = 1u << 7,
  kCatConnection = 1u << 8,
};

/// Key-specification flags (COMMAND INFO's key specs).
enum KeySpecFlag : uint32_t {
  kKeyRo = 1u << 0,      // "RO"
  kKeyRw = 1u << 1,      // "RW"
  kKeyRm = 1u << 2,      // "RM"
  kKeyAccess = 1u << 3,  // "ACCESS"
  kKeyInsert = 1u << 4,  // "INSERT"
  kKeyDelete = 1u << 5,  // "DELETE"
};

/// Argument description for COMMAND DOCS (what redis-cli turns into hints).
enum class ArgType : uint8_t { kKey, kString, kInteger, kPattern, kPureToken, kOneOf, kBlock };
inline constexpr uint8_t kArgOptional = 1;
inline constexpr uint8_t kArgMultiple = 2;

struct ArgSpec {
  std::string_view name;
  ArgType type;
  std::string_view token;              // e.g. "MATCH"; empty when none
  uint8_t flags = 0;                   // kArgOptional | kArgMultiple
  std::span<const ArgSpec> args = {};  // kOneOf / kBlock members
};

struct CommandSpec {
  CommandId id;
  std::string_view name;       // lower case: "sadd", "setname"
  std::string_view full_name;  // "sadd", "client|setname"
  int arity;                   // N: exactly N arguments with the name(s); -N: at least N
  uint32_t flags;              // CommandFlag bits
  uint32_t categories;         // AclCategory bits
  int first_key;               // 1-based position of the first key; 0 when none
  int last_key;                // last key position; -1: the last argument
  int key_step;
  uint32_t key_flags;      // KeySpecFlag bits of the (single) key spec
  std::string_view group;  // COMMAND DOCS group: "set", "generic", "connection", ...
  std::string_view since;
  std::string_view summary;
  std::string_view complexity;
  std::span<const ArgSpec> args;
  std::span<const CommandSpec> subcommands;  // non-empty for containers
};

/// Every top-level command, in a fixed order.
std::span<const CommandSpec> command_table();

/// The top-level command named `name` (case-insensitive), or a subcommand
/// given as "container|sub"; nullptr when there is none.
const CommandSpec* find_command(std::string_view name);

/// The subcommand `name` of `container` (case-insensitive), or nullptr.
const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view name);

// ---------------------------------------------------------------------------
// Typed requests.

inline constexpr int64_t kDefaultScanCount = 10;

struct Sadd {
  std::string key;
  std::vector<std::string> members;
};
struct Srem {
  std::string key;
  std::vector<std::string> members;
};
struct Sismember {
  std::string key;
  std::string member;
};
struct Smismember {
  std::string key;
  std::vector<std::string> members;
};
struct Smembers {
  std::string key;
};
struct Scard {
  std::string key;
};
/// Cursors are opaque, non-empty strings made by the server; "0" starts.
struct Sscan {
  std::string key;
  std::string cursor;
  std::optional<std::string> match;   // absent, or "*" given: everything
  int64_t count = kDefaultScanCount;  // >= 1
};
struct Del {
  std::vector<std::string> keys;
};
struct Exists {
  std::vector<std::string> keys;
};  // duplicates count again, as in Redis
struct Scan {
  std::string cursor;
  std::optional<std::string> match;
  int64_t count = kDefaultScanCount;  // >= 1
  std::optional<std::string> type;    // as given; only "set" matches anything here
};
struct Ping {
  std::optional<std::string> message;
};
struct Echo {
  std::string message;
};
struct Hello {
  struct Credentials {
    std::string username;
    std::string password;
  };
  std::optional<int> protover;  // 2 or 3 when given
  std::optional<Credentials> auth;
  std::optional<std::string> setname;  // validated like CLIENT SETNAME
};
struct Auth {
  std::optional<std::string> username;
  std::string password;
};
struct Quit {};
struct Select {
  int db = 0;
};  // only 0 parses
struct ClientSetname {
  std::string name;
};  // empty: clear the name
struct ClientGetname {};
struct ClientId {};
struct ClientSetinfo {
  std::string attribute;
  std::string value;
};  // "lib-name" | "lib-ver"
struct ClientInfo {};
/// COMMAND and its subcommands; answered from the table by write_command_reply().
struct CommandQuery {
  enum class Sub : uint8_t { kAll, kCount, kDocs, kInfo, kList, kGetKeys };
  enum class Filter : uint8_t { kNone, kModule, kAclCat, kPattern };
  Sub sub = Sub::kAll;
  std::vector<std::string> args;  // kDocs/kInfo: names; kGetKeys: the command to inspect
  Filter filter = Filter::kNone;  // kList
  std::string filter_value;
};
struct Info {
  std::vector<std::string> sections;
};  // lower case; empty: the default sections
struct ConfigGet {
  std::vector<std::string> patterns;
};  // glob, matched case-insensitively
struct CsetAdd {
  std::string key;
  std::string member;
};
struct CsetRem {
  std::string key;
  std::string member;
};
struct CsetNodes {};
struct CsetStatus {};
struct CsetNodeAdd {
  uint64_t id = 0;
  std::string address;
  bool voter = false;
};
struct CsetNodePromote {
  uint64_t id = 0;
};
struct CsetNodeRemove {
  uint64_t id = 0;
};
struct CsetLeaderTransfer {
  uint64_t id = 0;
};
struct CsetSession {
  uint64_t timeout_ms = 0;  // 0: the server's default
};
/// The writes CSET.SEQ may wrap.
using SessionWrite = std::variant<Sadd, Srem, Del, CsetAdd, CsetRem>;
struct CsetSeq {
  uint64_t session = 0;
  uint64_t sequence = 0;
  uint64_t lowest_unacked = 0;
  SessionWrite write;
};
/// A container's HELP; answered from the table by write_help().
struct Help {
  const CommandSpec* container = nullptr;
};

using Request =
    std::variant<Sadd, Srem, Sismember, Smismember, Smembers, Scard, Sscan, Del, Exists, Scan, Ping,
                 Echo, Hello, Auth, Quit, Select, ClientSetname, ClientGetname, ClientId,
                 ClientSetinfo, ClientInfo, CommandQuery, Info, ConfigGet, CsetAdd, CsetRem,
                 CsetNodes, CsetStatus, CsetNodeAdd, CsetNodePromote, CsetNodeRemove,
                 CsetLeaderTransfer, Help, CsetSession, CsetSeq>;

struct ParsedRequest {
  const CommandSpec* spec;  // the command or subcommand matched (flags, name)
  Request request;
};

/// Unknown command, unknown subcommand and arity checks only. Errors: kErr.
Result<const CommandSpec*> resolve_command(std::span<const std::string_view> args);

/// The whole parse. Errors: kErr (Redis's wording, see above), kTooBig.
Result<ParsedRequest> parse_request(std::span<const std::string_view> args,
                                    const Limits& limits = Limits{});

/// Convenience for tests and tools.
Result<ParsedRequest> parse_request(const std::vector<std::string>& args,
                                    const Limits& limits = Limits{});

// ---------------------------------------------------------------------------
// Replies answered from the table alone.

/// Answers COMMAND [COUNT | DOCS | INFO | LIST | GETKEYS] as Redis 7 does,
/// in the writer's protocol.
void write_command_reply(const CommandQuery& query, ReplyWriter& writer);

/// Answers CONTAINER HELP as Redis does (status lines).
void write_help(const Help& help, ReplyWriter& writer);

/// True when `name` is a valid client name or CLIENT SETINFO value: every
/// byte in '!'..'~' (Redis's rule; empty is valid).
bool valid_client_name(std::string_view name);

/// True when `address` is HOST:PORT with a non-empty host and a port in
/// 1..65535 (an IPv6 host in brackets: [::1]:7381).
bool valid_address(std::string_view address);

}  // namespace cset::resp
