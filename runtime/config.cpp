#include "runtime/yaml_documents.hpp"
#include "runtime/config.hpp"

#include "runtime/duration.hpp"
#include "runtime/text.hpp"
#include "runtime/values.hpp"

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <fstream>
#include <set>
#include <system_error>
#include <utility>

namespace troupe {

using namespace std::chrono_literals;

std::string_view to_string(node_role role) {
  return role == node_role::client ? "client" : "server";
}

std::string_view to_string(gossip_profile profile) {
  return profile == gossip_profile::local ? "local" : "lan";
}

std::string_view to_string(driver_kind driver) {
  switch (driver) {
  case driver_kind::runc: return "runc";
  case driver_kind::process: return "process";
  case driver_kind::auto_detect: break;
  }
  return "auto";
}

namespace {

// ---- Fields ---------------------------------------------------------------

/// A flag that takes one value, and the YAML key of the same name.
struct scalar_field {
  std::string_view key;
  std::string_view value_name;  // in --help
  std::string_view help;
  std::string_view shown_default;
  std::string_view expected;    // told to a YAML value of the wrong type
  std::string_view group;       // the --help section
};

constexpr std::array<scalar_field, 19> scalar_fields{{
  {"name", "NAME", "Node name, unique in the cluster (required)", "", "a node name", "Node"},
  {"data-dir", "DIR", "Directory for this node's state (required)", "", "a directory path", "Node"},
  {"bind", "IP", "Address to listen on and be reached at (required)", "", "an IP address", "Node"},
  {"gossip-port", "PORT", "UDP port for gossip", "7946", "a port number 1..65535", "Node"},
  {"rpc-port", "PORT", "TCP port for RPC between agents", "7947", "a port number 1..65535", "Node"},
  {"http-port", "PORT", "TCP port for the HTTP API and /metrics", "7070", "a port number 1..65535", "Node"},
  {"port-range", "MIN-MAX", "Host ports for tasks' dynamic ports (agents sharing a host need their own)",
   "20000-32000", "a port range like 20000-32000", "Node"},
  {"default-registry", "HOST[:PORT]", "Registry of image names that give none (busybox:1); none by default",
   "", "a registry host like registry.example.com:5000", "Images"},
  {"registries", "FILE", "YAML file of per-registry settings: plain-http, ca-file, username, password-file",
   "", "a file path", "Images"},
  {"image-cache", "SIZE", "Bytes of image blobs kept before unused images are removed (e.g. 20GiB)", "20GiB",
   "a size like 20GiB", "Images"},
  {"driver", "auto|runc|process", "How containers run (default auto: runc if usable)", "", "auto, runc or process", "Node"},
  {"encrypt", "KEY", "Gossip encryption key: 32 bytes, base64", "", "a base64 key", "Cluster"},
  {"management-token-file", "FILE",
   "Bootstrap only: the management token to create, read from FILE (default: a new random one)", "",
   "a file path", "Cluster"},
  {"gossip-profile", "lan|local", "Gossip timings: lan (default) or local (loopback and tests: faster)", "lan",
   "lan or local", "Cluster"},
  {"log-level", "LEVEL", "trace, debug, info, warn, error, critical or off", "info", "a log level", "Node"},
  {"max-restarts", "N", "Crash loop: more than N restarts within --restart-window (1..10000)", "10",
   "an integer 1..10000", "Supervisor"},
  {"restart-window", "DURATION", "Window for counting restarts (1s..1h)", "30s", "a duration like 30s",
   "Supervisor"},
  {"backoff-base", "DURATION", "First restart delay, doubled per recent restart (1ms..10s)", "10ms",
   "a duration like 10ms", "Supervisor"},
  {"backoff-max", "DURATION", "Longest restart delay (backoff-base..5m)", "5s", "a duration like 5s",
   "Supervisor"},
}};

const scalar_field* find_scalar_field(std::string_view key) {
  for (const auto& f : scalar_fields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

constexpr std::string_view known_file_keys =
  "name, data-dir, bind, gossip-port, rpc-port, http-port, port-range, seed, server, client, role, driver, "
  "default-registry, registries, image-cache, label, encrypt, management-token-file, gossip-profile, log-level, max-restarts, restart-window, backoff-base, backoff-max";

constexpr std::array<std::string_view, 7> log_levels{
  {"trace", "debug", "info", "warn", "error", "critical", "off"}};

constexpr std::string_view key_form = "32 bytes, base64-encoded (44 characters, e.g. from 'openssl rand -base64 32')";

// ---- Where values came from -----------------------------------------------

/// A place in the config file, 1-based; line 0 when yaml-cpp did not say.
struct origin {
  int line = 0;
  int column = 0;
};

/// Names each value the way the user wrote it: "--http-port" for the command
/// line and defaults, "config FILE:LINE:COL: http-port" for the file.
struct namer {
  std::string file;                         // the --config file, empty if none
  std::map<std::string, origin> from_file;  // by field, or "seed#1", "label#zone" for items
  std::set<std::string> unusable;           // fields whose text did not convert

  std::string place(origin o) const {
    std::string text = "config " + file;
    if (o.line > 0) text += ":" + std::to_string(o.line) + ":" + std::to_string(o.column);
    return text;
  }
  const origin* find(std::string_view field, std::string_view item) const {
    std::string key{field};
    if (!item.empty()) key += "#" + std::string{item};
    auto it = from_file.find(key);
    return it == from_file.end() ? nullptr : &it->second;
  }
  /// The subject of a message about one value: "--http-port", "config F:3:7: http-port".
  std::string at(std::string_view field, std::string_view item = {}) const {
    const origin* o = find(field, item);
    return o ? place(*o) + ": " + std::string{field} : "--" + std::string{field};
  }
  /// The same inside a sentence about several values: "http-port (config F:3:7)".
  std::string named(std::string_view field) const {
    const origin* o = find(field, {});
    return o ? std::string{field} + " (" + place(*o) + ")" : "--" + std::string{field};
  }
};

// ---- Validation -----------------------------------------------------------

class checker {
public:
  explicit checker(const namer& names) : names_(names) {}

  std::vector<std::string> errors;

  bool usable(std::string_view field) const { return names_.unusable.count(std::string{field}) == 0; }
  void fail(std::string_view field, const std::string& problem) {
    errors.push_back(names_.at(field) + ": " + problem);
  }
  void fail_item(std::string_view field, std::string_view item, std::string_view value, const std::string& problem) {
    errors.push_back(names_.at(field, item) + " " + quote(value) + ": " + problem);
  }
  void fail_pair(std::string_view a, std::string_view b, const std::string& problem) {
    errors.push_back(names_.named(a) + " and " + names_.named(b) + " " + problem);
  }
  /// Returns true when the value is there; otherwise says it is missing.
  bool require(std::string_view field, bool present) {
    if (present) return true;
    if (names_.find(field, {}) != nullptr) {
      fail(field, "must not be empty");
    } else {
      std::string also = names_.file.empty() ? "" : " (give it as a flag or in config " + names_.file + ")";
      errors.push_back("--" + std::string{field} + " is required" + also);
    }
    return false;
  }
  void in_range(std::string_view field, std::chrono::milliseconds value, std::chrono::milliseconds low,
                std::chrono::milliseconds high) {
    if (usable(field) && (value < low || value > high)) {
      fail(field, format_duration(value) + " is outside " + format_duration(low) + ".." + format_duration(high));
    }
  }

private:
  const namer& names_;
};

void check_node(const agent_config& c, checker& check) {
  if (check.require("name", !c.name.empty()) && !valid_node_name(c.name)) {
    check.fail("name", quote(c.name) + " is not a valid node name: expected 1 to 63 of a-z, 0-9, '.', '_' "
                                        "and '-', starting with a letter or digit");
  }
  std::string dir = c.data_dir.string();
  if (check.require("data-dir", !dir.empty()) && dir.find('\0') != std::string::npos) {
    check.fail("data-dir", quote(dir) + " contains a NUL character");
  }
  if (check.require("bind", !c.bind.empty())) {
    ip_literal ip = read_ip(c.bind);
    if (!ip.valid) {
      check.fail("bind", quote(c.bind) + " is not an IP address (an IPv4 or IPv6 literal, no brackets)");
    } else if (ip.unspecified) {
      check.fail("bind", quote(c.bind) + " listens everywhere but cannot be reached at; "
                                          "give the address other agents reach this one at");
    }
  }
  if (check.usable("log-level") && std::find(log_levels.begin(), log_levels.end(), c.log_level) == log_levels.end()) {
    check.fail("log-level", quote(c.log_level) + " is not a log level; expected trace, debug, info, warn, "
                                                  "error, critical or off");
  }
}

void check_ports(const agent_config& c, checker& check) {
  const std::array<std::pair<std::string_view, std::uint16_t>, 3> ports{
    {{"gossip-port", c.gossip_port}, {"rpc-port", c.rpc_port}, {"http-port", c.http_port}}};
  for (const auto& [field, port] : ports) {
    if (check.usable(field) && port == 0) check.fail(field, "0 is outside 1..65535");
  }
  for (std::size_t i = 0; i < ports.size(); ++i) {
    for (std::size_t j = i + 1; j < ports.size(); ++j) {
      const auto& [a, port_a] = ports[i];
      const auto& [b, port_b] = ports[j];
      if (check.usable(a) && check.usable(b) && port_a == port_b && port_a != 0) {
        check.fail_pair(a, b, "are both " + std::to_string(port_a) + ": each port must differ");
      }
    }
  }
}

void check_cluster(const agent_config& c, checker& check) {
  for (std::size_t i = 0; i < c.seeds.size(); ++i) {
    if (auto problem = seed_problem(c.seeds[i])) check.fail_item("seed", std::to_string(i), c.seeds[i], *problem);
  }
  for (const auto& [key, value] : c.labels) {
    if (!valid_label_key(key)) {
      check.fail_item("label", key, key, "a key is 1 to 63 of a-z, A-Z, 0-9, '.', '_', '/' and '-'");
    }
    if (value.size() > 255) check.fail_item("label", key, key, "the value is longer than 255 characters");
    if (!printable(value)) check.fail_item("label", key, key, "the value has characters that are not printable ASCII");
  }
  if (check.usable("encrypt") && !c.encrypt_key.empty() && c.encrypt_key.size() != 32) {
    check.fail("encrypt", "the key is " + std::to_string(c.encrypt_key.size()) + " bytes; it must be " +
                            std::string{key_form});
  }
}

void check_supervisor(const restart_policy& s, checker& check) {
  if (check.usable("max-restarts") && (s.max_restarts < 1 || s.max_restarts > 10000)) {
    check.fail("max-restarts", std::to_string(s.max_restarts) + " is outside 1..10000");
  }
  check.in_range("restart-window", s.restart_window, 1s, 1h);
  check.in_range("backoff-base", s.backoff_base, 1ms, 10s);
  check.in_range("backoff-max", s.backoff_max, 1ms, 5min);
  if (check.usable("backoff-base") && check.usable("backoff-max") && s.backoff_max < s.backoff_base) {
    check.fail_pair("backoff-max", "backoff-base",
                    "are " + format_duration(s.backoff_max) + " and " + format_duration(s.backoff_base) +
                      ": the longest restart delay must be at least the first");
  }
}

std::vector<std::string> check_all(const agent_config& config, const namer& names) {
  checker check{names};
  check_node(config, check);
  check_ports(config, check);
  check_cluster(config, check);
  check_supervisor(config.supervisor, check);
  return std::move(check.errors);
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += (text.empty() ? "" : "\n") + line;
  return text;
}

// ---- Raw settings: text from the file and the flags, before conversion -----

struct raw_value {
  std::string text;
  std::optional<origin> where;  // set when it came from the config file
};

struct raw_settings {
  std::map<std::string, raw_value> scalars;  // by field
  std::optional<std::vector<raw_value>> seeds;
  std::optional<std::vector<std::pair<std::string, raw_value>>> labels;  // unique keys; where = the key's
  std::optional<node_role> role;
};

origin origin_of(const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  return mark.is_null() ? origin{} : origin{mark.line + 1, mark.column + 1};
}


/// Reads the top-level map of a config file into raw settings; problems with
/// single keys go to errors so that all of them are reported at once.
class file_reader {
public:
  file_reader(const namer& names, raw_settings& out, std::vector<std::string>& errors)
    : names_(names), out_(out), errors_(errors) {}

  void read(const YAML::Node& root) {
    if (root.IsNull()) return;  // an empty file sets nothing
    if (!root.IsMap()) {
      fail(root, "expected a map of settings (key: value), got " + describe_yaml(root));
      return;
    }
    std::set<std::string> seen;
    for (const auto& entry : root) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        fail(key, "expected a setting name as the key, got " + describe_yaml(key));
      } else if (!seen.insert(key.Scalar()).second) {
        fail(key, key.Scalar() + ": given twice");
      } else {
        read_entry(key, entry.second);
      }
    }
  }

private:
  void fail(const YAML::Node& node, const std::string& problem) {
    errors_.push_back(names_.place(origin_of(node)) + ": " + problem);
  }
  void wrong_type(const YAML::Node& node, const std::string& key, std::string_view expected) {
    fail(node, key + ": expected " + std::string{expected} + ", got " + describe_yaml(node));
  }

  void read_entry(const YAML::Node& key_node, const YAML::Node& value) {
    const std::string& key = key_node.Scalar();
    if (const scalar_field* field = find_scalar_field(key)) {
      if (!value.IsScalar()) return wrong_type(value, key, field->expected);
      out_.scalars[key] = raw_value{value.Scalar(), origin_of(value)};
    } else if (key == "seed") {
      read_seeds(value);
    } else if (key == "label") {
      read_labels(value);
    } else if (key == "server" || key == "client" || key == "role") {
      read_role(key, value);
    } else {
      fail(key_node, "unknown key " + quote(key) + "; expected one of " + std::string{known_file_keys});
    }
  }

  void read_seeds(const YAML::Node& value) {
    std::vector<raw_value> seeds;
    if (value.IsScalar()) {
      seeds.push_back({value.Scalar(), origin_of(value)});
    } else if (value.IsSequence()) {
      for (const auto& item : value) {
        if (!item.IsScalar()) return wrong_type(item, "seed", "IP:PORT");
        seeds.push_back({item.Scalar(), origin_of(item)});
      }
    } else {
      return wrong_type(value, "seed", "IP:PORT or a list of them");
    }
    out_.seeds = std::move(seeds);
  }

  void read_labels(const YAML::Node& value) {
    if (!value.IsMap()) return wrong_type(value, "label", "a map of key: value");
    std::vector<std::pair<std::string, raw_value>> labels;
    std::set<std::string> seen;
    for (const auto& entry : value) {
      if (!entry.first.IsScalar()) return wrong_type(entry.first, "label", "a label key");
      const std::string& key = entry.first.Scalar();
      if (!entry.second.IsScalar()) return wrong_type(entry.second, "label " + quote(key), "a string value");
      if (!seen.insert(key).second) return fail(entry.first, "label " + quote(key) + ": given twice");
      labels.emplace_back(key, raw_value{entry.second.Scalar(), origin_of(entry.first)});
    }
    out_.labels = std::move(labels);
  }

  void read_role(const std::string& key, const YAML::Node& value) {
    if (role_key_) {
      return fail(value, *role_key_ + " and " + key + " are mutually exclusive; give one of role, server or client");
    }
    role_key_ = key;
    if (key == "role") {
      if (value.IsScalar() && (value.Scalar() == "server" || value.Scalar() == "client")) {
        out_.role = value.Scalar() == "server" ? node_role::server : node_role::client;
      } else {
        wrong_type(value, key, "server or client");
      }
      return;
    }
    bool flag = false;
    if (!value.IsScalar() || !YAML::convert<bool>::decode(value, flag)) return wrong_type(value, key, "true or false");
    out_.role = (flag == (key == "server")) ? node_role::server : node_role::client;
  }

  const namer& names_;
  raw_settings& out_;
  std::vector<std::string>& errors_;
  std::optional<std::string> role_key_;
};

result<std::string> read_small_file(const std::filesystem::path& file) {
  constexpr std::size_t max_size = 1 << 20;
  std::string prefix = "--config " + file.string() + ": ";
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) return error{prefix + "is a directory, not a YAML file"};
  std::ifstream in{file, std::ios::binary};
  if (!in) return error{prefix + "cannot open it: " + std::generic_category().message(errno)};
  std::string text;
  std::array<char, 4096> buffer{};
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
    text.append(buffer.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_size) return error{prefix + "is larger than 1 MiB; is it the right file?"};
  }
  if (in.bad()) return error{prefix + "cannot read it"};
  return text;
}

