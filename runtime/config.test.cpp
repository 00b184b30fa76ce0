#include "runtime/config.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using troupe::agent_cli_outcome;
using troupe::agent_config;
using troupe::driver_kind;
using troupe::node_role;
using troupe::parse_agent_command_line;

namespace {

namespace fs = std::filesystem;

/// A fresh directory for config files, removed with everything in it.
class temp_dir {
public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "troupe-config-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const { return path_; }

  /// Writes text to a file in the directory and returns its path as a string.
  std::string write(const std::string& name, const std::string& text) const {
    fs::path file = path_ / name;
    std::ofstream out{file, std::ios::binary};
    out << text;
    REQUIRE(out.good());
    return file.string();
  }

private:
  fs::path path_;
};

using args = std::vector<std::string>;
using strings = std::vector<std::string>;

/// The three required flags, then extra.
args with_required(std::initializer_list<std::string> extra = {}) {
  args all{"--name", "n1", "--data-dir", "/var/lib/troupe", "--bind", "127.0.0.1"};
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

agent_config accepted(const args& command_line) {
  agent_cli_outcome outcome = parse_agent_command_line(command_line);
  REQUIRE_MESSAGE(outcome.config.has_value(), outcome.message);
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.message.empty());
  return *outcome.config;
}

std::string rejected(const args& command_line) {
  agent_cli_outcome outcome = parse_agent_command_line(command_line);
  std::string shown;
  for (const auto& arg : command_line) shown += " '" + arg + "'";
  REQUIRE_MESSAGE(!outcome.config.has_value(), "accepted:", shown);
  CHECK(outcome.exit_code == 2);
  CHECK(!outcome.message.empty());
  return outcome.message;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

// Asserts that a message contains a piece, showing the whole message if not.
#define CHECK_MENTIONS(message, part) CHECK_MESSAGE(contains((message), (part)), "message was: ", (message))

TEST_SUITE("config") {

// ---- What is accepted ------------------------------------------------------

TEST_CASE("an agent given only the required flags gets the documented defaults") {
  agent_config c = accepted(with_required());
  CHECK(c.name == "n1");
  CHECK(c.data_dir == "/var/lib/troupe");
  CHECK(c.bind == "127.0.0.1");
  CHECK(c.gossip_port == 7946);
  CHECK(c.rpc_port == 7947);
  CHECK(c.http_port == 7070);
  CHECK(c.seeds.empty());
  CHECK(c.role == node_role::server);
  CHECK(c.driver == driver_kind::auto_detect);
  CHECK(c.labels.empty());
  CHECK(c.encrypt_key.empty());
  CHECK(c.log_level == "info");
  CHECK(c.config_file.empty());
  CHECK(c.supervisor.max_restarts == 10);
  CHECK(c.supervisor.restart_window == 30s);
  CHECK(c.supervisor.backoff_base == 10ms);
  CHECK(c.supervisor.backoff_max == 5s);
}

TEST_CASE("every flag is parsed into its field") {
  agent_config c = accepted({"--name", "web-1.eu_2", "--data-dir", "/srv/t", "--bind", "::1",
                             "--gossip-port", "8000", "--rpc-port=8001", "--http-port", "8002",
                             "--seed", "10.0.0.1:7946", "--client", "--driver", "process",
                             "--label", "zone=a", "--encrypt", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                             "--log-level", "debug", "--max-restarts", "3", "--restart-window", "1m",
                             "--backoff-base", "50ms", "--backoff-max", "1.5s"});
  CHECK(c.name == "web-1.eu_2");
  CHECK(c.data_dir == "/srv/t");
  CHECK(c.bind == "::1");
  CHECK(c.gossip_port == 8000);
  CHECK(c.rpc_port == 8001);
  CHECK(c.http_port == 8002);
  CHECK(c.seeds == std::vector<std::string>{"10.0.0.1:7946"});
  CHECK(c.role == node_role::client);
  CHECK(c.driver == driver_kind::process);
  CHECK(c.labels == std::map<std::string, std::string>{{"zone", "a"}});
  REQUIRE(c.encrypt_key.size() == 32);
  for (std::size_t i = 0; i < 32; ++i) CHECK(c.encrypt_key[i] == static_cast<char>(i));
  CHECK(c.log_level == "debug");
  CHECK(c.supervisor.max_restarts == 3);
  CHECK(c.supervisor.restart_window == 1min);
  CHECK(c.supervisor.backoff_base == 50ms);
  CHECK(c.supervisor.backoff_max == 1500ms);
}

TEST_CASE("--seed and --label can be repeated") {
  agent_config c = accepted(with_required({"--seed", "10.0.0.1:7946", "--label", "zone=a", "--seed",
                                           "[fe80::1]:7946", "--label", "rack=r1=b", "--label", "empty="}));
  CHECK(c.seeds == std::vector<std::string>{"10.0.0.1:7946", "[fe80::1]:7946"});
  CHECK(c.labels == std::map<std::string, std::string>{{"zone", "a"}, {"rack", "r1=b"}, {"empty", ""}});
}

TEST_CASE("image settings: default registry, registries file, cache budget") {
  agent_config d = accepted(with_required());
  CHECK(d.default_registry.empty());
  CHECK(d.registries_file.empty());
  CHECK(d.image_cache_bytes == (std::uint64_t{20} << 30));
  agent_config c = accepted(with_required({"--default-registry", "127.0.0.1:5000", "--registries", "/etc/r.yaml",
                                           "--image-cache", "512MiB"}));
  CHECK(c.default_registry == "127.0.0.1:5000");
  CHECK(c.registries_file == "/etc/r.yaml");
  CHECK(c.image_cache_bytes == 512ull << 20);
  CHECK(accepted(with_required({"--image-cache", "10GB"})).image_cache_bytes == 10'000'000'000ull);
  CHECK(accepted(with_required({"--image-cache", "4096"})).image_cache_bytes == 4096);
  CHECK(accepted(with_required({"--default-registry", "registry.example.com"})).default_registry ==
        "registry.example.com");
  CHECK(accepted(with_required({"--default-registry", "[::1]:5000"})).default_registry == "[::1]:5000");
  CHECK_MENTIONS(rejected(with_required({"--image-cache", "10 pints"})), "--image-cache");
  CHECK_MENTIONS(rejected(with_required({"--image-cache", "1.5GiB"})), "unknown unit '.5GiB'");
  CHECK_MENTIONS(rejected(with_required({"--image-cache", "GiB"})), "is not a size");
  CHECK_MENTIONS(rejected(with_required({"--image-cache", "3XB"})), "unknown unit");
  CHECK_MENTIONS(rejected(with_required({"--default-registry", "http://r:5000"})), "is not a registry host");
  CHECK_MENTIONS(rejected(with_required({"--default-registry", "r:99999"})), "port");
  CHECK_MENTIONS(rejected(with_required({"--default-registry", "-bad.example"})), "--default-registry");
}

TEST_CASE("--server and --client pick the role and runc the driver") {
  CHECK(accepted(with_required({"--server"})).role == node_role::server);
  CHECK(accepted(with_required({"--client"})).role == node_role::client);
  CHECK(accepted(with_required({"--driver", "runc"})).driver == driver_kind::runc);
  CHECK(accepted(with_required({"--driver", "auto"})).driver == driver_kind::auto_detect);
}

TEST_CASE("the edges of every range are accepted") {
  agent_config low = accepted(with_required({"--gossip-port", "1", "--rpc-port", "2", "--http-port", "65535",
                                             "--max-restarts", "1", "--restart-window", "1s",
                                             "--backoff-base", "1ms", "--backoff-max", "1ms"}));
  CHECK(low.gossip_port == 1);
  CHECK(low.http_port == 65535);
  agent_config high = accepted(with_required({"--max-restarts", "10000", "--restart-window", "1h",
                                              "--backoff-base", "10s", "--backoff-max", "5m"}));
  CHECK(high.supervisor.max_restarts == 10000);
  CHECK(high.supervisor.backoff_max == 5min);
}

TEST_CASE("--help exits 0 with text that describes the flags and an example") {
  for (const std::string& help : strings{"--help", "-h"}) {
    agent_cli_outcome outcome = parse_agent_command_line({help});
    CHECK(!outcome.config);
    CHECK(outcome.exit_code == 0);
    CHECK_MENTIONS(outcome.message, "--data-dir");
    CHECK_MENTIONS(outcome.message, "--max-restarts");
    CHECK_MENTIONS(outcome.message, "--seed");
    CHECK_MENTIONS(outcome.message, "troupe agent --name");
  }
  CHECK(parse_agent_command_line({"--name", "bad name", "--help"}).exit_code == 0);
}

TEST_CASE("a config file alone can configure the agent") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", R"(# a whole agent
name: n2
data-dir: /srv/troupe
bind: 10.0.0.2
gossip-port: 8946
rpc-port: "8947"
http-port: 8070
seed: [10.0.0.1:7946, "[::1]:7946"]
client: true
driver: runc
label: {zone: b, tier: 1}
encrypt: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
log-level: warn
max-restarts: 20
restart-window: 2m
backoff-base: 0.1s
backoff-max: 10s
)");
  agent_config c = accepted({"--config", file});
  CHECK(c.name == "n2");
  CHECK(c.data_dir == "/srv/troupe");
  CHECK(c.bind == "10.0.0.2");
  CHECK(c.gossip_port == 8946);
  CHECK(c.rpc_port == 8947);
  CHECK(c.http_port == 8070);
  CHECK(c.seeds == std::vector<std::string>{"10.0.0.1:7946", "[::1]:7946"});
  CHECK(c.role == node_role::client);
  CHECK(c.driver == driver_kind::runc);
  CHECK(c.labels == std::map<std::string, std::string>{{"zone", "b"}, {"tier", "1"}});
  CHECK(c.encrypt_key.size() == 32);
  CHECK(c.log_level == "warn");
  CHECK(c.config_file == file);
  CHECK(c.supervisor.max_restarts == 20);
  CHECK(c.supervisor.restart_window == 2min);
  CHECK(c.supervisor.backoff_base == 100ms);
  CHECK(c.supervisor.backoff_max == 10s);
}

TEST_CASE("flags override the config file, lists and maps replaced whole") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "name: from-file\ndata-dir: /file\nbind: 10.0.0.2\n"
                                             "http-port: 8070\nseed: 10.0.0.1:7946\nlabel: {zone: a, rack: r1}\n"
                                             "role: client\nbackoff-max: 1s\n");
  agent_config c = accepted({"--config", file, "--name", "from-flag", "--http-port", "9070", "--seed",
                             "10.0.0.9:7946", "--label", "zone=b", "--server", "--backoff-max", "2s"});
  CHECK(c.name == "from-flag");
  CHECK(c.data_dir == "/file");
  CHECK(c.bind == "10.0.0.2");
  CHECK(c.http_port == 9070);
  CHECK(c.seeds == std::vector<std::string>{"10.0.0.9:7946"});
  CHECK(c.labels == std::map<std::string, std::string>{{"zone", "b"}});
  CHECK(c.role == node_role::server);
  CHECK(c.supervisor.backoff_max == 2s);
}

TEST_CASE("a flag that fixes a bad file value makes the config valid") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "name: n1\ndata-dir: /d\nbind: nowhere\nhttp-port: 99999\n");
  agent_config c = accepted({"--config", file, "--bind", "10.0.0.3", "--http-port", "8080"});
  CHECK(c.bind == "10.0.0.3");
  CHECK(c.http_port == 8080);
}

