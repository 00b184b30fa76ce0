// The formulas of SWIM + Lifeguard timing (memberlist's suspicion.go and
// util.go) and one suspicion's shrinking deadline: small pure parts, tested
// against their formulas (STYLE 8).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "actors/membership/config.hpp"

namespace troupe::swim {

/// mult * max(1, log10(n)) * interval (memberlist suspicionTimeout).
duration min_suspicion_timeout(int mult, std::size_t members, duration interval);
/// Lifeguard: max - log(n+1)/log(k+1) * (max - min), never under min.
duration suspicion_timeout(int confirmations, int expected, duration min, duration max);
/// mult * ceil(log10(n + 1)) transmissions per broadcast.
int retransmit_limit(int mult, std::size_t members);
/// Push-pull interval stretched for clusters beyond 32 members.
duration push_pull_scale(duration interval, std::size_t members);

/// One suspicion: a deadline that moves closer with each distinct confirmer.
class suspicion {
public:
  suspicion(std::string from, int expected, time_point start, duration min, duration max);
  /// True when `from` is a new confirmer (the deadline then moved).
  bool confirm(std::string_view from);
  time_point deadline() const { return start_ + suspicion_timeout(confirmations(), expected_, min_, max_); }
  int confirmations() const { return static_cast<int>(confirmers_.size()) - 1; }

private:
  int expected_;
  time_point start_;
  duration min_, max_;
  std::vector<std::string> confirmers_;  // the first suspector, then up to `expected_` more
};

} // namespace troupe::swim
