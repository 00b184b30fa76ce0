// The workload of a chaos run: a client that keeps deploying new versions
// of the services (a new CHAOS_GEN in their env) and scaling them, through
// any live agent, and records every change it asked for: acknowledged (HTTP
// 200 with the service's version), unacknowledged (sent, no answer: it may
// or may not have been applied) or failed (refused, or never sent).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tools/chaos/cluster.hpp"
#include "tools/chaos/history.hpp"
#include "tools/chaos/model.hpp"
#include "troupe/v1/service.pb.h"

namespace troupe::chaos {

inline constexpr const char* image_name = "busybox:chaos";

/// The spec the runner deploys for `name`: busybox sleeping, small
/// resources, updates that never pause or roll back (a chaos run must not
/// change what was declared behind the workload's back).
v1::ServiceSpec service_spec(const std::string& name, std::uint64_t gen, std::uint32_t replicas);

/// The versions of each service seen in replies and reads: they must never
/// go back.
class version_watch {
public:
  void saw(const std::string& service, std::uint64_t version, const std::string& where);
  std::vector<std::string> regressions() const;

private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> highest_;
  std::vector<std::string> regressions_;
};

class workload {
public:
  workload(api& a, history& h, version_watch& w, std::vector<std::string> services, std::uint64_t seed);
  ~workload();

  /// Records the setup's deploy of a service as its first acknowledged change.
  void record(operation op);
  void start();
  void stop();
  /// Returns once no operation is in flight; none starts until resume().
  void pause();
  void resume();

  std::vector<operation> operations() const;
  std::map<outcome, std::size_t> counts() const;

private:
  void loop();
  operation run_one();

  api& api_;
  history& history_;
  version_watch& watch_;
  std::vector<std::string> services_;
  std::mt19937_64 rng_;
  std::map<std::string, std::uint64_t> next_gen_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool paused_ = false;
  bool stopping_ = false;
  bool in_flight_ = false;
  std::vector<operation> ops_;
  std::thread thread_;
};

} // namespace troupe::chaos
