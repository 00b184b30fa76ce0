#include "actors/node/runc/log_rotation.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/text.hpp"

namespace troupe::runc {
namespace fs = std::filesystem;

status rotate_if_larger(const fs::path& log, std::uint64_t max_bytes, int keep) {
  std::error_code ec;
  auto size = fs::file_size(log, ec);
  if (ec || size <= max_bytes)
    return {};
  if (keep < 0)
    return error{"rotating " + quote(log.native()) + ": keep " + std::to_string(keep) + " is negative"};
  auto numbered = [&](int n) {
    auto p = log;
    p += "." + std::to_string(n);
    return p;
  };
  if (keep > 0) {
    fs::remove(numbered(keep), ec);
    for (int n = keep - 1; n >= 1; --n) {
      if (fs::exists(numbered(n), ec)) {
        fs::rename(numbered(n), numbered(n + 1), ec);
        if (ec)
          return error{"rotating " + quote(numbered(n).native()) + ": " + ec.message()};
      }
    }
    fs::copy_file(log, numbered(1), fs::copy_options::overwrite_existing, ec);
    if (ec)
      return error{"copying " + quote(log.native()) + " to " + quote(numbered(1).native()) + ": " + ec.message()};
  }
  if (::truncate(log.c_str(), 0) != 0)
    return error{"truncating " + quote(log.native()) + ": " + std::string{std::strerror(errno)}};
  return {};
}

} // namespace troupe::runc
