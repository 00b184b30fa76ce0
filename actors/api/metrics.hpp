// GET /metrics: the agent's state in Prometheus' text exposition format
// (version 0.0.4), rendered from the same protobuf messages the JSON API
// returns. Pure: the api actor gathers the inputs from the actors.
#pragma once

#include <string>

#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupe::api {

struct metrics_input {
  v1::NodeStatus node;
  v1::ActorList actors;
  v1::TaskList tasks;
  v1::TaskUsageList usage;  // the monitor's last sample of each running task
  v1::MemberList members;   // the membership actor's view of the cluster
  v1::RaftStatus raft;      // this server's raft actor (empty role: a client, or no answer)
};

std::string render_metrics(const metrics_input& in);

/// A label value escaped as the format requires (\\, \", \n).
std::string escape_label(const std::string& value);

} // namespace troupe::api
