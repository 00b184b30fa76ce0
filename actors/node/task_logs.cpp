#include "actors/node/task_logs.hpp"

#include <algorithm>
#include <fstream>

#include "runtime/text.hpp"

namespace troupe::node {

namespace {

std::filesystem::path file_of(const std::filesystem::path& logs_root, const v1::GetTaskLogs& q) {
  return logs_root / q.alloc_id() / (q.stream() + ".log");
}

error missing(const v1::GetTaskLogs& q) {
  return error{"no " + q.stream() + " log for allocation " + q.alloc_id()};
}

} // namespace

bool is_alloc_id(const std::string& id) {
  return id.size() >= 12 && id.size() <= 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string task_logs_problem(const v1::GetTaskLogs& q) {
  if (!is_alloc_id(q.alloc_id()))
    return "allocation id " + quote(q.alloc_id()) + " is not 12 to 16 hex digits";
  if (q.stream() != "stdout" && q.stream() != "stderr")
    return "stream " + quote(q.stream()) + " must be stdout or stderr";
  return {};
}

result<uint64_t> task_log_size(const std::filesystem::path& logs_root, const v1::GetTaskLogs& q) {
  std::error_code ec;
  auto size = std::filesystem::file_size(file_of(logs_root, q), ec);
  if (ec)
    return missing(q);
  return static_cast<uint64_t>(size);
}

result<v1::TaskLogs> read_task_logs(const std::filesystem::path& logs_root, const v1::GetTaskLogs& q) {
  if (auto problem = task_logs_problem(q); !problem.empty())
    return error{problem};
  std::ifstream in{file_of(logs_root, q), std::ios::binary | std::ios::ate};
  if (!in)
    return missing(q);
  auto size = static_cast<uint64_t>(in.tellg());
  uint64_t tail = std::min<uint64_t>(q.tail(), max_log_read);
  uint64_t from = q.from_offset() ? (q.offset() > size ? 0 : q.offset()) : size > tail ? size - tail : 0;
  auto len = std::min(size - from, max_log_read);
  v1::TaskLogs out;
  out.set_alloc_id(q.alloc_id());
  out.set_stream(q.stream());
  out.set_size(size);
  out.set_offset(from);
  in.seekg(static_cast<std::streamoff>(from));
  std::string text(len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  out.set_data(std::move(text));
  return out;
}

} // namespace troupe::node
