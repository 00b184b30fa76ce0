// reference: an image name as people write it, [registry/]repo[:tag][@digest],
// checked part by part with Docker's grammar so that names imported here
// stay pullable and pushable when registries arrive.
#pragma once

#include "runtime/result.hpp"

#include <string>
#include <string_view>

namespace troupe::image {

struct reference {
  /// "host[:port]" when the name starts with one ("localhost", or a first
  /// component holding '.' or ':'), else "". No default registry is added:
  /// local names stay as written.
  std::string registry;
  /// Slash-separated components, e.g. "library/busybox".
  std::string repository;
  /// "latest" when neither a tag nor a digest was given; "" with a digest alone.
  std::string tag;
  /// "sha256:<hex>" or "".
  std::string digest;

  /// Parses and checks text; the error names the part that is wrong.
  static result<reference> parse(std::string_view text);

  /// "[registry/]repository".
  std::string name() const;
  /// name() with ":tag" and "@digest" when present: the key images are kept under.
  std::string canonical() const;
};

} // namespace troupe::image
