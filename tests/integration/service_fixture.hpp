// What the services tests share: a cluster of agents on loopback (process
// driver or runc) with busybox:1 imported on each, and troupectl and API
// reads of services and allocations.
#pragma once

#include <fstream>
#include <map>

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include "tests/integration/agent_fixture.hpp"
#include "tests/integration/process_cleanup.hpp"
#include "tests/integration/runc_fixture.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/service.pb.h"

namespace troupe::testing {

/// A cluster of agents on loopback, each with busybox:1 imported and its
/// own range of host ports (they share the host's network). Stops the
/// agents with SIGTERM at the end of a test, also when it fails, before
/// their scratch dirs go; what their tasks left (processes of the process
/// driver, runc containers) is removed too.
struct agents : std::vector<std::unique_ptr<agent>> {
  std::string driver = "process";  // or runc: real containers
  std::vector<std::string> node_ids;
  explicit agents(std::string with_driver = "process") : driver(std::move(with_driver)) {}
  agents(const agents&) = delete;
  agents& operator=(const agents&) = delete;
  ~agents() {
    stop_agents(*this);
    for (std::size_t i = 0; i < size(); ++i) {
      auto id = i < node_ids.size() ? node_ids[i] : std::string{};
      if (driver == "runc")
        container_cleanup{*(*this)[i], id};
      else
        process_cleanup{*(*this)[i], id};
    }
  }

  /// Starts s<k>; every server after the first joins through s1.
  agent& add_server() { return add("s" + std::to_string(size() + 1), {}); }
  /// Starts a client agent (no Raft state) that joins through s1.
  agent& add_client(const std::string& name) { return add(name, {"--client"}); }

  agent& add(const std::string& name, std::vector<std::string> extra) {
    auto& a = *emplace_back(std::make_unique<agent>());
    a.name = name;
    if (size() > 1)
      extra.insert(extra.end(), {"--seed", front()->gossip_address()});
    auto low = 20000 + 1000 * static_cast<int>(size() - 1);
    extra.insert(extra.end(), {"--port-range", std::to_string(low) + "-" + std::to_string(low + 999)});
    extra.insert(extra.end(), {"--gossip-profile", "local", "--driver", driver});
    a.start(extra);
    node_ids.push_back(a.status().id());
    // The process driver runs host commands: the image only has to exist.
    auto root = a.dir.path() / "rootfs";
    if (driver == "runc")
      make_busybox_rootfs(root);
    else
      fs::create_directories(root / "etc");
    auto imported = a.ctl({"image", "import", root.string(), "--name", "busybox:1"});
    REQUIRE_MESSAGE(imported.code == 0, imported.output);
    return a;
  }
};

/// Writes `text` as `name` in the agent's scratch dir; returns its path.
inline std::string spec_file(const agent& a, const std::string& name, const std::string& text) {
  auto path = a.dir.path() / name;
  std::ofstream{path} << text;
  return path.string();
}

template <class Msg>
std::optional<Msg> ctl_json(const agent& a, std::vector<std::string> args) {
  args.insert(args.begin(), {"-o", "json"});
  auto r = a.ctl(args);
  Msg msg;
  if (r.code != 0 || !google::protobuf::util::JsonStringToMessage(r.output, &msg).ok())
    return std::nullopt;
  return msg;
}

/// The one service `troupectl services` lists, if it lists exactly one.
inline std::optional<v1::ServiceSummary> only_service(const agent& a) {
  auto list = ctl_json<v1::ServiceList>(a, {"services"});
  if (!list || list->services_size() != 1)
    return std::nullopt;
  return list->services(0);
}

/// The allocations with desired run, as `troupectl ps --all` lists them.
inline std::vector<v1::AllocationRecord> running_allocations(const agent& a) {
  std::vector<v1::AllocationRecord> out;
  if (auto list = ctl_json<v1::AllocationList>(a, {"ps", "--all"}))
    for (auto& al : list->allocations())
      if (al.desired() == "run")
        out.push_back(al);
  return out;
}

template <class Msg>
std::optional<Msg> get_json(const agent& a, const std::string& path) {
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(test_token());
  http.set_read_timeout(10, 0);
  auto res = http.Get(path);
  Msg msg;
  if (!res || res->status != 200 || !google::protobuf::util::JsonStringToMessage(res->body, &msg).ok())
    return std::nullopt;
  return msg;
}

} // namespace troupe::testing
