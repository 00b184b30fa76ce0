// How a supervisor restarts its children (filled from the agent's flags).
#pragma once

#include <chrono>
#include <cstddef>

namespace troupe {

/// A child that dies is respawned after backoff_base * 2^k, where k is the
/// number of its restarts within restart_window, and never later than
/// backoff_max. More than max_restarts restarts of one child within the
/// window is a crash loop: the supervisor stops everything and quits with an
/// error, so that the agent exits non-zero instead of spinning.
struct restart_policy {
  std::chrono::milliseconds backoff_base{10};
  std::chrono::milliseconds backoff_max{5000};
  int max_restarts = 10;
  std::chrono::milliseconds restart_window{30000};
  /// How long a child may take to stop before it is killed.
  std::chrono::milliseconds stop_timeout{5000};

  /// The delay before the restart that follows `recent` restarts in the window.
  std::chrono::milliseconds backoff(std::size_t recent) const {
    auto d = backoff_base;
    for (std::size_t i = 0; i < recent && d < backoff_max; ++i)
      d *= 2;
    return d < backoff_max ? d : backoff_max;
  }
};

} // namespace troupe
