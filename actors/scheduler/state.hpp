// The services part of the replicated cluster state: the nodes the
// scheduler may use, the services with their current and recent versions,
// and the allocations. The raft actor applies the service commands of the
// log here, inside the batch's LMDB transaction, on every server alike.
//
// The tables are mirrored in memory, so that reads and the check of a plan
// at apply (scheduler::cluster::admit) never touch the disk; load() rebuilds
// the mirror from LMDB after a restart or a snapshot install. Refusals are
// deterministic (they depend on the log only): every server refuses alike.
#pragma once

#include <map>
#include <string>

#include "actors/scheduler/placement.hpp"
#include "runtime/refusal.hpp"
#include "runtime/result.hpp"
#include "storage/table.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupe::scheduler {

// The cluster_ prefix keeps them apart from the node's own tables in the
// same LMDB environment (the node actor's "allocations" are its local ones).
inline const storage::table<v1::SchedNode> nodes_table{"cluster_nodes"};
inline const storage::table<v1::ServiceRecord> services_table{"cluster_services"};
/// Key: namespace/name/<version, 20 digits>: the recent versions, for rollback.
inline const storage::table<v1::ServiceRecord> versions_table{"cluster_service_versions"};
inline const storage::table<v1::AllocationRecord> allocations_table{"cluster_allocations"};
/// The cluster's own registry: ClusterImage by name (repo:tag).
inline const storage::table<v1::ClusterImage> images_table{"cluster_images"};
/// API tokens by id, and the agents' own secret (key "agent").
inline const storage::table<v1::Token> tokens_table{"cluster_tokens"};
inline const storage::table<v1::AgentToken> agent_secret_table{"cluster_agent_secret"};
/// Versions kept per service.
inline constexpr std::uint64_t versions_kept = 10;

/// "namespace/name" of a spec.
std::string service_key(const v1::ServiceSpec& spec);
/// True if the node may take new work: alive and not drained.
bool eligible(const v1::SchedNode& n);
/// The scheduler's view of a node and of an allocation (one with desired
/// stop counts for its node's resources, not as a replica of its service).
node to_node(const v1::SchedNode& n);
allocation to_allocation(const v1::AllocationRecord& a);
/// True while an allocation holds its node's resources: until its node
/// reports it stopped, failed or lost.
bool holds(const v1::AllocationRecord& a);
/// True if the allocation runs the task `spec` asks for (its name and the
/// host ports of dynamic ports aside): a new version adopts it.
bool runs_spec(const v1::AllocationRecord& a, const v1::ServiceSpec& spec);
/// True for a task state that ends it: stopped, failed, exited.
bool finished(const std::string& state);
/// How many allocations `record`'s service wants on `nodes` (replicas, or
/// one per eligible node its constraints allow in mode global).
std::uint32_t desired_count(const v1::ServiceRecord& record, const cluster& nodes);

class service_state {
public:
  /// What one command did: the answer for its proposer, or why it was refused.
  struct applied {
    v1::ServiceReply reply;
    std::string refused;
    refusal kind = refusal::conflict;  // of a refusal: missing, invalid or conflict
  };

  /// Reads the tables into memory.
  status load(const storage::read_txn& t);
  /// Replaces the tables with a snapshot's.
  status install(storage::write_txn& t, const v1::KvSnapshot& snap);
  void snapshot(v1::KvSnapshot& snap) const;

  /// True for the commands this state applies.
  static bool handles(const v1::ClusterCommand& cmd);
  /// Applies one command; an error is a storage failure (nothing may be
  /// acknowledged), a refusal is in the result.
  result<applied> apply(storage::write_txn& t, const v1::ClusterCommand& cmd);

  v1::ServiceList services(const std::string& only) const;
  v1::AllocationList allocations(const std::string& service, const std::string& node) const;
  v1::NodeList nodes() const;
  /// The cluster's own registry: its tags and what they hold.
  v1::ClusterImageList images() const;
  /// The API tokens (with their secrets' hashes) and the agents' secret's hash.
  v1::TokenList tokens() const;
  /// The agents' own secret ("" before bootstrap).
  const std::string& agent_secret() const { return agent_secret_; }
  /// The nodes and the allocations that hold resources, to plan on (a copy).
  const cluster& view() const { return cluster_; }

private:
  result<applied> deploy(storage::write_txn& t, const v1::DeployService& d);
  result<applied> remove(storage::write_txn& t, const v1::RemoveService& r);
  result<applied> scale(storage::write_txn& t, const v1::ScaleService& s);
  result<applied> plan(storage::write_txn& t, const v1::ApplyPlan& p);
  result<applied> upsert_nodes(storage::write_txn& t, const v1::UpsertNodes& u);
  result<applied> update_allocations(storage::write_txn& t, const v1::AllocationUpdates& u);
  result<applied> rollback(storage::write_txn& t, const v1::RollbackService& r);
  result<applied> rollout_step(storage::write_txn& t, const v1::RolloutStep& s);
  result<applied> drain(storage::write_txn& t, const v1::DrainNode& d);
  result<applied> put_image(storage::write_txn& t, const v1::PutClusterImage& p);
  result<applied> put_token(storage::write_txn& t, const v1::PutToken& p);
  result<applied> revoke_token(storage::write_txn& t, const v1::RevokeToken& r);
  /// Makes `spec` the service's next version; while older tasks run, a
  /// rollout in `rollout` state (updating or rolling_back) replaces them.
  result<applied> new_version(storage::write_txn& t, const v1::ServiceSpec& spec, std::int64_t at_ms,
                              const std::string& rollout, const std::string& reason);
  /// Drops an allocation from the table and the mirror; its resources are free.
  status forget(storage::write_txn& t, const std::string& id);
  /// The refusal of a command naming a service that does not exist.
  static applied missing(const std::string& service);
  /// Stops one allocation: a pending one (nothing ran) goes at once, a
  /// started one is marked desired stop for its node.
  status stop(storage::write_txn& t, const std::string& id, const std::string& why, std::int64_t at_ms);
  void count_node(const v1::SchedNode& n);
  void rebuild();

  std::map<std::string, v1::SchedNode> nodes_;
  std::map<std::string, v1::ServiceRecord> services_;
  std::map<std::string, v1::AllocationRecord> allocations_;
  std::map<std::string, v1::ServiceRecord> versions_;  // by versions_table key
  std::map<std::string, v1::ClusterImage> images_;     // by name (repo:tag)
  std::map<std::string, v1::Token> tokens_;            // by id
  std::string agent_secret_;
  cluster cluster_;
};

} // namespace troupe::scheduler
