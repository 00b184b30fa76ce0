#include "actors/node/runc/process_driver.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "actors/node/runc/process.hpp"
#include "actors/node/runc/runc.hpp"
#include "actors/node/runc/shim.hpp"
#include "runtime/text.hpp"

namespace troupe::runc {
namespace fs = std::filesystem;
namespace {

std::string path_of(const std::vector<std::string>& env) {
  for (const auto& e : env)
    if (e.rfind("PATH=", 0) == 0)
      return e.substr(5);
  return {};
}

/// What execve runs for args[0]: a path as given (a relative one from the
/// cwd, as a shell would), else the program found on the PATH of `env`.
result<fs::path> program_of(const std::string& arg0, const std::vector<std::string>& env) {
  if (arg0.find('/') != std::string::npos)
    return fs::path{arg0};
  auto path = path_of(env);
  auto found = find_in_path(arg0, path);
  if (found.empty())
    return error{quote(arg0) + " is not an executable in the task's PATH " + quote(path, 300) +
                 " on this host (the process driver does not use the image)"};
  return found;
}

bool wants_limits(const container_config& c) {
  return c.memory_bytes > 0 || c.cpu_millis > 0 || c.pids_limit > 0;
}

status write_spec(const fs::path& file, const shim::process_spec& spec) {
  std::ofstream out{file, std::ios::binary | std::ios::trunc};
  out << shim::encode_process_spec(spec);
  if (!out.flush())
    return error{"writing " + quote(file.native()) + ": " + std::strerror(errno)};
  return {};
}

} // namespace

process_driver::process_driver(process_driver_config config)
    : config_(std::move(config)), mode_(detect_cgroup_mode()) {
  if (config_.shim_binary.empty())
    config_.shim_binary = find_shim_binary();
}

result<process_driver> process_driver::detect(process_driver_config config) {
  if (auto s = check_cgroup_parent(config.cgroup_parent); !s)
    return s.error();
  if (!config.state_root.is_absolute())
    return error{"state_root " + quote(config.state_root.native()) + " is not an absolute path"};
  process_driver driver{std::move(config)};
  auto& c = driver.config_;
  if (!is_executable(c.shim_binary))
    return error{"troupe-shim not found ($TROUPE_SHIM, next to this program, in the build tree or in PATH); "
                 "set process_driver_config.shim_binary"};
  std::error_code ec;
  fs::create_directories(c.state_root, ec);
  if (ec)
    return error{"creating state_root " + quote(c.state_root.native()) + ": " + ec.message()};
  fs::permissions(c.state_root, fs::perms::owner_all, ec);
  if (!c.use_cgroups) {
    driver.limits_problem_ = "cgroups are turned off for this driver";
  } else if (::geteuid() != 0) {
    driver.limits_problem_ = "the agent runs as uid " + std::to_string(::geteuid()) + ", not root, and cannot create cgroups";
  } else if (::access("/sys/fs/cgroup", F_OK) != 0) {
    driver.limits_problem_ = "/sys/fs/cgroup does not exist";
  } else if (auto s = prepare_cgroup_parent(driver.mode_, c.cgroup_parent); !s) {
    driver.limits_problem_ = "cgroups are not usable: " + s.error().message();
  } else {
    driver.limits_problem_.clear();
  }
  return driver;
}

std::string process_driver::describe() const {
  std::string limits = limits_problem_.empty() ? std::string{"cgroup "} + runc::describe(mode_)
                                               : quote("not enforced: " + limits_problem_, 300);
  return "process isolation=none limits=" + limits;
}

std::string process_driver::cgroups_path(const std::string& id) const {
  return "/" + config_.cgroup_parent + "/" + id;
}

result<shim::process_spec> process_driver::spec_for(const container_config& config) const {
  shim::process_spec spec;
  spec.args = config.args;
  spec.env = effective_env(config);
  spec.cwd = config.cwd;
  auto program = program_of(config.args.front(), spec.env);
  if (!program)
    return program.error().with_context("args[0]");
  spec.executable = *program;
  if (::geteuid() == 0) {
    spec.switch_user = true;
    spec.uid = config.uid;
    spec.gid = config.gid;
  } else if ((config.uid != 0 || config.gid != 0) && (config.uid != ::geteuid() || config.gid != ::getegid())) {
    return error{"user: the process driver runs commands as uid " + std::to_string(::geteuid()) +
                 " (the agent is not root) and cannot switch to " + std::to_string(config.uid) + ":" +
                 std::to_string(config.gid)};
  }
  return spec;
}

result<started_container> process_driver::start(const container_config& config, const fs::path& bundle_dir,
                                                 const fs::path& stdout_log, const fs::path& stderr_log) const {
  auto context = "starting process " + config.id;
  if (auto s = validate(config); !s)
    return s.error().with_context(context);
  if (!config.mounts.empty())
    return error{context + ": volumes: the process driver runs commands on the host and cannot mount volumes"};
  if (!bundle_dir.is_absolute() || !stdout_log.is_absolute() || !stderr_log.is_absolute())
    return error{context + ": bundle dir and log paths must be absolute"};
  auto existing = state(config.id);
  if (!existing)
    return existing.error().with_context(context);
  if (existing->status != container_status::absent)
    return error{context + ": the process driver already has it (" + runc::describe(existing->status) + ")"};
  if (shim::alive(bundle_dir))
    return error{context + ": bundle dir " + quote(bundle_dir.native()) + " belongs to a running container"};
  auto spec = spec_for(config);
  if (!spec)
    return spec.error().with_context(context);

  std::error_code ec;
  fs::remove_all(bundle_dir, ec); // leftovers of a start that crashed half-way
  fs::create_directories(bundle_dir, ec);
  if (ec)
    return error{context + ": creating " + quote(bundle_dir.native()) + ": " + ec.message()};
  bool cgroups = limits_problem_.empty();
  auto fail = [&](const error& e) -> result<started_container> {
    (void)shim::wait_gone(bundle_dir, std::chrono::seconds{5}); // a failing shim is about to exit
    if (cgroups)
      remove_cgroup(mode_, cgroups_path(config.id));
    std::error_code ignored;
    fs::remove(link(config.id), ignored);
    fs::remove_all(bundle_dir, ignored);
    return e.with_context(context);
  };
  started_container out;
  out.layer = layer_kind::none;
  shim::arguments args;
  if (cgroups) {
    auto dirs = create_cgroup(mode_, cgroups_path(config.id),
                              cgroup_limits{config.cpu_millis, config.memory_bytes, config.pids_limit});
    if (!dirs)
      return fail(dirs.error());
    spec->cgroups = *dirs;
    if (auto memory = cgroup_dir(mode_, "memory", cgroups_path(config.id)))
      args.memory_cgroup = *memory;
  } else if (wants_limits(config)) {
    out.note = "limits not enforced: " + limits_problem_;
  }
  args.id = config.id;
  args.bundle = bundle_dir;
  args.stdout_log = stdout_log;
  args.stderr_log = stderr_log;
  args.timeout = config_.command_timeout;
  args.process_spec = bundle_dir / shim::process_spec_file;
  if (auto s = write_spec(args.process_spec, *spec); !s)
    return fail(s.error());
  // The link first: an agent that dies during the launch still finds the id.
  fs::create_symlink(bundle_dir, link(config.id), ec);
  if (ec)
    return fail(error{"linking " + quote(link(config.id).native()) + ": " + ec.message()});
  fs::create_directories(stdout_log.parent_path(), ec);
  fs::create_directories(stderr_log.parent_path(), ec);
  if (!is_executable(config_.shim_binary))
    return fail(error{"troupe-shim " + quote(config_.shim_binary.native()) + " is not executable"});
  auto pid = shim::launch(config_.shim_binary, args, config_.command_timeout + std::chrono::seconds{5});
  if (!pid)
    return fail(pid.error());
  out.pid = *pid;
  return out;
}

result<container_state> process_driver::state(const std::string& id) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  std::error_code ec;
  auto bundle = fs::read_symlink(link(id), ec);
  if (ec == std::errc::no_such_file_or_directory)
    return container_state{id, container_status::absent, 0, {}};
  if (ec)
    return error{"reading " + quote(link(id).native()) + ": " + ec.message()};
  container_state st{id, container_status::stopped, 0, bundle};
  if (!fs::exists(bundle, ec))
    return st; // its bundle is gone: only the link is left to remove
  auto init = shim::read_init_pid(bundle);
  st.pid = init.pid;
  auto record = read_exit_record(bundle / shim::exit_file);
  if (!record || record->has_value())
    return st;
  if (shim::alive(bundle)) {
    st.status = init.pid > 0 ? container_status::running : container_status::creating;
    return st;
  }
  // The shim is gone without a record: the command may run on, orphaned.
  if (init.pid > 0 && same_process(init.pid, init.start_time))
    st.status = container_status::running;
  return st;
}

