// The command table and typed parsing (src/resp/commands.h): Redis's exact
// error wording, every SPEC command's typed form, limits, and the COMMAND /
// HELP replies generated from the table.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "resp/commands.h"
#include "resp/reply_reader.h"
#include "resp/writer.h"

namespace cset::resp {
namespace {

using ::testing::ElementsAre;

using Args = std::vector<std::string>;

// The error line a client would see ("ERR syntax error"), or "" when ok.
std::string error_of(const Args& args, const Limits& limits = Limits{}) {
  auto parsed = parse_request(args, limits);
  return parsed ? "" : parsed.status().to_string();
}

template <typename T>
T parsed_as(const Args& args, const Limits& limits = Limits{}) {
  auto parsed = parse_request(args, limits);
  EXPECT_TRUE(parsed.ok()) << parsed.status().to_string();
  if (!parsed.ok()) return T{};
  const T* typed = std::get_if<T>(&parsed->request);
  EXPECT_NE(typed, nullptr) << "wrong request type for " << args[0];
  return typed ? *typed : T{};
}

TEST(RespCommandsTest, UnknownCommandsUseRedis7Wording) {
  EXPECT_EQ(error_of({"foo", "a", "b"}),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  EXPECT_EQ(error_of({"foo"}), "ERR unknown command 'foo', with args beginning with: ");
  for (const char* name : {"MULTI", "EXEC", "GET", "SET", "HSET", "LPUSH", "ZADD", "FLUSHALL",
                           "SINTER", "SPOP", "client|setname", "cset.node|add"}) {
    EXPECT_EQ(error_of({name}),
              std::string("ERR unknown command '") + name + "', with args beginning with: ");
  }
  // Arguments are listed while the list is under 128 bytes, each cut to fit.
  const std::string long_arg(200, 'x');
  EXPECT_EQ(
      error_of({"foo", long_arg, "b"}),
      "ERR unknown command 'foo', with args beginning with: '" + std::string(128, 'x') + "' ");
  EXPECT_EQ(error_of({"foo", std::string(100, 'y'), "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "c"}),
            "ERR unknown command 'foo', with args beginning with: '" + std::string(100, 'y') +
                "' 'zzzzzzzzzzzzzzzzzzzzzzzzz' ");
  // The name is cut at 128 bytes; CR/LF become spaces.
  EXPECT_EQ(error_of({std::string(300, 'n')}),
            "ERR unknown command '" + std::string(128, 'n') + "', with args beginning with: ");
  EXPECT_EQ(error_of({"a\r\nb", "c\nd"}),
            "ERR unknown command 'a  b', with args beginning with: 'c d' ");
}

TEST(RespCommandsTest, NamesAreCaseInsensitive) {
  EXPECT_EQ(parsed_as<Sadd>({"sAdD", "k", "m"}).key, "k");
  EXPECT_EQ(parsed_as<CsetAdd>({"Cset.Add", "k", "m"}).member, "m");
  EXPECT_EQ(parsed_as<ClientSetname>({"client", "SetName", "x"}).name, "x");
  auto parsed = parse_request(Args{"SADD", "k", "m"});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->spec->full_name, "sadd");
  EXPECT_TRUE(parsed->spec->flags & kFlagWrite);
}

struct ArityCase {
  Args args;
  std::string name;  // in the error: full name, lower case
};

TEST(RespCommandsTest, WrongNumberOfArguments) {
  const std::vector<ArityCase> cases = {
      {{"SADD"}, "sadd"},
      {{"SADD", "k"}, "sadd"},
      {{"srem", "k"}, "srem"},
      {{"SISMEMBER", "k"}, "sismember"},
      {{"SISMEMBER", "k", "a", "b"}, "sismember"},
      {{"SMISMEMBER", "k"}, "smismember"},
      {{"SMEMBERS"}, "smembers"},
      {{"SMEMBERS", "k", "x"}, "smembers"},
      {{"SCARD"}, "scard"},
      {{"SCARD", "a", "b"}, "scard"},
      {{"SSCAN", "k"}, "sscan"},
      {{"DEL"}, "del"},
      {{"EXISTS"}, "exists"},
      {{"SCAN"}, "scan"},
      {{"PING", "a", "b"}, "ping"},
      {{"ECHO"}, "echo"},
      {{"ECHO", "a", "b"}, "echo"},
      {{"AUTH"}, "auth"},
      {{"SELECT"}, "select"},
      {{"SELECT", "0", "1"}, "select"},
      {{"CLIENT"}, "client"},
      {{"CLIENT", "SETNAME"}, "client|setname"},
      {{"CLIENT", "SETNAME", "a", "b"}, "client|setname"},
      {{"CLIENT", "GETNAME", "x"}, "client|getname"},
      {{"CLIENT", "ID", "x"}, "client|id"},
      {{"CLIENT", "SETINFO", "LIB-NAME"}, "client|setinfo"},
      {{"CLIENT", "INFO", "x"}, "client|info"},
      {{"COMMAND", "COUNT", "x"}, "command|count"},
      {{"COMMAND", "GETKEYS"}, "command|getkeys"},
      {{"CONFIG"}, "config"},
      {{"CONFIG", "GET"}, "config|get"},
      {{"CSET.ADD", "k"}, "cset.add"},
      {{"CSET.ADD", "k", "a", "b"}, "cset.add"},
      {{"CSET.REM", "k"}, "cset.rem"},
      {{"CSET.NODES", "x"}, "cset.nodes"},
      {{"CSET.STATUS", "x"}, "cset.status"},
      {{"CSET.NODE"}, "cset.node"},
      {{"CSET.NODE", "ADD", "4"}, "cset.node|add"},
      {{"CSET.NODE", "PROMOTE"}, "cset.node|promote"},
      {{"CSET.NODE", "REMOVE", "1", "2"}, "cset.node|remove"},
      {{"CSET.LEADER"}, "cset.leader"},
      {{"CSET.LEADER", "TRANSFER"}, "cset.leader|transfer"},
      {{"CLIENT", "HELP", "x"}, "client|help"},
  };
  for (const ArityCase& c : cases) {
    EXPECT_EQ(error_of(c.args), "ERR wrong number of arguments for '" + c.name + "' command")
        << c.args[0];
    // PING checks its maximum itself, as in Redis (arity -1).
    if (c.args[0] == "PING") continue;
    auto resolved = resolve_command(std::vector<std::string_view>(c.args.begin(), c.args.end()));
    EXPECT_FALSE(resolved.ok());
  }
}

TEST(RespCommandsTest, UnknownSubcommands) {
  EXPECT_EQ(error_of({"CLIENT", "Kill", "x"}), "ERR unknown subcommand 'Kill'. Try CLIENT HELP.");
  EXPECT_EQ(error_of({"config", "set", "a", "b"}),
            "ERR unknown subcommand 'set'. Try CONFIG HELP.");
  EXPECT_EQ(error_of({"COMMAND", "nope"}), "ERR unknown subcommand 'nope'. Try COMMAND HELP.");
  EXPECT_EQ(error_of({"CSET.NODE", "JOIN", "1"}),
            "ERR unknown subcommand 'JOIN'. Try CSET.NODE HELP.");
  EXPECT_EQ(error_of({"CSET.LEADER", "x"}), "ERR unknown subcommand 'x'. Try CSET.LEADER HELP.");
}

TEST(RespCommandsTest, ResolveStopsBeforeTheCommandsOwnSyntax) {
  // A server checks NOAUTH between resolve_command() and parse_request().
  std::vector<std::string_view> args{"SELECT", "abc"};
  auto resolved = resolve_command(args);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ((*resolved)->full_name, "select");
  EXPECT_EQ(error_of({"SELECT", "abc"}), "ERR value is not an integer or out of range");
  auto auth = resolve_command(std::vector<std::string_view>{"AUTH", "pw"});
  ASSERT_TRUE(auth.ok());
  EXPECT_TRUE((*auth)->flags & kFlagNoAuth);
  auto sadd = resolve_command(std::vector<std::string_view>{"SADD", "k", "m"});
  ASSERT_TRUE(sadd.ok());
  EXPECT_FALSE((*sadd)->flags & kFlagNoAuth);
}

TEST(RespCommandsTest, SetCommands) {
  Sadd sadd = parsed_as<Sadd>({"SADD", "k", "a", "b", "a"});
  EXPECT_EQ(sadd.key, "k");
  EXPECT_THAT(sadd.members, ElementsAre("a", "b", "a"));
  Srem srem = parsed_as<Srem>({"SREM", "k", "a"});
  EXPECT_THAT(srem.members, ElementsAre("a"));
  Sismember is = parsed_as<Sismember>({"SISMEMBER", "k", std::string("\0x", 2)});
  EXPECT_EQ(is.member, std::string("\0x", 2));
  EXPECT_THAT(parsed_as<Smismember>({"SMISMEMBER", "k", "a", "b"}).members, ElementsAre("a", "b"));
  EXPECT_EQ(parsed_as<Smembers>({"SMEMBERS", "k"}).key, "k");
  EXPECT_EQ(parsed_as<Scard>({"SCARD", ""}).key, "");
  EXPECT_THAT(parsed_as<Del>({"DEL", "a", "b"}).keys, ElementsAre("a", "b"));
  EXPECT_THAT(parsed_as<Exists>({"EXISTS", "a", "a"}).keys, ElementsAre("a", "a"));
  CsetAdd add = parsed_as<CsetAdd>({"CSET.ADD", "k", "m"});
  EXPECT_EQ(add.key, "k");
  EXPECT_EQ(add.member, "m");
  CsetRem rem = parsed_as<CsetRem>({"CSET.REM", "k", "m"});
  EXPECT_EQ(rem.member, "m");
}

TEST(RespCommandsTest, Scans) {
  Sscan plain = parsed_as<Sscan>({"SSCAN", "k", "0"});
  EXPECT_EQ(plain.key, "k");
  EXPECT_EQ(plain.cursor, "0");
  EXPECT_FALSE(plain.match.has_value());
  EXPECT_EQ(plain.count, 10);
  Sscan full = parsed_as<Sscan>({"sscan", "k", "6b6579", "match", "a*", "COUNT", "100"});
  EXPECT_EQ(full.cursor, "6b6579");
  EXPECT_EQ(full.match, "a*");
  EXPECT_EQ(full.count, 100);
  Sscan last_wins = parsed_as<Sscan>({"SSCAN", "k", "0", "COUNT", "5", "COUNT", "6"});
  EXPECT_EQ(last_wins.count, 6);
  Scan scan = parsed_as<Scan>({"SCAN", "0", "TYPE", "set", "MATCH", "user:*"});
  EXPECT_EQ(scan.type, "set");
  EXPECT_EQ(scan.match, "user:*");
  EXPECT_EQ(scan.count, 10);

  EXPECT_EQ(error_of({"SSCAN", "k", ""}), "ERR invalid cursor");
  EXPECT_EQ(error_of({"SCAN", ""}), "ERR invalid cursor");
  EXPECT_EQ(error_of({"SSCAN", "k", "0", "COUNT", "0"}), "ERR syntax error");
  EXPECT_EQ(error_of({"SSCAN", "k", "0", "COUNT", "-1"}), "ERR syntax error");
  EXPECT_EQ(error_of({"SSCAN", "k", "0", "COUNT", "x"}),
            "ERR value is not an integer or out of range");
  EXPECT_EQ(error_of({"SSCAN", "k", "0", "COUNT"}), "ERR syntax error");
  EXPECT_EQ(error_of({"SSCAN", "k", "0", "MATCH"}), "ERR syntax error");
  EXPECT_EQ(error_of({"SSCAN", "k", "0", "TYPE", "set"}), "ERR syntax error");
  EXPECT_EQ(error_of({"SCAN", "0", "LIMIT", "1"}), "ERR syntax error");
}

TEST(RespCommandsTest, ConnectionCommands) {
  EXPECT_FALSE(parsed_as<Ping>({"PING"}).message.has_value());
  EXPECT_EQ(parsed_as<Ping>({"ping", "hi"}).message, "hi");
  EXPECT_EQ(parsed_as<Echo>({"ECHO", "x y"}).message, "x y");
  Auth auth1 = parsed_as<Auth>({"AUTH", "pw"});
  EXPECT_FALSE(auth1.username.has_value());
  EXPECT_EQ(auth1.password, "pw");
  Auth auth2 = parsed_as<Auth>({"AUTH", "user", "pw"});
  EXPECT_EQ(auth2.username, "user");
  EXPECT_EQ(error_of({"AUTH", "a", "b", "c"}), "ERR syntax error");
  parsed_as<Quit>({"QUIT"});
  parsed_as<Quit>({"QUIT", "extra"});
  EXPECT_EQ(parsed_as<Select>({"SELECT", "0"}).db, 0);
  EXPECT_EQ(error_of({"SELECT", "1"}), "ERR DB index is out of range");
  EXPECT_EQ(error_of({"SELECT", "-1"}), "ERR DB index is out of range");
  EXPECT_EQ(error_of({"SELECT", "x"}), "ERR value is not an integer or out of range");
  EXPECT_EQ(error_of({"SELECT", "4294967296"}), "ERR value is not an integer or out of range");
}

TEST(RespCommandsTest, Hello) {
  Hello bare = parsed_as<Hello>({"HELLO"});
  EXPECT_FALSE(bare.protover.has_value());
  EXPECT_EQ(parsed_as<Hello>({"HELLO", "3"}).protover, 3);
  Hello full = parsed_as<Hello>({"hello", "2", "auth", "default", "pw", "setname", "app"});
  EXPECT_EQ(full.protover, 2);
  ASSERT_TRUE(full.auth.has_value());
  EXPECT_EQ(full.auth->username, "default");
  EXPECT_EQ(full.auth->password, "pw");
  EXPECT_EQ(full.setname, "app");
  EXPECT_EQ(error_of({"HELLO", "x"}), "ERR Protocol version is not an integer or out of range");
  EXPECT_EQ(error_of({"HELLO", "4"}), "NOPROTO unsupported protocol version");
  EXPECT_EQ(error_of({"HELLO", "1"}), "NOPROTO unsupported protocol version");
  EXPECT_EQ(error_of({"HELLO", "3", "AUTH", "u"}), "ERR Syntax error in HELLO option 'AUTH'");
  EXPECT_EQ(error_of({"HELLO", "3", "FOO"}), "ERR Syntax error in HELLO option 'FOO'");
  EXPECT_EQ(error_of({"HELLO", "3", "SETNAME", "a b"}),
            "ERR Client names cannot contain spaces, newlines or special characters.");
}

TEST(RespCommandsTest, ClientCommands) {
  EXPECT_EQ(parsed_as<ClientSetname>({"CLIENT", "SETNAME", "worker-1"}).name, "worker-1");
  EXPECT_EQ(parsed_as<ClientSetname>({"CLIENT", "SETNAME", ""}).name, "");
  EXPECT_EQ(error_of({"CLIENT", "SETNAME", "a b"}),
            "ERR Client names cannot contain spaces, newlines or special characters.");
  EXPECT_EQ(error_of({"CLIENT", "SETNAME", "a\nb"}),
            "ERR Client names cannot contain spaces, newlines or special characters.");
  parsed_as<ClientGetname>({"CLIENT", "GETNAME"});
  parsed_as<ClientId>({"client", "id"});
  parsed_as<ClientInfo>({"CLIENT", "INFO"});
  ClientSetinfo info = parsed_as<ClientSetinfo>({"CLIENT", "SETINFO", "LIB-NAME", "redis-py"});
  EXPECT_EQ(info.attribute, "lib-name");
  EXPECT_EQ(info.value, "redis-py");
  EXPECT_EQ(parsed_as<ClientSetinfo>({"CLIENT", "SETINFO", "lib-ver", "5.0.1"}).value, "5.0.1");
  EXPECT_EQ(error_of({"CLIENT", "SETINFO", "lib-foo", "x"}), "ERR Unrecognized option 'lib-foo'");
  EXPECT_EQ(error_of({"CLIENT", "SETINFO", "LIB-NAME", "a b"}),
            "ERR LIB-NAME cannot contain spaces, newlines or special characters.");
}

TEST(RespCommandsTest, ServerCommands) {
  EXPECT_TRUE(parsed_as<Info>({"INFO"}).sections.empty());
  EXPECT_THAT(parsed_as<Info>({"INFO", "Server", "RAFT"}).sections, ElementsAre("server", "raft"));
  EXPECT_THAT(parsed_as<ConfigGet>({"CONFIG", "GET", "save", "appendonly"}).patterns,
              ElementsAre("save", "appendonly"));
  EXPECT_EQ(parsed_as<CommandQuery>({"COMMAND"}).sub, CommandQuery::Sub::kAll);
  EXPECT_EQ(parsed_as<CommandQuery>({"COMMAND", "COUNT"}).sub, CommandQuery::Sub::kCount);
  CommandQuery docs = parsed_as<CommandQuery>({"COMMAND", "DOCS", "sadd", "get"});
  EXPECT_EQ(docs.sub, CommandQuery::Sub::kDocs);
  EXPECT_THAT(docs.args, ElementsAre("sadd", "get"));
  EXPECT_EQ(parsed_as<CommandQuery>({"COMMAND", "INFO"}).sub, CommandQuery::Sub::kInfo);
  CommandQuery list = parsed_as<CommandQuery>({"COMMAND", "LIST", "FILTERBY", "aclcat", "set"});
  EXPECT_EQ(list.filter, CommandQuery::Filter::kAclCat);
  EXPECT_EQ(list.filter_value, "set");
  EXPECT_EQ(error_of({"COMMAND", "LIST", "FILTERBY", "color", "x"}), "ERR syntax error");
  EXPECT_EQ(error_of({"COMMAND", "LIST", "x"}), "ERR syntax error");
  CommandQuery getkeys = parsed_as<CommandQuery>({"COMMAND", "GETKEYS", "DEL", "a"});
  EXPECT_THAT(getkeys.args, ElementsAre("DEL", "a"));
  Help help = parsed_as<Help>({"CLIENT", "HELP"});
  ASSERT_NE(help.container, nullptr);
  EXPECT_EQ(help.container->name, "client");
}

TEST(RespCommandsTest, ClusterCommands) {
  parsed_as<CsetNodes>({"CSET.NODES"});
  parsed_as<CsetStatus>({"cset.status"});
  CsetNodeAdd learner = parsed_as<CsetNodeAdd>({"CSET.NODE", "ADD", "4", "10.0.0.4:7381"});
  EXPECT_EQ(learner.id, 4u);
  EXPECT_EQ(learner.address, "10.0.0.4:7381");
  EXPECT_FALSE(learner.voter);
  EXPECT_TRUE(parsed_as<CsetNodeAdd>({"CSET.NODE", "add", "5", "h:1", "voter"}).voter);
  EXPECT_FALSE(parsed_as<CsetNodeAdd>({"CSET.NODE", "ADD", "5", "h:1", "LEARNER"}).voter);
  EXPECT_EQ(parsed_as<CsetNodeAdd>({"CSET.NODE", "ADD", "9223372036854775807", "[::1]:7381"}).id,
            9223372036854775807u);
  EXPECT_EQ(error_of({"CSET.NODE", "ADD", "5", "h:1", "OBSERVER"}), "ERR syntax error");
  EXPECT_EQ(error_of({"CSET.NODE", "ADD", "5", "h:1", "VOTER", "x"}), "ERR syntax error");
  for (const char* bad_id : {"0", "-1", "x", "9223372036854775808", "01"}) {
    EXPECT_EQ(error_of({"CSET.NODE", "ADD", bad_id, "h:1"}),
              std::string("ERR invalid node id '") + bad_id +
                  "': expected an integer from 1 to 9223372036854775807");
  }
  for (const char* bad_address : {"h", ":1", "h:", "h:0", "h:65536", "h:x", "::1:5", "h :1"}) {
    EXPECT_EQ(error_of({"CSET.NODE", "ADD", "4", bad_address}),
              std::string("ERR invalid address '") + bad_address + "': expected HOST:PORT")
        << bad_address;
  }
  EXPECT_EQ(parsed_as<CsetNodePromote>({"CSET.NODE", "PROMOTE", "4"}).id, 4u);
  EXPECT_EQ(parsed_as<CsetNodeRemove>({"CSET.NODE", "REMOVE", "2"}).id, 2u);
  EXPECT_EQ(parsed_as<CsetLeaderTransfer>({"CSET.LEADER", "TRANSFER", "3"}).id, 3u);
  EXPECT_EQ(error_of({"CSET.LEADER", "TRANSFER", "zero"}),
            "ERR invalid node id 'zero': expected an integer from 1 to 9223372036854775807");
}

TEST(RespCommandsTest, KeyAndMemberLimits) {
  Limits limits;
  const std::string key_at(limits.max_key_bytes, 'k');
  const std::string key_over(limits.max_key_bytes + 1, 'k');
  const std::string member_at(limits.max_member_bytes, 'm');
  const std::string member_over(limits.max_member_bytes + 1, 'm');
  EXPECT_EQ(error_of({"SADD", key_at, member_at}), "");
  EXPECT_EQ(error_of({"SADD", key_over, "m"}), "TOOBIG key is 4097 bytes, over the limit of 4096");
  EXPECT_EQ(error_of({"SADD", "k", "a", member_over}),
            "TOOBIG member is 65537 bytes, over the limit of 65536");
  EXPECT_EQ(error_of({"CSET.ADD", "k", member_over}),
            "TOOBIG member is 65537 bytes, over the limit of 65536");
  EXPECT_EQ(error_of({"SISMEMBER", "k", member_over}),
            "TOOBIG member is 65537 bytes, over the limit of 65536");
  EXPECT_EQ(error_of({"SMEMBERS", key_over}), "TOOBIG key is 4097 bytes, over the limit of 4096");
  EXPECT_EQ(error_of({"DEL", "a", key_over}), "TOOBIG key is 4097 bytes, over the limit of 4096");
  EXPECT_EQ(error_of({"SSCAN", key_over, "0"}), "TOOBIG key is 4097 bytes, over the limit of 4096");
  auto parsed = parse_request(Args{"SADD", key_over, "m"});
  EXPECT_EQ(parsed.code(), Code::kTooBig);
  // The whole request.
  Limits small;
  small.max_request_bytes = 20;
  EXPECT_EQ(error_of({"SADD", "key", "0123456789", "0123456789"}, small),
            "TOOBIG request exceeds 20 bytes");
  // Arity errors come before limits.
  EXPECT_EQ(error_of({"SADD", key_over}), "ERR wrong number of arguments for 'sadd' command");
}

TEST(RespCommandsTest, TableIsConsistent) {
  std::set<std::string_view> names;
  for (const CommandSpec& spec : command_table()) {
    EXPECT_TRUE(names.insert(spec.full_name).second) << spec.full_name;
    EXPECT_EQ(spec.name, spec.full_name);
    EXPECT_EQ(find_command(spec.name), &spec);
    EXPECT_NE(spec.arity, 0);
    EXPECT_FALSE(spec.summary.empty());
    if (spec.first_key != 0) {
      EXPECT_GE(spec.first_key, 1);
      EXPECT_NE(spec.key_flags, 0u) << spec.name;
    }
    for (const CommandSpec& sub : spec.subcommands) {
      EXPECT_EQ(sub.full_name, std::string(spec.name) + "|" + std::string(sub.name));
      EXPECT_EQ(find_command(sub.full_name), &sub);
      EXPECT_EQ(find_subcommand(spec, sub.name), &sub);
      EXPECT_TRUE(sub.subcommands.empty());
    }
  }
  for (const char* required :
       {"sadd",     "srem",       "sismember", "smismember",  "smembers",   "scard",  "sscan",
        "del",      "exists",     "scan",      "ping",        "echo",       "hello",  "auth",
        "quit",     "select",     "client",    "command",     "info",       "config", "cset.add",
        "cset.rem", "cset.nodes", "cset.node", "cset.leader", "cset.status"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
  EXPECT_EQ(find_command("SADD"), find_command("sadd"));
  EXPECT_EQ(find_command("get"), nullptr);
  EXPECT_EQ(find_command("client|nope"), nullptr);
}

// ---- replies from the table --------------------------------------------------

Reply reply_of(const CommandQuery& query, int protocol) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  write_command_reply(query, writer);
  ReadResult r = read_reply(out);
  EXPECT_EQ(r.status, ReadStatus::kOk);
  EXPECT_EQ(r.consumed, out.size());
  return r.reply;
}

CommandQuery query_of(const Args& args) { return parsed_as<CommandQuery>(args); }

TEST(RespCommandsTest, CommandCount) {
  Reply r = reply_of(query_of({"COMMAND", "COUNT"}), 2);
  EXPECT_EQ(r.type, Reply::Type::kInteger);
  EXPECT_EQ(r.integer, static_cast<int64_t>(command_table().size()));
}

TEST(RespCommandsTest, CommandInfoSaddIsByteExact) {
  std::string out;
  ReplyWriter writer(&out, 2);
  write_command_reply(query_of({"COMMAND", "INFO", "sadd"}), writer);
  EXPECT_EQ(out,
            "*1\r\n*10\r\n$4\r\nsadd\r\n:-3\r\n"
            "*3\r\n+write\r\n+denyoom\r\n+fast\r\n"
            ":1\r\n:1\r\n:1\r\n"
            "*3\r\n+@write\r\n+@set\r\n+@fast\r\n"
            "*0\r\n"
            "*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RW\r\n+INSERT\r\n"
            "$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n"
            "*2\r\n$5\r\nindex\r\n:1\r\n"
            "$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
            "*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n"
            "*0\r\n");
}

TEST(RespCommandsTest, CommandInfoEntries) {
  for (int protocol : {2, 3}) {
    Reply all = reply_of(query_of({"COMMAND"}), protocol);
    ASSERT_EQ(all.type, Reply::Type::kArray);
    ASSERT_EQ(all.elements.size(), command_table().size());
    for (const Reply& entry : all.elements) {
      ASSERT_EQ(entry.elements.size(), 10u);
      const CommandSpec* spec = find_command(entry.elements[0].text);
      ASSERT_NE(spec, nullptr) << entry.elements[0].text;
      EXPECT_EQ(entry.elements[1].integer, spec->arity);
      EXPECT_EQ(entry.elements[3].integer, spec->first_key);
      EXPECT_EQ(entry.elements[4].integer, spec->last_key);
      EXPECT_EQ(entry.elements[9].elements.size(), spec->subcommands.size());
    }
    Reply some = reply_of(query_of({"COMMAND", "INFO", "del", "get", "client|setname"}), protocol);
    ASSERT_EQ(some.elements.size(), 3u);
    EXPECT_EQ(some.elements[0].elements[0].text, "del");
    EXPECT_EQ(some.elements[0].elements[4].integer, -1);
    EXPECT_EQ(some.elements[1].type, Reply::Type::kNull);
    EXPECT_EQ(some.elements[2].elements[0].text, "client|setname");
    EXPECT_EQ(some.elements[2].elements[1].integer, 3);
  }
}

TEST(RespCommandsTest, CommandDocsIsWhatRedisCliReads) {
  for (int protocol : {2, 3}) {
    Reply docs = reply_of(query_of({"COMMAND", "DOCS"}), protocol);
    EXPECT_EQ(docs.type, protocol == 3 ? Reply::Type::kMap : Reply::Type::kArray);
    ASSERT_EQ(docs.elements.size(), 2 * command_table().size());
    for (size_t i = 0; i < docs.elements.size(); i += 2) {
      ASSERT_EQ(docs.elements[i].type, Reply::Type::kBulk);
      const Reply& fields = docs.elements[i + 1];
      std::set<std::string> keys;
      for (size_t j = 0; j < fields.elements.size(); j += 2) {
        ASSERT_EQ(fields.elements[j].type, Reply::Type::kBulk);
        keys.insert(fields.elements[j].text);
      }
      EXPECT_TRUE(keys.count("summary") && keys.count("since") && keys.count("group"))
          << docs.elements[i].text;
    }
    Reply one = reply_of(query_of({"COMMAND", "DOCS", "sscan", "nope"}), protocol);
    ASSERT_EQ(one.elements.size(), 2u);
    EXPECT_EQ(one.elements[0].text, "sscan");
    // arguments: key, cursor, [MATCH pattern], [COUNT count]; every argument
    // has a name and a type (redis-cli dereferences both).
    const Reply& fields = one.elements[1];
    const Reply* arguments = nullptr;
    for (size_t j = 0; j < fields.elements.size(); j += 2) {
      if (fields.elements[j].text == "arguments") arguments = &fields.elements[j + 1];
    }
    ASSERT_NE(arguments, nullptr);
    ASSERT_EQ(arguments->elements.size(), 4u);
    const Reply& match = arguments->elements[2];
    ASSERT_GE(match.elements.size(), 6u);
    EXPECT_EQ(match.elements[0].text, "name");
    EXPECT_EQ(match.elements[1].text, "pattern");
    EXPECT_EQ(match.elements[2].text, "type");
    EXPECT_EQ(match.elements[3].text, "pattern");
    EXPECT_EQ(match.elements[4].text, "token");
    EXPECT_EQ(match.elements[5].text, "MATCH");
  }
}

TEST(RespCommandsTest, CommandList) {
  std::vector<std::string> names;
  for (const Reply& r : reply_of(query_of({"COMMAND", "LIST"}), 2).elements) {
    names.push_back(r.text);
  }
  EXPECT_THAT(names, ::testing::Contains("sadd"));
  EXPECT_THAT(names, ::testing::Contains("client|setname"));
  EXPECT_THAT(names, ::testing::Contains("cset.node|add"));
  std::vector<std::string> set_names;
  for (const Reply& r :
       reply_of(query_of({"COMMAND", "LIST", "FILTERBY", "ACLCAT", "set"}), 2).elements) {
    set_names.push_back(r.text);
  }
  EXPECT_THAT(set_names, ElementsAre("sadd", "srem", "sismember", "smismember", "smembers", "scard",
                                     "sscan", "cset.add", "cset.rem"));
  std::vector<std::string> pattern_names;
  for (const Reply& r :
       reply_of(query_of({"COMMAND", "LIST", "FILTERBY", "PATTERN", "cset.node*"}), 2).elements) {
    pattern_names.push_back(r.text);
  }
  EXPECT_THAT(pattern_names,
              ElementsAre("cset.nodes", "cset.node", "cset.node|add", "cset.node|promote",
                          "cset.node|remove", "cset.node|help"));
  EXPECT_TRUE(
      reply_of(query_of({"COMMAND", "LIST", "FILTERBY", "MODULE", "x"}), 2).elements.empty());
}

TEST(RespCommandsTest, CommandGetkeys) {
  auto keys = [](const Args& args) {
    std::vector<std::string> out;
    Reply r = reply_of(query_of(args), 2);
    if (r.type == Reply::Type::kError) return std::vector<std::string>{"-" + r.text};
    for (const Reply& e : r.elements) out.push_back(e.text);
    return out;
  };
  EXPECT_THAT(keys({"COMMAND", "GETKEYS", "DEL", "a", "b", "c"}), ElementsAre("a", "b", "c"));
  EXPECT_THAT(keys({"COMMAND", "GETKEYS", "SADD", "k", "m1", "m2"}), ElementsAre("k"));
  EXPECT_THAT(keys({"COMMAND", "GETKEYS", "PING"}),
              ElementsAre("-ERR The command has no key arguments"));
  EXPECT_THAT(keys({"COMMAND", "GETKEYS", "GET", "k"}),
              ElementsAre("-ERR Invalid command specified"));
  EXPECT_THAT(keys({"COMMAND", "GETKEYS", "SADD", "k"}),
              ElementsAre("-ERR Invalid number of arguments specified for command"));
}

TEST(RespCommandsTest, HelpLines) {
  for (const char* container : {"CLIENT", "COMMAND", "CONFIG", "CSET.NODE", "CSET.LEADER"}) {
    Help help = parsed_as<Help>({container, "help"});
    std::string out;
    ReplyWriter writer(&out, 2);
    write_help(help, writer);
    ReadResult r = read_reply(out);
    ASSERT_EQ(r.status, ReadStatus::kOk);
    ASSERT_GE(r.reply.elements.size(), 5u);
    EXPECT_EQ(r.reply.elements[0].text,
              std::string(container) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    EXPECT_EQ(r.reply.elements.back().text, "    Print this help.");
    for (const Reply& line : r.reply.elements) EXPECT_EQ(line.type, Reply::Type::kSimple);
  }
  Help help = parsed_as<Help>({"CSET.NODE", "HELP"});
  std::string out;
  ReplyWriter writer(&out, 2);
  write_help(help, writer);
  EXPECT_NE(out.find("+ADD <id> <address> [LEARNER|VOTER]\r\n"), std::string::npos) << out;
}

TEST(RespCommandsTest, AddressAndNameValidation) {
  EXPECT_TRUE(valid_address("127.0.0.1:6381"));
  EXPECT_TRUE(valid_address("node-1.example:1"));
  EXPECT_TRUE(valid_address("[::1]:65535"));
  EXPECT_FALSE(valid_address("[]:1"));
  EXPECT_FALSE(valid_address("[::1:1"));
  EXPECT_TRUE(valid_client_name(""));
  EXPECT_TRUE(valid_client_name("a-b_c.d~!"));
  EXPECT_FALSE(valid_client_name("a b"));
  EXPECT_FALSE(valid_client_name("caf\xc3\xa9"));
}

}  // namespace
}  // namespace cset::resp
