// A linearizability checker for key/value histories (the Knossos/Porcupine
// approach): the history is split by key (each operation touches one key,
// and a register per key composes), then Wing & Gong's search with Lowe's
// memoization looks for an order of the operations that respects real time
// and the sequential semantics of a register with put, get and
// compare-and-swap. Operations whose outcome is unknown (the client gave up)
// may take effect at any time after their invocation, or never.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace troupe::raft {

enum class kv_op : std::uint8_t { put, get, cas };

struct kv_operation {
  int client = 0;
  kv_op kind = kv_op::get;
  std::string key;
  std::string value;     // put, cas: the new value; get: the value read (when found)
  std::string expected;  // cas: the value it must find
  bool ok = false;       // get: found; cas: swapped (only when known)
  std::int64_t invoke = 0;
  std::int64_t ret = never;  // `never` while the outcome is unknown
  bool known = false;        // returned to the client

  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
  /// "c3 cas(k1, 4->7)=ok [120, 188]"
  std::string describe() const;
};

enum class verdict : std::uint8_t { linearizable, not_linearizable, inconclusive };
const char* to_string(verdict v);

struct check_result {
  raft::verdict verdict = verdict::linearizable;
  std::string key;          // the key whose history failed (or ran out of budget)
  std::string explanation;  // the operations involved, for the failure message
  std::uint64_t steps = 0;  // search steps spent over all keys
};

/// Checks `history`; a key's search gives up as inconclusive after
/// `max_steps` steps (the problem is NP-complete; real histories are easy).
check_result check_linearizable(const std::vector<kv_operation>& history, std::uint64_t max_steps = 5'000'000);

} // namespace troupe::raft
