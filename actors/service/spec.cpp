#include "actors/service/spec.hpp"

#include "runtime/duration.hpp"
#include "runtime/text.hpp"
#include "runtime/values.hpp"
#include "runtime/yaml_documents.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace troupe::service {

namespace {

using namespace std::string_literals;

// ---- Defaults ---------------------------------------------------------------

/// Whether the operator gave the field at `path` (YAML names: "update.order").
using given_fn = std::function<bool(std::string_view path)>;

/// For a protobuf spec: a field is given when it is not its zero value.
given_fn given_in(const v1::ServiceSpec& s) {
  return [&s](std::string_view path) {
    const auto& h = s.health();
    const auto& u = s.update();
    if (path == "namespace") return !s.namespace_().empty();
    if (path == "replicas") return s.replicas() != 0;
    if (path == "health") return s.has_health();
    if (path == "health.interval") return h.interval_ms() != 0;
    if (path == "health.timeout") return h.timeout_ms() != 0;
    if (path == "health.retries") return h.retries() != 0;
    if (path == "update.parallelism") return u.parallelism() != 0;
    if (path == "update.order") return !u.order().empty();
    if (path == "update.failure_action") return !u.failure_action().empty();
    if (path == "update.monitor") return u.has_monitor_ms();
    if (path == "restart.policy") return !s.task().restart().policy().empty();
    return false;
  };
}

void fill(v1::ServiceSpec& s, const given_fn& given) {
  if (!given("namespace")) s.set_namespace_("default");
  if (!given("replicas") && !s.global()) s.set_replicas(1);
  auto& u = *s.mutable_update();
  if (!given("update.parallelism")) u.set_parallelism(1);
  if (!given("update.order")) u.set_order("stop-first");
  if (!given("update.failure_action")) u.set_failure_action("pause");
  if (!given("update.monitor")) u.set_monitor_ms(5000);
  if (given("health")) {
    auto& h = *s.mutable_health();
    if (!given("health.interval")) h.set_interval_ms(10000);
    if (!given("health.timeout")) h.set_timeout_ms(1000);
    if (!given("health.retries")) h.set_retries(3);
  }
  if (!given("restart.policy")) s.mutable_task()->mutable_restart()->set_policy("always");
}

// ---- Where fields were in the YAML ------------------------------------------

/// "ports[0].name" -> "ports[0]" -> "ports" -> "".
std::string parent_of(const std::string& path) {
  auto cut = path.find_last_of(".[");
  return cut == std::string::npos ? std::string{} : path.substr(0, cut);
}

/// Positions of the fields read from one file, and the fields that did not
/// read (the checks stay quiet about those: the reader already spoke).
struct origins {
  std::string file;
  std::map<std::string, YAML::Mark> at;  // by path; "" is the document
  std::set<std::string> unusable;

  std::string place(const YAML::Mark& mark) const {
    if (mark.is_null()) return file + ":1:1";
    return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  /// The nearest recorded position: the field's, else its parent's.
  std::string place(std::string path) const {
    for (;;) {
      if (auto it = at.find(path); it != at.end()) return place(it->second);
      if (path.empty()) return place(YAML::Mark::null_mark());
      path = parent_of(path);
    }
  }
  /// No read error on path, on a field inside it, or on one it is inside.
  bool usable(const std::string& path) const {
    for (const auto& bad : unusable) {
      bool inside = path.compare(0, bad.size(), bad) == 0 &&
                    (path.size() == bad.size() || path[bad.size()] == '.' || path[bad.size()] == '[');
      bool holds = bad.compare(0, path.size(), path) == 0 && bad.size() > path.size() &&
                   (bad[path.size()] == '.' || bad[path.size()] == '[');
      if (inside || holds) return false;
    }
    return true;
  }
};

// ---- Checks shared by YAML and protobuf specs -------------------------------

class checker {
public:
  checker(const v1::ServiceSpec& spec, const origins* from_yaml, given_fn given)
    : spec_(spec), yaml_(from_yaml), given_(std::move(given)) {}

  std::vector<std::string> errors;

  const v1::ServiceSpec& spec() const { return spec_; }
  bool given(std::string_view path) const { return given_(path); }
  bool usable(const std::string& path) const { return !yaml_ || yaml_->usable(path); }

