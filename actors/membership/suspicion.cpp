#include "actors/membership/suspicion.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace troupe::swim {

duration min_suspicion_timeout(int mult, std::size_t members, duration interval) {
  double scale = std::max(1.0, std::log10(static_cast<double>(std::max<std::size_t>(members, 1))));
  // In thousandths, as memberlist does, so both give the same timeouts.
  auto milli_scale = static_cast<duration::rep>(scale * 1000);
  return interval * mult * milli_scale / 1000;
}

duration suspicion_timeout(int confirmations, int expected, duration min, duration max) {
  if (expected < 1)
    return min;
  double fraction = std::log(confirmations + 1.0) / std::log(expected + 1.0);
  double max_s = std::chrono::duration<double>(max).count();
  double min_s = std::chrono::duration<double>(min).count();
  auto timeout = std::chrono::milliseconds{static_cast<std::int64_t>(std::floor(1000.0 * (max_s - fraction * (max_s - min_s))))};
  return std::max<duration>(timeout, min);
}

int retransmit_limit(int mult, std::size_t members) {
  return mult * static_cast<int>(std::ceil(std::log10(static_cast<double>(members) + 1.0)));
}

duration push_pull_scale(duration interval, std::size_t members) {
  constexpr std::size_t threshold = 32;
  if (members <= threshold)
    return interval;
  double multiplier = std::ceil(std::log2(static_cast<double>(members)) - std::log2(double{threshold})) + 1.0;
  return interval * static_cast<duration::rep>(multiplier);
}

suspicion::suspicion(std::string from, int expected, time_point start, duration min, duration max)
    : expected_(expected), start_(start), min_(min), max_(max) {
  confirmers_.push_back(std::move(from));
}

bool suspicion::confirm(std::string_view from) {
  if (confirmations() >= expected_ ||
      std::find(confirmers_.begin(), confirmers_.end(), from) != confirmers_.end())
    return false;
  confirmers_.emplace_back(from);
  return true;
}

} // namespace troupe::swim
