#include "actors/node/runc/runc.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "actors/node/runc/bundle.hpp"
#include "actors/node/runc/process.hpp"
#include "actors/node/runc/shim.hpp"
#include "runtime/text.hpp"

namespace troupe::runc {
namespace fs = std::filesystem;
namespace {

using clock = std::chrono::steady_clock;

bool executable(const fs::path& p) {
  struct stat st {};
  return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

std::chrono::milliseconds remaining(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? std::chrono::milliseconds{0} : left;
}

status valid_cgroup_parent(const std::string& parent) {
  bool ok = !parent.empty() && parent.size() <= 200 && parent.front() != '/' && parent.back() != '/';
  for (char c : parent)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '/');
  for (const auto& part : fs::path{parent})
    ok = ok && part != "." && part != ".." && !part.empty();
  if (!ok)
    return error{"cgroup_parent " + quote(parent) + " is not a relative path of [a-zA-Z0-9_.-] names"};
  return {};
}

status write_file(const fs::path& file, const std::string& text) {
  auto tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out{tmp, std::ios::trunc};
    out << text;
    if (!out.flush())
      return error{"writing " + quote(tmp.native())};
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

// Reads the shim's one-line report; the pipe closes after it.
result<std::string> read_report(int fd, clock::time_point deadline) {
  std::string text;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
    if (ready == 0)
      return error{"troupe-shim did not report within the timeout"};
    if (ready < 0 && errno == EINTR)
      continue;
    char buf[1024];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return text;
    text.append(buf, static_cast<std::size_t>(got));
    if (text.size() > 64 * 1024)
      return text;
  }
}

} // namespace

const char* describe(container_status status) {
  switch (status) {
  case container_status::absent: return "absent";
  case container_status::creating: return "creating";
  case container_status::created: return "created";
  case container_status::running: return "running";
  case container_status::paused: return "paused";
  case container_status::stopped: return "stopped";
  }
  return "unknown";
}

fs::path find_shim_binary() {
  if (const char* env = std::getenv("TROUPE_SHIM"); env != nullptr && executable(env))
    return env;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && executable(self.parent_path() / "troupe-shim"))
    return self.parent_path() / "troupe-shim";
#ifdef TROUPE_SHIM_BUILD_PATH
  if (executable(TROUPE_SHIM_BUILD_PATH))
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
  if (auto s = valid_cgroup_parent(config.cgroup_parent); !s)
    return s.error();
  if (!config.state_root.is_absolute())
    return error{"state_root " + quote(config.state_root.native()) + " is not an absolute path"};
  runc_driver driver{std::move(config)};
  auto& c = driver.config_;
  if (!executable(c.runc_binary))
    return error{c.runc_binary.empty() ? "runc is not in PATH"
                                       : "runc binary " + quote(c.runc_binary.native()) + " is not executable"};
  auto version = run_command({c.runc_binary.native(), "--version"}, std::chrono::milliseconds{10000});
  if (!version)
    return version.error();
  if (!version->success())
    return error{describe_command({c.runc_binary.native(), "--version"}) + " failed: " + version->describe()};
  driver.runc_version_ = trim(version->out.substr(0, version->out.find('\n')));
  if (!executable(c.shim_binary))
    return error{"troupe-shim not found ($TROUPE_SHIM, next to this program, in the build tree or in PATH); "
                 "set driver_config.shim_binary"};
  if (::access("/sys/fs/cgroup", F_OK) != 0)
    return error{"/sys/fs/cgroup does not exist: no cgroups to limit containers with"};
  std::error_code ec;
  fs::create_directories(c.state_root, ec);
  if (ec)
    return error{"creating state_root " + quote(c.state_root.native()) + ": " + ec.message()};
  fs::permissions(c.state_root, fs::perms::owner_all, ec);
  return driver;
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
  auto existing = state(config.id);
  if (!existing)
    return existing.error().with_context(context);
  if (existing->status != container_status::absent)
    return error{context + ": runc already has it (" + describe(existing->status) + ")"};
  if (shim::alive(bundle_dir)) // another container's live bundle: its layer must stay
    return error{context + ": bundle dir " + quote(bundle_dir.native()) + " belongs to a running container"};
  // Leftovers of a start that crashed half-way: nothing runs from them.
  if (auto s = release_writable_layer(bundle_dir); !s)
    return s.error().with_context(context);
  auto layer = prepare_writable_layer(config.rootfs, bundle_dir, config_.layer);
  if (!layer)
    return layer.error().with_context(context);
  auto fail = [&](const error& e) -> result<started_container> {
    auto deadline = clock::now() + std::chrono::seconds{5}; // a failing shim is about to exit
    while (shim::alive(bundle_dir) && clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
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
  auto pid = launch_shim(config, bundle_dir, stdout_log, stderr_log);
  if (!pid)
    return fail(pid.error());
  return started_container{*pid, layer->kind, layer->note};
}

result<int> runc_driver::launch_shim(const container_config& config, const fs::path& bundle_dir,
                                     const fs::path& stdout_log, const fs::path& stderr_log) const {
  if (!executable(config_.shim_binary))
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

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int log = ::open((bundle_dir / shim::shim_log).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int pipe_fds[2] = {-1, -1};
  bool opened = devnull >= 0 && log >= 0 && ::pipe2(pipe_fds, O_CLOEXEC) == 0;
  int saved = errno;
  result<pid_t> pid = error{"not started"};
  if (opened)
    pid = spawn_process(shim::to_argv(config_.shim_binary, args),
                        {{devnull, 0}, {log, 1}, {log, 2}, {pipe_fds[1], shim::report_fd}});
  for (int fd : {devnull, log, pipe_fds[1]})
    if (fd >= 0)
      ::close(fd);
  if (!opened) {
    if (pipe_fds[0] >= 0)
      ::close(pipe_fds[0]);
    return error{"preparing troupe-shim's descriptors: " + std::string{std::strerror(saved)}};
  }
  if (!pid) {
    ::close(pipe_fds[0]);
    return pid.error();
  }
  // The first shim process forks the real shim and exits at once.
  (void)wait_child(*pid, std::chrono::milliseconds{5000});
  auto deadline = clock::now() + 2 * config_.command_timeout + std::chrono::seconds{5};
  auto report = read_report(pipe_fds[0], deadline);
  ::close(pipe_fds[0]);
  if (!report)
    return report.error();
  auto line = trim(*report, 64 * 1024);
  if (line.rfind("started ", 0) == 0) {
    int container_pid = std::atoi(line.c_str() + 8);
    if (container_pid > 0)
      return container_pid;
  }
  if (line.rfind("error ", 0) == 0)
    return error{line.substr(6)};
  return error{"troupe-shim reported " + quote(line, 400) + " (see " + (bundle_dir / shim::shim_log).native() + ")"};
}

result<container_state> runc_driver::state(const std::string& id) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  auto argv = runc_argv({"state", id});
  auto r = run_command(argv, config_.command_timeout);
  if (!r)
    return r.error();
  if (!r->success()) {
    // runc keeps one directory per container under its root.
    if (::access((config_.state_root / id).c_str(), F_OK) != 0 && errno == ENOENT)
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
  auto deadline = clock::now() + timeout;
  auto record = bundle_dir / shim::exit_file;
  if (::access(bundle_dir.c_str(), F_OK) != 0)
    return error{"bundle dir " + quote(bundle_dir.native()) + " is gone (the container was removed)"};
  // inotify wakes us when the shim renames the record into place; the
  // periodic wake-up notices a shim that died without one.
  int watch = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (watch >= 0 && ::inotify_add_watch(watch, bundle_dir.c_str(), IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF) < 0) {
    ::close(watch);
    watch = -1;
  }
  result<std::optional<exit_info>> outcome = std::optional<exit_info>{};
  for (;;) {
    outcome = read_exit_record(record);
    if (!outcome || outcome->has_value())
      break;
    if (!shim::alive(bundle_dir)) {
      outcome = read_exit_record(record); // written just before the shim let go
      if (outcome && !outcome->has_value())
        outcome = error{"the shim of the container in " + quote(bundle_dir.native()) +
                        " is gone without recording an exit (killed, or the host restarted)"};
      break;
    }
    auto left = remaining(deadline);
    if (left.count() == 0)
      break;
    if (watch >= 0) {
      pollfd p{watch, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds{500}).count()));
      char events[4096];
      while (::read(watch, events, sizeof events) > 0) {
      }
    } else {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds{50}));
    }
  }
  if (watch >= 0)
    ::close(watch);
  return outcome;
}

