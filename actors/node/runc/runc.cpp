#include "actors/node/runc/runc.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "actors/node/runc/bundle.hpp"
#include "actors/node/runc/process.hpp"
#include "actors/node/runc/shim.hpp"
#include "runtime/text.hpp"

namespace troupe::runc {
namespace fs = std::filesystem;
namespace {

status write_file(const fs::path& file, const std::string& text) {
  auto tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << text;
    if (!out.flush()) {
      int why = errno; // what the failed write left (ENOSPC: disk full)
      std::error_code ec;
      out.close();
      fs::remove(tmp, ec);
      return error{"writing " + quote(tmp.native()) + ": " + std::strerror(why)};
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec)
    return error{"renaming " + quote(tmp.native()) + ": " + ec.message()};
  return {};
}

result<container_status> parse_status(const std::string& s) {
  if (s == "creating")
    return container_status::creating;
  if (s == "created")
    return container_status::created;
  if (s == "running")
    return container_status::running;
  if (s == "paused")
    return container_status::paused;
  if (s == "stopped")
    return container_status::stopped;
  return error{"runc reports the unknown status " + quote(s)};
}

} // namespace

fs::path find_shim_binary() {
  if (const char* env = std::getenv("TROUPE_SHIM"); env != nullptr && is_executable(env))
    return env;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && is_executable(self.parent_path() / "troupe-shim"))
    return self.parent_path() / "troupe-shim";
#ifdef TROUPE_SHIM_BUILD_PATH
  if (is_executable(TROUPE_SHIM_BUILD_PATH))
    return TROUPE_SHIM_BUILD_PATH;
#endif
  return find_in_path("troupe-shim");
}

runc_driver::runc_driver(driver_config config)
    : config_(std::move(config)), mode_(detect_cgroup_mode()), swap_limit_(swap_limit_supported(mode_)) {
  if (config_.runc_binary.empty())
    config_.runc_binary = find_in_path("runc");
  if (config_.shim_binary.empty())
    config_.shim_binary = find_shim_binary();
}

result<runc_driver> runc_driver::detect(driver_config config) {
  if (::geteuid() != 0)
    return error{"the runc driver needs root; this process runs as uid " + std::to_string(::geteuid())};
  if (auto s = check_cgroup_parent(config.cgroup_parent); !s)
    return s.error();
  if (!config.state_root.is_absolute())
    return error{"state_root " + quote(config.state_root.native()) + " is not an absolute path"};
  runc_driver driver{std::move(config)};
  auto& c = driver.config_;
  if (!is_executable(c.runc_binary))
    return error{c.runc_binary.empty() ? "runc is not in PATH"
                                       : "runc binary " + quote(c.runc_binary.native()) + " is not executable"};
  auto version = run_command({c.runc_binary.native(), "--version"}, std::chrono::milliseconds{10000});
  if (!version)
    return version.error();
  if (!version->success())
    return error{describe_command({c.runc_binary.native(), "--version"}) + " failed: " + version->describe()};
  driver.runc_version_ = trim(version->out.substr(0, version->out.find('\n')));
  if (!is_executable(c.shim_binary))
    return error{"troupe-shim not found ($TROUPE_SHIM, next to this program, in the build tree or in PATH); "
                 "set driver_config.shim_binary"};
  if (::access("/sys/fs/cgroup", F_OK) != 0)
    return error{"/sys/fs/cgroup does not exist: no cgroups to limit containers with"};
  std::error_code ec;
  fs::create_directories(c.state_root, ec);
  if (ec)
    return error{"creating state_root " + quote(c.state_root.native()) + ": " + ec.message()};
  mark_unrelated_subdirs(c.state_root); // runc makes a dir per container in it
  fs::permissions(c.state_root, fs::perms::owner_all, ec);
  return driver;
}

std::string runc_driver::describe() const {
  return "runc version=" + quote(runc_version_) + " cgroup=" + runc::describe(mode_);
}

void runc_driver::remove_cgroup_parent() const {
  runc::remove_cgroup_parent(config_.cgroup_parent);
}

std::string runc_driver::cgroups_path(const std::string& id) const {
  return "/" + config_.cgroup_parent + "/" + id;
}

std::vector<std::string> runc_driver::runc_argv(std::initializer_list<std::string> args) const {
  std::vector<std::string> argv{config_.runc_binary.native(), "--root", config_.state_root.native()};
  argv.insert(argv.end(), args);
  return argv;
}

