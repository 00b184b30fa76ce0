#include "actors/node/runc/driver.hpp"

#include <signal.h>

#include <algorithm>

namespace troupe::runc {

result<exit_info> container_driver::stop_sequence(const std::string& id, const std::filesystem::path& bundle_dir,
                                                  bool running, std::chrono::milliseconds grace,
                                                  std::chrono::milliseconds kill_wait, remove_when when) const {
  auto context = "stopping container " + id;
  status signalled;
  if (running)
    signalled = kill(id, SIGTERM); // it may exit meanwhile: the wait below decides
  auto ended = wait_exit(bundle_dir, grace);
  if (ended && !ended->has_value()) {
    signalled = kill(id, SIGKILL);
    ended = wait_exit(bundle_dir, kill_wait);
  }
  bool exited = ended && ended->has_value();
  status removed;
  if (exited || when == remove_when::always)
    removed = remove(id, bundle_dir);
  if (!ended)
    return ended.error().with_context(context);
  if (!exited)
    return error{context + ": still running after SIGKILL" +
                 (signalled ? std::string{} : " (" + signalled.error().message() + ")")};
  if (!removed)
    return removed.error().with_context(context);
  return **ended;
}

result<exec_result> container_driver::run_exec(const std::string& id, const std::vector<std::string>& argv,
                                               const std::vector<std::string>& command,
                                               std::chrono::milliseconds timeout, spawn_options options) {
  auto context = "exec " + describe_command(argv) + " in container " + id;
  options.own_group = true; // what the command started goes with it at the timeout
  auto began = std::chrono::steady_clock::now();
  auto ran = run_command(command, timeout, child_stdio{-1, -1, -1, true}, options);
  if (!ran) {
    // run_command names the whole driver command line; the caller wants its own words.
    if (std::chrono::steady_clock::now() - began >= timeout)
      return error{context + ": no exit within " + std::to_string(timeout.count()) + " ms, killed"};
    return ran.error().with_context(context);
  }
  ran->out.resize(std::min(ran->out.size(), exec_output_limit));
  return ran;
}

} // namespace troupe::runc
