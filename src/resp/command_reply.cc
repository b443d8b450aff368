// Replies answered from the command table alone: COMMAND and its
// subcommands (Redis 7's formats, server/commands.c addReplyCommandInfo,
// addReplyCommandDocs) and the containers' HELP.
#include <array>
#include <utility>

#include "resp/commands.h"
#include "resp/glob.h"
#include "resp/text.h"
#include "resp/writer.h"

namespace cset::resp {

namespace {

constexpr std::array<std::pair<uint32_t, std::string_view>, 11> kFlagNames = {{
    {kFlagWrite, "write"},
    {kFlagReadonly, "readonly"},
    {kFlagDenyOom, "denyoom"},
    {kFlagAdmin, "admin"},
    {kFlagNoScript, "noscript"},
    {kFlagLoading, "loading"},
    {kFlagStale, "stale"},
    {kFlagSkipSlowlog, "skip_slowlog"},
    {kFlagFast, "fast"},
    {kFlagNoAuth, "no_auth"},
    {kFlagAllowBusy, "allow_busy"},
}};

constexpr std::array<std::pair<uint32_t, std::string_view>, 9> kCategoryNames = {{
    {kCatKeyspace, "keyspace"},
    {kCatRead, "read"},
    {kCatWrite, "write"},
    {kCatSet, "set"},
    {kCatAdmin, "admin"},
    {kCatFast, "fast"},
    {kCatSlow, "slow"},
    {kCatDangerous, "dangerous"},
    {kCatConnection, "connection"},
}};

constexpr std::array<std::pair<uint32_t, std::string_view>, 6> kKeyFlagNames = {{
    {kKeyRo, "RO"},
    {kKeyRw, "RW"},
    {kKeyRm, "RM"},
    {kKeyAccess, "ACCESS"},
    {kKeyInsert, "INSERT"},
    {kKeyDelete, "DELETE"},
}};

template <size_t N>
void write_bit_names(ReplyWriter& w, uint32_t bits,
                     const std::array<std::pair<uint32_t, std::string_view>, N>& names,
                     std::string_view prefix = "") {
  size_t count = 0;
  for (const auto& [bit, name] : names) count += (bits & bit) ? 1 : 0;
  w.set_header(count);
  for (const auto& [bit, name] : names) {
    if (bits & bit) w.simple_string(std::string(prefix) + std::string(name));
  }
}

void write_key_specs(ReplyWriter& w, const CommandSpec& spec) {
  if (spec.first_key == 0) {
    w.array_header(0);
    return;
  }
  w.array_header(1);
  w.map_header(3);
  w.bulk_string("flags");
  write_bit_names(w, spec.key_flags, kKeyFlagNames);
  w.bulk_string("begin_search");
  w.map_header(2);
  w.bulk_string("type");
  w.bulk_string("index");
  w.bulk_string("spec");
  w.map_header(1);
  w.bulk_string("index");
  w.integer(spec.first_key);
  w.bulk_string("find_keys");
  w.map_header(2);
  w.bulk_string("type");
  w.bulk_string("range");
  w.bulk_string("spec");
  w.map_header(3);
  w.bulk_string("lastkey");
  w.integer(spec.last_key < 0 ? spec.last_key : spec.last_key - spec.first_key);
  w.bulk_string("keystep");
  w.integer(spec.key_step);
  w.bulk_string("limit");
  w.integer(0);
}

// One COMMAND INFO entry (10 elements, Redis 7).
void write_command_info(ReplyWriter& w, const CommandSpec& spec) {
  w.array_header(10);
  w.bulk_string(spec.full_name);
  w.integer(spec.arity);
  write_bit_names(w, spec.flags, kFlagNames);
  w.integer(spec.first_key);
  w.integer(spec.last_key);
  w.integer(spec.key_step);
  write_bit_names(w, spec.categories, kCategoryNames, "@");
  w.set_header(0);  // tips
  write_key_specs(w, spec);
  w.array_header(spec.subcommands.size());
  for (const CommandSpec& sub : spec.subcommands) write_command_info(w, sub);
}

std::string_view arg_type_name(ArgType type) {
  switch (type) {
    case ArgType::kKey:
      return "key";
    case ArgType::kString:
      return "string";
    case ArgType::kInteger:
      return "integer";
    case ArgType::kPattern:
      return "pattern";
    case ArgType::kPureToken:
      return "pure-token";
    case ArgType::kOneOf:
      return "oneof";
    case ArgType::kBlock:
      return "block";
  }
  return "string";
}

void write_arg_docs(ReplyWriter& w, std::span<const ArgSpec> args) {
  w.array_header(args.size());
  for (const ArgSpec& arg : args) {
    const bool nested = arg.type == ArgType::kOneOf || arg.type == ArgType::kBlock;
    w.map_header(2 + (arg.token.empty() ? 0 : 1) + (arg.flags ? 1 : 0) + (nested ? 1 : 0));
    w.bulk_string("name");
    w.bulk_string(arg.name);
    w.bulk_string("type");
    w.bulk_string(arg_type_name(arg.type));
    if (!arg.token.empty()) {
      w.bulk_string("token");
      w.bulk_string(arg.token);
    }
    if (arg.flags) {
      w.bulk_string("flags");
      const bool optional = arg.flags & kArgOptional;
      const bool multiple = arg.flags & kArgMultiple;
      w.set_header((optional ? 1 : 0) + (multiple ? 1 : 0));
      if (optional) w.simple_string("optional");
      if (multiple) w.simple_string("multiple");
    }
    if (nested) {
      w.bulk_string("arguments");
      write_arg_docs(w, arg.args);
    }
  }
}

// One COMMAND DOCS value (a map; Redis 7's addReplyCommandDocs).
void write_command_docs(ReplyWriter& w, const CommandSpec& spec) {
  const bool has_args = !spec.args.empty();
  const bool has_subs = !spec.subcommands.empty();
  w.map_header(4 + (has_args ? 1 : 0) + (has_subs ? 1 : 0));
  w.bulk_string("summary");
  w.bulk_string(spec.summary);
  w.bulk_string("since");
  w.bulk_string(spec.since);
  w.bulk_string("group");
  w.bulk_string(spec.group);
  w.bulk_string("complexity");
  w.bulk_string(spec.complexity);
  if (has_args) {
    w.bulk_string("arguments");
    write_arg_docs(w, spec.args);
  }
  if (has_subs) {
    w.bulk_string("subcommands");
    w.map_header(spec.subcommands.size());
    for (const CommandSpec& sub : spec.subcommands) {
      w.bulk_string(sub.full_name);
      write_command_docs(w, sub);
    }
  }
}

bool list_filter_matches(const CommandQuery& query, const CommandSpec& spec) {
  switch (query.filter) {
    case CommandQuery::Filter::kNone:
      return true;
    case CommandQuery::Filter::kModule:
      return false;  // no modules here
    case CommandQuery::Filter::kPattern:
      return glob_match(query.filter_value, spec.full_name, /*nocase=*/true);
    case CommandQuery::Filter::kAclCat:
      for (const auto& [bit, name] : kCategoryNames) {
        if (iequals(name, query.filter_value)) return (spec.categories & bit) != 0;
      }
      return false;
  }
  return false;
}

void collect_names(const CommandQuery& query, std::span<const CommandSpec> specs,
                   std::vector<std::string_view>& out) {
  for (const CommandSpec& spec : specs) {
    if (list_filter_matches(query, spec)) out.push_back(spec.full_name);
    collect_names(query, spec.subcommands, out);
  }
}

// COMMAND GETKEYS (Redis's getKeysSubcommandImpl) from the key positions.
void write_getkeys(const CommandQuery& query, ReplyWriter& w) {
  const std::vector<std::string>& argv = query.args;
  if (argv.empty()) return w.error("ERR Invalid command specified");
  const CommandSpec* spec = find_command(argv[0]);
  if (spec != nullptr && !spec->subcommands.empty() && argv.size() >= 2) {
    spec = find_subcommand(*spec, argv[1]);
  }
  if (spec == nullptr) return w.error("ERR Invalid command specified");
  if (spec->first_key == 0) return w.error("ERR The command has no key arguments");
  const size_t argc = argv.size();
  if ((spec->arity > 0 && argc != static_cast<size_t>(spec->arity)) ||
      (spec->arity < 0 && argc < static_cast<size_t>(-spec->arity))) {
    return w.error("ERR Invalid number of arguments specified for command");
  }
  const size_t first = static_cast<size_t>(spec->first_key);
  const size_t last =
      spec->last_key < 0 ? argc + spec->last_key : static_cast<size_t>(spec->last_key);
  std::vector<std::string_view> keys;
  for (size_t i = first; i <= last && i < argc; i += spec->key_step) keys.push_back(argv[i]);
  w.bulk_array(keys);
}

}  // namespace

void write_command_reply(const CommandQuery& query, ReplyWriter& w) {
  const std::span<const CommandSpec> table = command_table();
  switch (query.sub) {
    case CommandQuery::Sub::kAll:
      w.array_header(table.size());
      for (const CommandSpec& spec : table) write_command_info(w, spec);
      return;
    case CommandQuery::Sub::kCount:
      w.integer(static_cast<int64_t>(table.size()));
      return;
    case CommandQuery::Sub::kInfo:
      if (query.args.empty()) {
        w.array_header(table.size());
        for (const CommandSpec& spec : table) write_command_info(w, spec);
        return;
      }
      w.array_header(query.args.size());
      for (const std::string& name : query.args) {
        const CommandSpec* spec = find_command(name);
        if (spec == nullptr) {
          w.null();
        } else {
          write_command_info(w, *spec);
        }
      }
      return;
    case CommandQuery::Sub::kDocs: {
      std::vector<const CommandSpec*> found;
      if (query.args.empty()) {
        for (const CommandSpec& spec : table) found.push_back(&spec);
      } else {
        for (const std::string& name : query.args) {
          if (const CommandSpec* spec = find_command(name)) found.push_back(spec);
        }
      }
      w.map_header(found.size());
      for (const CommandSpec* spec : found) {
        w.bulk_string(spec->full_name);
        write_command_docs(w, *spec);
      }
      return;
    }
    case CommandQuery::Sub::kList: {
      std::vector<std::string_view> names;
      collect_names(query, table, names);
      w.bulk_array(names);
      return;
    }
    case CommandQuery::Sub::kGetKeys:
      write_getkeys(query, w);
      return;
  }
}

void write_help(const Help& help, ReplyWriter& w) {
  const CommandSpec& container = *help.container;
  std::vector<std::string> lines;
  lines.push_back(to_upper(container.name) +
                  " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (const CommandSpec& sub : container.subcommands) {
    if (sub.name == "help") continue;
    std::string usage = to_upper(sub.name);
    for (const ArgSpec& arg : sub.args) {
      usage += ' ';
      const bool optional = arg.flags & kArgOptional;
      if (optional) usage += '[';
      if (!arg.token.empty()) usage += std::string(arg.token) + " ";
      if (arg.type == ArgType::kOneOf) {
        for (size_t i = 0; i < arg.args.size(); ++i) {
          if (i > 0) usage += '|';
          usage +=
              arg.args[i].type == ArgType::kPureToken
                  ? std::string(arg.args[i].token)
                  : std::string(arg.args[i].token) + " <" + std::string(arg.args[i].name) + ">";
        }
      } else {
        usage += "<" + std::string(arg.name) + ">";
      }
      if (arg.flags & kArgMultiple) usage += " [...]";
      if (optional) usage += ']';
    }
    lines.push_back(std::move(usage));
    std::string summary = "    " + std::string(sub.summary);
    if (summary.back() != '.') summary += '.';
    lines.push_back(std::move(summary));
  }
  lines.push_back("HELP");
  lines.push_back("    Print this help.");
  w.array_header(lines.size());
  for (const std::string& line : lines) w.simple_string(line);
}

}  // namespace cset::resp