/// Loads the file into raw. A file that cannot be read or parsed is fatal
/// (the error); a bad key or value is added to errors.
status load_file(const namer& names, raw_settings& raw, std::vector<std::string>& errors) {
  auto text = read_small_file(names.file);
  if (!text) return text.error();
  try {
    if (auto problem = check_single_document(*text)) {
      origin at{problem->mark.line + 1, problem->mark.column + 1};
      if (problem->kind == yaml_document_problem::stray_token)
        return error{names.place(at) + ": not valid YAML: a stray ',' or other token outside any list or map"};
      return error{names.place(at) + ": a second YAML document; expected one"};
    }
    YAML::Node root = YAML::Load(*text);
    if (!root.IsNull()) file_reader{names, raw, errors}.read(root);
    return {};
  } catch (const YAML::Exception& e) {
    origin at = e.mark.is_null() ? origin{} : origin{e.mark.line + 1, e.mark.column + 1};
    std::string reason = quote(e.msg, 200);  // yaml-cpp may quote a raw byte of the input
    return error{names.place(at) + ": not valid YAML: " + reason.substr(1, reason.size() - 2)};
  }
}

// ---- Conversion: raw text to typed fields ---------------------------------

void convert_scalar(const std::string& key, const std::string& text, agent_config& c, namer& names,
                    std::vector<std::string>& errors) {
  auto fail = [&](const std::string& problem) {
    errors.push_back(names.at(key) + ": " + problem);
    names.unusable.insert(key);
  };
  auto integer_in = [&](long long low, long long high, std::string_view what) -> std::optional<long long> {
    std::string range = std::to_string(low) + ".." + std::to_string(high);
    auto value = parse_integer(text);
    if (!value) fail(quote(text) + " is not " + std::string{what} + "; expected " + range);
    else if (*value < low || *value > high) fail(text + " is outside " + range);
    else return value;
    return std::nullopt;
  };
  auto duration = [&](std::chrono::milliseconds& into) {
    auto parsed = parse_duration(text);
    if (parsed) into = *parsed;
    else fail(parsed.error().message());
  };
  auto port = [&](std::uint16_t& into) {
    if (auto value = integer_in(1, 65535, "a port number")) into = static_cast<std::uint16_t>(*value);
  };

  if (key == "name") c.name = text;
  else if (key == "data-dir") c.data_dir = text;
  else if (key == "bind") c.bind = text;
  else if (key == "log-level") c.log_level = text;
  else if (key == "gossip-port") port(c.gossip_port);
  else if (key == "rpc-port") port(c.rpc_port);
  else if (key == "http-port") port(c.http_port);
  else if (key == "port-range") {
    auto dash = text.find('-');
    auto low = dash == std::string::npos ? std::nullopt : parse_integer(text.substr(0, dash));
    auto high = dash == std::string::npos ? std::nullopt : parse_integer(text.substr(dash + 1));
    if (!low || !high) fail(quote(text) + " is not a port range; expected MIN-MAX, like 20000-32000");
    else if (*low < 1024 || *high > 65535 || *low > *high) fail(text + ": expected 1024 <= MIN <= MAX <= 65535");
    else c.port_range = {static_cast<std::uint16_t>(*low), static_cast<std::uint16_t>(*high)};
  }
  else if (key == "default-registry") {
    if (auto host = check_registry_host(text); !host) fail(host.error().message());
    else c.default_registry = text;
  } else if (key == "registries") c.registries_file = text;
  else if (key == "management-token-file") c.management_token_file = text;
  else if (key == "image-cache") {
    if (auto bytes = parse_size(text); !bytes) fail(bytes.error().message());
    else c.image_cache_bytes = *bytes;
  }
  else if (key == "restart-window") duration(c.supervisor.restart_window);
  else if (key == "backoff-base") duration(c.supervisor.backoff_base);
  else if (key == "backoff-max") duration(c.supervisor.backoff_max);
  else if (key == "max-restarts") {
    if (auto value = integer_in(1, 10000, "an integer")) c.supervisor.max_restarts = static_cast<int>(*value);
  } else if (key == "driver") {
    if (text == "runc") c.driver = driver_kind::runc;
    else if (text == "process") c.driver = driver_kind::process;
    else if (text == "auto") c.driver = driver_kind::auto_detect;
    else fail(quote(text) + " is not a driver; expected auto, runc or process");
  } else if (key == "gossip-profile") {
    if (text == "lan") c.gossip = gossip_profile::lan;
    else if (text == "local") c.gossip = gossip_profile::local;
    else fail(quote(text) + " is not a gossip profile; expected lan or local");
  } else if (key == "encrypt") {
    // Never echo the key: it is a secret even when it is malformed.
    auto key_bytes = decode_base64(text);
    if (!key_bytes) fail("not valid base64; the key must be " + std::string{key_form});
    else if (key_bytes->size() != 32) {
      fail("decodes to " + std::to_string(key_bytes->size()) + " bytes; the key must be " + std::string{key_form});
    } else c.encrypt_key = std::move(*key_bytes);
  }
}

