// One real `troupe agent` process on 127.0.0.1 with free ports and a fresh
// data dir, driven with real `troupectl` commands; shared by the
// integration tests.
#pragma once

#include <doctest/doctest.h>

#include <google/protobuf/util/json_util.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "tests/integration/process.hpp"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupe::testing {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class scratch_dir {
public:
  scratch_dir() {
    std::string pattern = "/tmp/troupe-it-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  /// TROUPE_TEST_KEEP=1 keeps the dir (agent logs, data) for a post-mortem.
  ~scratch_dir() {
    if (const char* keep = std::getenv("TROUPE_TEST_KEEP"); keep && *keep == '1')
      return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

template <class Msg>
inline Msg parse_json(const std::string& text) {
  Msg msg;
  auto st = google::protobuf::util::JsonStringToMessage(text, &msg);
  REQUIRE_MESSAGE(st.ok(), "not a " << msg.GetTypeName() << ": " << text);
  return msg;
}

inline const v1::ActorInfo* find_actor(const v1::ActorList& list, const std::string& name) {
  for (auto& a : list.actors())
    if (a.name() == name)
      return &a;
  return nullptr;
}

/// The management token of every cluster the tests start: the agent that
/// bootstraps a cluster reads it from --management-token-file, and every
/// troupectl call and API request of the tests presents it.
inline const std::string& test_token() {
  static const std::string token = [] {
    std::string t = "trp_test_";
    std::random_device rd;
    for (int i = 0; i < 32; ++i)
      t += "0123456789abcdef"[rd() % 16];
    return t;
  }();
  return token;
}

/// One agent on 127.0.0.1 with free ports and a fresh data dir.
struct agent {
  std::string name = "it";
  scratch_dir dir;
  fs::path data = dir.path() / "data";
  fs::path log = dir.path() / "agent.log";
  uint16_t http = free_port();
  uint16_t gossip = free_port();
  uint16_t rpc = free_port();
  std::unique_ptr<process> proc;
  std::string token = test_token();  // what ctl() presents
  bool preset_token = true;           // bootstrap with test_token(), not a random one

  agent() = default;
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;
  /// Ends the agent (SIGKILL if it still runs) and removes its cgroup
  /// parent when nothing is left in it: a killed agent cannot, and the
  /// next test's agent has another node id.
  ~agent() {
    proc.reset();
    auto id = node_id_from_log();
    if (id.size() < 12)
      return;
    std::error_code ec;
    for (auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
      ::rmdir((h.path() / ("troupe-" + id.substr(0, 12))).c_str());
    ::rmdir(("/sys/fs/cgroup/troupe-" + id.substr(0, 12)).c_str());  // cgroup v2
  }

  /// The node id the agent logged at its start ("starting ... id=<id>").
  std::string node_id_from_log() const {
    std::ifstream in{log};
    std::string line, id;
    while (std::getline(in, line)) {
      auto at = line.find("starting name=");
      auto key = at == std::string::npos ? at : line.find(" id=", at);
      if (key != std::string::npos)
        id = line.substr(key + 4, line.find(' ', key + 4) - key - 4);
    }
    return id;
  }

  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{TROUPE_BIN, "agent", "--name", name, "--data-dir", data.string(),
                               "--bind", "127.0.0.1", "--http-port", std::to_string(http),
                               "--gossip-port", std::to_string(gossip), "--rpc-port",
                               std::to_string(rpc)};
    a.insert(a.end(), extra.begin(), extra.end());
    // The agent without --seed bootstraps a cluster: with the tests' token.
    if (preset_token && std::find(extra.begin(), extra.end(), "--seed") == extra.end() &&
        std::find(extra.begin(), extra.end(), "--config") == extra.end()) {
      auto file = dir.path() / "management-token";
      std::ofstream{file} << test_token() << "\n";
      a.insert(a.end(), {"--management-token-file", file.string()});
    }
    return a;
  }

  /// Starts an agent that cannot check tokens (it will not join a
  /// cluster): returns once its API answers at all.
  void start_unjoined(std::vector<std::string> extra = {}) {
    proc = std::make_unique<process>(argv(std::move(extra)), log);
    bool up = eventually(10s, [&] { return contains_text(ctl({"status"}).output, "(unavailable)") || !proc->running(); });
    REQUIRE_MESSAGE(up, "agent did not answer within 10s; log ends:\n" << log_tail());
    REQUIRE_MESSAGE(proc->running(), "agent exited at start; log ends:\n" << log_tail());
  }

  static bool contains_text(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
  }

  void start(std::vector<std::string> extra = {}) {
    proc = std::make_unique<process>(argv(std::move(extra)), log);
    bool up = eventually(10s, [&] { return ctl({"status"}).code == 0 || !proc->running(); });
    // The log's end: an agent started again appends to the log of its earlier run.
    REQUIRE_MESSAGE(up, "agent did not answer within 10s; log ends:\n" << log_tail());
    REQUIRE_MESSAGE(proc->running(), "agent exited at start with status " << proc->wait(0ms).value_or(-1)
                                                                           << "; log ends:\n" << log_tail());
  }

  run_result ctl(std::vector<std::string> args) const {
    std::vector<std::string> a{TROUPECTL_BIN, "--addr", "127.0.0.1:" + std::to_string(http), "--token", token};
    a.insert(a.end(), args.begin(), args.end());
    return run(a, dir.path());
  }

  v1::ActorList actors() const {
    auto r = ctl({"-o", "json", "actors"});
    REQUIRE_MESSAGE(r.code == 0, r.output);
    return parse_json<v1::ActorList>(r.output);
  }

  std::string gossip_address() const { return "127.0.0.1:" + std::to_string(gossip); }

  v1::NodeStatus status() const {
    auto r = ctl({"-o", "json", "status"});
    REQUIRE_MESSAGE(r.code == 0, r.output);
    return parse_json<v1::NodeStatus>(r.output);
  }

  /// True once `actor` runs again with `restarts` restarts.
  bool respawned(const std::string& actor, uint32_t restarts) const {
    auto r = ctl({"-o", "json", "actors"});
    if (r.code != 0)
      return false;
    auto list = parse_json<v1::ActorList>(r.output);
    auto* a = find_actor(list, actor);
    return a && a->state() == "running" && a->restarts() == restarts;
  }

  std::string log_text() const { return read_file(log); }

  /// The last `lines` lines of the log.
  std::string log_tail(std::size_t lines = 40) const {
    auto text = log_text();
    auto at = text.size();
    while (lines-- > 0 && at > 0)
      at = text.rfind('\n', at - 1) == std::string::npos ? 0 : text.rfind('\n', at - 1);
    return text.substr(at);
  }
};

inline bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

/// The tasks of the agent's node, as `troupectl -o json ps` lists them.
inline v1::TaskList tasks(const agent& a) {
  auto r = a.ctl({"-o", "json", "ps"});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  return parse_json<v1::TaskList>(r.output);
}

inline std::optional<v1::TaskStatus> task_named(const agent& a, const std::string& name) {
  auto list = tasks(a);
  for (auto& t : list.tasks())
    if (t.name() == name)
      return t;
  return std::nullopt;
}

inline bool task_in_state(const agent& a, const std::string& name, const std::string& state) {
  auto t = task_named(a, name);
  return t && t->state() == state;
}

/// `troupectl run ARGS`; the allocation id it printed.
inline std::string run_id(const agent& a, std::vector<std::string> args) {
  std::vector<std::string> full{"run"};
  full.insert(full.end(), args.begin(), args.end());
  auto r = a.ctl(full);
  REQUIRE_MESSAGE(r.code == 0, r.output);
  return r.output.substr(0, r.output.find('\n'));
}

/// `extra` followed by fast gossip timings for loopback and the process
/// driver (which needs neither root nor runc): how cluster tests start agents.
/// SIGTERM to every agent still running, all at once (so that each leaves
/// the cluster cleanly while the others still listen), then waits for each.
inline void stop_agents(std::vector<std::unique_ptr<agent>>& agents) {
  for (auto& a : agents)
    if (a->proc && a->proc->running())
      a->proc->signal(SIGTERM);
  for (auto& a : agents)
    if (a->proc)
      a->proc->wait(std::chrono::seconds(10));
}

inline std::vector<std::string> loopback_flags(std::vector<std::string> extra = {}) {
  for (const char* f : {"--gossip-profile", "local", "--driver", "process"})
    extra.emplace_back(f);
  return extra;
}

} // namespace troupe::testing
