#include "actors/scheduler/placement.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "runtime/text.hpp"

namespace troupe::scheduler {
namespace {

/// splitmix64: a well-mixed 64-bit value from any seed.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// FNV-1a: a stable hash of a name (std::hash may differ between builds).
std::uint64_t hash_of(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s)
    h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string_view attribute_of(const node& n, std::string_view attribute) {
  if (attribute == "name")
    return n.name;
  if (attribute == "role")
    return n.role;
  if (attribute.substr(0, 7) == "labels.") {
    auto it = n.labels.find(attribute.substr(7));
    return it == n.labels.end() ? std::string_view{} : std::string_view{it->second};
  }
  return {};
}

std::string mebibytes(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

/// "1 node" / "3 nodes".
std::string nodes_text(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " node" : " nodes"); }

/// Fraction of `cap` in use once `extra` more is used; 0 for no capacity.
double share(std::uint64_t used, std::uint64_t extra, std::uint64_t cap) {
  return cap == 0 ? 0.0 : static_cast<double>(used + extra) / static_cast<double>(cap);
}

bool has_port(const std::vector<std::uint16_t>& sorted, std::uint16_t port) {
  return std::binary_search(sorted.begin(), sorted.end(), port);
}

} // namespace

resources demand_of(const v1::ServiceSpec& spec) {
  const auto& r = spec.task().resources();
  return {r.cpu_millis(), r.memory_bytes()};
}

bool satisfies(const node& n, const v1::Constraint& c) {
  auto value = attribute_of(n, c.attribute());
  bool listed = std::find(c.values().begin(), c.values().end(), value) != c.values().end();
  if (c.op() == "==" || c.op() == "in")
    return listed;
  if (c.op() == "!=" || c.op() == "not in")
    return !listed;
  return false;  // an operator the spec reader would have refused
}

void cluster::upsert(node n) {
  auto it = index_.find(n.name);
  if (it != index_.end()) {
    nodes_[it->second].info = std::move(n);
    return;
  }
  index_.emplace(n.name, static_cast<std::uint32_t>(nodes_.size()));
  nodes_.push_back(slot{std::move(n), {}, {}});
}

status cluster::set_eligible(const std::string& name, bool eligible) {
  auto it = index_.find(name);
  if (it == index_.end())
    return error{"node " + quote(name) + " is not known"};
  nodes_[it->second].info.eligible = eligible;
  return {};
}

const node* cluster::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &nodes_[it->second].info;
}

const allocation* cluster::find_allocation(const std::string& id) const {
  auto it = allocations_.find(id);
  return it == allocations_.end() ? nullptr : &it->second.alloc;
}

resources cluster::used_on(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? resources{} : nodes_[it->second].used;
}

std::uint32_t cluster::service_id(const std::string& service) {
  auto [it, added] = service_ids_.emplace(service, static_cast<std::uint32_t>(by_service_.size()));
  if (added)
    by_service_.emplace_back();
  return it->second;
}

std::uint32_t cluster::replicas_on(std::uint32_t service, std::uint32_t node) const {
  const auto& per = by_service_[service];
  auto it = per.find(node);
  return it == per.end() ? 0 : it->second;
}

std::uint32_t cluster::count_on(const std::string& name, const std::string& service) const {
  auto n = index_.find(name);
  auto s = service_ids_.find(service);
  return n == index_.end() || s == service_ids_.end() ? 0 : replicas_on(s->second, n->second);
}

status cluster::fits(const slot& s, const resources& want, const std::vector<std::uint16_t>& static_ports) const {
  const auto& cap = s.info.capacity;
  if (s.used.cpu_millis + want.cpu_millis > cap.cpu_millis && want.cpu_millis > 0)
    return error{"short of cpu"};
  if (s.used.memory_bytes + want.memory_bytes > cap.memory_bytes && want.memory_bytes > 0)
    return error{"short of memory"};
  for (auto p : static_ports)
    if (has_port(s.ports, p))
      return error{"port " + std::to_string(p) + " in use"};
  return {};
}

void cluster::count(std::uint32_t at, const allocation& a) {
  auto& s = nodes_[at];
  s.used.cpu_millis += a.used.cpu_millis;
  s.used.memory_bytes += a.used.memory_bytes;
  for (auto p : a.ports)
    s.ports.insert(std::upper_bound(s.ports.begin(), s.ports.end(), p), p);
  auto service = service_id(a.service);
  ++by_service_[service][at];
  allocations_[a.id] = reserved{at, service, a};
}