  void fail(const std::string& path, const std::string& problem) {
    if (!usable(path)) return;
    std::string where = yaml_ ? yaml_->place(path) + ": " : "";
    errors.push_back(where + escape(path, 200) + ": " + problem);
  }
  /// value is one of choices, or the error says which ones are.
  void one_of(const std::string& path, const std::string& value, std::string_view what,
              std::initializer_list<std::string_view> choices) {
    for (auto choice : choices) {
      if (value == choice) return;
    }
    fail(path, quote(value) + " is not " + std::string{what} + "; expected " + listing(choices, " or "));
  }

  static std::string listing(std::initializer_list<std::string_view> items, std::string_view last) {
    std::string text;
    std::size_t i = 0;
    for (auto item : items) {
      text += (i == 0 ? "" : i + 1 == items.size() ? std::string{last} : ", ") + std::string{item};
      ++i;
    }
    return text;
  }

private:
  const v1::ServiceSpec& spec_;
  const origins* yaml_;
  given_fn given_;
};

constexpr std::string_view dns_label_form =
  "expected 1 to 63 of a-z, 0-9 and '-', starting with a letter and not ending with '-'";
constexpr std::string_view label_key_form = "expected 1 to 63 of a-z, A-Z, 0-9, '.', '_', '/' and '-'";

bool dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() < 'a' || s.front() > 'z' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool only_of(std::string_view s, std::string_view allowed, std::size_t max) {
  return !s.empty() && s.size() <= max && s.find_first_not_of(allowed) == std::string_view::npos;
}

constexpr std::string_view lower_digits = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

bool env_name(std::string_view s) {
  return only_of(s, std::string{lower_digits} + std::string{upper} + "_", 255) && !(s.front() >= '0' && s.front() <= '9');
}

void check_names(checker& check) {
  const auto& s = check.spec();
  if (s.name().empty()) check.fail("name", "required: the service's name, e.g. web");
  else if (!dns_label(s.name())) check.fail("name", quote(s.name()) + " is not a DNS label: " + std::string{dns_label_form});
  if (!dns_label(s.namespace_())) {
    check.fail("namespace", quote(s.namespace_()) + " is not a DNS label: " + std::string{dns_label_form});
  }
  if (s.task().image().empty()) check.fail("image", "required: the image to run, REPO[:TAG] such as busybox:1");
}

void check_replicas_and_resources(checker& check) {
  const auto& s = check.spec();
  if (s.global() && check.given("replicas")) {
    check.fail("replicas", "not allowed with mode: global, which runs one task on every eligible node");
  } else if (s.replicas() > max_replicas) {
    check.fail("replicas", std::to_string(s.replicas()) + " is outside 0.." + std::to_string(max_replicas));
  }
  const auto& r = s.task().resources();
  if (r.cpu_millis() > max_cpu_millis) {
    std::string cpu = r.cpu_millis() % 1000 == 0 ? std::to_string(r.cpu_millis() / 1000)
                                                 : std::to_string(r.cpu_millis()) + "m";
    check.fail("resources.cpu", cpu + " is more than " + std::to_string(max_cpu_millis / 1000) + " cores");
  }
  if (r.memory_bytes() != 0 && r.memory_bytes() < min_memory_bytes) {
    check.fail("resources.memory", std::to_string(r.memory_bytes()) + " bytes is less than the 4Mi minimum");
  }
}

/// The declared port names, or nothing when a port did not read.
std::set<std::string> check_ports(checker& check) {
  std::set<std::string> names;
  std::map<std::uint32_t, std::string> static_ports;  // number -> the path that took it
  const auto& ports = check.spec().task().ports();
  for (int i = 0; i < ports.size(); ++i) {
    const auto& p = ports[i];
    std::string path = "ports[" + std::to_string(i) + "]";
    if (p.name().empty()) {
      check.fail(path + ".name", "required: e.g. http (the container gets PORT_http)");
    } else if (!only_of(p.name(), std::string{lower_digits} + "_", 63)) {
      check.fail(path + ".name", quote(p.name()) + " is not a port name: expected 1 to 63 of a-z, 0-9 and '_'");
    } else if (!names.insert(p.name()).second) {
      check.fail(path + ".name", quote(p.name()) + " is declared twice");
    }
    if (p.port() > 65535) {
      check.fail(path + ".port", std::to_string(p.port()) + " is outside 0..65535 (0: a dynamic port)");
    } else if (p.port() != 0 && !static_ports.emplace(p.port(), path).second) {
      check.fail(path + ".port", std::to_string(p.port()) + " is already taken by " + static_ports[p.port()]);
    }
  }
  return names;
}

void check_volumes(checker& check) {
  const auto& volumes = check.spec().task().volumes();
  for (int i = 0; i < volumes.size(); ++i) {
    const auto& v = volumes[i];
    std::string path = "volumes[" + std::to_string(i) + "]";
    bool name = only_of(v.source(), std::string{lower_digits} + std::string{upper} + "_.-", 255) &&
                v.source() != "." && v.source() != "..";
    if (v.source().empty()) check.fail(path + ".source", "required: an absolute host path or a volume name");
    else if (v.source().front() != '/' && !name) {
      check.fail(path + ".source", quote(v.source()) + " is neither an absolute path nor a volume name ([a-zA-Z0-9_.-])");
    }
    if (v.target().empty()) check.fail(path + ".target", "required: an absolute path in the container");
    else if (v.target().front() != '/') check.fail(path + ".target", quote(v.target()) + " is not an absolute path");
  }
}

/// Every ${PORT_x} in text names a declared port.
void check_port_refs(std::string_view text, const std::string& path, const std::set<std::string>& ports,
                     checker& check) {
  constexpr std::string_view open = "${PORT_";
  for (auto at = text.find(open); at != std::string_view::npos; at = text.find(open, at + 1)) {
    auto close = text.find('}', at);
    if (close == std::string_view::npos) return;
    std::string name{text.substr(at + open.size(), close - at - open.size())};
    if (ports.count(name) > 0) continue;
    std::string declared;
    for (const auto& p : ports) declared += (declared.empty() ? "" : ", ") + p;
    check.fail(path, quote("${PORT_" + name + "}") + " names no declared port" +
                       (ports.empty() ? " (no ports are declared)" : " (declared: " + declared + ")"));
  }
}

void check_env_and_command(const std::set<std::string>& ports, checker& check) {
  const auto& task = check.spec().task();
  bool refs = check.usable("ports");  // a port that did not read may be the one referred to
  for (int i = 0; i < task.command_size(); ++i) {
    if (refs) check_port_refs(task.command(i), "command[" + std::to_string(i) + "]", ports, check);
  }
  for (const auto& [key, value] : task.env()) {
    if (!env_name(key)) {
      check.fail("env." + key, quote(key) + " is not an environment variable name: expected [A-Za-z_][A-Za-z0-9_]*");
    }
    if (refs) check_port_refs(value, "env." + key, ports, check);
  }
}

void check_label_key(const std::string& path, const std::string& key, checker& check) {
  if (!valid_label_key(key)) check.fail(path, quote(key) + " is not a label key: " + std::string{label_key_form});
}

void check_placement(checker& check) {
  const auto& s = check.spec();
  for (const auto& [key, value] : s.labels()) {
    check_label_key("labels." + key, key, check);
    if (value.size() > 255 || !printable(value)) {
      check.fail("labels." + key, "the value must be at most 255 printable ASCII characters");
    }
  }
  for (int i = 0; i < s.constraints_size(); ++i) {
    const auto& c = s.constraints(i);
    std::string path = "constraints[" + std::to_string(i) + "]";
    std::string subject = c.text().empty() ? "" : quote(c.text()) + ": ";
    const std::string& attr = c.attribute();
    bool label = attr.rfind("labels.", 0) == 0 && valid_label_key(attr.substr(7));
    if (attr != "name" && attr != "role" && !label) {
      check.fail(path, subject + quote(attr) + " is not a node attribute; expected name, role or labels.<key>");
    }
    bool list = c.op() == "in" || c.op() == "not in";
    if (!list && c.op() != "==" && c.op() != "!=") {
      check.fail(path, subject + "operator " + quote(c.op()) + " is not ==, !=, in or not in");
    } else if (list ? c.values_size() < 1 : c.values_size() != 1) {
      check.fail(path, subject + c.op() + (list ? " takes a list of values: (a, b)" : " takes one value"));
    }
    for (const auto& v : c.values()) {
      if (v.empty() || !printable(v)) check.fail(path, subject + quote(v) + " is not a value");
      else if (attr == "role" && v != "server" && v != "client") {
        check.fail(path, subject + "a node's role is server or client, not " + quote(v));
      }
    }
  }
  if (!s.spread().empty()) check_label_key("spread", s.spread(), check);
}

void check_health(const std::set<std::string>& ports, checker& check) {
  if (!check.given("health")) return;
  const auto& h = check.spec().health();
  std::vector<std::string> kinds;
  if (h.exec_size() > 0) kinds.push_back("exec");
  if (!h.http().empty()) kinds.push_back("http");
  if (h.tcp()) kinds.push_back("tcp");
  if (kinds.size() != 1) {
    std::string got = kinds.empty() ? "none" : kinds.size() == 2 ? kinds[0] + " and " + kinds[1] : "all three";
    check.fail("health", "give exactly one of exec, http or tcp (got " + got + ")");
  }
  if (!h.http().empty() && h.http().front() != '/') {
    check.fail("health.http", quote(h.http()) + " is not a path: it must start with '/'");
  }
  if (h.port().empty()) {
    if (!h.http().empty() || h.tcp()) check.fail("health.port", "required with http and tcp: the name of a declared port");
  } else if (ports.count(h.port()) == 0 && check.usable("ports")) {
    check.fail("health.port", quote(h.port()) + " names no declared port");
  }
  if (h.interval_ms() == 0) check.fail("health.interval", "must be more than 0s");
  if (h.timeout_ms() == 0) check.fail("health.timeout", "must be more than 0s");
  if (h.retries() == 0) check.fail("health.retries", "0; expected at least 1");
}

void check_policies(checker& check) {
  const auto& restart = check.spec().task().restart();
  check.one_of("restart.policy", restart.policy(), "a restart policy", {"always", "on-failure", "never"});
  const auto& u = check.spec().update();
  if (u.parallelism() == 0) check.fail("update.parallelism", "0; expected at least 1");
  check.one_of("update.order", u.order(), "an update order", {"stop-first", "start-first"});
  check.one_of("update.failure_action", u.failure_action(), "a failure action", {"pause", "rollback", "continue"});
  if (!(u.max_failure_ratio() >= 0 && u.max_failure_ratio() <= 1)) {
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%g", u.max_failure_ratio());
    check.fail("update.max_failure_ratio", std::string{ratio} + " is outside 0..1");
  }
  const auto& dir = check.spec().task().working_dir();
  if (!dir.empty() && dir.front() != '/') check.fail("working_dir", quote(dir) + " is not an absolute path");
}

std::vector<std::string> check_all(checker& check) {
  check_names(check);
  check_replicas_and_resources(check);
  auto ports = check_ports(check);
  check_volumes(check);
  check_env_and_command(ports, check);
  check_placement(check);
  check_health(ports, check);
  check_policies(check);
  return std::move(check.errors);
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += (text.empty() ? "" : "\n") + line;
  return text;
}

// ---- The YAML reader ----------------------------------------------------------


using field_reader = std::function<void(const YAML::Node& value, const std::string& path)>;
using field_table = std::vector<std::pair<std::string_view, field_reader>>;

/// Reads the YAML tree into a spec; a value that does not read is an error at
/// its position, and the field is marked unusable for the checks.
class reader {
public:
  reader(origins& where, v1::ServiceSpec& spec, std::vector<std::string>& errors)
    : where_(where), spec_(spec), errors_(errors) {}

