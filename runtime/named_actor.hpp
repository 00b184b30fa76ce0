// What every supervised actor shares: exceptions become readable exit
// reasons, and the runtime's introspection handler answers the supervisor.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>

#include <caf/all.hpp>

#include "runtime/probe.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/wire.hpp"

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

namespace probing {

template <class T>
struct is_pb : std::false_type {};
template <class T>
struct is_pb<wire::pb<T>> : std::true_type {};

/// How a trace names one message element: a protobuf payload by its type
/// name, an atom by its text, anything else by its C++ type.
template <class T>
std::string element_name() {
  using U = std::decay_t<T>;
  if constexpr (is_pb<U>::value)
    return decltype(U::msg)::descriptor()->full_name();
  else if constexpr (caf::is_atom_constant<U>::value)
    return caf::to_string(U::value);
  else
    return readable_type_name(typeid(U).name());
}

template <class... Ts>
std::string message_name() {
  std::string out;
  ((out += (out.empty() ? "" : ", ") + element_name<Ts>()), ...);
  return out;
}

template <class T>
uint64_t element_bytes(const T& x) {
  if constexpr (is_pb<T>::value)
    return x.msg.ByteSizeLong();
  else if constexpr (std::is_same_v<T, std::string>)
    return x.size();
  else
    return 0;
}

inline uint64_t sender_id(caf::scheduled_actor* self) {
  auto* elem = self->current_mailbox_element();
  return elem && elem->sender ? elem->sender->id() : 0;
}

/// `handler` with the same signature, counting and (while traced) sampling
/// each message it runs for.
template <class R, class F, class... Ts>
auto wrap(caf::scheduled_actor* self, std::shared_ptr<actor_probe> p, F handler, caf::detail::type_list<Ts...>) {
  return [self, p = std::move(p), handler = std::move(handler)](Ts... xs) mutable -> R {
    ++p->handled;
    if (p->tracing && p->sample())
      p->record(message_name<Ts...>(), sender_id(self), (element_bytes<std::decay_t<Ts>>(xs) + ... + uint64_t{0}));
    return handler(std::forward<Ts>(xs)...);
  };
}

template <class F>
auto probed(caf::scheduled_actor* self, const std::shared_ptr<actor_probe>& p, F handler) {
  using trait = caf::detail::get_callable_trait<F>;
  return wrap<typename trait::result_type>(self, p, std::move(handler), typename trait::arg_types{});
}

} // namespace probing

/// The behavior of a supervised actor: its own handlers, each counted and
/// traceable (probe.hpp), plus the introspection handlers the supervisor
/// asks, which are neither counted nor traced:
///   (get, stats)            -> (mailbox size, messages handled)
///   (trace, id, millis, max) -> id: records what the handlers receive
///   (trace, get, id)        -> pb<ActorTrace>, which ends trace `id`
template <class... Handlers>
caf::behavior supervised_behavior(caf::scheduled_actor* self, Handlers... handlers) {
  name_exceptions(self);
  auto p = std::make_shared<actor_probe>();
  return {probing::probed(self, p, std::move(handlers))...,
          [self, p](caf::get_atom, atoms::stats_atom) {
            return caf::result<int64_t, uint64_t>{static_cast<int64_t>(self->mailbox().size()), p->handled};
          },
          [p](atoms::trace_atom, uint64_t id, uint32_t millis, uint32_t max_entries) {
            p->start_trace(id, std::chrono::milliseconds{millis}, max_entries);
            return id;
          },
          [p](atoms::trace_atom, caf::get_atom, uint64_t id) -> caf::result<wire::pb<v1::ActorTrace>> {
            if (!p->trace || p->trace->id != id)
              return caf::make_error(caf::sec::invalid_argument,
                                     "trace " + std::to_string(id) + " is gone (collected, or replaced by another)");
            return wire::make_pb(p->collect());
          }};
}

} // namespace troupe