result<command_result> runc_driver::run_runc(std::initializer_list<std::string> args) const {
  auto argv = runc_argv(args);
  auto r = run_command(argv, config_.command_timeout);
  if (!r)
    return r.error();
  if (!r->success())
    return error{describe_command(argv) + " failed: " + r->describe()};
  return r;
}

result<started_container> runc_driver::start(const container_config& config, const fs::path& bundle_dir,
                                             const fs::path& stdout_log, const fs::path& stderr_log) const {
  auto context = "starting container " + config.id;
  if (auto s = validate(config); !s)
    return s.error().with_context(context);
  if (!bundle_dir.is_absolute() || !stdout_log.is_absolute() || !stderr_log.is_absolute())
    return error{context + ": bundle dir and log paths must be absolute"};
  if (!valid_container_id(config.id))
    return error{context + ": container id " + quote(config.id) + " is not valid"};
  if (known_to_runc(config.id))
    return error{context + ": runc already has it (" + quote((config_.state_root / config.id).native()) + " exists)"};
  if (shim::alive(bundle_dir)) // another container's live bundle: its layer must stay
    return error{context + ": bundle dir " + quote(bundle_dir.native()) + " belongs to a running container"};
  // Leftovers of a start that crashed half-way: nothing runs from them.
  if (auto s = release_writable_layer(bundle_dir); !s)
    return s.error().with_context(context);
  auto layer = prepare_layer(config.rootfs, bundle_dir);
  if (!layer)
    return layer.error().with_context(context);
  auto fail = [&](const error& e) -> result<started_container> {
    (void)shim::wait_gone(bundle_dir, std::chrono::seconds{5}); // a failing shim is about to exit
    (void)release_writable_layer(bundle_dir);
    return e.with_context(context);
  };
  container_config resolved = config;
  resolved.rootfs = layer->path;
  auto json = render_config_json(resolved, mode_, cgroups_path(config.id), swap_limit_);
  if (!json)
    return fail(json.error());
  if (auto s = write_file(bundle_dir / "config.json", *json); !s)
    return fail(s.error());
  std::error_code ec;
  fs::create_directories(stdout_log.parent_path(), ec);
  fs::create_directories(stderr_log.parent_path(), ec);
  auto pid = launch_shim(config, bundle_dir, stdout_log, stderr_log, *layer);
  if (!pid) {
    if (!layer->mount_options.empty()) { // the next start tries the mount here, and falls back to a copy
      std::lock_guard lock{overlays_->mu};
      overlays_->good.erase(config.rootfs.native());
    }
    return fail(pid.error());
  }
  return started_container{*pid, layer->kind, layer->note};
}

result<prepared_rootfs> runc_driver::prepare_layer(const fs::path& image_rootfs, const fs::path& bundle_dir) const {
  bool known = false;
  if (config_.layer != layer_preference::copy_only) {
    std::lock_guard lock{overlays_->mu};
    known = overlays_->good.count(image_rootfs.native()) > 0;
  }
  if (known)
    return prepare_overlay_dirs(image_rootfs, bundle_dir);
  auto layer = prepare_writable_layer(image_rootfs, bundle_dir, config_.layer);
  if (layer && layer->kind == layer_kind::overlay) {
    std::lock_guard lock{overlays_->mu};
    overlays_->good.insert(image_rootfs.native());
  }
  return layer;
}

result<int> runc_driver::launch_shim(const container_config& config, const fs::path& bundle_dir,
                                     const fs::path& stdout_log, const fs::path& stderr_log,
                                     const prepared_rootfs& layer) const {
  if (!is_executable(config_.shim_binary))
    return error{"troupe-shim " + quote(config_.shim_binary.native()) + " is not executable"};
  shim::arguments args;
  args.runc = config_.runc_binary;
  args.root = config_.state_root;
  args.id = config.id;
  args.bundle = bundle_dir;
  args.stdout_log = stdout_log;
  args.stderr_log = stderr_log;
  if (auto memory = cgroup_dir(mode_, "memory", cgroups_path(config.id)))
    args.memory_cgroup = *memory; // without it the shim cannot tell OOM kills
  args.timeout = config_.command_timeout;
  args.overlay = layer.mount_options;
  args.rootfs = layer.path;
  return shim::launch(config_.shim_binary, args, 2 * config_.command_timeout + std::chrono::seconds{5});
}

bool runc_driver::known_to_runc(const std::string& id) const {
  // runc keeps one directory per container under its root, from the
  // moment it creates one until it deletes it: the answer of `runc state`
  // (absent or not) without a runc process.
  return ::access((config_.state_root / id).c_str(), F_OK) == 0 || errno != ENOENT;
}