TEST_CASE("a config file sets the role with role, server or client") {
  temp_dir dir;
  auto role_in = [&](const std::string& line) {
    return accepted({"--config", dir.write("r.yaml", "name: n1\ndata-dir: /d\nbind: ::1\n" + line + "\n")}).role;
  };
  CHECK(role_in("role: client") == node_role::client);
  CHECK(role_in("role: server") == node_role::server);
  CHECK(role_in("server: true") == node_role::server);
  CHECK(role_in("server: false") == node_role::client);
  CHECK(role_in("client: yes") == node_role::client);
  CHECK(role_in("client: false") == node_role::server);
}

TEST_CASE("an empty config file sets nothing") {
  temp_dir dir;
  for (const std::string& text : strings{"", "# only a comment\n", "---\n", "{}\n"}) {
    CAPTURE(text);
    agent_config c = accepted(with_required({"--config", dir.write("empty.yaml", text)}));
    CHECK(c.http_port == 7070);
  }
}

// ---- What is rejected: flags ------------------------------------------------

TEST_CASE("each missing required flag is named") {
  std::string message = rejected({});
  CHECK_MENTIONS(message, "--name is required");
  CHECK_MENTIONS(message, "--data-dir is required");
  CHECK_MENTIONS(message, "--bind is required");
  CHECK_MENTIONS(rejected({"--name", "", "--data-dir", "/d", "--bind", "::1"}), "--name is required");
  CHECK_MENTIONS(rejected({"--name", "n1", "--bind", "::1"}), "--data-dir is required");
}

