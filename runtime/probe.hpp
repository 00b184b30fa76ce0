// What the runtime measures inside every supervised actor: how many messages
// its handlers ran for, and, while someone traces it, what those messages
// were. supervised_behavior (named_actor.hpp) wraps each handler so that a
// message costs one increment and one branch when no trace is active.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "troupe/v1/introspect.pb.h"

namespace troupe {

/// A bounded, evenly thinned sample of a message stream: every message is
/// counted; every `stride`-th one is kept; when `max` are kept, every other
/// kept one is dropped and the stride doubles. So a quiet actor shows every
/// message and a busy one a sample spread over the whole trace.
class trace_sampler {
public:
  explicit trace_sampler(std::size_t max) : max_(max < 2 ? 2 : max) {}

  /// Counts one message; true when it is to be kept (then call keep()).
  bool offer() { return seen_++ % stride_ == 0; }

  void keep(v1::TraceEntry entry);

  uint64_t seen() const { return seen_; }
  uint64_t stride() const { return stride_; }
  const std::vector<v1::TraceEntry>& entries() const { return entries_; }

private:
  std::size_t max_;
  uint64_t seen_ = 0;
  uint64_t stride_ = 1;
  std::vector<v1::TraceEntry> entries_;
};

/// One trace of one actor incarnation.
struct trace_session {
  uint64_t id = 0;
  std::chrono::steady_clock::time_point until;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;   // 0 while recording
  trace_sampler sample;

  trace_session(uint64_t trace_id, std::chrono::milliseconds length, std::size_t max_entries);
};

/// Per actor incarnation; only its own handlers touch it (no locking).
struct actor_probe {
  uint64_t handled = 0;
  bool tracing = false;                  // the hot path's only branch
  std::unique_ptr<trace_session> trace;  // kept after the end until collected

  /// Starts (or replaces) the trace.
  void start_trace(uint64_t id, std::chrono::milliseconds length, std::size_t max_entries);

  /// True if this message is to be described (the trace runs and samples
  /// it); ends the trace once its time is up.
  bool sample();

  /// Keeps one described message.
  void record(std::string type, uint64_t sender_id, uint64_t bytes);

  /// The trace so far, which ends it; sender ids in `sender` as "#ID".
  v1::ActorTrace collect();
};

/// "std::string" for a C++ type, demangled and shortened.
std::string readable_type_name(const char* mangled);

} // namespace troupe
