// describe_exit: a CAF error as people read it, for logs, events and error
// replies ("killed", "shut down", "no actor named 'x'"). Defined in
// supervisor.cpp.
#pragma once

#include <string>

#include <caf/error.hpp>

namespace troupe {

/// "killed", "normal", "unhandled exception: boom", ... for logs and events.
std::string describe_exit(const caf::error& reason);

} // namespace troupe