TEST_CASE("a node name that breaks the naming rule is rejected naming --name and the rule") {
  for (const std::string& name : strings{"Web", "-web", ".web", "web 1", "web/1", "wéb", std::string(64, 'a')}) {
    CAPTURE(name);
    std::string message = rejected({"--name", name, "--data-dir", "/d", "--bind", "::1"});
    CHECK_MENTIONS(message, "--name:");
    CHECK_MENTIONS(message, "not a valid node name");
  }
  CHECK(accepted({"--name", std::string(63, 'a'), "--data-dir", "/d", "--bind", "::1"}).name.size() == 63);
}

TEST_CASE("ports outside 1..65535 or not numbers are rejected naming the flag and the range") {
  for (const std::string& flag : strings{"--gossip-port", "--rpc-port", "--http-port"}) {
    for (const std::string& value :
         strings{"0", "65536", "70000", "-1", "abc", "7070x", " 7070", "1e3", "", "99999999999999999999999"}) {
      CAPTURE(flag);
      CAPTURE(value);
      std::string message = rejected(with_required({flag, value}));
      CHECK_MENTIONS(message, flag + ":");
      CHECK_MENTIONS(message, "1..65535");
    }
  }
  CHECK_MENTIONS(rejected(with_required({"--http-port", "70000"})), "--http-port: 70000 is outside 1..65535");
}

