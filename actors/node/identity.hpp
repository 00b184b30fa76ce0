// The node's identity on its data dir: a random id assigned on the first
// start and kept forever, the name it was created under, and a boot count.
#pragma once

#include <string>

#include "runtime/result.hpp"
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "troupe/v1/runtime.pb.h"

namespace troupe::node {

/// Table "local", key "node": this node's NodeRecord.
inline const storage::table<v1::NodeRecord> local_node_table{"local"};
inline constexpr const char* node_key = "node";

/// The record without counting a boot: created (boot count 0) on a new
/// data dir, checked against `name` on an old one. The agent identifies
/// first, checks that it can run, and only then counts the boot.
result<v1::NodeRecord> identify(storage::environment& env, const std::string& name);

/// Called once per agent start: creates the record on a new data dir, or
/// checks that the dir belongs to `name` and counts the boot. One write
/// transaction. A data dir created for another name is refused (its
/// allocations and Raft state belong to that node).
result<v1::NodeRecord> boot(storage::environment& env, const std::string& name);

/// Reads the record (for actors rebuilding their state after a respawn).
result<v1::NodeRecord> load(const storage::environment& env);

} // namespace troupe::node
