// leader_beacon: the leader actor every server runs while it leads. On start
// it records the leadership in the replicated state, key "troupe/leader",
// as {"node", "term", "since_ms"}, through a command fenced by its term: a
// record from a deposed leader never applies. Answers (get, term) with the
// term it runs in.
#pragma once

#include <caf/all.hpp>

#include "actors/raft/raft_actor.hpp"

namespace troupe::raft {

/// The key the leader's record is kept under.
inline constexpr const char* leader_key = "troupe/leader";

caf::behavior leader_beacon(caf::event_based_actor* self, leader_context lc);

} // namespace troupe::raft