  void read(const YAML::Node& root) {
    where_.at[""] = root.Mark();
    auto& task = *spec_.mutable_task();
    fields(root, "", {
      {"name", [&](auto& n, auto& p) { if (auto v = text(n, p)) spec_.set_name(*v); }},
      {"namespace", [&](auto& n, auto& p) { if (auto v = text(n, p)) spec_.set_namespace_(*v); }},
      {"image", [&](auto& n, auto& p) { if (auto v = text(n, p)) task.set_image(*v); }},
      {"command", [&](auto& n, auto& p) { strings(n, p, *task.mutable_command()); }},
      {"env", [&](auto& n, auto& p) { string_map(n, p, *task.mutable_env()); }},
      {"replicas", [&](auto& n, auto& p) { if (auto v = whole(n, p, UINT32_MAX)) spec_.set_replicas(uint32(*v)); }},
      {"mode", [&](auto& n, auto& p) { read_mode(n, p); }},
      {"resources", [&](auto& n, auto& p) { read_resources(n, p, *task.mutable_resources()); }},
      {"ports", [&](auto& n, auto& p) { items(n, p, [&](auto& i, auto& ip) { read_port(i, ip, *task.add_ports()); }); }},
      {"volumes", [&](auto& n, auto& p) { items(n, p, [&](auto& i, auto& ip) { read_volume(i, ip, *task.add_volumes()); }); }},
      {"labels", [&](auto& n, auto& p) { string_map(n, p, *spec_.mutable_labels()); }},
      {"constraints", [&](auto& n, auto& p) { items(n, p, [&](auto& i, auto& ip) { read_constraint(i, ip); }); }},
      {"spread", [&](auto& n, auto& p) { if (auto v = text(n, p)) spec_.set_spread(*v); }},
      {"restart", [&](auto& n, auto& p) { read_restart(n, p, *task.mutable_restart()); }},
      {"health", [&](auto& n, auto& p) { read_health(n, p, *spec_.mutable_health()); }},
      {"update", [&](auto& n, auto& p) { read_update(n, p, *spec_.mutable_update()); }},
      {"working_dir", [&](auto& n, auto& p) { if (auto v = text(n, p)) task.set_working_dir(*v); }},
      {"user", [&](auto& n, auto& p) { if (auto v = text(n, p)) task.set_user(*v); }},
      {"hostname", [&](auto& n, auto& p) { if (auto v = text(n, p)) task.set_hostname(*v); }},
      {"read_only_rootfs", [&](auto& n, auto& p) { if (auto v = flag(n, p)) task.set_read_only_rootfs(*v); }},
      {"stop_grace_period", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) task.set_stop_grace_ms(*v); }},
    });
  }

private:
  static std::uint32_t uint32(std::uint64_t v) { return static_cast<std::uint32_t>(v); }

