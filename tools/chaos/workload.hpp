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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tools/chaos/cluster.hpp"
#include "tools/chaos/history.hpp"
#include "troupe/v1/service.pb.h"

namespace troupe::chaos {

inline constexpr const char* image_name = "busybox:chaos";
inline constexpr const char* gen_env = "CHAOS_GEN";

/// The spec the runner deploys for `name`: busybox sleeping, small
/// resources, updates that never pause or roll back (a chaos run must not
/// change what was declared behind the workload's back).
v1::ServiceSpec service_spec(const std::string& name, std::uint64_t gen, std::uint32_t replicas);

/// What the workload declares of a service: its generation and replicas.
struct declared {
  std::string gen;
  std::uint32_t replicas = 0;
  bool operator<(const declared& o) const { return gen != o.gen ? gen < o.gen : replicas < o.replicas; }
  bool operator==(const declared& o) const { return gen == o.gen && replicas == o.replicas; }
};
declared declared_of(const v1::ServiceSpec& spec);

enum class outcome { acked, unacked, failed };
const char* name(outcome o);

struct operation {
  std::uint64_t id = 0;
  std::string service;
  std::string kind;              // deploy | scale
  std::string gen;               // deploy: the generation asked for
  std::uint32_t replicas = 0;
  outcome result = outcome::failed;
  std::uint64_t version = 0;     // acked: the version the reply named
  declared after;                // acked: the spec the reply named
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::string error;
};

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

/// The specs a service may have been left with: from the last acknowledged
/// change, any subset of the unacknowledged attempts applied in the order
/// they were sent (an unanswered write may land at any time after it was
/// sent). Empty when the service has no acknowledged change.
std::set<declared> possible_states(const std::vector<operation>& ops, const std::string& service);

} // namespace troupe::chaos
