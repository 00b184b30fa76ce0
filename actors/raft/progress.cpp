#include "actors/raft/progress.hpp"

#include <algorithm>

namespace troupe::raft {

const char* to_string(replication state) {
  switch (state) {
  case replication::probe: return "probe";
  case replication::replicate: return "replicate";
  case replication::snapshot: return "snapshot";
  }
  return "?";
}

void progress::become_probe() {
  // After a snapshot, resume just past it (or what was acknowledged since).
  next = state == replication::snapshot ? std::max(match + 1, pending_snapshot + 1) : match + 1;
  state = replication::probe;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void progress::become_replicate() {
  state = replication::replicate;
  next = match + 1;
  probe_sent = false;
  inflights.reset();
}

void progress::become_snapshot(std::uint64_t index) {
  state = replication::snapshot;
  pending_snapshot = index;
  snapshot_ticks = 0;
  probe_sent = false;
  inflights.reset();
}

bool progress::maybe_update(std::uint64_t index) {
  bool updated = false;
  if (match < index) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool progress::maybe_decrease_to(std::uint64_t rejected, std::uint64_t hint) {
  if (state == replication::replicate) {
    if (rejected <= match)
      return false;  // stale: that append was already acknowledged
    next = match + 1;
    return true;
  }
  if (next - 1 != rejected)
    return false;  // not the probe we are waiting for
  next = std::max<std::uint64_t>(std::min(rejected, hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool progress::paused() const {
  switch (state) {
  case replication::probe: return probe_sent;
  case replication::replicate: return inflights.full();
  case replication::snapshot: return true;
  }
  return true;
}

std::uint64_t quorum_index(std::vector<std::uint64_t> matches) {
  if (matches.empty())
    return 0;
  std::sort(matches.begin(), matches.end());
  // With n voters, n/2 + 1 of them have reached matches[n - (n/2 + 1)].
  return matches[matches.size() - (matches.size() / 2 + 1)];
}

} // namespace troupe::raft
