// The typed-message bridge: protobuf payloads as typed CAF message elements
// (pb<T>), and the one codec that turns envelopes into typed messages for a
// named actor and typed replies back into envelopes. Actors never see bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <typeindex>

#include <caf/all.hpp>

#include "runtime/describe.hpp"
#include "runtime/refusal.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/envelope.pb.h"

namespace troupe::wire {

/// The protocol version this build speaks. open() refuses envelopes of other
/// versions with an error that names both versions.
inline constexpr uint32_t protocol_version = 1;

/// The largest envelope a receiver parses; larger frames are refused unread.
inline constexpr std::size_t max_envelope_bytes = 4u << 20;

/// A protobuf message as one element of a typed CAF message. Locally it is
/// moved as an object; if CAF ever serializes it, it travels as its bytes.
template <class T>
struct pb {
  T msg;
};

template <class T>
pb<T> make_pb(T msg) {
  return pb<T>{std::move(msg)};
}

template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, pb<T>& x) {
  std::string bytes;
  if constexpr (Inspector::reads_state)
    bytes = x.msg.SerializeAsString();
  auto parse = [&]() -> caf::error {
    if (x.msg.ParseFromString(bytes))
      return caf::none;
    return caf::make_error(caf::sec::invalid_argument,
                           "payload does not parse as " + T::descriptor()->full_name());
  };
  return f(caf::meta::type_name("troupe.pb"), bytes, caf::meta::load_callback(parse));
}

/// Where an envelope comes from and goes to.
struct route {
  std::string sender_node;
  std::string sender_actor;
  std::string target_actor;
  uint64_t correlation_id = 0;
  bool is_reply = false;
};

/// Wraps a payload for the wire.
template <class T>
v1::Envelope seal(const T& payload, const route& r) {
  v1::Envelope env;
  env.set_version(protocol_version);
  env.set_sender_node(r.sender_node);
  env.set_sender_actor(r.sender_actor);
  env.set_target_actor(r.target_actor);
  env.set_correlation_id(r.correlation_id);
  env.set_is_reply(r.is_reply);
  env.set_payload_type(T::descriptor()->full_name());
  payload.SerializeToString(env.mutable_payload());
  return env;
}

/// Bytes to envelope, checked: size bound, protobuf parse, version, and the
/// fields every envelope needs. Each refusal names what is wrong.
result<v1::Envelope> open(std::string_view bytes);

/// Checks a parsed envelope (what open() checks after parsing).
status validate(const v1::Envelope& env);

/// The ErrorReply envelope that answers `request`.
v1::Envelope error_reply(const v1::Envelope& request, const std::string& self_node,
                         std::string code, std::string message);

/// Opens a payload of type T (for replies and tests).
template <class T>
result<T> unseal(const v1::Envelope& env) {
  if (env.payload_type() != T::descriptor()->full_name())
    return error{"payload type is '" + env.payload_type() + "', expected '" +
                 T::descriptor()->full_name() + "'"};
  T msg;
  if (!msg.ParseFromString(env.payload()))
    return error{"payload does not parse as " + env.payload_type()};
  return msg;
}

/// One line for logs: "node-a/api -> monitor #7 troupe.v1.GetEvents (12 bytes)".
std::string describe(const v1::Envelope& env);

/// Maps payload type names to typed CAF messages. Each payload type is
/// registered once, as one-way (`add<T>`) or as a request with a typed reply
/// (`add<Req, Rep>`); the codec then delivers envelopes of that type to an
/// actor as pb<Req> and turns the actor's pb<Rep> (or caf::error) into the
/// reply envelope.
class codec {
public:
  using reply_fn = std::function<void(v1::Envelope)>;

  /// A codec that knows the runtime's own payloads (runtime.proto).
  static codec with_runtime_types(std::chrono::milliseconds request_timeout);

  explicit codec(std::chrono::milliseconds request_timeout) : timeout_(request_timeout) {}

  template <class T>
  void add() {
    entries_[T::descriptor()->full_name()] = entry{false, [](caf::event_based_actor* self,
                                                 const caf::actor& target,
                                                 const v1::Envelope& in, const std::string&,
                                                 reply_fn, std::chrono::milliseconds) {
      pb<T> x;
      if (!x.msg.ParseFromString(in.payload()))
        return status{error{"payload does not parse as " + in.payload_type()}};
      if (self)
        self->send(target, std::move(x));
      else
        caf::anon_send(target, std::move(x));
      return status{};
    }};
  }

  template <class Req, class Rep>
  void add() {
    entries_[Req::descriptor()->full_name()] = entry{true,
      [](caf::event_based_actor* self, const caf::actor& target, const v1::Envelope& in,
         const std::string& self_node, reply_fn reply, std::chrono::milliseconds timeout) {
        pb<Req> x;
        if (!x.msg.ParseFromString(in.payload()))
          return status{error{"payload does not parse as " + in.payload_type()}};
        route back{self_node, in.target_actor(), in.sender_actor(), in.correlation_id(), true};
        self->request(target, timeout, std::move(x))
          .then([reply, back](pb<Rep>& rep) { reply(seal(rep.msg, back)); },
                [reply, in, self_node](caf::error& err) {
                  auto kind = refusal_of(err);
                  reply(error_reply(in, self_node, kind ? wire_code(*kind) : "actor_error", describe_exit(err)));
                });
        return status{};
      }};
  }

  bool knows(const std::string& payload_type) const {
    return entries_.count(payload_type) > 0;
  }

  /// Delivers `in` to `target` from `self`. Requests (correlation id set)
  /// get exactly one reply through `reply`: the typed reply, or an
  /// ErrorReply when the type is unknown, the payload does not parse, the
  /// actor fails or the request times out. Never throws.
  void deliver(caf::event_based_actor* self, const caf::actor& target,
               const v1::Envelope& in, const std::string& self_node, reply_fn reply) const;

  /// Delivers a one-way envelope (no correlation id) to `target` from any
  /// thread, without a sender. False, and nothing sent, when `in` is not a
  /// one-way message of a registered one-way type whose payload parses: the
  /// caller then hands it to deliver(), which says why.
  bool deliver_one_way(const caf::actor& target, const v1::Envelope& in) const;

private:
  struct entry {
    bool is_request;
    std::function<status(caf::event_based_actor*, const caf::actor&, const v1::Envelope&,
                         const std::string&, reply_fn, std::chrono::milliseconds)>
      fn;
  };
  std::chrono::milliseconds timeout_;
  std::map<std::string, entry, std::less<>> entries_;
};

} // namespace troupe::wire