  void fail(const YAML::Node& node, const std::string& path, const std::string& problem) {
    // yaml-cpp puts an empty value where the next token starts; its key is clearer.
    std::string place = node.IsNull() ? where_.place(path) : where_.place(node.Mark());
    errors_.push_back(place + ": " + (path.empty() ? "" : escape(path, 200) + ": ") + problem);
    where_.unusable.insert(path);
  }
  void wrong_type(const YAML::Node& node, const std::string& path, std::string_view expected) {
    fail(node, path, "expected " + std::string{expected} + ", got " + describe_yaml(node));
  }

  /// A map with the keys of table, each read by its reader; unknown keys are errors.
  void fields(const YAML::Node& node, const std::string& path, const field_table& table) {
    std::string known;
    for (const auto& entry : table) known += (known.empty() ? "" : ", ") + std::string{entry.first};
    if (!node.IsMap()) return wrong_type(node, path, path.empty() ? "a service spec: a map of fields (name: web, ...)" : "a map of " + known);
    std::set<std::string> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) {
        fail(entry.first, path, "expected a field name as the key, got " + describe_yaml(entry.first));
        continue;
      }
      const std::string& key = entry.first.Scalar();
      std::string field = path.empty() ? key : path + "." + key;
      auto reader_of = std::find_if(table.begin(), table.end(), [&](const auto& e) { return e.first == key; });
      if (reader_of == table.end()) {
        fail(entry.first, field, "unknown key; expected one of " + known);
      } else if (!seen.insert(key).second) {
        fail(entry.first, field, "given twice");
      } else {
        where_.at[field] = (entry.second.IsNull() ? entry.first : entry.second).Mark();
        reader_of->second(entry.second, field);
      }
    }
  }

  /// Each item of a list, as path[i].
  void items(const YAML::Node& node, const std::string& path, const field_reader& read_item) {
    if (!node.IsSequence()) return wrong_type(node, path, "a list");
    std::size_t i = 0;
    for (const auto& element : node) {
      std::string item = path + "[" + std::to_string(i++) + "]";
      where_.at[item] = element.Mark();
      read_item(element, item);
    }
  }

  std::optional<std::string> text(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar()) return node.Scalar();
    wrong_type(node, path, "a string");
    return std::nullopt;
  }

  std::optional<bool> flag(const YAML::Node& node, const std::string& path) {
    bool value = false;
    if (node.IsScalar() && YAML::convert<bool>::decode(node, value)) return value;
    wrong_type(node, path, "true or false");
    return std::nullopt;
  }

  std::optional<std::uint64_t> whole(const YAML::Node& node, const std::string& path, std::uint64_t max) {
    auto value = node.IsScalar() ? parse_integer(node.Scalar()) : std::nullopt;
    if (value && *value >= 0 && static_cast<std::uint64_t>(*value) <= max) return static_cast<std::uint64_t>(*value);
    wrong_type(node, path, "a whole number 0.." + std::to_string(max));
    return std::nullopt;
  }

  std::optional<double> number(const YAML::Node& node, const std::string& path, std::string_view expected) {
    if (node.IsScalar()) {
      const std::string& s = node.Scalar();
      double value = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
      if (!s.empty() && ec == std::errc{} && end == s.data() + s.size() && std::isfinite(value)) return value;
    }
    wrong_type(node, path, expected);
    return std::nullopt;
  }

  std::optional<std::uint64_t> duration_ms(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      wrong_type(node, path, "a duration such as 500ms, 5s or 1m");
      return std::nullopt;
    }
    auto parsed = parse_duration(node.Scalar());
    if (parsed) return static_cast<std::uint64_t>(parsed->count());
    fail(node, path, parsed.error().message());
    return std::nullopt;
  }

  template <class T, class Set>
  void measure(const YAML::Node& node, const std::string& path, result<T> (*parse)(std::string_view),
               std::string_view expected, Set set) {
    if (!node.IsScalar()) return wrong_type(node, path, expected);
    auto value = parse(node.Scalar());
    if (value) set(*value);
    else fail(node, path, value.error().message());
  }

  void strings(const YAML::Node& node, const std::string& path, google::protobuf::RepeatedPtrField<std::string>& out) {
    items(node, path, [&](const YAML::Node& item, const std::string& item_path) {
      if (auto v = text(item, item_path)) *out.Add() = *v;
    });
  }

  void string_map(const YAML::Node& node, const std::string& path, google::protobuf::Map<std::string, std::string>& out) {
    if (!node.IsMap()) return wrong_type(node, path, "a map of key: value");
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) {
        fail(entry.first, path, "expected a key, got " + describe_yaml(entry.first));
        continue;
      }
      std::string field = path + "." + entry.first.Scalar();
      where_.at[field] = entry.first.Mark();
      if (out.count(entry.first.Scalar()) > 0) fail(entry.first, field, "given twice");
      else if (auto v = text(entry.second, field)) out[entry.first.Scalar()] = *v;
    }
  }

  void read_mode(const YAML::Node& node, const std::string& path) {
    auto mode = text(node, path);
    if (mode && (*mode == "replicated" || *mode == "global")) spec_.set_global(*mode == "global");
    else if (mode) fail(node, path, quote(*mode) + " is not a mode; expected replicated or global");
  }

  void read_resources(const YAML::Node& node, const std::string& path, v1::Resources& r) {
    fields(node, path, {
      {"cpu", [&](auto& n, auto& p) { measure(n, p, parse_cpu, "a CPU amount (250m, 0.5 or 2)", [&](std::uint32_t v) { r.set_cpu_millis(v); }); }},
      {"memory", [&](auto& n, auto& p) { measure(n, p, parse_memory, "a memory size (64Mi, 1Gi, 100M or bytes)", [&](std::uint64_t v) { r.set_memory_bytes(v); }); }},
      {"pids", [&](auto& n, auto& p) { if (auto v = whole(n, p, UINT32_MAX)) r.set_pids(uint32(*v)); }},
    });
  }

  void read_port(const YAML::Node& node, const std::string& path, v1::PortSpec& port) {
    fields(node, path, {
      {"name", [&](auto& n, auto& p) { if (auto v = text(n, p)) port.set_name(*v); }},
      {"port", [&](auto& n, auto& p) { if (auto v = whole(n, p, UINT32_MAX)) port.set_port(uint32(*v)); }},
    });
  }

  void read_volume(const YAML::Node& node, const std::string& path, v1::VolumeSpec& volume) {
    fields(node, path, {
      {"source", [&](auto& n, auto& p) { if (auto v = text(n, p)) volume.set_source(*v); }},
      {"target", [&](auto& n, auto& p) { if (auto v = text(n, p)) volume.set_target(*v); }},
      {"read_only", [&](auto& n, auto& p) { if (auto v = flag(n, p)) volume.set_read_only(*v); }},
    });
  }

  void read_constraint(const YAML::Node& node, const std::string& path) {
    auto written = text(node, path);
    if (!written) return;
    auto parsed = parse_constraint(*written);
    if (parsed) *spec_.add_constraints() = std::move(*parsed);
    else fail(node, path, parsed.error().message());
  }

  void read_restart(const YAML::Node& node, const std::string& path, v1::RestartPolicy& r) {
    fields(node, path, {
      {"policy", [&](auto& n, auto& p) { if (auto v = text(n, p)) r.set_policy(*v); }},
      {"max_attempts", [&](auto& n, auto& p) { if (auto v = whole(n, p, UINT32_MAX)) r.set_max_attempts(uint32(*v)); }},
      {"delay", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) r.set_delay_ms(*v); }},
    });
  }

  void read_health(const YAML::Node& node, const std::string& path, v1::HealthCheck& h) {
    fields(node, path, {
      {"exec", [&](auto& n, auto& p) { strings(n, p, *h.mutable_exec()); }},
      {"http", [&](auto& n, auto& p) { if (auto v = text(n, p)) h.set_http(*v); }},
      {"tcp", [&](auto& n, auto& p) { if (auto v = flag(n, p)) h.set_tcp(*v); }},
      {"port", [&](auto& n, auto& p) { if (auto v = text(n, p)) h.set_port(*v); }},
      {"interval", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) h.set_interval_ms(*v); }},
      {"timeout", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) h.set_timeout_ms(*v); }},
      {"retries", [&](auto& n, auto& p) { if (auto v = whole(n, p, UINT32_MAX)) h.set_retries(uint32(*v)); }},
      {"start_period", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) h.set_start_period_ms(*v); }},
    });
  }

  void read_update(const YAML::Node& node, const std::string& path, v1::UpdatePolicy& u) {
    fields(node, path, {
      {"parallelism", [&](auto& n, auto& p) { if (auto v = whole(n, p, UINT32_MAX)) u.set_parallelism(uint32(*v)); }},
      {"delay", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) u.set_delay_ms(*v); }},
      {"order", [&](auto& n, auto& p) { if (auto v = text(n, p)) u.set_order(*v); }},
      {"failure_action", [&](auto& n, auto& p) { if (auto v = text(n, p)) u.set_failure_action(*v); }},
      {"monitor", [&](auto& n, auto& p) { if (auto v = duration_ms(n, p)) u.set_monitor_ms(*v); }},
      {"max_failure_ratio", [&](auto& n, auto& p) { if (auto v = number(n, p, "a number 0..1")) u.set_max_failure_ratio(*v); }},
    });
  }

  origins& where_;
  v1::ServiceSpec& spec_;
  std::vector<std::string>& errors_;
};

