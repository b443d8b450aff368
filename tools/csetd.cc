// csetd: one consistent-set node (SPEC.md "csetd"). Flags, TOML config,
// logging and exit codes; the node itself is server/.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "server/server.h"

namespace {

constexpr int kExitFlags = 2;
constexpr int kExitDataDir = 3;

bool parse_initial_cluster(const std::string& text,
                           std::vector<std::pair<uint64_t, std::string>>* out, std::string* err) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      *err = "--initial-cluster: '" + item + "' is not ID=HOST:PORT";
      return false;
    }
    uint64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoull(item.substr(0, eq), &used);
      if (used != eq) throw std::invalid_argument("id");
    } catch (...) {
      *err = "--initial-cluster: bad id in '" + item + "'";
      return false;
    }
    if (id == 0 || id > (uint64_t{1} << 63) - 1) {
      *err = "--initial-cluster: id out of range in '" + item + "'";
      return false;
    }
    for (const auto& [seen_id, seen_addr] : *out) {
      if (seen_id == id) {
        *err = "--initial-cluster: id " + std::to_string(id) + " is listed twice";
        return false;
      }
      if (seen_addr == item.substr(eq + 1)) {
        *err = "--initial-cluster: address " + seen_addr + " is listed twice";
        return false;
      }
    }
    out->emplace_back(id, item.substr(eq + 1));
    pos = comma + 1;
  }
  return !out->empty();
}

// A numeric flag's accepted range. CLI11 converts "-5" to a huge unsigned
// value and clamps overflow, so the text is checked first: decimal digits only,
// then the value against [min, max].
struct NumericFlag {
  const char* name;  // without "--"
  uint64_t* value;
  uint64_t min;
  uint64_t max;
  const char* unit;
};

// The accepted text of a numeric flag: decimal digits that fit in 64 bits.
CLI::Validator decimal_digits() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
          return "'" + text + "' is not a non-negative whole number";
        }
        if (text.size() > 19) return "'" + text + "' is too large";
        return {};
      },
      "");
}

// Returns "" when every value is within its range, else the first complaint.
std::string check_ranges(const std::vector<NumericFlag>& flags) {
  for (const auto& f : flags) {
    if (*f.value < f.min || *f.value > f.max) {
      return "--" + std::string(f.name) + " " + std::to_string(*f.value) + " is out of range [" +
             std::to_string(f.min) + ", " + std::to_string(f.max) + "] " + f.unit;
    }
  }
  return {};
}