/// Turns the merged raw settings into c, recording where each value came from.
void convert(const raw_settings& raw, agent_config& c, namer& names, std::vector<std::string>& errors) {
  for (const auto& [key, value] : raw.scalars) {
    if (value.where) names.from_file[key] = *value.where;
  }
  for (const auto& [key, value] : raw.scalars) convert_scalar(key, value.text, c, names, errors);
  if (raw.seeds) {
    c.seeds.clear();
    for (std::size_t i = 0; i < raw.seeds->size(); ++i) {
      const raw_value& seed = (*raw.seeds)[i];
      if (seed.where) names.from_file["seed#" + std::to_string(i)] = *seed.where;
      c.seeds.push_back(seed.text);
    }
  }
  if (raw.labels) {
    c.labels.clear();
    for (const auto& [key, value] : *raw.labels) {
      if (value.where) names.from_file["label#" + key] = *value.where;
      c.labels[key] = value.text;
    }
  }
  if (raw.role) c.role = *raw.role;
}

// ---- The command line -----------------------------------------------------

struct flag_values {
  std::map<std::string, std::string> scalars;  // by field
  std::string config_file;
  std::vector<std::string> seeds;
  std::vector<std::string> labels;
};

void add_flags(CLI::App& app, flag_values& values) {
  for (const auto& f : scalar_fields) {
    std::string key{f.key};
    auto* option = app.add_option("--" + key, values.scalars[key], std::string{f.help})
                     ->type_name(std::string{f.value_name})
                     ->group(std::string{f.group});
    if (!f.shown_default.empty()) option->default_str(std::string{f.shown_default});
  }
  app.add_option("--config", values.config_file, "YAML file with any of these settings; flags override it")
    ->type_name("FILE")
    ->group("Node");
  app.add_option("--seed", values.seeds, "Gossip address of a member to join through; repeatable. "
                                         "None: bootstrap a new cluster")
    ->type_name("IP:PORT")
    ->allow_extra_args(false)
    ->group("Cluster");
  app.add_option("--label", values.labels, "Node label for placement constraints; repeatable")
    ->type_name("KEY=VALUE")
    ->allow_extra_args(false)
    ->group("Node");
  app.add_flag("--server", "Vote in Raft and be able to lead (the default)")
    ->disable_flag_override()  // "--client=false" would otherwise count as --client
    ->group("Cluster");
  app.add_flag("--client", "Only run work; do not vote")->disable_flag_override()->group("Cluster");
  app.get_formatter()->column_width(34);
  app.footer("Every flag can also be set in the --config YAML file under its long name\n"
             "(http-port: 7070, seed: [10.0.0.1:7946], label: {zone: a}, role: client);\n"
             "a flag given on the command line replaces the file's value.\n\n"
             "Examples:\n"
             "  troupe agent --name n1 --data-dir /var/lib/troupe --bind 10.0.0.1\n"
             "  troupe agent --name n2 --data-dir /var/lib/troupe --bind 10.0.0.2 \\\n"
             "               --seed 10.0.0.1:7946 --client --label zone=a");
}

