// The agent: one process per machine. Opens the data dir, builds the actor
// system and the root supervisor with the node's named actors, and runs
// until SIGTERM/SIGINT or a crash loop.
#pragma once

#include "runtime/config.hpp"

namespace troupe {

/// Exit codes of `troupe agent`.
enum agent_exit : int {
  exit_ok = 0,          // stopped by SIGTERM/SIGINT (a second signal forces it)
  exit_failure = 1,     // could not start (data dir locked or unreadable, port taken, ...)
  exit_usage = 2,       // bad flags or config file
  exit_crash_loop = 3,  // an actor kept dying: the supervisor gave up
};

/// Runs an agent with a validated config until it is told to stop.
int run_agent(const agent_config& config);

} // namespace troupe
