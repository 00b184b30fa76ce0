// ask(): a blocking request from a thread that is not an actor (an HTTP
// handler, main, a test) to a named actor, typed on both ends. Never call it
// inside an actor's handler: actors use request().then().
#pragma once

#include <chrono>
#include <optional>

#include <caf/all.hpp>

#include "runtime/result.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/wire.hpp"

namespace troupe {

/// What went wrong with an ask, for callers that map it (to HTTP codes).
/// not_found: a remote ask named a node that is no member of the cluster;
/// conflict and invalid: the actor refused for good or because the request
/// is wrong (refusal.hpp); refused: any other error.
enum class ask_failure { none, no_actor, timeout, refused, not_found, conflict, invalid };

/// The ask_failure of an error an actor answered with.
inline ask_failure failure_of(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return ask_failure::timeout;
  auto kind = refusal_of(err);
  return kind == refusal::conflict  ? ask_failure::conflict
         : kind == refusal::invalid ? ask_failure::invalid
         : kind == refusal::missing ? ask_failure::not_found
                                    : ask_failure::refused;
}

template <class Rep, class Req>
result<Rep> ask(caf::actor_system& sys, const caf::actor& target, Req req,
                std::chrono::milliseconds timeout, ask_failure* why = nullptr) {
  auto fail = [&](ask_failure f, std::string msg) {
    if (why != nullptr)
      *why = f;
    return result<Rep>{error{std::move(msg)}};
  };
  if (!target)
    return fail(ask_failure::no_actor, "actor is not running");
  caf::scoped_actor self{sys};
  std::optional<result<Rep>> out;
  self->request(target, timeout, wire::make_pb(std::move(req)))
    .receive([&](wire::pb<Rep>& rep) { out.emplace(std::move(rep.msg)); },
             [&](caf::error& err) {
               auto f = failure_of(err);
               out.emplace(fail(f, f == ask_failure::timeout
                                     ? "no answer within " + std::to_string(timeout.count()) + "ms"
                                     : describe_exit(err)));
             });
  return std::move(*out);
}

} // namespace troupe