result<std::vector<std::string>> process_driver::list() const {
  std::vector<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it{config_.state_root, ec}, end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (it->is_symlink(ec) && valid_container_id(name))
      ids.push_back(name);
  }
  if (ec)
    return error{"listing " + quote(config_.state_root.native()) + ": " + ec.message()};
  std::sort(ids.begin(), ids.end());
  return ids;
}

void process_driver::kill_orphan(const fs::path& bundle, int signal) const {
  auto init = shim::read_init_pid(bundle);
  if (init.pid <= 0 || !same_process(init.pid, init.start_time))
    return;
  if (::kill(-init.pid, signal) != 0)
    ::kill(init.pid, signal);
}

status process_driver::kill(const std::string& id, int signal) const {
  auto st = state(id);
  if (!st)
    return st.error();
  if (st->status == container_status::absent)
    return error{"the process driver has no container " + quote(id)};
  if (st->pid <= 0)
    return error{"container " + id + " has no pid yet (" + runc::describe(st->status) + ")"};
  auto init = shim::read_init_pid(st->bundle);
  if (!same_process(init.pid, init.start_time))
    return {}; // already gone; its shim records how
  if (::kill(-init.pid, signal) != 0 && ::kill(init.pid, signal) != 0 && errno != ESRCH)
    return error{"signalling container " + id + " (pid " + std::to_string(init.pid) + "): " + std::strerror(errno)};
  return {};
}