TEST_CASE("two ports with the same number are rejected naming both flags") {
  CHECK_MENTIONS(rejected(with_required({"--gossip-port", "7070"})),
                 "--gossip-port and --http-port are both 7070: each port must differ");
  CHECK_MENTIONS(rejected(with_required({"--rpc-port", "7946"})), "--gossip-port and --rpc-port are both 7946");
  CHECK_MENTIONS(rejected(with_required({"--rpc-port", "9000", "--http-port", "9000"})),
                 "--rpc-port and --http-port are both 9000");
}

TEST_CASE("a bind that is not a reachable IP literal is rejected naming --bind") {
  for (const std::string& bind : strings{"abc", "localhost", "1.2.3", "256.1.1.1", "1.2.3.4 ", "[::1]", "::1%lo",
                           "1.2.3.4:7946", "0.0.0.0", "::"}) {
    CAPTURE(bind);
    CHECK_MENTIONS(rejected({"--name", "n1", "--data-dir", "/d", "--bind", bind}), "--bind:");
  }
  CHECK_MENTIONS(rejected({"--name", "n1", "--data-dir", "/d", "--bind", "abc"}), "--bind: 'abc' is not an IP address");
  CHECK(accepted({"--name", "n1", "--data-dir", "/d", "--bind", "fe80::1"}).bind == "fe80::1");
}

TEST_CASE("a seed that is not IP:PORT or [IPv6]:PORT is rejected naming --seed") {
  for (const std::string& seed : strings{"1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:abc",
                                         "host:7946", "::1:7946", "[::1]", "[::1]7946", "[1.2.3.4]:7946", ":7946",
                                         "", "[]:7946", "1.2.3.4:7946:1"}) {
    CAPTURE(seed);
    std::string message = rejected(with_required({"--seed", "10.0.0.1:7946", "--seed", seed}));
    CHECK_MENTIONS(message, "--seed '" + seed + "'");
  }
  CHECK_MENTIONS(rejected(with_required({"--seed", "1.2.3.4"})), "--seed '1.2.3.4': expected IP:PORT");
  CHECK_MENTIONS(rejected(with_required({"--seed", "::1:7946"})), "[IPv6]:PORT");
}

TEST_CASE("--server and --client together are rejected as mutually exclusive") {
  CHECK_MENTIONS(rejected(with_required({"--server", "--client"})), "--server and --client are mutually exclusive");
  CHECK_MENTIONS(rejected(with_required({"--client=false"})), "client");
}

TEST_CASE("an unknown driver is rejected naming --driver and the choices") {
  for (const std::string& driver : strings{"docker", "RUNC", "", "runc "}) {
    CAPTURE(driver);
    std::string message = rejected(with_required({"--driver", driver}));
    CHECK_MENTIONS(message, "--driver:");
    CHECK_MENTIONS(message, "runc or process");
  }
}

TEST_CASE("malformed labels are rejected naming --label") {
  for (const std::string& label : strings{"zone", "=a", "bad key=a", "k!=v", "ключ=v", std::string(64, 'k') + "=v",
                            "k=" + std::string(256, 'v'), "k=tab\there", "k=caf\xc3\xa9"}) {
    CAPTURE(label);
    CHECK_MENTIONS(rejected(with_required({"--label", label})), "--label '");
  }
  CHECK_MENTIONS(rejected(with_required({"--label", "zone"})), "--label 'zone': expected key=value");
  CHECK(accepted(with_required({"--label", std::string(63, 'k') + "=" + std::string(255, 'v')})).labels.size() == 1);
  CHECK(accepted(with_required({"--label", "example.com/Zone_1-a=x y"})).labels.count("example.com/Zone_1-a") == 1);
}