/// The one document of text, or why there is not exactly one.
result<YAML::Node> load_one(const std::string& text, const origins& where) {
  if (auto problem = check_single_document(text)) {
    if (problem->kind == yaml_document_problem::stray_token)
      return error{where.place(problem->mark) + ": not valid YAML: a stray ',' or other token outside any list or map"};
    return error{where.place(problem->mark) + ": a second YAML document; expected one service spec per file"};
  }
  YAML::Node root = YAML::Load(text);
  if (root.IsNull()) return error{where.file + ":1:1: empty; expected a service spec (name, image, ...)"};
  return root;
}

result<v1::ServiceSpec> read_document(const YAML::Node& root, origins& where) {
  v1::ServiceSpec spec;
  std::vector<std::string> errors;
  reader{where, spec, errors}.read(root);
  if (!root.IsMap()) return error{join_lines(errors)};  // nothing was read to check
  given_fn given = [&where](std::string_view path) { return where.at.count(std::string{path}) > 0; };
  fill(spec, given);
  checker check{spec, &where, given};
  for (auto& problem : check_all(check)) errors.push_back(std::move(problem));
  if (!errors.empty()) return error{join_lines(errors)};
  return spec;
}

} // namespace

result<v1::ServiceSpec> read_service_spec(std::string_view yaml, std::string_view file) {
  origins where;
  where.file = std::string{file};
  constexpr std::size_t max_size = 1 << 20;
  if (yaml.size() > max_size) return error{where.file + ":1:1: larger than 1 MiB; is it the right file?"};
  try {
    auto root = load_one(std::string{yaml}, where);
    if (!root) return root.error();
    return read_document(*root, where);
  } catch (const YAML::Exception& e) {
    std::string reason = quote(e.msg, 200);  // yaml-cpp may quote a raw byte of the input
    return error{where.place(e.mark) + ": not valid YAML: " + reason.substr(1, reason.size() - 2)};
  } catch (const std::exception& e) {
    return error{where.file + ":1:1: cannot read it: " + std::string{e.what()}};
  }
}