status cluster::add(const allocation& a) {
  auto it = index_.find(a.node);
  if (it == index_.end())
    return error{"allocation " + a.id + ": node " + quote(a.node) + " is not known"};
  if (allocations_.count(a.id))
    return error{"allocation " + a.id + " is counted already"};
  count(it->second, a);
  return {};
}

status cluster::admit(const allocation& a) {
  auto it = index_.find(a.node);
  if (it == index_.end())
    return error{"allocation " + a.id + ": node " + quote(a.node) + " is not known"};
  const auto& s = nodes_[it->second];
  if (!s.info.eligible)
    return error{"allocation " + a.id + ": node " + a.node + " is not eligible (down or drained)"};
  if (allocations_.count(a.id))
    return error{"allocation " + a.id + " is placed already"};
  auto ports = a.ports;
  std::sort(ports.begin(), ports.end());
  if (std::adjacent_find(ports.begin(), ports.end()) != ports.end())
    return error{"allocation " + a.id + " holds one port twice"};
  if (auto fit = fits(s, a.used, ports); !fit)
    return error{"allocation " + a.id + " does not fit on node " + a.node + ": " + fit.error().message() + " (" +
                 std::to_string(s.used.cpu_millis) + "m of " + std::to_string(s.info.capacity.cpu_millis) + "m cpu, " +
                 mebibytes(s.used.memory_bytes) + " of " + mebibytes(s.info.capacity.memory_bytes) + " used)"};
  count(it->second, a);
  return {};
}

void cluster::remove(const std::string& alloc_id) {
  auto it = allocations_.find(alloc_id);
  if (it == allocations_.end())
    return;
  auto& s = nodes_[it->second.node];
  const auto& a = it->second.alloc;
  s.used.cpu_millis -= std::min(s.used.cpu_millis, a.used.cpu_millis);
  s.used.memory_bytes -= std::min(s.used.memory_bytes, a.used.memory_bytes);
  for (auto p : a.ports) {
    auto at = std::lower_bound(s.ports.begin(), s.ports.end(), p);
    if (at != s.ports.end() && *at == p)
      s.ports.erase(at);
  }
  auto& per = by_service_[it->second.service];
  auto on = per.find(it->second.node);
  if (on != per.end() && --on->second == 0)
    per.erase(on);
  allocations_.erase(it);
}

std::vector<std::string> cluster::feasible_nodes(const v1::ServiceSpec& spec) const {
  std::vector<std::string> out;
  for (const auto& s : nodes_)
    if (s.info.eligible && std::all_of(spec.constraints().begin(), spec.constraints().end(),
                                       [&](const v1::Constraint& c) { return satisfies(s.info, c); }))
      out.push_back(s.info.name);
  return out;
}

std::vector<std::uint16_t> cluster::ports_for(slot& s, const v1::ServiceSpec& spec) const {
  // A dynamic port is the lowest of the range that the node does not hold,
  // that no static port of the spec names and that is not chosen already.
  std::vector<std::uint16_t> out;
  std::uint32_t candidate = s.info.port_min;
  auto free = [&](std::uint32_t port) {
    auto p16 = static_cast<std::uint16_t>(port);
    return !has_port(s.ports, p16) && std::find(out.begin(), out.end(), p16) == out.end() &&
           std::none_of(spec.task().ports().begin(), spec.task().ports().end(),
                        [&](const v1::PortSpec& p) { return p.port() == port; });
  };
  for (const auto& p : spec.task().ports()) {
    if (p.port() != 0) {
      out.push_back(static_cast<std::uint16_t>(p.port()));
      continue;
    }
    while (candidate <= s.info.port_max && !free(candidate))
      ++candidate;
    if (candidate > s.info.port_max)
      return {};  // the range is full
    out.push_back(static_cast<std::uint16_t>(candidate++));
  }
  return out;
}