TEST_CASE("a label key given twice is rejected naming --label") {
  std::string message = rejected(with_required({"--label", "zone=a", "--label", "zone=b"}));
  CHECK_MENTIONS(message, "--label 'zone=b'");
  CHECK_MENTIONS(message, "given twice");
}

TEST_CASE("an encryption key that is not 32 bytes of strict base64 is rejected without echoing it") {
  const std::string good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  for (const std::string& key : strings{"not-base64!", "AAECAwQFBgcICQoLDA0ODw==",  // 16 bytes
                                        good.substr(0, 43),                          // padding missing
                                        good + "=",                                  // padding extra
                                        good.substr(0, 42) + "9=",                   // unused bits set
                                        good.substr(0, 20) + " " + good.substr(21),  // a space inside
                                        good + "\n", good.substr(0, 40) + "====", "====", "",
                                        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ=="}) {  // 34 bytes
    CAPTURE(key);
    std::string message = rejected(with_required({"--encrypt", key}));
    CHECK_MENTIONS(message, "--encrypt:");
    CHECK_MENTIONS(message, "32 bytes, base64");
    if (key.size() > 4) CHECK_MESSAGE(!contains(message, key), "the key was echoed: ", message);
  }
  CHECK_MENTIONS(rejected(with_required({"--encrypt", "AAECAwQFBgcICQoLDA0ODw=="})), "decodes to 16 bytes");
}

TEST_CASE("an unknown log level is rejected naming --log-level") {
  for (const std::string& level : strings{"verbose", "INFO", "warning", ""}) {
    CAPTURE(level);
    std::string message = rejected(with_required({"--log-level", level}));
    CHECK_MENTIONS(message, "--log-level:");
    CHECK_MENTIONS(message, "trace, debug, info, warn, error, critical or off");
  }
}

TEST_CASE("durations that do not parse are rejected naming the flag and the accepted form") {
  for (const std::string& flag : strings{"--restart-window", "--backoff-base", "--backoff-max"}) {
    for (const std::string& value : strings{"abc", "10", "-1s", "1.5", "", "5 s", "0.5ms"}) {
      CAPTURE(flag);
      CAPTURE(value);
      std::string message = rejected(with_required({flag, value}));
      CHECK_MENTIONS(message, flag + ":");
      CHECK_MENTIONS(message, "like 250ms, 1.5s, 2m or 1h");
    }
  }
}

TEST_CASE("durations outside their ranges are rejected naming the flag and the range") {
  CHECK_MENTIONS(rejected(with_required({"--restart-window", "999ms"})), "--restart-window: 999ms is outside 1s..1h");
  CHECK_MENTIONS(rejected(with_required({"--restart-window", "61m"})), "--restart-window: 61m is outside 1s..1h");
  CHECK_MENTIONS(rejected(with_required({"--backoff-base", "0"})), "--backoff-base: 0s is outside 1ms..10s");
  CHECK_MENTIONS(rejected(with_required({"--backoff-base", "10.001s", "--backoff-max", "1m"})),
                 "--backoff-base: 10.001s is outside 1ms..10s");
  CHECK_MENTIONS(rejected(with_required({"--backoff-max", "6m"})), "--backoff-max: 6m is outside 1ms..5m");
}

TEST_CASE("a backoff-max below backoff-base is rejected naming both") {
  std::string message = rejected(with_required({"--backoff-base", "1s", "--backoff-max", "500ms"}));
  CHECK_MENTIONS(message, "--backoff-max and --backoff-base are 500ms and 1s");
  CHECK_MENTIONS(rejected(with_required({"--backoff-base", "6s"})), "--backoff-max and --backoff-base");
}

TEST_CASE("max-restarts outside 1..10000 is rejected naming --max-restarts") {
  for (const std::string& value : strings{"0", "10001", "-5", "ten", "2.5", "99999999999999999999"}) {
    CAPTURE(value);
    std::string message = rejected(with_required({"--max-restarts", value}));
    CHECK_MENTIONS(message, "--max-restarts:");
    CHECK_MENTIONS(message, "1..10000");
  }
  CHECK_MENTIONS(rejected(with_required({"--max-restarts", "0"})), "--max-restarts: 0 is outside 1..10000");
}

TEST_CASE("an unknown flag or stray argument is rejected naming it") {
  CHECK_MENTIONS(rejected(with_required({"--gossip", "7946"})), "--gossip");
  CHECK_MENTIONS(rejected(with_required({"--no-such-flag"})), "--no-such-flag");
  CHECK_MENTIONS(rejected(with_required({"stray"})), "stray");
  CHECK_MENTIONS(rejected(with_required({"--seed", "10.0.0.1:7946", "10.0.0.2:7946"})), "10.0.0.2:7946");
}

TEST_CASE("a flag without its value or given twice is rejected naming it") {
  CHECK_MENTIONS(rejected(with_required({"--http-port"})), "--http-port");
  CHECK_MENTIONS(rejected(with_required({"--name", "n2"})), "--name");
  CHECK_MENTIONS(rejected(with_required({"--config"})), "--config");
}

TEST_CASE("every bad value is reported at once, one per line, with a pointer to --help") {
  std::string message = rejected({"--name", "N", "--data-dir", "/d", "--bind", "x", "--http-port", "0",
                                  "--backoff-base", "nope", "--log-level", "loud"});
  CHECK_MENTIONS(message, "--name:");
  CHECK_MENTIONS(message, "--bind:");
  CHECK_MENTIONS(message, "--http-port:");
  CHECK_MENTIONS(message, "--backoff-base:");
  CHECK_MENTIONS(message, "--log-level:");
  CHECK_MENTIONS(message, "troupe agent --help");
  CHECK(std::count(message.begin(), message.end(), '\n') == 5);
}

TEST_CASE("a value that fails to convert is not also reported by the checks that use it") {
  // The unreadable backoff-base leaves its default, which must not be compared with backoff-max.
  std::string message = rejected(with_required({"--backoff-base", "x", "--backoff-max", "5ms"}));
  CHECK(!contains(message, "--backoff-max and --backoff-base"));
  std::string ports = rejected(with_required({"--gossip-port", "x", "--http-port", "7946"}));
  CHECK(!contains(ports, "are both"));
}

TEST_CASE("unprintable bytes in a flag are escaped in the message") {
  std::string message = rejected({"--name", "\x1b[31mred", "--data-dir", "/d", "--bind", "::1"});
  CHECK_MENTIONS(message, "\\x1b[31mred");
  CHECK(!contains(message, "\x1b"));
}

// ---- What is rejected: the config file --------------------------------------

TEST_CASE("an unknown key in the config file is named with the file, line and column") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "name: n1\n  # indented comment\nhttp-prot: 7070\n");
  std::string message = rejected(with_required({"--config", file}));
  CHECK_MENTIONS(message, "config " + file + ":3:1: unknown key 'http-prot'");
  CHECK_MENTIONS(message, "http-port");  // the list of keys it could have been
  CHECK_MENTIONS(rejected(with_required({"--config", dir.write("c.yaml", "config: other.yaml\n")})), "'config'");
}

