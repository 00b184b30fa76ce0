// Logging: spdlog, one named logger per actor ("node", "api", ...), all
// writing to the same sinks. Lines read "event key=value ...".
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "runtime/result.hpp"

namespace troupe::logging {

/// Sets the level and sinks of every logger: stderr, plus `file` if given.
/// `level` is one of trace debug info warn error critical off.
status init(const std::string& level, const std::filesystem::path& file = {});

/// The logger called `name`, created on first use with the shared sinks.
std::shared_ptr<spdlog::logger> get(const std::string& name);

} // namespace troupe::logging