outcome cluster::place(const std::string& service, const v1::ServiceSpec& spec, const std::vector<std::string>& ids,
                       std::uint64_t seed) {
  outcome out;
  if (ids.empty())
    return out;
  auto want = demand_of(spec);
  std::vector<std::uint16_t> static_ports;
  std::uint32_t dynamic = 0;
  for (const auto& p : spec.task().ports()) {
    if (p.port() == 0)
      ++dynamic;
    else
      static_ports.push_back(static_cast<std::uint16_t>(p.port()));
  }
  std::sort(static_ports.begin(), static_ports.end());
  if (auto twice = std::adjacent_find(static_ports.begin(), static_ports.end()); twice != static_ports.end()) {
    out.unplaced = static_cast<std::uint32_t>(ids.size());
    out.why = "placed 0 of " + std::to_string(ids.size()) + "; host port " + std::to_string(*twice) +
              " is declared twice";
    return out;
  }

  // Feasibility, once per request; why each node was left out is kept for
  // the report should something stay unplaced.
  std::uint32_t ineligible = 0;
  std::vector<std::uint32_t> filtered(static_cast<std::size_t>(spec.constraints_size()), 0);
  // Spread: one group of nodes per value of the label (nodes without it form
  // the group ""); without spread, one group.
  struct group {
    std::vector<std::uint32_t> nodes;
    std::uint64_t count = 0;  // allocations of this service in the group
    std::size_t cursor = 0;
    bool full = false;
  };
  std::map<std::string_view, group> groups;
  std::vector<group*> group_of(nodes_.size(), nullptr);
  const std::string spread = spec.spread().empty() ? std::string{} : "labels." + spec.spread();
  const auto svc = service_id(service);
  std::size_t feasible = 0;
  for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
    const auto& s = nodes_[i];
    if (!s.info.eligible) {
      ++ineligible;
      continue;
    }
    int failed = -1;
    for (int c = 0; c < spec.constraints_size() && failed < 0; ++c)
      if (!satisfies(s.info, spec.constraints(c)))
        failed = c;
    if (failed >= 0) {
      ++filtered[static_cast<std::size_t>(failed)];
      continue;
    }
    auto& g = groups[spread.empty() ? std::string_view{} : attribute_of(s.info, spread)];
    g.nodes.push_back(i);
    group_of[i] = &g;
    ++feasible;
  }
  for (const auto& [at, n] : by_service_[svc])
    if (group_of[at] != nullptr)
      group_of[at]->count += n;
  // Each group is walked from a point the seed picks; every placement goes
  // on from where the last one stopped, so that they look at new nodes.
  for (auto& [value, g] : groups)
    g.cursor = static_cast<std::size_t>(mix(seed ^ hash_of(service) ^ hash_of(value)) % g.nodes.size());
  const std::size_t limit =
    std::max<std::size_t>(8, static_cast<std::size_t>(std::ceil(std::log2(static_cast<double>(feasible) + 1))));

  std::size_t k = 0;
  for (; k < ids.size(); ++k) {
    // The group with the fewest allocations of the service that still has room.
    group* g = nullptr;
    for (auto& [value, candidate] : groups)
      if (!candidate.full && (g == nullptr || candidate.count < g->count))
        g = &candidate;
    if (g == nullptr)
      break;
    std::uint32_t best = 0;
    double best_score = -1e300;
    std::size_t fitting = 0, looked = 0;
    for (; looked < g->nodes.size() && fitting < limit; ++looked) {
      auto at = g->nodes[(g->cursor + looked) % g->nodes.size()];
      auto& s = nodes_[at];
      if (!fits(s, want, static_ports))
        continue;
      if (dynamic > 0 && ports_for(s, spec).empty())
        continue;
      ++fitting;
      // Replicas apart first, then bin-packing: the fuller node after this
      // allocation wins. Ties go to the node met first.
      double apart = static_cast<double>(replicas_on(svc, at));
      double packed = (share(s.used.cpu_millis, want.cpu_millis, s.info.capacity.cpu_millis) +
                       share(s.used.memory_bytes, want.memory_bytes, s.info.capacity.memory_bytes)) / 2;
      double score = packed - apart;
      if (score > best_score) {
        best_score = score;
        best = at;
      }
    }
    g->cursor = (g->cursor + looked) % g->nodes.size();
    if (fitting == 0) {
      g->full = true;  // every node of the group was looked at
      --k;
      continue;
    }
    allocation a{ids[k], service, nodes_[best].info.name, want, ports_for(nodes_[best], spec)};
    count(best, a);
    ++g->count;
    out.placed.push_back(placement{ids[k], a.node, a.ports});
  }
  out.unplaced = static_cast<std::uint32_t>(ids.size() - out.placed.size());
  if (out.unplaced == 0)
    return out;

  // Why: every node counted once, by the first thing that rules it out.
  std::uint64_t short_cpu = 0, short_memory = 0, no_dynamic = 0;
  std::map<std::uint16_t, std::uint64_t> port_taken;
  for (auto& [value, g] : groups)
    for (auto at : g.nodes) {
      auto& s = nodes_[at];
      if (auto fit = fits(s, want, static_ports); !fit) {
        const auto& m = fit.error().message();
        if (m == "short of cpu")
          ++short_cpu;
        else if (m == "short of memory")
          ++short_memory;
        else
          for (auto p : static_ports)
            if (has_port(s.ports, p)) {
              ++port_taken[p];
              break;
            }
      } else if (dynamic > 0 && ports_for(s, spec).empty()) {
        ++no_dynamic;
      }
    }
  std::vector<std::string> parts;
  if (ineligible > 0)
    parts.push_back(std::to_string(ineligible) + " not eligible (down or drained)");
  for (std::size_t c = 0; c < filtered.size(); ++c)
    if (filtered[c] > 0)
      parts.push_back(std::to_string(filtered[c]) + " filtered by " + spec.constraints(static_cast<int>(c)).text());
  if (short_cpu > 0)
    parts.push_back(std::to_string(short_cpu) + " short of cpu (" + std::to_string(want.cpu_millis) + "m asked)");
  if (short_memory > 0)
    parts.push_back(std::to_string(short_memory) + " short of memory (" + mebibytes(want.memory_bytes) + " asked)");
  for (const auto& [port, n] : port_taken)
    parts.push_back(std::to_string(n) + " with port " + std::to_string(port) + " in use");
  if (no_dynamic > 0)
    parts.push_back(std::to_string(no_dynamic) + " with no dynamic port free");
  out.why = "placed " + std::to_string(out.placed.size()) + " of " + std::to_string(ids.size()) + "; of " +
            nodes_text(nodes_.size()) + ", ";
  if (parts.empty()) {
    out.why += "none can run it";
  } else {
    for (std::size_t i = 0; i < parts.size(); ++i)
      out.why += (i == 0 ? "" : ", ") + parts[i];
  }
  return out;
}