TEST_CASE("a value of the wrong type in the config file is named with its place and what was expected") {
  temp_dir dir;
  struct wrong {
    std::string yaml, mentions;
  };
  for (const wrong& w : {wrong{"http-port: [1, 2]", ":1:12: http-port: expected a port number 1..65535, got a list"},
                         wrong{"name:", ": name: expected a node name, got nothing"},
                         wrong{"bind: {a: b}", ":1:7: bind: expected an IP address, got a map"},
                         wrong{"seed: {a: b}", "seed: expected IP:PORT or a list of them, got a map"},
                         wrong{"seed: [[1.2.3.4:1]]", ":1:8: seed: expected IP:PORT, got a list"},
                         wrong{"label: [zone=a]", "label: expected a map of key: value, got a list"},
                         wrong{"label: {zone: [a]}", "label 'zone': expected a string value, got a list"},
                         wrong{"label: {zone: }", "label 'zone': expected a string value, got nothing"},
                         wrong{"server: maybe", ":1:9: server: expected true or false, got 'maybe'"},
                         wrong{"client: [true]", "client: expected true or false, got a list"},
                         wrong{"role: leader", "role: expected server or client, got 'leader'"},
                         wrong{"max-restarts: {}", "max-restarts: expected an integer 1..10000, got a map"},
                         wrong{"restart-window: [30s]", "restart-window: expected a duration like 30s"},
                         wrong{"encrypt: [x]", "encrypt: expected a base64 key, got a list"},
                         wrong{"[a, b]: c", ":1:1: expected a setting name as the key, got a list"}}) {
    CAPTURE(w.yaml);
    std::string file = dir.write("wrong.yaml", w.yaml + "\n");
    std::string message = rejected(with_required({"--config", file}));
    CHECK_MENTIONS(message, "config " + file);
    CHECK_MENTIONS(message, w.mentions);
  }
}