/// Puts every flag the user gave on top of what the file set.
void apply_flags(const CLI::App& app, const flag_values& values, raw_settings& raw, std::vector<std::string>& errors) {
  auto given = [&](const std::string& name) { return app.get_option(name)->count() > 0; };
  for (const auto& [key, text] : values.scalars) {
    if (given("--" + key)) raw.scalars[key] = raw_value{text, std::nullopt};
  }
  if (given("--seed")) {
    raw.seeds.emplace();
    for (const auto& seed : values.seeds) raw.seeds->push_back({seed, std::nullopt});
  }
  if (given("--label")) {
    raw.labels.emplace();
    std::set<std::string> seen;
    for (const auto& label : values.labels) {
      auto equals = label.find('=');
      if (equals == std::string::npos) {
        errors.push_back("--label " + quote(label) + ": expected key=value");
        continue;
      }
      std::string key = label.substr(0, equals);
      if (!seen.insert(key).second) {
        errors.push_back("--label " + quote(label) + ": key " + quote(key) + " is given twice");
        continue;
      }
      raw.labels->emplace_back(key, raw_value{label.substr(equals + 1), std::nullopt});
    }
  }
  bool server = given("--server"), client = given("--client");
  if (server && client) errors.push_back("--server and --client are mutually exclusive");
  else if (server) raw.role = node_role::server;
  else if (client) raw.role = node_role::client;
}

