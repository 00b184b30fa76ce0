#include "actors/registry/settings.hpp"

#include "runtime/text.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace troupe::registry {
namespace {

constexpr std::size_t max_file_bytes = 1 << 20;

std::string at(const std::string& file, const YAML::Node& node) {
  auto m = node.Mark();
  if (m.is_null())
    return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

result<std::string> read_text(const std::filesystem::path& file, const std::string& what) {
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return error{what + " " + file.string() + ": cannot be read"};
  std::ostringstream s;
  s << in.rdbuf();
  auto text = s.str();
  if (text.size() > max_file_bytes)
    return error{what + " " + file.string() + ": larger than 1 MiB"};
  return text;
}

} // namespace

result<std::vector<image::registry_host>> parse_registries(const std::string& text, const std::string& file) {
  std::vector<image::registry_host> out;
  try {
    auto root = YAML::Load(text);
    if (root.IsNull())
      return out;
    if (!root.IsMap())
      return error{at(file, root) + ": expected a map with the key \"registries\""};
    for (const auto& kv : root) {
      auto key = kv.first.as<std::string>();
      if (key != "registries")
        return error{at(file, kv.first) + ": unknown key " + quote(key) + "; expected registries"};
    }
    auto list = root["registries"];
    if (!list.IsSequence())
      return error{at(file, list) + ": registries: expected a list of {host, plain-http, ca-file, username, password-file}"};
    std::set<std::string> seen;
    for (const auto& item : list) {
      if (!item.IsMap())
        return error{at(file, item) + ": registries: each entry is a map with at least host"};
      image::registry_host h;
      std::string password_file;
      for (const auto& kv : item) {
        auto key = kv.first.as<std::string>();
        auto where = at(file, kv.second) + ": " + key;
        if (!kv.second.IsScalar())
          return error{where + ": expected a single value"};
        auto value = kv.second.as<std::string>();
        if (key == "host") {
          if (auto ok = check_registry_host(value); !ok)
            return error{where + ": " + ok.error().message()};
          h.host = value;
        } else if (key == "plain-http" || key == "https") {
          bool flag = false;
          if (!YAML::convert<bool>::decode(kv.second, flag))
            return error{where + ": " + quote(value) + " is not true or false"};
          (key == "https" ? h.https : h.plain_http) = flag;
        } else if (key == "ca-file") {
          if (!std::filesystem::is_regular_file(value))
            return error{where + ": " + quote(value) + " is not a readable file"};
          h.ca_file = value;
        } else if (key == "username") {
          h.username = value;
        } else if (key == "password-file") {
          password_file = value;
        } else {
          return error{at(file, kv.first) + ": unknown key " + quote(key) +
                       "; expected host, plain-http, https, ca-file, username or password-file"};
        }
      }
      if (h.host.empty())
        return error{at(file, item) + ": registries: an entry without host"};
      if (!seen.insert(h.host).second)
        return error{at(file, item) + ": registries: " + quote(h.host) + " is listed twice"};
      if (h.plain_http && h.https)
        return error{at(file, item) + ": " + h.host + ": plain-http and https both set"};
      if (!password_file.empty()) {
        auto secret = read_text(password_file, at(file, item) + ": " + h.host + ": password-file");
        if (!secret)
          return secret.error();
        auto line = secret->substr(0, secret->find('\n'));
        if (!line.empty() && line.back() == '\r')
          line.pop_back();
        h.password = line;
      }
      if (!h.password.empty() && h.username.empty())
        return error{at(file, item) + ": " + h.host + ": a password-file without username"};
      out.push_back(std::move(h));
    }
  } catch (const YAML::Exception& e) {
    auto place = e.mark.is_null() ? file
                                  : file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    return error{place + ": not valid YAML: " + e.msg};
  }
  return out;
}

result<image::registry_options> load_options(const agent_config& config) {
  image::registry_options opts;
  opts.default_registry = config.default_registry;
  if (config.registries_file.empty())
    return opts;
  auto text = read_text(config.registries_file, "--registries");
  if (!text)
    return text.error();
  auto hosts = parse_registries(*text, config.registries_file.string());
  if (!hosts)
    return hosts.error();
  opts.hosts = std::move(*hosts);
  return opts;
}

} // namespace troupe::registry