result<exit_info> runc_driver::stop(const std::string& id, const fs::path& bundle_dir,
                                    std::chrono::milliseconds grace) const {
  auto context = "stopping container " + id;
  auto current = state(id);
  if (!current)
    return current.error().with_context(context);
  status signalled;
  if (current->status != container_status::absent && current->status != container_status::stopped)
    signalled = kill(id, SIGTERM); // it may exit meanwhile: the wait below decides
  auto ended = wait_exit(bundle_dir, grace);
  if (ended && !ended->has_value()) {
    signalled = kill(id, SIGKILL);
    ended = wait_exit(bundle_dir, config_.command_timeout);
  }
  if (!ended)
    return ended.error().with_context(context);
  if (!ended->has_value())
    return error{context + ": still running after SIGKILL" +
                 (signalled ? std::string{} : " (" + signalled.error().message() + ")")};
  if (auto s = remove(id, bundle_dir); !s)
    return s.error().with_context(context);
  return **ended;
}

status runc_driver::remove(const std::string& id, const fs::path& bundle_dir) const {
  auto current = state(id);
  if (!current)
    return current.error();
  if (current->status != container_status::absent) {
    auto deleted = run_runc({"delete", "--force", id});
    if (!deleted) {
      auto again = state(id); // deleted by someone else meanwhile is fine
      if (!again || again->status != container_status::absent)
        return deleted.error();
    }
  }
  // The shim records the exit of a force-deleted container; let it finish
  // before its directory goes.
  auto deadline = clock::now() + std::chrono::seconds{5};
  while (shim::alive(bundle_dir) && clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  return release_writable_layer(bundle_dir);
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
