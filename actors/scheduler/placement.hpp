// The scheduler's pure core: which node runs each allocation of a service.
//
// A `cluster` holds the nodes (capacity, labels, role, eligibility) and what
// the allocations already placed use on each (cpu, memory, host ports, and
// how many of each service). `place` picks nodes for N new allocations of
// one service: feasibility (eligible, constraints), fit (free cpu, memory,
// static ports), then ranking: spread over a node label when asked, replicas
// of one service kept apart, and bin-packing among what is left. `admit` is
// the check a plan passes again when it applies, so that two plans computed
// on the same state can never overcommit a node.
//
// No I/O, no clock, no threads, no CAF. The result depends only on the
// cluster, the request and its seed. Ranking looks at a bounded number of
// fitting nodes per placement (log2 of the feasible count, at least 8), taken
// in an order the seed rotates, as Nomad does: exhaustive scoring over 5,000
// nodes would cost a millisecond per placement for little better packing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/result.hpp"
#include "troupe/v1/service.pb.h"

namespace troupe::scheduler {

struct resources {
  std::uint64_t cpu_millis = 0;
  std::uint64_t memory_bytes = 0;
};

struct node {
  std::string name;
  std::string role = "client";  // server | client
  std::map<std::string, std::string, std::less<>> labels;
  bool eligible = true;         // takes new work: alive and not drained
  bool lost = false;            // its work moves elsewhere at once: dead or left (not merely suspect)
  bool drained = false;         // its work moves elsewhere in batches (troupectl drain)
  resources capacity;
  std::uint16_t port_min = 20000;  // the node's range for dynamic ports
  std::uint16_t port_max = 32000;
};

/// One allocation as the cluster counts it.
struct allocation {
  std::string id;
  std::string service;  // namespace/name
  std::string node;
  resources used;
  std::vector<std::uint16_t> ports;  // host ports it holds
};

/// A new allocation's node and host ports, one per declared port, in the
/// spec's order (dynamic ones chosen from the node's range).
struct placement {
  std::string id;
  std::string node;
  std::vector<std::uint16_t> ports;
};

/// What `place` did: the placements, and for what it could not place, the
/// reason, counted over the nodes ("0 of 5 nodes fit: 2 filtered by
/// node.labels.zone == a, 3 short of memory (64 MiB asked)").
struct outcome {
  std::vector<placement> placed;
  std::uint32_t unplaced = 0;
  std::string why;
};

/// The resources one allocation of `spec` asks for.
resources demand_of(const v1::ServiceSpec& spec);

/// True if `n` satisfies `c`.
bool satisfies(const node& n, const v1::Constraint& c);

class cluster {
public:
  /// Adds or replaces a node (its allocations stay counted).
  void upsert(node n);
  /// Marks a node eligible or not (drained, down).
  status set_eligible(const std::string& name, bool eligible);

  /// Counts an allocation on its node, after checking that the node is
  /// known and eligible, and has the cpu, memory and ports free.
  status admit(const allocation& a);
  /// Counts an allocation without checks (the state as it already is).
  status add(const allocation& a);
  /// Forgets an allocation; its resources and ports are free again.
  void remove(const std::string& alloc_id);

  /// Places one allocation of `spec` (service `service`) per id in `ids`,
  /// counting each in this cluster as it goes, so that the next placement
  /// sees it (remove() takes one back if its plan is dropped).
  outcome place(const std::string& service, const v1::ServiceSpec& spec, const std::vector<std::string>& ids,
                std::uint64_t seed);

  /// Which of `candidates` (ids of one service's allocations) to stop to
  /// leave `keep`: first those on ineligible nodes, then one at a time from
  /// the node that holds the most of them, the busiest on a tie; deterministic.
  std::vector<std::string> pick_to_stop(const std::vector<std::string>& candidates, std::uint32_t keep) const;

  /// The eligible nodes `spec`'s constraints allow (mode: global places
  /// one task on each).
  std::vector<std::string> feasible_nodes(const v1::ServiceSpec& spec) const;

  const node* find(const std::string& name) const;
  const allocation* find_allocation(const std::string& id) const;
  std::size_t size() const { return nodes_.size(); }
  resources used_on(const std::string& node) const;
  std::uint32_t count_on(const std::string& node, const std::string& service) const;

private:
  struct slot {
    node info;
    resources used;
    std::vector<std::uint16_t> ports;  // sorted
  };
  struct reserved {
    std::uint32_t node;
    std::uint32_t service;
    allocation alloc;
  };
  /// Per service (interned: a number, not a name, in the hot loops), how
  /// many of its allocations each node holds.
  using spread_count = std::unordered_map<std::uint32_t, std::uint32_t>;

  std::uint32_t service_id(const std::string& service);
  std::uint32_t replicas_on(std::uint32_t service, std::uint32_t node) const;

  status fits(const slot& s, const resources& want, const std::vector<std::uint16_t>& static_ports) const;
  void count(std::uint32_t at, const allocation& a);
  std::vector<std::uint16_t> ports_for(slot& s, const v1::ServiceSpec& spec) const;

  std::vector<slot> nodes_;
  std::unordered_map<std::string, std::uint32_t> index_;
  std::unordered_map<std::string, reserved> allocations_;
  std::unordered_map<std::string, std::uint32_t> service_ids_;
  std::vector<spread_count> by_service_;
};

} // namespace troupe::scheduler
