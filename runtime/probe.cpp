#include "runtime/probe.hpp"

#include <cxxabi.h>

#include <cstdlib>

#include "runtime/clock.hpp"

namespace troupe {

void trace_sampler::keep(v1::TraceEntry entry) {
  entries_.push_back(std::move(entry));
  if (entries_.size() < max_)
    return;
  // Full: keep every other entry (those at the doubled stride) from now on.
  std::size_t out = 0;
  for (std::size_t i = 0; i < entries_.size(); i += 2)
    entries_[out++] = std::move(entries_[i]);
  entries_.resize(out);
  stride_ *= 2;
}

trace_session::trace_session(uint64_t trace_id, std::chrono::milliseconds length, std::size_t max_entries)
  : id(trace_id), until(std::chrono::steady_clock::now() + length), started_at_ms(unix_ms()),
    sample(max_entries) {}

void actor_probe::start_trace(uint64_t id, std::chrono::milliseconds length, std::size_t max_entries) {
  trace = std::make_unique<trace_session>(id, length, max_entries);
  tracing = true;
}

bool actor_probe::sample() {
  if (std::chrono::steady_clock::now() >= trace->until) {
    tracing = false;
    trace->ended_at_ms = unix_ms();
    return false;
  }
  return trace->sample.offer();
}

void actor_probe::record(std::string type, uint64_t sender_id, uint64_t bytes) {
  v1::TraceEntry e;
  e.set_at_ms(unix_ms());
  e.set_type(std::move(type));
  if (sender_id != 0)
    e.set_sender("#" + std::to_string(sender_id));
  e.set_bytes(bytes);
  trace->sample.keep(std::move(e));
}

v1::ActorTrace actor_probe::collect() {
  v1::ActorTrace out;
  if (!trace)
    return out;
  if (tracing) {
    tracing = false;
    trace->ended_at_ms = unix_ms();
  }
  out.set_trace_id(trace->id);
  out.set_started_at_ms(trace->started_at_ms);
  out.set_ended_at_ms(trace->ended_at_ms);
  out.set_seen(trace->sample.seen());
  out.set_sample_every(trace->sample.stride());
  for (const auto& e : trace->sample.entries())
    *out.add_entries() = e;
  out.set_shown(static_cast<uint64_t>(out.entries_size()));
  trace.reset();
  return out;
}

std::string readable_type_name(const char* mangled) {
  int status = 0;
  char* plain = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && plain ? plain : mangled;
  std::free(plain);
  if (out.rfind("std::__cxx11::basic_string<char", 0) == 0)
    return "string";
  return out;
}

} // namespace troupe
