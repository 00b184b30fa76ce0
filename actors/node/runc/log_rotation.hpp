// log_rotation: keeps container logs bounded. A container's shim holds its
// log files open with O_APPEND, so rotation is copy-then-truncate: the
// writer never has to reopen, and its next write lands at the new end of
// the emptied file. Lines written between the copy and the truncate are
// lost; that window is one file copy long, and the price of not
// coordinating with a process that may belong to a previous agent.
#pragma once

#include <cstdint>
#include <filesystem>

#include "runtime/result.hpp"

namespace troupe::runc {

/// When `log` is larger than `max_bytes`: log.<keep-1> → log.<keep>, ...,
/// log.1 → log.2, a copy of log → log.1, and log truncated to zero.
/// keep = 0 only truncates. Nothing happens while the file is small or missing.
status rotate_if_larger(const std::filesystem::path& log, std::uint64_t max_bytes, int keep);

} // namespace troupe::runc
