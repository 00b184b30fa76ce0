// Durations as people write them in flags and files: "250ms", "1.5s", "2m", "1h".
#pragma once

#include "runtime/result.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace troupe {

/// Parses a non-negative whole number of milliseconds written as a decimal
/// number and a unit: ms, s, m or h ("250ms", "1s", "1.5s", "2m", "1h", "0s").
/// The unit is required; only the literal "0" may go without one. Fractions
/// are allowed when the result is a whole number of milliseconds ("1.5s", not
/// "0.5ms"). The error quotes the input and says which form is accepted.
result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The shortest form parse_duration reads back to the same value: "0s",
/// "250ms", "1.5s", "2m", "1.5h", "61s". Values under a second are in ms.
std::string format_duration(std::chrono::milliseconds duration);

} // namespace troupe