TEST_CASE("a file value that fails validation is named by file, line, column and key") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "name: n1\ndata-dir: /d\nbind: abc\nhttp-port: 70000\n"
                                             "seed:\n  - 10.0.0.1:7946\n  - 1.2.3.4\nencrypt: c2hvcnQ=\n"
                                             "restart-window: 2h\nlabel: {\"bad key\": v}\nlog-level: loud\n"
                                             "driver: docker\nmax-restarts: 0\n");
  std::string message = rejected({"--config", file});
  std::string at = "config " + file + ":";
  CHECK_MENTIONS(message, at + "3:7: bind: 'abc' is not an IP address");
  CHECK_MENTIONS(message, at + "4:12: http-port: 70000 is outside 1..65535");
  CHECK_MENTIONS(message, at + "7:5: seed '1.2.3.4': expected IP:PORT");
  CHECK_MENTIONS(message, at + "8:10: encrypt: decodes to 5 bytes; the key must be 32 bytes, base64");
  CHECK_MENTIONS(message, at + "9:17: restart-window: 2h is outside 1s..1h");
  CHECK_MENTIONS(message, at + "10:9: label 'bad key': a key is");
  CHECK_MENTIONS(message, at + "11:12: log-level: 'loud' is not a log level");
  CHECK_MENTIONS(message, at + "12:9: driver: 'docker' is not a driver");
  CHECK_MENTIONS(message, at + "13:15: max-restarts: 0 is outside 1..10000");
  CHECK(!contains(message, "c2hvcnQ="));
}

TEST_CASE("a cross-field error names a file value by key and place and a flag by its flag") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "gossip-port: 7070\nbackoff-base: 2s\n");
  std::string message = rejected(with_required({"--config", file, "--backoff-max", "1s"}));
  CHECK_MENTIONS(message, "gossip-port (config " + file + ":1:14) and --http-port are both 7070");
  CHECK_MENTIONS(message, "--backoff-max and backoff-base (config " + file + ":2:15) are 1s and 2s");
}

TEST_CASE("a missing required value says it may come from the file too") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "name: n1\ndata-dir: \"\"\n");
  std::string message = rejected({"--config", file});
  CHECK_MENTIONS(message, "--bind is required (give it as a flag or in config " + file + ")");
  CHECK_MENTIONS(message, "config " + file + ":2:11: data-dir: must not be empty");
}

TEST_CASE("a YAML syntax error names the file, line and column") {
  temp_dir dir;
  for (const std::string& text : strings{"name: [n1\n", "{name: n1\n", "name: n1\n  bind: x\n", "name: n1\n- x\n",
                                 "a: b: c\n", "\t- x\n", "key: *undefined_alias\n"}) {
    CAPTURE(text);
    std::string file = dir.write("bad.yaml", text);
    std::string message = rejected(with_required({"--config", file}));
    CHECK_MENTIONS(message, "config " + file + ":");
    CHECK_MENTIONS(message, "not valid YAML");
  }
}

TEST_CASE("binary junk as the config file is rejected naming the file, without echoing raw bytes") {
  temp_dir dir;
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk += static_cast<char>((i * 7919) % 256);
  std::string file = dir.write("junk.yaml", junk);
  std::string message = rejected(with_required({"--config", file}));
  CHECK_MENTIONS(message, "config " + file);
  bool printable =
    std::all_of(message.begin(), message.end(), [](char c) { return c == '\n' || (c >= 0x20 && c < 0x7f); });
  CHECK_MESSAGE(printable, "raw input bytes in: ", message);
}

TEST_CASE("a config file that is missing, a directory, empty-named or huge is rejected naming --config") {
  temp_dir dir;
  std::string missing = (dir.path() / "nope.yaml").string();
  std::string message = rejected(with_required({"--config", missing}));
  CHECK_MENTIONS(message, "--config " + missing + ": cannot open it");
  CHECK_MENTIONS(message, "No such file or directory");
  CHECK_MENTIONS(rejected(with_required({"--config", dir.path().string()})), "is a directory");
  CHECK_MENTIONS(rejected(with_required({"--config", ""})), "--config");
  std::string huge = dir.write("huge.yaml", "# " + std::string(2 << 20, 'x') + "\n");
  CHECK_MENTIONS(rejected(with_required({"--config", huge})), "larger than 1 MiB");
}