// --log-format json: the message as the inside of a JSON string. Messages
// may quote peer replies, file names and RocksDB's own text.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static const char kHex[] = "0123456789abcdef";
    const std::string_view text(msg.payload.data(), msg.payload.size());
    for (size_t i = 0; i < text.size();) {
      const auto u = static_cast<unsigned char>(text[i]);
      if (u == '"' || u == '\\') {
        dest.push_back('\\');
        dest.push_back(text[i++]);
      } else if (u < 0x20) {
        const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
        dest.append(esc, esc + sizeof(esc));
        ++i;
      } else if (u < 0x80) {
        dest.push_back(text[i++]);
      } else if (size_t n = utf8_sequence_length(text.substr(i)); n > 0) {
        dest.append(text.data() + i, text.data() + i + n);
        i += n;
      } else {
        // Not UTF-8 (a path's bytes): JSON text must be, so U+FFFD.
        static const char kReplacement[] = "\\ufffd";
        dest.append(kReplacement, kReplacement + 6);
        ++i;
      }
    }
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }

 private:
  // The length of the well-formed UTF-8 sequence at the start of `s`
  // (REQUIRES: s[0] >= 0x80), or 0 when there is none.
  static size_t utf8_sequence_length(std::string_view s) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (b(0) >= 0xc2 && b(0) <= 0xdf) {
      n = 2;
    } else if (b(0) >= 0xe0 && b(0) <= 0xef) {
      n = 3;
      if (b(0) == 0xe0) lo = 0xa0;
      if (b(0) == 0xed) hi = 0x9f;  // no surrogates
    } else if (b(0) >= 0xf0 && b(0) <= 0xf4) {
      n = 4;
      if (b(0) == 0xf0) lo = 0x90;
      if (b(0) == 0xf4) hi = 0x8f;
    } else {
      return 0;
    }
    if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
    for (size_t k = 2; k < n; ++k) {
      if (b(k) < 0x80 || b(k) > 0xbf) return 0;
    }
    return n;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"csetd: a consistent-set node"};
  cset::server::ServerOptions o;
  std::string initial_cluster, quorum = "tiebreak", config_file, log_level = "info",
                               log_format = "text";
  app.add_option("--id", o.id, "node id, 1..2^63-1")
      ->check(decimal_digits())
      ->check(CLI::Range(uint64_t{1}, (uint64_t{1} << 63) - 1));
  app.add_option("--data-dir", o.data_dir, "data directory");
  app.add_option("--peer-listen", o.peer_listen, "HOST:PORT for peers");
  app.add_option("--client-listen", o.client_listen, "HOST:PORT for clients (RESP)");
  app.add_option("--initial-cluster", initial_cluster, "ID=HOST:PORT,... voters of a new cluster");
  app.add_flag("--join", o.join, "start empty and wait to be added (CSET.NODE ADD)");
  app.add_option("--advertise-peer", o.advertise_peer, "peer address others use");
  app.add_option("--advertise-client", o.advertise_client, "client address others show");
  app.add_option("--cluster-token", o.cluster_token,
                 "shared token; peers with another are refused");
  app.add_option("--quorum", quorum, "tiebreak|majority (new clusters only)")
      ->check(CLI::IsMember({"tiebreak", "majority"}));
  // Ranges: a request must fit in one peer frame (64 MiB) with room to spare.
  const std::vector<NumericFlag> numeric = {
      {"write-timeout", &o.write_timeout_ms, 1, 600'000, "ms"},
      {"election-timeout-ms", &o.election_timeout_ms, 2, 600'000, "ms"},
      {"heartbeat-ms", &o.heartbeat_ms, 1, 300'000, "ms"},
      {"snapshot-entries", &o.snapshot_entries, 1, 1'000'000'000, "entries"},
      {"block-cache-mb", &o.block_cache_mb, 1, 1 << 20, "MiB"},
      {"write-buffer-mb", &o.write_buffer_mb, 1, 1024, "MiB"},
      {"max-key-bytes", &o.max_key_bytes, 1, 16 << 20, "bytes"},
      {"max-member-bytes", &o.max_member_bytes, 1, 16 << 20, "bytes"},
      {"max-request-bytes", &o.max_request_bytes, 64, 32 << 20, "bytes"},
      {"max-reply-members", &o.max_reply_members, 1, 1'000'000'000, "members"},
  };
  const std::vector<std::pair<const char*, const char*>> numeric_help = {
      {"write-timeout", "ms a request may wait for a quorum"},
      {"election-timeout-ms", "ms; randomized in [E, 2E)"},
      {"heartbeat-ms", "ms between heartbeats"},
      {"snapshot-entries", "applied entries between snapshots"},
      {"block-cache-mb", "RocksDB block cache, MiB"},
      {"write-buffer-mb", "RocksDB memtable of the log and the sets, MiB (WAL preallocation 1.1x)"},
      {"max-key-bytes", "largest key, bytes"},
      {"max-member-bytes", "largest member, bytes"},
      {"max-request-bytes", "largest request, bytes"},
      {"max-reply-members", "largest SMEMBERS reply, members"},
  };
  for (size_t i = 0; i < numeric.size(); ++i) {
    const auto& f = numeric[i];
    app.add_option(std::string("--") + f.name, *f.value, numeric_help[i].second)
        ->check(decimal_digits())
        ->capture_default_str();
  }
  app.add_option("--requirepass", o.requirepass, "password clients must AUTH with");
  app.add_option("--admin-listen", o.admin_listen, "HOST:PORT for /health /metrics /status");
  app.add_flag("--force-new-cluster", o.force_new_cluster,
               "rewrite the configuration to this node alone (may lose writes)");
#ifdef CSET_TEST_HOOKS
  app.add_flag("--unsafe-local-reads", o.unsafe_local_reads,
               "TEST BUILDS ONLY: reads skip ReadIndex (stale reads; for the chaos checker)");
  app.add_option("--test-snapshot-chunk-delay-ms", o.test_snapshot_chunk_delay_ms,
                 "TEST BUILDS ONLY: as leader, wait this many ms between snapshot chunks")
      ->check(decimal_digits())
      ->check(CLI::Range(uint64_t{0}, uint64_t{60'000}));
  app.add_option("--test-abort-on-stall-ms", o.test_abort_on_stall_ms,
                 "TEST BUILDS ONLY: abort (core file) when a stall the watchdog reports "
                 "(at least max(5000, 3 x election, 2 x write timeout) ms) reaches this many "
                 "ms; 0: never")
      ->check(decimal_digits())
      ->check(CLI::Range(uint64_t{0}, uint64_t{3'600'000}));
#endif
  app.add_option("--config", config_file, "TOML file with the same keys (flags override)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", log_format, "text|json")->check(CLI::IsMember({"text", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitFlags;
  }

  if (!config_file.empty()) {
    // Keys as the flags without "--" (e.g. data-dir = "..."); a flag given
    // on the command line wins.
    try {
      std::error_code dir_ec;
      if (std::filesystem::is_directory(config_file, dir_ec)) {
        throw std::runtime_error("is a directory");
      }
      toml::table t = toml::parse_file(config_file);
      // A key csetd does not read (a typo) or a value of the wrong type is
      // an error, as an unknown or malformed flag is.
      std::set<std::string> known;
      auto wrong_type = [](const char* key, const char* want) {
        return std::runtime_error(std::string(key) + " must be " + want);
      };
      auto str = [&](const char* key, std::string* v) {
        known.insert(key);
        if (!t.contains(key)) return;
        auto x = t[key].value<std::string>();
        if (!t[key].is_string() || !x) throw wrong_type(key, "a string");
        if (app.count(std::string("--") + key) == 0) *v = *x;
      };
      auto num = [&](const char* key, uint64_t* v) {
        known.insert(key);
        if (!t.contains(key)) return;
        if (!t[key].is_integer()) throw wrong_type(key, "an integer");
        if (app.count(std::string("--") + key) == 0) {
          int64_t x = *t[key].value<int64_t>();
          if (x < 0) throw std::runtime_error(std::string(key) + " must not be negative");
          *v = static_cast<uint64_t>(x);
        }
      };
      num("id", &o.id);
      if (t.contains("id") && app.count("--id") == 0 && o.id == 0) {
        throw std::runtime_error("id must be 1..2^63-1 (got 0)");  // as --id 0 is refused
      }
      str("data-dir", &o.data_dir);
      str("peer-listen", &o.peer_listen);
      str("client-listen", &o.client_listen);
      str("initial-cluster", &initial_cluster);
      str("advertise-peer", &o.advertise_peer);
      str("advertise-client", &o.advertise_client);
      str("cluster-token", &o.cluster_token);
      str("quorum", &quorum);
      for (const auto& f : numeric) num(f.name, f.value);
      str("requirepass", &o.requirepass);
      str("admin-listen", &o.admin_listen);
      str("log-level", &log_level);
      str("log-format", &log_format);
      known.insert("join");
      if (t.contains("join") && !t["join"].is_boolean()) throw wrong_type("join", "true or false");
      if (app.count("--join") == 0) o.join = t["join"].value_or(false);
      for (const char* key : {"log-level", "log-format"}) {
        // The flags' own checks (CLI11 IsMember) do not see file values.
        const std::string& v = std::string(key) == "log-level" ? log_level : log_format;
        const std::set<std::string> allowed =
            std::string(key) == "log-level"
                ? std::set<std::string>{"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"}
                : std::set<std::string>{"text", "json"};
        if (!allowed.count(v))
          throw std::runtime_error(std::string(key) + " '" + v + "' is not one of its values");
      }
      for (const auto& [key, value] : t) {
        if (!known.count(std::string(key.str()))) {
          throw std::runtime_error("unknown key '" + std::string(key.str()) +
                                   "' (keys are the flags without \"--\", e.g. data-dir)");
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "csetd: --config %s: %s\n", config_file.c_str(), e.what());
      return kExitFlags;
    }
  }
  auto usage = [](const std::string& msg) {
    std::fprintf(stderr, "csetd: %s\n", msg.c_str());
    return kExitFlags;
  };
  if (o.id == 0) return usage("--id is required");
  if (o.data_dir.empty()) return usage("--data-dir is required");
  if (o.peer_listen.empty()) return usage("--peer-listen is required");
  if (o.client_listen.empty()) return usage("--client-listen is required");
  if (initial_cluster.empty() == !o.join) {
    // Both or neither: a restart may omit both (the data directory knows).
    if (o.join) return usage("give either --initial-cluster or --join, not both");
  }
  if (!initial_cluster.empty()) {
    std::string err;
    if (!parse_initial_cluster(initial_cluster, &o.initial_cluster, &err)) return usage(err);
  }
  if (quorum != "tiebreak" && quorum != "majority")
    return usage("--quorum must be tiebreak or majority");
  o.quorum =
      quorum == "majority" ? cset::raft::QuorumMode::kMajority : cset::raft::QuorumMode::kTiebreak;
  o.quorum_given = app.count("--quorum") > 0;
  if (std::string bad = check_ranges(numeric); !bad.empty()) return usage(bad);
  if (o.heartbeat_ms == 0 || o.election_timeout_ms <= o.heartbeat_ms) {
    return usage("--election-timeout-ms must be larger than --heartbeat-ms > 0");
  }
  if (o.max_key_bytes > o.max_request_bytes || o.max_member_bytes > o.max_request_bytes) {
    return usage("--max-key-bytes and --max-member-bytes must not exceed --max-request-bytes");
  }
  if (o.force_new_cluster && o.join) {
    return usage(
        "--force-new-cluster works on a survivor's existing data directory, not with "
        "--join");
  }

  auto logger = spdlog::stderr_color_mt("csetd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (log_format == "json") {
    // %* is the message, escaped for a JSON string (JsonMessage above).
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessage>('*').set_pattern(
        "{\"time\":\"%Y-%m-%dT%H:%M:%S.%e%z\",\"level\":\"%l\",\"node\":" + std::to_string(o.id) +
        ",\"msg\":\"%*\"}");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] node " + std::to_string(o.id) + ": %v");
  }

  cset::server::StartError err;
  auto server = cset::server::Server::create(o, &err);
  if (!server) {
    spdlog::error("{}", err.message);
    // The log line says it already; in JSON mode stderr stays all JSON.
    if (log_format != "json") std::fprintf(stderr, "csetd: %s\n", err.message.c_str());
    return err.exit_code == 3 ? kExitDataDir : (err.exit_code == 2 ? kExitFlags : 1);
  }
  cset::Status s = server->run();
  if (!s) {
    spdlog::critical("stopped: {}", s.to_string());
    return 1;
  }
  return 0;
}
