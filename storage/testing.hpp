// Helpers for storage's own tests: a scratch data dir under /tmp that is
// removed afterwards, options that skip fsync to keep tests fast, and
// assertions on results.
#pragma once

#include "storage/environment.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace troupe::storage::testing {

class temp_dir {
public:
  temp_dir() {
    std::string pattern = "/tmp/troupe-storage-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }

private:
  std::filesystem::path path_;
};

/// What a result says, for assertion messages: "ok" or its error. (doctest
/// evaluates messages of passing assertions too when run with -s.)
template <class R>
std::string said(const R& outcome) {
  return outcome.ok() ? std::string{"ok"} : outcome.error().message();
}

/// Process crashes are still survived without fsync; only power loss is not.
inline environment_options fast_options() {
  environment_options opts;
  opts.sync_on_commit = false;
  return opts;
}

/// An environment in dir, or the test stops with the error.
inline std::shared_ptr<environment>
open_env(const temp_dir& dir, environment_options opts = fast_options()) {
  auto env = environment::open(dir.path(), opts);
  REQUIRE_MESSAGE(env.ok(), said(env));
  return *env;
}

/// The test stops unless st is ok.
inline void must(const status& st) { REQUIRE_MESSAGE(st.ok(), said(st)); }

} // namespace troupe::storage::testing