agent_cli_outcome usage_error(const std::string& message) {
  return {std::nullopt, message + "\nRun 'troupe agent --help' for usage.", 2};
}

} // namespace

status check_registry_host(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return error{quote(std::string{text}) + " is not a registry host (" + why + "); expected HOST[:PORT] like registry.example.com:5000"};
  };
  if (text.empty() || text.size() > 255) return bad("empty or too long");
  std::string_view host = text, port;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("'[' without ']'");
    host = text.substr(1, close - 1);
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
      return bad("not an IPv6 literal inside []");
    auto rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return bad("text after ']'");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
    // DNS labels: letters, digits and '-', not at either end; '.' between.
    std::size_t start = 0;
    while (start <= host.size()) {
      auto dot = host.find('.', start);
      auto label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
          label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
            std::string_view::npos)
        return bad("the host part " + quote(std::string{host}) + " is not a DNS name or IPv4 address");
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (!port.empty() || text.find(':') != std::string_view::npos) {
    auto n = parse_integer(port);
    if (!n || *n < 1 || *n > 65535) return bad("the port is not 1..65535");
  }
  return {};
}

result<std::uint64_t> parse_size(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
    {"KB", 1000ull}, {"MB", 1000'000ull}, {"GB", 1000'000'000ull}, {"TB", 1000'000'000'000ull},
    {"B", 1}, {"", 1}};
  auto digits = text.find_first_not_of("0123456789");
  auto number = text.substr(0, digits);
  auto unit = digits == std::string_view::npos ? std::string_view{} : text.substr(digits);
  auto n = parse_integer(number);
  if (number.empty() || !n)
    return error{quote(std::string{text}) + " is not a size; expected a whole number with an optional unit, like 20GiB or 512MB"};
  for (const auto& [name, scale] : units)
    if (unit == name) {
      auto value = static_cast<std::uint64_t>(*n);
      if (value > UINT64_MAX / scale) return error{quote(std::string{text}) + " is too large"};
      return value * scale;
    }
  return error{quote(std::string{text}) + ": unknown unit " + quote(std::string{unit}) + "; expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"};
}

