// health: a task's health check (troupe.v1.HealthCheck). The probes (exec
// in the container through its driver, an HTTP GET or a TCP connect on
// 127.0.0.1 at one of the task's host ports, each with a timeout) and the
// tracker that turns their outcomes into the task's health by Docker's
// HEALTHCHECK rules:
//   - "starting" once the container runs, and again after each restart;
//   - one passing probe makes it "healthy" (healthy_since_ms = then);
//   - `retries` failed probes in a row make it "unhealthy";
//   - failures within start_period of the start do not count while it is
//     still starting (a pass in that time makes it healthy all the same);
//   - "" when no check is set or the container does not run.
// The tracker is pure (time comes in as a value); the probes block for at
// most the check's timeout, so the task actor (detached) runs them inline.
// No CAF here.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/node/runc/driver.hpp"
#include "troupe/v1/task.pb.h"

namespace troupe::node {

/// A HealthCheck's timings with its defaults filled in.
struct health_settings {
  std::chrono::milliseconds interval{10000};   // between probes
  std::chrono::milliseconds timeout{1000};     // one probe, from connect (or exec) to answer
  std::chrono::milliseconds start_period{0};   // after a start, failures do not count for this long
  std::uint32_t retries = 3;                   // failures in a row that make a task unhealthy

  /// From the spec: 0 means the default.
  static health_settings of(const v1::HealthCheck& check);

  /// How long after a start the first probe runs: soon (at most 1 s), so
  /// that a service that is up at once is healthy at once.
  std::chrono::milliseconds first_probe() const;
};

/// True when the check asks for a probe (exec, http or tcp).
bool health_wanted(const v1::HealthCheck& check);

/// What one probe found: whether it passed, and what it said, in one line
/// of printable ASCII ("GET /ready on 127.0.0.1:8080: HTTP/1.0 500 Internal
/// Server Error", "exit code 1: missing", "connect to 127.0.0.1:8080: Connection refused").
struct probe_outcome {
  bool passed = false;
  std::string output;
};

/// The health fields of a TaskStatus (health, health_output,
/// healthy_since_ms, health_failures), moved by probe outcomes. The start
/// period counts from status.started_at_ms.
class health_tracker {
public:
  health_tracker() = default;
  explicit health_tracker(health_settings settings) : settings_(settings) {}

  const health_settings& settings() const { return settings_; }

  /// The container (re)started: "starting", no failures, nothing said yet.
  static void restart(v1::TaskStatus& status);

  /// The container does not run: no health at all.
  static void clear(v1::TaskStatus& status);

  /// Records one probe that ended at `now_ms`; true when status.health
  /// changed. health_output keeps what the last failed probe said.
  bool observe(v1::TaskStatus& status, const probe_outcome& outcome, std::int64_t now_ms) const;

private:
  health_settings settings_;
};

/// "HTTP/1.1 200 OK" -> 200; nullopt for anything that is not an HTTP
/// status line.
std::optional<int> parse_status_line(std::string_view line);

/// A TCP connect to 127.0.0.1:port: passes once connected within `timeout`.
probe_outcome probe_tcp(int port, std::chrono::milliseconds timeout);

/// An HTTP/1.0 GET of `path` on 127.0.0.1:port: passes on a 2xx or 3xx
/// status (redirects are not followed). Only the status line is read (at
/// most a few KB); the whole exchange has `timeout`.
probe_outcome probe_http(int port, const std::string& path, std::chrono::milliseconds timeout);

/// argv in the container through its driver: passes on exit code 0.
probe_outcome probe_exec(const runc::container_driver& driver, const std::string& container_id,
                         const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

/// The probe `check` asks for. http and tcp name a port of the task:
/// `ports` maps port names to host ports (tasks use host networking).
probe_outcome run_probe(const v1::HealthCheck& check, const health_settings& settings,
                        const std::map<std::string, int>& ports, const runc::container_driver& driver,
                        const std::string& container_id);

} // namespace troupe::node
