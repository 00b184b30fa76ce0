#include "actors/node/runc/exit_record.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/text.hpp"

namespace troupe::runc {

std::string exit_info::describe() const {
  std::string s = signal != 0 ? "signal=" + std::to_string(signal) : "exit_code=" + std::to_string(exit_code);
  if (oom_killed)
    s += " oom_killed=true";
  return s;
}

exit_info exit_info_from_wait_status(int wstatus) {
  exit_info info;
  if (WIFEXITED(wstatus))
    info.exit_code = WEXITSTATUS(wstatus);
  else if (WIFSIGNALED(wstatus))
    info.signal = WTERMSIG(wstatus);
  info.finished_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  return info;
}

std::string encode_exit_record(const exit_info& info) {
  std::ostringstream out;
  out << "exit_code " << info.exit_code << "\n"
      << "signal " << info.signal << "\n"
      << "oom_killed " << (info.oom_killed ? 1 : 0) << "\n"
      << "finished_at_ms " << info.finished_at_ms << "\n";
  return out.str();
}

result<exit_info> parse_exit_record(const std::string& text) {
  exit_info info;
  std::istringstream in{text};
  std::string key;
  std::int64_t value = 0;
  int seen = 0;
  while (in >> key >> value) {
    if (key == "exit_code")
      info.exit_code = static_cast<int>(value);
    else if (key == "signal")
      info.signal = static_cast<int>(value);
    else if (key == "oom_killed")
      info.oom_killed = value != 0;
    else if (key == "finished_at_ms")
      info.finished_at_ms = value;
    else
      continue; // later versions may add keys
    ++seen;
  }
  if (!in.eof() || seen < 2)
    return error{"exit record " + quote(text) + " does not parse"};
  return info;
}

status write_exit_record(const std::filesystem::path& file, const exit_info& info) {
  auto tmp = file;
  tmp += ".tmp";
  std::string text = encode_exit_record(info);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return error{"writing " + quote(tmp.native()) + ": " + std::strerror(errno)};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok)
    return error{"writing " + quote(tmp.native()) + ": " + std::strerror(saved)};
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    return error{"renaming " + quote(tmp.native()) + ": " + std::strerror(errno)};
  int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

result<std::optional<exit_info>> read_exit_record(const std::filesystem::path& file) {
  if (::access(file.c_str(), F_OK) != 0 && errno == ENOENT)
    return std::optional<exit_info>{};
  std::ifstream in{file};
  if (!in)
    return error{"reading " + quote(file.native()) + ": cannot open"};
  std::ostringstream text;
  text << in.rdbuf();
  auto info = parse_exit_record(text.str());
  if (!info)
    return info.error().with_context(file.native());
  return std::optional<exit_info>{*info};
}

} // namespace troupe::runc
