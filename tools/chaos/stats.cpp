#include "tools/chaos/stats.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::chaos {

summary summarize(std::vector<double> values) {
  summary s;
  if (values.empty())
    return s;
  std::sort(values.begin(), values.end());
  auto n = values.size();
  s.count = n;
  s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(n)));
  s.p99 = values[std::max<std::size_t>(rank, 1) - 1];
  s.max = values.back();
  return s;
}

} // namespace troupe::chaos