TEST_CASE("a config file that is not a single map of settings is rejected") {
  temp_dir dir;
  std::string list = dir.write("list.yaml", "- name\n- n1\n");
  CHECK_MENTIONS(rejected(with_required({"--config", list})), "config " + list + ":1:1: expected a map of settings");
  std::string scalar = dir.write("scalar.yaml", "just words\n");
  CHECK_MENTIONS(rejected(with_required({"--config", scalar})),
                 "expected a map of settings (key: value), got 'just words'");
  std::string two = dir.write("two.yaml", "name: a\n---\nname: b\n");
  CHECK_MENTIONS(rejected(with_required({"--config", two})), "config " + two + ":2:1: a second YAML document; expected one");
  // yaml-cpp's LoadAll never returns on this one: it must be an error, at once.
  std::string stray = dir.write("stray.yaml", "{name: a},\n");
  CHECK_MENTIONS(rejected(with_required({"--config", stray})), "not valid YAML: a stray ','");
}

TEST_CASE("a key or label given twice in the config file is rejected at its second place") {
  temp_dir dir;
  std::string keys = dir.write("keys.yaml", "name: a\nname: b\n");
  CHECK_MENTIONS(rejected(with_required({"--config", keys})), "config " + keys + ":2:1: name: given twice");
  std::string labels = dir.write("labels.yaml", "label:\n  zone: a\n  zone: b\n");
  CHECK_MENTIONS(rejected(with_required({"--config", labels})), "config " + labels + ":3:3: label 'zone': given twice");
}

TEST_CASE("role, server and client in one config file are mutually exclusive") {
  temp_dir dir;
  std::string file = dir.write("agent.yaml", "server: true\nclient: false\n");
  CHECK_MENTIONS(rejected(with_required({"--config", file})),
                 "config " + file + ":2:9: server and client are mutually exclusive");
  std::string file2 = dir.write("agent2.yaml", "role: client\nserver: true\n");
  CHECK_MENTIONS(rejected(with_required({"--config", file2})), "role and server are mutually exclusive");
}

// ---- validate() on a config built in code -----------------------------------

TEST_CASE("validate names every bad field of a config built in code by its flag") {
  agent_config c;
  std::string empty = troupe::validate(c).error().message();
  CHECK_MENTIONS(empty, "--name is required");
  CHECK_MENTIONS(empty, "--data-dir is required");
  CHECK_MENTIONS(empty, "--bind is required");

  c.name = "n1";
  c.data_dir = "/d";
  c.bind = "10.0.0.1";
  CHECK(troupe::validate(c).ok());

  c.gossip_port = 0;
  c.seeds = {"10.0.0.1"};
  c.labels = {{"", "v"}, {"ok", std::string(1, '\0')}};
  c.encrypt_key = "short";
  c.log_level = "loud";
  c.supervisor.max_restarts = 0;
  c.supervisor.restart_window = -1s;
  c.supervisor.backoff_base = 0ms;
  c.supervisor.backoff_max = 1h;
  std::string message = troupe::validate(c).error().message();
  CHECK_MENTIONS(message, "--gossip-port: 0 is outside 1..65535");
  CHECK_MENTIONS(message, "--seed '10.0.0.1': expected IP:PORT");
  CHECK_MENTIONS(message, "--label '': a key is");
  CHECK_MENTIONS(message, "--label 'ok': the value has characters that are not printable");
  CHECK_MENTIONS(message, "--encrypt: the key is 5 bytes; it must be 32 bytes, base64");
  CHECK_MENTIONS(message, "--log-level:");
  CHECK_MENTIONS(message, "--max-restarts: 0 is outside 1..10000");
  CHECK_MENTIONS(message, "--restart-window: -1s is outside 1s..1h");
  CHECK_MENTIONS(message, "--backoff-base: 0s is outside 1ms..10s");
  CHECK_MENTIONS(message, "--backoff-max: 1h is outside 1ms..5m");
}

TEST_CASE("roles and drivers have names") {
  CHECK(troupe::to_string(node_role::server) == "server");
  CHECK(troupe::to_string(node_role::client) == "client");
  CHECK(troupe::to_string(driver_kind::runc) == "runc");
  CHECK(troupe::to_string(driver_kind::process) == "process");
  CHECK(troupe::to_string(driver_kind::auto_detect) == "auto");
}

} // TEST_SUITE