status validate(const agent_config& config) {
  namer names;
  names.file = config.config_file.string();
  auto errors = check_all(config, names);
  if (errors.empty()) return {};
  return error{join_lines(errors)};
}

agent_cli_outcome parse_agent_command_line(const std::vector<std::string>& args) {
  try {
    CLI::App app{"Run a Troupe agent: one node of the cluster (gossip, Raft on servers, containers).",
                 "troupe agent"};
    flag_values values;
    add_flags(app, values);
    try {
      app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 wants them reversed
    } catch (const CLI::Success&) {
      return {std::nullopt, app.help(), 0};
    } catch (const CLI::ParseError& e) {
      return usage_error(e.what());
    }

    agent_config config;
    raw_settings raw;
    namer names;
    std::vector<std::string> errors;
    if (app.get_option("--config")->count() > 0) {
      config.config_file = values.config_file;
      names.file = values.config_file;
      if (names.file.empty()) return usage_error("--config: the file name is empty");
      if (status loaded = load_file(names, raw, errors); !loaded) return usage_error(loaded.error().message());
    }
    apply_flags(app, values, raw, errors);
    convert(raw, config, names, errors);
    for (auto& problem : check_all(config, names)) errors.push_back(std::move(problem));
    if (!errors.empty()) return usage_error(join_lines(errors));
    return {std::move(config), "", 0};
  } catch (const std::exception& e) {
    return {std::nullopt, std::string{"troupe agent: unexpected failure reading the configuration: "} + e.what(), 1};
  }
}

} // namespace troupe
