#include "actors/node/runc/driver.hpp"

#include <signal.h>

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

} // namespace troupe::runc
