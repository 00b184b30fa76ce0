// fan_out(): one request to an actor on each of several nodes at once, for
// the API's cluster-wide views (actors --all, status, the event stream).
// This node's actor is asked directly, the others through the rpc actor;
// every node's answer or its error comes back, within a bounded time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/wire.hpp"
#include "troupe/v1/envelope.pb.h"

namespace troupe::api {

struct node_call {
  std::string node;
  std::string actor;
  v1::Envelope request;  // wire::seal(payload, {"", "api", actor, 0, false})
  std::chrono::milliseconds timeout;
};

struct node_answer {
  std::string node;
  std::string actor;
  std::optional<v1::Envelope> reply;  // the typed reply, when there is one
  std::string error;                  // else why not: the node's refusal, unreachable, no answer in time
  bool pending = false;               // not answered yet when fan_out returned early (`enough`, `cancel`)
};

/// Returns when every call is answered; or, once `enough` holds for one
/// reply, `grace` later (the calls still out get "no answer yet"); or when
/// the longest timeout is up; or at once when `cancel` turns true (every
/// call then "no answer"). Blocks: call it from a thread that is no actor.
std::vector<node_answer> fan_out(caf::actor_system& sys, agent_context_ptr ctx, std::vector<node_call> calls,
                                 std::function<bool(const v1::Envelope&)> enough = {},
                                 std::chrono::milliseconds grace = std::chrono::milliseconds{50},
                                 const std::atomic<bool>* cancel = nullptr);

/// The call of `payload` to `actor` on `node`.
template <class T>
node_call call_of(const std::string& node, const std::string& actor, const T& payload,
                  std::chrono::milliseconds timeout) {
  return {node, actor, wire::seal(payload, wire::route{"", "api", actor, 0, false}), timeout};
}

} // namespace troupe::api