result<container_state> runc_driver::state(const std::string& id) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  if (!known_to_runc(id))
    return container_state{id, container_status::absent, 0, {}};
  auto argv = runc_argv({"state", id});
  auto r = run_command(argv, config_.command_timeout);
  if (!r)
    return r.error();
  if (!r->success()) {
    if (!known_to_runc(id)) // deleted meanwhile
      return container_state{id, container_status::absent, 0, {}};
    return error{describe_command(argv) + " failed: " + r->describe()};
  }
  try {
    YAML::Node doc = YAML::Load(r->out); // JSON is YAML
    auto status = parse_status(doc["status"].as<std::string>());
    if (!status)
      return status.error();
    return container_state{id, *status, doc["pid"] ? doc["pid"].as<int>() : 0,
                           doc["bundle"] ? doc["bundle"].as<std::string>() : std::string{}};
  } catch (const YAML::Exception& e) {
    return error{describe_command(argv) + " printed JSON that does not parse: " + e.what()};
  }
}

result<std::vector<std::string>> runc_driver::list() const {
  auto r = run_runc({"list", "--format", "json"});
  if (!r)
    return r.error();
  std::vector<std::string> ids;
  try {
    YAML::Node doc = YAML::Load(r->out);
    if (doc.IsSequence()) // runc prints null when there are none
      for (const auto& c : doc)
        ids.push_back(c["id"].as<std::string>());
  } catch (const YAML::Exception& e) {
    return error{"runc list printed JSON that does not parse: " + std::string{e.what()}};
  }
  return ids;
}

status runc_driver::kill(const std::string& id, int signal) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  auto r = run_runc({"kill", id, std::to_string(signal)});
  if (!r)
    return r.error();
  return {};
}

result<std::optional<exit_info>> runc_driver::wait_exit(const fs::path& bundle_dir,
                                                       std::chrono::milliseconds timeout) const {
  return shim::wait_exit(bundle_dir, timeout);
}

result<exit_info> runc_driver::stop(const std::string& id, const fs::path& bundle_dir,
                                    std::chrono::milliseconds grace) const {
  if (!valid_container_id(id))
    return error{"stopping container " + id + ": container id " + quote(id) + " is not valid"};
  // Signalled when runc has it: a container that has stopped meanwhile only
  // fails the signal, and the wait decides.
  return stop_sequence(id, bundle_dir, known_to_runc(id), grace, config_.command_timeout, remove_when::exited);
}

status runc_driver::remove(const std::string& id, const fs::path& bundle_dir) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  if (known_to_runc(id)) {
    // Also deletes what an aborted create left (a directory without state).
    auto deleted = run_runc({"delete", "--force", id});
    if (!deleted && known_to_runc(id)) // deleted by someone else meanwhile is fine
      return deleted.error();
  }
  // The shim records the exit of a force-deleted container; let it finish
  // before its directory goes.
  (void)shim::wait_gone(bundle_dir, std::chrono::seconds{5});
  return release_writable_layer(bundle_dir);
}

result<exec_result> runc_driver::exec(const std::string& id, const std::vector<std::string>& argv,
                                      std::chrono::milliseconds timeout) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  if (argv.empty())
    return error{"exec in container " + id + ": no command"};
  // Killing runc leaves what it started in the container running: that one
  // (a session leader: runc setsid()s it) and its process group are found
  // through the pid runc writes.
  std::string pid_file = (fs::temp_directory_path() / "troupe-exec.XXXXXX").native();
  int fd = ::mkstemp(pid_file.data());
  if (fd < 0)
    return error{"exec in container " + id + ": creating a pid file in " + quote(fs::temp_directory_path().native()) +
                 ": " + std::strerror(errno)};
  ::close(fd);
  auto command = runc_argv({"exec", "--pid-file", pid_file, id});
  command.insert(command.end(), argv.begin(), argv.end());
  auto ran = run_exec(id, argv, command, timeout);
  if (!ran) {
    std::ifstream in{pid_file};
    int pid = 0;
    if (in >> pid && pid > 0 && ::kill(-pid, SIGKILL) != 0)
      ::kill(pid, SIGKILL);
  }
  std::error_code ec;
  fs::remove(pid_file, ec);
  return ran;
}

result<usage> runc_driver::stats(const std::string& id) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  auto u = read_usage(mode_, cgroups_path(id));
  if (!u)
    return u.error().with_context("stats of container " + id);
  return u;
}

} // namespace troupe::runc
