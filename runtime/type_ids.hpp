// Every CAF type-ID block and atom of Troupe, listed once, so that modules
// never include each other's message headers. Each subsystem gets a block
// chained after the previous one.
#pragma once

#include <caf/all.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(troupe_runtime, caf::first_custom_type_id)
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, stats_atom, "stats")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, respawn_atom, "respawn")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, stop_atom, "stop")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, stop_late_atom, "stop_late")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, report_atom, "report")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, gossip_atom, "gossip")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, join_atom, "join")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, leave_atom, "leave")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, frame_atom, "frame")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, expire_atom, "expire")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, flush_atom, "flush")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, trace_atom, "trace")
  CAF_ADD_ATOM(troupe_runtime, troupe::atoms, leader_atom, "leader")
CAF_END_TYPE_ID_BLOCK(troupe_runtime)
