// What the agent hands every actor it spawns: its configuration, its LMDB
// environment and the names of its actors. Read-only after start.
#pragma once

#include <chrono>
#include <memory>

#include "runtime/config.hpp"
#include "runtime/directory.hpp"
#include "storage/environment.hpp"

namespace troupe {

struct agent_context {
  agent_config config;
  std::shared_ptr<storage::environment> env;
  std::shared_ptr<directory> names;
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
};

using agent_context_ptr = std::shared_ptr<const agent_context>;

} // namespace troupe
