// Commands the process driver runs outlive their agent by design: a test
// that ran some ends them here, with their shims, cgroups and the cgroup
// parent, through a process driver on the agent's state root (which kills by
// pid and start time, so nothing else is touched).
#pragma once

#include <string>

#include "actors/node/runc/process_driver.hpp"
#include "tests/integration/agent_fixture.hpp"

namespace troupe::testing {

/// Ends the agent (SIGKILL if it still runs), then every command it left.
struct process_cleanup {
  agent& a;
  std::string node_id;
  ~process_cleanup() {
    a.proc.reset();
    runc::process_driver_config c;
    c.state_root = a.data / "process";
    c.cgroup_parent = "troupe-" + node_id.substr(0, 12);
    if (node_id.empty() || !fs::exists(c.state_root))
      return;
    auto driver = runc::process_driver::detect(c);
    if (!driver)
      return;
    if (auto ids = driver->list(); ids)
      for (auto& id : *ids)
        (void)driver->remove(id, a.data / "containers" / id.substr(2));
    driver->remove_cgroup_parent();
  }
};

} // namespace troupe::testing
