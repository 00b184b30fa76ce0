// What every supervised actor shares: exceptions become readable exit
// reasons, and the runtime's introspection handler answers the supervisor.
#pragma once

#include <exception>
#include <string>

#include <caf/all.hpp>

#include "runtime/type_ids.hpp"

namespace troupe {

/// Turns an exception escaping a handler into the actor's exit reason
/// ("unhandled exception: <what>"), which the supervisor logs.
inline void name_exceptions(caf::scheduled_actor* self) {
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      return caf::make_error(caf::sec::runtime_error, std::string{"unhandled exception: "} + e.what());
    } catch (...) {
      return caf::make_error(caf::sec::runtime_error, "unhandled exception of unknown type");
    }
  });
}

/// The behavior of a supervised actor: its own handlers, plus the
/// introspection handler `(get, stats) -> mailbox size` the supervisor asks.
template <class... Handlers>
caf::behavior supervised_behavior(caf::scheduled_actor* self, Handlers... handlers) {
  name_exceptions(self);
  return {std::move(handlers)...,
          [self](caf::get_atom, atoms::stats_atom) {
            return static_cast<int64_t>(self->mailbox().size());
          }};
}

} // namespace troupe
