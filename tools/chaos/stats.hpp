// Summaries of measured durations for the report: count, median, p99, max.
#pragma once

#include <cstddef>
#include <vector>

namespace troupe::chaos {

struct summary {
  std::size_t count = 0;
  double median = 0;  // the middle value; the mean of the two middle ones for an even count
  double p99 = 0;     // nearest rank: the smallest value at or above 99% of the values
  double max = 0;
};

/// Of `values` (any order); all zero when empty.
summary summarize(std::vector<double> values);

} // namespace troupe::chaos
