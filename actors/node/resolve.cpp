#include "actors/node/resolve.hpp"

#include <fstream>
#include <set>
#include <sstream>

#include "runtime/text.hpp"
#include "runtime/values.hpp"

namespace troupe::node {

namespace {

// "name:x:uid:gid:..." lines of an /etc/passwd or /etc/group in the image.
std::optional<std::pair<uint32_t, uint32_t>> lookup(const std::filesystem::path& file,
                                                    const std::string& name) {
  std::ifstream in{file};
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss{line};
    std::string part;
    while (std::getline(ss, part, ':'))
      f.push_back(part);
    if (f.size() < 3 || f[0] != name)
      continue;
    auto id = parse_integer(f[2]);
    auto gid = f.size() > 3 ? parse_integer(f[3]) : id;
    if (id && *id >= 0 && gid && *gid >= 0)
      return std::make_pair(static_cast<uint32_t>(*id), static_cast<uint32_t>(*gid));
  }
  return std::nullopt;
}

// "uid[:gid]" or "name[:group]", names resolved in the image's files.
status resolve_user(const std::string& user, const std::filesystem::path& rootfs,
                    runc::container_config& out) {
  if (user.empty())
    return {};
  auto colon = user.find(':');
  auto who = user.substr(0, colon);
  auto group = colon == std::string::npos ? std::string{} : user.substr(colon + 1);
  if (auto n = parse_integer(who); n && *n >= 0 && *n <= UINT32_MAX) {
    out.uid = out.gid = static_cast<uint32_t>(*n);
  } else if (auto found = lookup(rootfs / "etc/passwd", who)) {
    out.uid = found->first;
    out.gid = found->second;
  } else {
    return error{"user " + quote(who) + " is neither a uid nor a user in the image's /etc/passwd"};
  }
  if (group.empty())
    return {};
  if (auto n = parse_integer(group); n && *n >= 0 && *n <= UINT32_MAX)
    out.gid = static_cast<uint32_t>(*n);
  else if (auto found = lookup(rootfs / "etc/group", group))
    out.gid = found->first;
  else
    return error{"group " + quote(group) + " is neither a gid nor a group in the image's /etc/group"};
  return {};
}

// Image env first, then the task's, a later key replacing an earlier one.
std::vector<std::string> merge_env(const v1::ImageConfig& image, const v1::TaskSpec& spec) {
  std::vector<std::string> env;
  std::map<std::string, std::size_t> at;
  auto set = [&](const std::string& key, const std::string& kv) {
    if (auto i = at.find(key); i != at.end()) {
      env[i->second] = kv;
    } else {
      at[key] = env.size();
      env.push_back(kv);
    }
  };
  for (auto& kv : image.env())
    set(kv.substr(0, kv.find('=')), kv);
  for (auto& [k, v] : spec.env())
    set(k, k + "=" + v);
  return env;
}

} // namespace

