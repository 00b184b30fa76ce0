#include "actors/node/runc/shim.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>

#include "actors/node/runc/process.hpp"
#include "runtime/text.hpp"

namespace troupe::runc::shim {

std::vector<std::string> to_argv(const std::filesystem::path& shim_binary, const arguments& a) {
  return {shim_binary.native(),  "--runc",   a.runc.native(),       "--root",
          a.root.native(),       "--id",     a.id,                  "--bundle",
          a.bundle.native(),     "--stdout", a.stdout_log.native(), "--stderr",
          a.stderr_log.native(), "--memory-cgroup", a.memory_cgroup.native(), "--timeout-ms",
          std::to_string(a.timeout.count())};
}

result<arguments> parse_argv(int argc, char** argv) {
  std::map<std::string, std::string> values;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0 || i + 1 >= argc)
      return error{"troupe-shim: expected --flag value pairs, got " + quote(flag)};
    values[flag.substr(2)] = argv[i + 1];
  }
  arguments a;
  for (const char* required : {"runc", "root", "id", "bundle", "stdout", "stderr"})
    if (values[required].empty())
      return error{"troupe-shim: --" + std::string{required} + " is missing"};
  a.runc = values["runc"];
  a.root = values["root"];
  a.id = values["id"];
  a.bundle = values["bundle"];
  a.stdout_log = values["stdout"];
  a.stderr_log = values["stderr"];
  a.memory_cgroup = values["memory-cgroup"];
  if (!values["timeout-ms"].empty()) {
    try {
      a.timeout = std::chrono::milliseconds{std::stoll(values["timeout-ms"])};
    } catch (const std::exception&) {
      return error{"troupe-shim: --timeout-ms " + quote(values["timeout-ms"]) + " is not a number"};
    }
  }
  return a;
}

bool alive(const std::filesystem::path& bundle) {
  int fd = ::open((bundle / lock_file).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  // A shared probe: it fails only while the shim holds its exclusive lock.
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

std::string runc_log_errors(const std::filesystem::path& log) {
  std::ifstream in{log};
  std::string line, errors, last;
  while (std::getline(in, line)) {
    if (!line.empty())
      last = line;
    if (line.find("level=error") == std::string::npos && line.find("level=fatal") == std::string::npos)
      continue;
    // msg="..." with Go's quoting: \" and \\ inside.
    auto at = line.find("msg=\"");
    if (at == std::string::npos)
      continue;
    std::string msg;
    for (std::size_t i = at + 5; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size())
        ++i;
      msg += line[i];
    }
    if (!errors.empty())
      errors += "; ";
    errors += msg;
  }
  return trim(errors.empty() ? last : errors);
}

} // namespace troupe::runc::shim
