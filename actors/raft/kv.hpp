// The simulator's replicated state machine: a key/value map with put, get
// and compare-and-swap, its commands encoded into log entries and its state
// into snapshots. Applying is deterministic: a command that does not decode
// is rejected the same way on every server, and the log moves on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "actors/raft/linearizability.hpp"

namespace troupe::raft {

struct kv_command {
  kv_op kind = kv_op::put;
  std::uint32_t client = 0;
  std::uint64_t seq = 0;  // the client's operation number: results find their caller by it
  std::string key, value, expected;
};

std::string encode(const kv_command& c);
std::optional<kv_command> decode_command(std::string_view bytes);

struct kv_result {
  bool applied = false;  // false: the command did not decode (rejected)
  bool ok = false;       // get: found; cas: swapped; put: true
  std::string value;     // get: the value found
};

class kv_store {
public:
  kv_result apply(std::string_view bytes);
  kv_result apply(const kv_command& c);
  std::optional<std::string> get(const std::string& key) const;

  std::string snapshot() const;
  static std::optional<kv_store> restore(std::string_view bytes);
  /// FNV-1a over the contents: equal on servers that applied the same log.
  std::uint64_t digest() const;
  std::uint64_t rejected() const { return rejected_; }

private:
  std::map<std::string, std::string> data_;
  std::uint64_t rejected_ = 0;
};

} // namespace troupe::raft