std::vector<std::string> cluster::pick_to_stop(const std::vector<std::string>& candidates, std::uint32_t keep) const {
  if (candidates.size() <= keep)
    return {};
  // The candidates by node (ids not counted anywhere under the node ""), and
  // a heap of nodes: (ineligible, candidates left on it, load, name). Each
  // step stops the largest id on the top node and puts the node back.
  struct pile {
    bool ineligible = true;
    double load = 0;
    std::vector<std::string> ids;
  };
  std::map<std::string, pile> piles;
  for (const auto& id : candidates) {
    auto it = allocations_.find(id);
    if (it == allocations_.end()) {
      piles[""].ids.push_back(id);
      continue;
    }
    const auto& s = nodes_[it->second.node];
    auto& p = piles[s.info.name];
    p.ineligible = !s.info.eligible;
    p.load = share(s.used.cpu_millis, 0, s.info.capacity.cpu_millis) +
             share(s.used.memory_bytes, 0, s.info.capacity.memory_bytes);
    p.ids.push_back(id);
  }
  using key = std::tuple<bool, std::size_t, double, std::string>;
  std::vector<key> heap;
  for (auto& [name, p] : piles) {
    std::sort(p.ids.begin(), p.ids.end());
    heap.emplace_back(p.ineligible || name.empty(), p.ids.size(), p.load, name);
  }
  std::make_heap(heap.begin(), heap.end());
  std::vector<std::string> out;
  while (out.size() < candidates.size() - keep) {
    std::pop_heap(heap.begin(), heap.end());
    auto top = heap.back();
    heap.pop_back();
    auto& p = piles[std::get<3>(top)];
    out.push_back(p.ids.back());
    p.ids.pop_back();
    if (!p.ids.empty()) {
      std::get<1>(top) = p.ids.size();
      heap.push_back(top);
      std::push_heap(heap.begin(), heap.end());
    }
  }
  return out;
}

} // namespace troupe::scheduler
