// The run's history as JSON lines (--history FILE): every fault, heal,
// convergence and workload operation with its time, so that a violation can
// be read back and its seed replayed. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>

namespace troupe::chaos {

/// One JSON object, built field by field: {"t_ms":..,"event":"fault",...}.
class event {
public:
  explicit event(std::string_view type);
  event& str(std::string_view key, std::string_view value);
  event& num(std::string_view key, std::int64_t value);
  event& real(std::string_view key, double value);
  event& flag(std::string_view key, bool value);
  /// The object, closed.
  std::string json() const { return body_ + "}"; }

private:
  void key(std::string_view k);
  std::string body_;
};

/// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

class history {
public:
  /// An empty path keeps the history in no file (the report still counts).
  explicit history(const std::string& path);
  bool ok() const { return path_.empty() || out_.good(); }
  const std::string& path() const { return path_; }

  /// Milliseconds since the run started (also written as "t_ms").
  std::int64_t now_ms() const;
  void write(event e);

private:
  std::string path_;
  std::ofstream out_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

} // namespace troupe::chaos
