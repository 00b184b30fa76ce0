// record_event(): how an actor adds to the node's part of the cluster's
// event stream (leader and rollout events; the monitor converts the actor,
// task and member events it already keeps). One-way to the local monitor;
// lost while the monitor restarts, like the other event kinds.
#pragma once

#include <string>

#include <caf/all.hpp>

#include "runtime/clock.hpp"
#include "runtime/directory.hpp"
#include "runtime/wire.hpp"
#include "troupe/v1/introspect.pb.h"

namespace troupe {

struct event_fields {
  std::string kind;     // leader | rollout
  std::string subject;  // node or service
  std::string event;    // elected, lost, version, step, completed, ...
  std::string detail;
  uint64_t term = 0;
  uint64_t version = 0;
};

inline void record_event(const directory& names, event_fields f) {
  auto monitor = names.get("monitor");
  if (!monitor)
    return;
  v1::ClusterEvent ev;
  ev.set_at_ms(unix_ms());
  ev.set_kind(std::move(f.kind));
  ev.set_subject(std::move(f.subject));
  ev.set_event(std::move(f.event));
  ev.set_detail(std::move(f.detail));
  ev.set_term(f.term);
  ev.set_version(f.version);
  caf::anon_send(monitor, wire::make_pb(std::move(ev)));
}

} // namespace troupe