result<std::optional<exit_info>> process_driver::wait_exit(const fs::path& bundle_dir,
                                                          std::chrono::milliseconds timeout) const {
  return shim::wait_exit(bundle_dir, timeout);
}

result<exit_info> process_driver::stop(const std::string& id, const fs::path& bundle_dir,
                                       std::chrono::milliseconds grace) const {
  auto current = state(id);
  if (!current)
    return current.error().with_context("stopping container " + id);
  bool running = current->status == container_status::running || current->status == container_status::creating;
  // remove() also ends a command whose shim is gone, so it runs either way.
  return stop_sequence(id, bundle_dir, running, grace, config_.command_timeout, remove_when::always);
}

status process_driver::remove(const std::string& id, const fs::path& bundle_dir) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  std::error_code ec;
  if (fs::exists(bundle_dir, ec)) {
    auto record = read_exit_record(bundle_dir / shim::exit_file);
    if (!record || !record->has_value())
      kill_orphan(bundle_dir, SIGKILL); // the shim, if alive, records the exit and lets go
    if (!shim::wait_gone(bundle_dir, std::chrono::seconds{5}))
      return error{"removing container " + id + ": its troupe-shim is still there after SIGKILL"};
  }
  if (limits_problem_.empty())
    remove_cgroup(mode_, cgroups_path(id));
  fs::remove_all(bundle_dir, ec);
  if (ec)
    return error{"removing " + quote(bundle_dir.native()) + ": " + ec.message()};
  fs::remove(link(id), ec);
  if (ec)
    return error{"removing " + quote(link(id).native()) + ": " + ec.message()};
  return {};
}

result<exec_result> process_driver::exec(const std::string& id, const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout) const {
  auto context = "exec in container " + id;
  if (argv.empty())
    return error{context + ": no command"};
  auto current = state(id);
  if (!current)
    return current.error().with_context(context);
  if (current->status != container_status::running)
    return error{context + ": it is " + runc::describe(current->status) + ", not running"};
  std::ifstream in{current->bundle / shim::process_spec_file, std::ios::binary};
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  auto spec = shim::parse_process_spec(text);
  if (!spec)
    return spec.error().with_context(context + ": " + quote((current->bundle / shim::process_spec_file).native(), 300));
  auto program = program_of(argv.front(), spec->env);
  if (!program)
    return program.error().with_context(context);
  auto command = argv;
  command.front() = program->native();
  spawn_options where;
  where.env = spec->env;
  where.cwd = spec->cwd;
  return run_exec(id, argv, command, timeout, where);
}

result<usage> process_driver::stats(const std::string& id) const {
  if (!valid_container_id(id))
    return error{"container id " + quote(id) + " is not valid"};
  if (!limits_problem_.empty())
    return error{"stats of container " + id + ": it has no cgroup (" + limits_problem_ + ")"};
  auto u = read_usage(mode_, cgroups_path(id));
  if (!u)
    return u.error().with_context("stats of container " + id);
  return u;
}

void process_driver::remove_cgroup_parent() const {
  if (limits_problem_.empty())
    runc::remove_cgroup_parent(config_.cgroup_parent);
}

} // namespace troupe::runc
