// The api actor: the agent's HTTP/JSON API (/v1/...). Bodies are protobuf
// messages in protobuf's JSON mapping; errors are ErrorReply {code, message}.
// It runs cpp-httplib on threads it owns, so it is spawned detached; killing
// it stops the listener, and its respawn listens again.
#pragma once

#include <chrono>
#include <memory>
#include <thread>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/logging.hpp"

namespace httplib {
class Server;
}

namespace troupe::api {

class routes;

/// HTTP connections served at once (one thread each while kept alive).
inline constexpr std::size_t api_threads = 64;
/// Threads kept when idle; the others end after api_thread_idle unused.
inline constexpr std::size_t api_idle_threads = 2;
inline constexpr std::chrono::seconds api_thread_idle{30};

/// The HTTP server and the thread that runs it; destroying the state stops
/// the server and joins the thread.
struct api_state {
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<routes> handlers;
  std::unique_ptr<httplib::Server> server;
  std::thread listener;

  api_state();
  ~api_state();

  static inline const char* name = "api";
};

/// Listens on the agent's --bind and --http-port. Quits with an error that
/// names the address when it cannot listen.
caf::behavior api_actor(caf::stateful_actor<api_state>* self, agent_context_ptr ctx);

} // namespace troupe::api
