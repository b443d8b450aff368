// The command table (commands.h): SPEC.md's commands, with the flags, key
// positions, categories and documentation Redis 7 gives them (the CSET.*
// commands are ours).
#include <algorithm>

#include "resp/commands.h"
#include "resp/text.h"

namespace cset::resp {

namespace {

constexpr uint8_t kOpt = kArgOptional;
constexpr uint8_t kMulti = kArgMultiple;

constexpr ArgSpec kKeyArg[] = {{"key", ArgType::kKey, ""}};
constexpr ArgSpec kKeysArg[] = {{"key", ArgType::kKey, "", kMulti}};
constexpr ArgSpec kKeyMemberArgs[] = {{"key", ArgType::kKey, ""}, {"member", ArgType::kString, ""}};
constexpr ArgSpec kKeyMembersArgs[] = {{"key", ArgType::kKey, ""},
                                       {"member", ArgType::kString, "", kMulti}};
constexpr ArgSpec kSscanArgs[] = {{"key", ArgType::kKey, ""},
                                  {"cursor", ArgType::kString, ""},
                                  {"pattern", ArgType::kPattern, "MATCH", kOpt},
                                  {"count", ArgType::kInteger, "COUNT", kOpt}};
constexpr ArgSpec kScanArgs[] = {{"cursor", ArgType::kString, ""},
                                 {"pattern", ArgType::kPattern, "MATCH", kOpt},
                                 {"count", ArgType::kInteger, "COUNT", kOpt},
                                 {"type", ArgType::kString, "TYPE", kOpt}};
constexpr ArgSpec kPingArgs[] = {{"message", ArgType::kString, "", kOpt}};
constexpr ArgSpec kEchoArgs[] = {{"message", ArgType::kString, ""}};
constexpr ArgSpec kHelloCredentials[] = {{"username", ArgType::kString, ""},
                                         {"password", ArgType::kString, ""}};
constexpr ArgSpec kHelloBlock[] = {
    {"protover", ArgType::kInteger, ""},
    {"username-password", ArgType::kBlock, "AUTH", kOpt, kHelloCredentials},
    {"clientname", ArgType::kString, "SETNAME", kOpt}};
constexpr ArgSpec kHelloArgs[] = {{"arguments", ArgType::kBlock, "", kOpt, kHelloBlock}};
constexpr ArgSpec kAuthArgs[] = {{"username", ArgType::kString, "", kOpt},
                                 {"password", ArgType::kString, ""}};
constexpr ArgSpec kSelectArgs[] = {{"index", ArgType::kInteger, ""}};
constexpr ArgSpec kSetnameArgs[] = {{"connection-name", ArgType::kString, ""}};
constexpr ArgSpec kSetinfoChoices[] = {{"libname", ArgType::kString, "LIB-NAME"},
                                       {"libver", ArgType::kString, "LIB-VER"}};
constexpr ArgSpec kSetinfoArgs[] = {{"attr", ArgType::kOneOf, "", 0, kSetinfoChoices}};
constexpr ArgSpec kCommandNamesArgs[] = {{"command-name", ArgType::kString, "", kOpt | kMulti}};
constexpr ArgSpec kFilterChoices[] = {{"module-name", ArgType::kString, "MODULE"},
                                      {"category", ArgType::kString, "ACLCAT"},
                                      {"pattern", ArgType::kPattern, "PATTERN"}};
constexpr ArgSpec kCommandListArgs[] = {
    {"filterby", ArgType::kOneOf, "FILTERBY", kOpt, kFilterChoices}};
constexpr ArgSpec kGetkeysArgs[] = {{"command", ArgType::kString, ""},
                                    {"arg", ArgType::kString, "", kOpt | kMulti}};
constexpr ArgSpec kInfoArgs[] = {{"section", ArgType::kString, "", kOpt | kMulti}};
constexpr ArgSpec kConfigGetArgs[] = {{"parameter", ArgType::kString, "", kMulti}};
constexpr ArgSpec kRoleChoices[] = {{"learner", ArgType::kPureToken, "LEARNER"},
                                    {"voter", ArgType::kPureToken, "VOTER"}};
constexpr ArgSpec kNodeAddArgs[] = {{"id", ArgType::kInteger, ""},
                                    {"address", ArgType::kString, ""},
                                    {"role", ArgType::kOneOf, "", kOpt, kRoleChoices}};
constexpr ArgSpec kNodeIdArgs[] = {{"id", ArgType::kInteger, ""}};
constexpr ArgSpec kSessionArgs[] = {{"timeout", ArgType::kInteger, "TIMEOUT", kOpt}};
constexpr ArgSpec kSeqArgs[] = {{"session", ArgType::kInteger, ""},
                                {"sequence", ArgType::kInteger, ""},
                                {"lowest-unacked", ArgType::kInteger, ""},
                                {"command", ArgType::kString, ""},
                                {"arg", ArgType::kString, "", kMulti}};

constexpr uint32_t kConnFast =
    kFlagNoScript | kFlagLoading | kFlagStale | kFlagFast | kFlagNoAuth | kFlagAllowBusy;
constexpr uint32_t kClientFlags = kFlagNoScript | kFlagLoading | kFlagStale;
constexpr uint32_t kLoadingStale = kFlagLoading | kFlagStale;
constexpr uint32_t kSlowConn = kCatSlow | kCatConnection;
constexpr uint32_t kAdminCats = kCatAdmin | kCatSlow | kCatDangerous;
constexpr std::string_view kHelpSummary = "Show helpful text about the different subcommands";

// A command without keys.
constexpr CommandSpec plain(CommandId id, std::string_view name, std::string_view full_name,
                            int arity, uint32_t flags, uint32_t categories, std::string_view group,
                            std::string_view since, std::string_view summary,
                            std::string_view complexity, std::span<const ArgSpec> args = {},
                            std::span<const CommandSpec> subcommands = {}) {
  return CommandSpec{id, name, full_name, arity, flags,   categories, 0,    0,
                     0,  0,    group,     since, summary, complexity, args, subcommands};
}

// A command whose keys run from position 1 to `last_key` (1 or -1), step 1.
constexpr CommandSpec keyed(CommandId id, std::string_view name, int arity, uint32_t flags,
                            uint32_t categories, int last_key, uint32_t key_flags,
                            std::string_view group, std::string_view since,
                            std::string_view summary, std::string_view complexity,
                            std::span<const ArgSpec> args) {
  return CommandSpec{id, name,      name,  arity, flags,   categories, 1,    last_key,
                     1,  key_flags, group, since, summary, complexity, args, {}};
}

constexpr CommandSpec help(CommandId id, std::string_view full_name, std::string_view group,
                           uint32_t categories) {
  return plain(id, "help", full_name, 2, kLoadingStale, categories, group, "5.0.0", kHelpSummary,
               "O(1)");
}

constexpr CommandSpec kClientSubcommands[] = {
    plain(CommandId::kClientSetname, "setname", "client|setname", 3, kClientFlags, kSlowConn,
          "connection", "2.6.9", "Set the current connection name", "O(1)", kSetnameArgs),
    plain(CommandId::kClientGetname, "getname", "client|getname", 2, kClientFlags, kSlowConn,
          "connection", "2.6.9", "Get the current connection name", "O(1)"),
    plain(CommandId::kClientId, "id", "client|id", 2, kClientFlags, kSlowConn, "connection",
          "5.0.0", "Returns the client ID for the current connection", "O(1)"),
    plain(CommandId::kClientSetinfo, "setinfo", "client|setinfo", 4, kClientFlags, kSlowConn,
          "connection", "7.2.0", "Set client or connection specific info", "O(1)", kSetinfoArgs),
    plain(CommandId::kClientInfo, "info", "client|info", 2, kClientFlags, kSlowConn, "connection",
          "6.2.0", "Returns information about the current client connection.", "O(1)"),
    help(CommandId::kClientHelp, "client|help", "connection", kSlowConn),
};

constexpr CommandSpec kCommandSubcommands[] = {
    plain(CommandId::kCommandCount, "count", "command|count", 2, kLoadingStale, kSlowConn, "server",
          "2.8.13", "Get total number of Redis commands", "O(1)"),
    plain(CommandId::kCommandDocs, "docs", "command|docs", -2, kLoadingStale, kSlowConn, "server",
          "7.0.0", "Get array of specific Redis command documentation",
          "O(N) where N is the number of commands to look up", kCommandNamesArgs),
    plain(CommandId::kCommandInfo, "info", "command|info", -2, kLoadingStale, kSlowConn, "server",
          "2.8.13",
          "Get array of specific Redis command details, or all when no argument is given.",
          "O(N) where N is the number of commands to look up", kCommandNamesArgs),
    plain(CommandId::kCommandList, "list", "command|list", -2, kLoadingStale, kSlowConn, "server",
          "7.0.0", "Get an array of Redis command names",
          "O(N) where N is the total number of Redis commands", kCommandListArgs),
    plain(CommandId::kCommandGetkeys, "getkeys", "command|getkeys", -3, kLoadingStale, kSlowConn,
          "server", "2.8.13", "Extract keys given a full Redis command",
          "O(N) where N is the number of arguments to the command", kGetkeysArgs),
    help(CommandId::kCommandHelp, "command|help", "server", kSlowConn),
};

constexpr CommandSpec kConfigSubcommands[] = {
    plain(CommandId::kConfigGet, "get", "config|get", -3,
          kFlagAdmin | kFlagNoScript | kFlagLoading | kFlagStale, kAdminCats, "server", "2.0.0",
          "Get the values of configuration parameters",
          "O(N) when N is the number of configuration parameters provided", kConfigGetArgs),
    help(CommandId::kConfigHelp, "config|help", "server", kCatSlow),
};

constexpr CommandSpec kCsetNodeSubcommands[] = {
    plain(CommandId::kCsetNodeAdd, "add", "cset.node|add", -4, kFlagAdmin | kFlagNoScript,
          kAdminCats, "cluster", "0.1.0",
          "Add a node to the cluster, a learner unless VOTER is given; answers once committed",
          "O(1)", kNodeAddArgs),
    plain(CommandId::kCsetNodePromote, "promote", "cset.node|promote", 3,
          kFlagAdmin | kFlagNoScript, kAdminCats, "cluster", "0.1.0",
          "Promote a learner to voter; answers once committed", "O(1)", kNodeIdArgs),
    plain(CommandId::kCsetNodeRemove, "remove", "cset.node|remove", 3, kFlagAdmin | kFlagNoScript,
          kAdminCats, "cluster", "0.1.0", "Remove a node from the cluster; answers once committed",
          "O(1)", kNodeIdArgs),
    help(CommandId::kCsetNodeHelp, "cset.node|help", "cluster", kCatSlow),
};

constexpr CommandSpec kCsetLeaderSubcommands[] = {
    plain(CommandId::kCsetLeaderTransfer, "transfer", "cset.leader|transfer", 3,
          kFlagAdmin | kFlagNoScript, kAdminCats, "cluster", "0.1.0",
          "Transfer the leadership to a voter", "O(1)", kNodeIdArgs),
    help(CommandId::kCsetLeaderHelp, "cset.leader|help", "cluster", kCatSlow),
};

constexpr CommandSpec kCommands[] = {
    keyed(CommandId::kSadd, "sadd", -3, kFlagWrite | kFlagDenyOom | kFlagFast,
          kCatWrite | kCatSet | kCatFast, 1, kKeyRw | kKeyInsert, "set", "1.0.0",
          "Add one or more members to a set",
          "O(1) for each element added, so O(N) to add N elements when the command is called "
          "with multiple arguments.",
          kKeyMembersArgs),
    keyed(CommandId::kSrem, "srem", -3, kFlagWrite | kFlagFast, kCatWrite | kCatSet | kCatFast, 1,
          kKeyRw | kKeyDelete, "set", "1.0.0", "Remove one or more members from a set",
          "O(N) where N is the number of members to be removed.", kKeyMembersArgs),
    keyed(CommandId::kSismember, "sismember", 3, kFlagReadonly | kFlagFast,
          kCatRead | kCatSet | kCatFast, 1, kKeyRo | kKeyAccess, "set", "1.0.0",
          "Determine if a given value is a member of a set", "O(1)", kKeyMemberArgs),
    keyed(CommandId::kSmismember, "smismember", -3, kFlagReadonly | kFlagFast,
          kCatRead | kCatSet | kCatFast, 1, kKeyRo | kKeyAccess, "set", "6.2.0",
          "Returns the membership associated with the given elements for a set",
          "O(N) where N is the number of elements being checked for membership", kKeyMembersArgs),
    keyed(CommandId::kSmembers, "smembers", 2, kFlagReadonly, kCatRead | kCatSet | kCatSlow, 1,
          kKeyRo | kKeyAccess, "set", "1.0.0", "Get all the members in a set",
          "O(N) where N is the set cardinality.", kKeyArg),
    keyed(CommandId::kScard, "scard", 2, kFlagReadonly | kFlagFast, kCatRead | kCatSet | kCatFast,
          1, kKeyRo, "set", "1.0.0", "Get the number of members in a set", "O(1)", kKeyArg),
    keyed(CommandId::kSscan, "sscan", -3, kFlagReadonly, kCatRead | kCatSet | kCatSlow, 1,
          kKeyRo | kKeyAccess, "set", "2.8.0", "Incrementally iterate Set elements",
          "O(1) for every call. O(N) for a complete iteration, including enough command calls "
          "for the cursor to return back to 0. N is the number of elements inside the "
          "collection.",
          kSscanArgs),
    keyed(CommandId::kDel, "del", -2, kFlagWrite, kCatKeyspace | kCatWrite | kCatSlow, -1,
          kKeyRm | kKeyDelete, "generic", "1.0.0", "Delete a key",
          "O(N) where N is the number of keys that will be removed.", kKeysArg),
    keyed(CommandId::kExists, "exists", -2, kFlagReadonly | kFlagFast,
          kCatKeyspace | kCatRead | kCatFast, -1, kKeyRo, "generic", "1.0.0",
          "Determine if a key exists", "O(N) where N is the number of keys to check.", kKeysArg),
    plain(CommandId::kScan, "scan", "scan", -2, kFlagReadonly, kCatKeyspace | kCatRead | kCatSlow,
          "generic", "2.8.0", "Incrementally iterate the keys space",
          "O(1) for every call. O(N) for a complete iteration, including enough command calls "
          "for the cursor to return back to 0. N is the number of elements inside the "
          "collection.",
          kScanArgs),
    plain(CommandId::kPing, "ping", "ping", -1, kFlagFast, kCatFast | kCatConnection, "connection",
          "1.0.0", "Ping the server", "O(1)", kPingArgs),
    plain(CommandId::kEcho, "echo", "echo", 2, kFlagFast, kCatFast | kCatConnection, "connection",
          "1.0.0", "Echo the given string", "O(1)", kEchoArgs),
    plain(CommandId::kHello, "hello", "hello", -1, kConnFast, kCatFast | kCatConnection,
          "connection", "6.0.0", "Handshake with Redis", "O(1)", kHelloArgs),
    plain(CommandId::kAuth, "auth", "auth", -2, kConnFast, kCatFast | kCatConnection, "connection",
          "1.0.0", "Authenticate to the server",
          "O(N) where N is the number of passwords defined for the user", kAuthArgs),
    plain(CommandId::kQuit, "quit", "quit", -1, kConnFast, kCatFast | kCatConnection, "connection",
          "1.0.0", "Close the connection", "O(1)"),
    plain(CommandId::kSelect, "select", "select", 2, kFlagLoading | kFlagStale | kFlagFast,
          kCatFast | kCatConnection, "connection", "1.0.0",
          "Change the selected database for the current connection", "O(1)", kSelectArgs),
    plain(CommandId::kClient, "client", "client", -2, 0, kCatSlow, "connection", "2.4.0",
          "A container for client connection commands", "Depends on subcommand.", {},
          kClientSubcommands),
    plain(CommandId::kCommand, "command", "command", -1, kLoadingStale, kSlowConn, "server",
          "2.8.13", "Get array of Redis command details",
          "O(N) where N is the total number of Redis commands", {}, kCommandSubcommands),
    plain(CommandId::kInfo, "info", "info", -1, kLoadingStale, kCatSlow | kCatDangerous, "server",
          "1.0.0", "Get information and statistics about the server", "O(1)", kInfoArgs),
    plain(CommandId::kConfig, "config", "config", -2, 0, kCatSlow, "server", "2.0.0",
          "A container for server configuration commands", "Depends on subcommand.", {},
          kConfigSubcommands),
    keyed(CommandId::kCsetAdd, "cset.add", 3, kFlagWrite | kFlagDenyOom | kFlagFast,
          kCatWrite | kCatSet | kCatFast, 1, kKeyRw | kKeyInsert, "set", "0.1.0",
          "Add one member to a set; an EXISTS error if it is already present", "O(1)",
          kKeyMemberArgs),
    keyed(CommandId::kCsetRem, "cset.rem", 3, kFlagWrite | kFlagFast,
          kCatWrite | kCatSet | kCatFast, 1, kKeyRw | kKeyDelete, "set", "0.1.0",
          "Remove one member from a set; an absent member is not an error", "O(1)", kKeyMemberArgs),
    plain(CommandId::kCsetNodes, "cset.nodes", "cset.nodes", 1, kLoadingStale, kCatSlow, "cluster",
          "0.1.0",
          "List the cluster's nodes: id, peer and client addresses, voter or learner, state, "
          "match index",
          "O(N) where N is the number of nodes"),
    plain(CommandId::kCsetStatus, "cset.status", "cset.status", 1, kLoadingStale, kCatSlow,
          "cluster", "0.1.0", "Show this node's view of the cluster",
          "O(N) where N is the "
          "number of nodes"),
    plain(CommandId::kCsetNode, "cset.node", "cset.node", -2, 0, kCatSlow, "cluster", "0.1.0",
          "A container for cluster membership changes", "Depends on subcommand.", {},
          kCsetNodeSubcommands),
    plain(CommandId::kCsetLeader, "cset.leader", "cset.leader", -2, 0, kCatSlow, "cluster", "0.1.0",
          "A container for leadership commands", "Depends on subcommand.", {},
          kCsetLeaderSubcommands),
    plain(CommandId::kCsetSession, "cset.session", "cset.session", -1, kFlagWrite | kFlagFast,
          kCatWrite | kCatFast | kCatConnection, "connection", "0.2.0",
          "Open a client session (through the log) for exactly-once retries; returns its id",
          "O(1)", kSessionArgs),
    // Not @set: it also wraps DEL (@keyspace).
    plain(CommandId::kCsetSeq, "cset.seq", "cset.seq", -5, kFlagWrite | kFlagDenyOom,
          kCatWrite | kCatKeyspace | kCatSlow, "generic", "0.2.0",
          "Run SADD, SREM, DEL, CSET.ADD or CSET.REM at most once in a client session; a retry "
          "gets the first answer",
          "The wrapped command's", kSeqArgs),
};

}  // namespace

std::span<const CommandSpec> command_table() { return kCommands; }

const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view name) {
  for (const CommandSpec& sub : container.subcommands) {
    if (iequals(sub.name, name)) return &sub;
  }
  return nullptr;
}

const CommandSpec* find_command(std::string_view name) {
  const size_t bar = name.find('|');
  const std::string_view top = name.substr(0, bar);
  const CommandSpec* found = nullptr;
  for (const CommandSpec& spec : kCommands) {
    if (iequals(spec.name, top)) {
      found = &spec;
      break;
    }
  }
  if (found == nullptr || bar == std::string_view::npos) return found;
  return find_subcommand(*found, name.substr(bar + 1));
}

}  // namespace cset::resp