void fill_defaults(v1::ServiceSpec& spec) {
  fill(spec, given_in(spec));
}

status validate_service_spec(const v1::ServiceSpec& spec) {
  checker check{spec, nullptr, given_in(spec)};
  auto errors = check_all(check);
  if (errors.empty()) return {};
  return error{join_lines(errors)};
}

result<v1::Constraint> parse_constraint(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return error{quote(text) + " is not a constraint (" + std::string{why} +
                 "); expected node.<attribute> <op> <value> with op ==, !=, in or not in, as in "
                 "'node.labels.zone == a' or 'node.name in (a, b)'"};
  };
  auto trim = [](std::string_view s) {
    auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return std::string_view{};
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
  };
  std::string_view rest = trim(text);
  if (rest.rfind("node.", 0) != 0) return bad("it must start with node.");
  rest.remove_prefix(5);
  auto attr_end = rest.find_first_of(" \t=!");
  if (attr_end == 0 || attr_end == std::string_view::npos) return bad("no operator");
  v1::Constraint c;
  c.set_text(std::string{text});
  c.set_attribute(std::string{rest.substr(0, attr_end)});
  rest = trim(rest.substr(attr_end));
  auto word = [&](std::string_view w) {
    bool ok = rest.rfind(w, 0) == 0 && (rest.size() == w.size() || rest[w.size()] == ' ' || rest[w.size()] == '\t' ||
                                        rest[w.size()] == '(');
    if (ok) rest = trim(rest.substr(w.size()));
    return ok;
  };
  if (rest.rfind("==", 0) == 0 || rest.rfind("!=", 0) == 0) {
    c.set_op(std::string{rest.substr(0, 2)});
    rest = trim(rest.substr(2));
    if (rest.empty()) return bad("no value");
    if (rest.find_first_of(" \t(),") != std::string_view::npos) return bad("one value without spaces, commas or parentheses");
    c.add_values(std::string{rest});
    return c;
  }
  if (word("in")) c.set_op("in");
  else if (word("not") && word("in")) c.set_op("not in");
  else return bad("no operator");
  if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') return bad("the values of in go in parentheses: (a, b)");
  rest = rest.substr(1, rest.size() - 2);
  for (;;) {
    auto comma = rest.find(',');
    std::string_view value = trim(rest.substr(0, comma));
    if (value.empty() || value.find_first_of(" \t()") != std::string_view::npos) return bad("an empty or spaced value in the list");
    c.add_values(std::string{value});
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return c;
}

} // namespace troupe::service
