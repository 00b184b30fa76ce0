// An allocation's log, read from its file (DATA_DIR/logs/ID/STREAM.log,
// written by the task's shim and rotated past 10 MiB): by the API for this
// node's tasks, by the node actor for a GetTaskLogs from another node's API.
#pragma once

#include <filesystem>

#include "runtime/result.hpp"
#include "troupe/v1/task.pb.h"

namespace troupe::node {

/// At most this many bytes in one reply.
inline constexpr uint64_t max_log_read = 1u << 20;

/// The bytes `q` asks for: the last `tail` ones, or those from `offset`
/// (from 0 again when the file is shorter than `offset`: it was rotated).
/// Errors name what is wrong; a missing log is refusal-worthy "no ... log".
result<v1::TaskLogs> read_task_logs(const std::filesystem::path& logs_root, const v1::GetTaskLogs& q);

/// The log file's size now; an error when there is none.
result<uint64_t> task_log_size(const std::filesystem::path& logs_root, const v1::GetTaskLogs& q);

/// An allocation id: 12 (troupectl run) to 16 (a service's) hex digits.
bool is_alloc_id(const std::string& id);

/// "" when `q` is well formed, else what is wrong with it.
std::string task_logs_problem(const v1::GetTaskLogs& q);

} // namespace troupe::node
