// cset-client-driver: runs cset::Client calls (include/cset/client.h) named on
// its command line, in order, on ONE client, and prints one JSON object per
// call on stdout. tests/integration/test_client_library.py drives it against a
// real csetd cluster; it judges nothing itself.
//
//   cset-client-driver [--endpoints E] [--timeout MS] [--no-sessions]
//                      [--session-timeout MS] [--password P] -- CALL [; CALL]...
//   CALL: add K M | sadd K M... | rem K M | contains K M | members K | size K
//       | session | write CMD ARGS... (plain: kNotIdempotent)
//       | read CMD ARGS... (kIdempotent)
//       | pipeline CMD ARGS... [/ CMD ARGS...]... (kNotIdempotent)
//       | sleep MS (no output)
//   Output: {"call":"add","ok":true,"value":...,"endpoint":"H:P","session":N}
//       or  {"call":"add","ok":false,"word":"TIMEOUT","message":"...",
//            "unknown":true,"server":false,"endpoint":"H:P","session":N}
//   A reply of write/read/pipeline is rendered as a string: "+OK", ":1",
//   "$text", "-ERR ...", "*[a b]", "_" (nil).
// Exit: 0 when the calls ran (whatever they answered), 2 on a usage error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "cset/client.h"

namespace {

using cset::client::Command;
using cset::client::Expected;
using cset::client::Idempotence;
using cset::client::Reply;

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
      out += buffer;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string render(const Reply& reply) {
  switch (reply.type) {
    case Reply::Type::kString:
      return "$" + reply.text;
    case Reply::Type::kStatus:
      return "+" + reply.text;
    case Reply::Type::kError:
      return "-" + reply.text;
    case Reply::Type::kInteger:
      return ":" + std::to_string(reply.integer);
    case Reply::Type::kArray:
      return "*[" + reply.as_text() + "]";
    default:
      return "_";
  }
}

std::string json_value(bool v) { return v ? "true" : "false"; }
std::string json_value(uint64_t v) { return std::to_string(v); }
std::string json_value(cset::client::AddResult v) {
  return v == cset::client::AddResult::kAdded ? "\"added\"" : "\"already_present\"";
}
std::string json_value(const Reply& v) { return json_string(render(v)); }
template <typename T>
std::string json_value(const std::vector<T>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_same_v<T, std::string>) {
      out += (i ? "," : "") + json_string(v[i]);
    } else {
      out += (i ? "," : "") + json_value(v[i]);
    }
  }
  return out + "]";
}

template <typename T>
void print(const std::string& call, const Expected<T>& result, const cset::Client& client) {
  std::string line = "{\"call\":" + json_string(call);
  if (result) {
    line += ",\"ok\":true,\"value\":" + json_value(*result);
  } else {
    const cset::client::Error& e = result.error();
    line += ",\"ok\":false,\"word\":" + json_string(e.word()) +
            ",\"message\":" + json_string(e.message()) +
            ",\"unknown\":" + json_value(e.outcome_unknown()) +
            ",\"server\":" + json_value(e.from_server());
  }
  line += ",\"endpoint\":" + json_string(client.endpoint().to_string()) +
          ",\"session\":" + std::to_string(client.session_id()) + "}";
  std::cout << line << std::endl;
}

int usage(const std::string& why) {
  std::cerr << "cset-client-driver: " << why << "\n";
  return 2;
}

int run_call(cset::Client& client, const std::vector<std::string>& call) {
  const std::string& name = call[0];
  auto need = [&](size_t n) { return call.size() == n; };
  if (name == "add" && need(3)) {
    print(name, client.add(call[1], call[2]), client);
  } else if (name == "sadd" && call.size() >= 3) {
    print(name, client.sadd(call[1], {call.begin() + 2, call.end()}), client);
  } else if (name == "rem" && need(3)) {
    print(name, client.rem(call[1], call[2]), client);
  } else if (name == "contains" && need(3)) {
    print(name, client.contains(call[1], call[2]), client);
  } else if (name == "members" && need(2)) {
    print(name, client.members(call[1]), client);
  } else if (name == "size" && need(2)) {
    print(name, client.size(call[1]), client);
  } else if (name == "sleep" && need(2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoll(call[1])));
  } else if (name == "session" && need(1)) {
    print(name, client.open_session(), client);
  } else if ((name == "write" || name == "read") && call.size() >= 2) {
    Command command(call.begin() + 1, call.end());
    print(name,
          client.command(command,
                         name == "read" ? Idempotence::kIdempotent : Idempotence::kNotIdempotent),
          client);
  } else if (name == "pipeline" && call.size() >= 2) {
    std::vector<Command> commands(1);
    for (size_t i = 1; i < call.size(); ++i) {
      if (call[i] == "/") {
        commands.emplace_back();
      } else {
        commands.back().push_back(call[i]);
      }
    }
    print(name, client.pipeline(commands, Idempotence::kNotIdempotent), client);
  } else {
    return usage("bad call '" + name + "' (or its arguments)");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cset::client::Options options;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--no-sessions") {
      options.sessions = false;
      continue;
    }
    if (i + 1 >= argc) return usage(arg + " needs a value");
    std::string value = argv[++i];
    if (arg == "--endpoints") {
      options.endpoints = value;
    } else if (arg == "--timeout") {
      options.timeout_ms = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--session-timeout") {
      options.session_timeout_ms = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--password") {
      options.password = value;
    } else {
      return usage("unknown option " + arg);
    }
  }
  auto client = cset::Client::create(options);
  if (!client) return usage(client.status().to_string());
  std::vector<std::vector<std::string>> calls(1);
  for (; i < argc; ++i) {
    if (std::string_view(argv[i]) == ";") {
      calls.emplace_back();
    } else {
      calls.back().push_back(argv[i]);
    }
  }
  for (const auto& call : calls) {
    if (call.empty()) return usage("empty call");
    if (int failed = run_call(*client, call); failed != 0) return failed;
  }
  return 0;
}