status validate_spec(const v1::TaskSpec& spec) {
  if (!spec.name().empty() && !valid_node_name(spec.name()))
    return error{"name " + quote(spec.name()) + " must match [a-z0-9][a-z0-9._-]{0,62}"};
  if (spec.image().empty())
    return error{"image is required"};
  auto& r = spec.restart();
  if (!r.policy().empty() && r.policy() != "always" && r.policy() != "on-failure" && r.policy() != "never")
    return error{"restart.policy " + quote(r.policy()) + " must be always, on-failure or never"};
  if (r.delay_ms() > 5 * 60 * 1000)
    return error{"restart.delay_ms " + std::to_string(r.delay_ms()) + " is over 5 minutes"};
  std::set<std::string> port_names;
  for (auto& p : spec.ports()) {
    // The name becomes part of an environment variable (PORT_<name>).
    if (p.name().empty() || p.name().size() > 63 ||
        p.name().find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
          std::string::npos)
      return error{"ports: name " + quote(p.name()) + " must match [A-Za-z0-9_]{1,63}"};
    if (!port_names.insert(p.name()).second)
      return error{"ports: name " + quote(p.name()) + " appears twice"};
    if (p.port() > 65535)
      return error{"ports." + p.name() + ": " + std::to_string(p.port()) + " is outside 0..65535"};
  }
  for (auto& v : spec.volumes()) {
    if (v.source().empty() || v.target().empty() || v.target()[0] != '/')
      return error{"volumes: " + quote(v.source()) + " -> " + quote(v.target()) +
                   ": source is required and target must be an absolute path"};
  }
  for (auto& [k, v] : spec.env())
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
      return error{"env: key " + quote(k) + " is not a variable name"};
  auto& res = spec.resources();
  if (res.memory_bytes() != 0 && static_cast<int64_t>(res.memory_bytes()) < runc::min_memory_bytes)
    return error{"resources.memory_bytes: " + std::to_string(res.memory_bytes()) +
                 " is under the 4 MiB minimum"};
  if (auto ram = runc::host_memory_bytes(); ram > 0 && static_cast<int64_t>(res.memory_bytes()) > ram)
    return error{"resources.memory_bytes: " + std::to_string(res.memory_bytes()) + " is more than this host's " +
                 std::to_string(ram) + " bytes of RAM"};
  if (res.cpu_millis() != 0 && (res.cpu_millis() < runc::min_cpu_millis || res.cpu_millis() > runc::max_cpu_millis))
    return error{"resources.cpu_millis: " + std::to_string(res.cpu_millis()) + " is outside " +
                 std::to_string(runc::min_cpu_millis) + ".." + std::to_string(runc::max_cpu_millis)};
  if (res.pids() > runc::max_pids_limit)
    return error{"resources.pids: " + std::to_string(res.pids()) + " is over " + std::to_string(runc::max_pids_limit)};
  if (spec.stop_grace_ms() > 3600 * 1000)
    return error{"stop_grace_ms " + std::to_string(spec.stop_grace_ms()) + " is over 1 hour"};
  return {};
}

result<runc::container_config> resolve(const resolve_input& in) {
  auto& spec = *in.spec;
  auto& img = in.image->config();
  runc::container_config c;
  c.id = in.container_id;
  c.rootfs = in.rootfs;
  if (spec.command_size() > 0) {
    c.args.assign(spec.command().begin(), spec.command().end());
  } else {
    c.args.assign(img.entrypoint().begin(), img.entrypoint().end());
    c.args.insert(c.args.end(), img.cmd().begin(), img.cmd().end());
  }
  if (c.args.empty())
    return error{"command: image " + quote(in.image->name()) +
                 " has no entrypoint or cmd, so the task must give a command"};
  c.env = merge_env(img, spec);
  c.cwd = !spec.working_dir().empty() ? spec.working_dir()
          : !img.working_dir().empty() ? img.working_dir()
                                       : "/";
  if (auto st = resolve_user(spec.user().empty() ? img.user() : spec.user(), in.rootfs, c); !st)
    return st.error().with_context("user");
  c.hostname = spec.hostname();
  for (auto& v : spec.volumes()) {
    runc::mount_spec m;
    m.container_path = v.target();
    m.read_only = v.read_only();
    if (v.source()[0] == '/') {
      m.host_path = v.source();
    } else {
      auto dir = runc::ensure_named_volume(in.volumes_root, v.source());
      if (!dir)
        return dir.error().with_context("volumes." + v.source());
      m.host_path = *dir;
    }
    c.mounts.push_back(std::move(m));
  }
  c.cpu_millis = spec.resources().cpu_millis();
  c.memory_bytes = static_cast<int64_t>(spec.resources().memory_bytes());
  c.pids_limit = spec.resources().pids();
  c.read_only_rootfs = spec.read_only_rootfs();
  c.ports = in.ports;
  if (spec.stop_grace_ms() > 0)
    c.stop_grace = std::chrono::milliseconds{spec.stop_grace_ms()};
  if (auto st = runc::validate(c); !st)
    return st.error();
  return c;
}

} // namespace troupe::node
