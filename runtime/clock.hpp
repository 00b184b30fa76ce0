// The wall clock as the cluster's records keep it: milliseconds since the
// Unix epoch (task and actor events, allocation and service times).
#pragma once

#include <chrono>
#include <cstdint>

namespace troupe {

inline std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace troupe
