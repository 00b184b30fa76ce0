#include "tools/chaos/schedule.hpp"

#include <algorithm>
#include <random>

#include "runtime/duration.hpp"

namespace troupe::chaos {

namespace {

// [lo, hi] from the generator, the same everywhere (modulo bias is
// negligible for these ranges and keeps the draw portable).
std::uint64_t draw(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
  return lo + rng() % (hi - lo + 1);
}

std::chrono::milliseconds draw_ms(std::mt19937_64& rng, std::chrono::milliseconds lo, std::chrono::milliseconds hi) {
  return std::chrono::milliseconds{static_cast<std::int64_t>(
      draw(rng, static_cast<std::uint64_t>(lo.count()), static_cast<std::uint64_t>(hi.count())))};
}

// How long each kind lasts before it is healed: long enough to matter to
// failure detection (a few seconds on the local gossip profile), short
// enough that a two-minute run sees several.
std::pair<std::chrono::milliseconds, std::chrono::milliseconds> hold_range(fault_kind kind) {
  using std::chrono::milliseconds;
  switch (kind) {
    case fault_kind::actor_kill: return {milliseconds{0}, milliseconds{0}};  // the supervisor heals it
    case fault_kind::agent_kill: return {milliseconds{1000}, milliseconds{6000}};
    case fault_kind::leader_kill: return {milliseconds{1000}, milliseconds{6000}};
    case fault_kind::pause: return {milliseconds{2000}, milliseconds{8000}};
    case fault_kind::restart: return {milliseconds{0}, milliseconds{3000}};
    case fault_kind::partition: return {milliseconds{5000}, milliseconds{15000}};
    case fault_kind::loss: return {milliseconds{5000}, milliseconds{15000}};
    case fault_kind::delay: return {milliseconds{5000}, milliseconds{15000}};
  }
  return {milliseconds{0}, milliseconds{0}};
}

} // namespace

const char* name(fault_kind kind) {
  switch (kind) {
    case fault_kind::actor_kill: return "actor-kill";
    case fault_kind::agent_kill: return "agent-kill";
    case fault_kind::leader_kill: return "leader-kill";
    case fault_kind::pause: return "pause";
    case fault_kind::restart: return "restart";
    case fault_kind::partition: return "partition";
    case fault_kind::loss: return "loss";
    case fault_kind::delay: return "delay";
  }
  return "?";
}

std::optional<fault_kind> parse_fault_kind(std::string_view text) {
  for (auto kind : all_fault_kinds)
    if (text == name(kind))
      return kind;
  return std::nullopt;
}

bool needs_netns(fault_kind kind) {
  return kind == fault_kind::partition || kind == fault_kind::loss || kind == fault_kind::delay;
}

std::optional<std::vector<fault_kind>> parse_fault_list(std::string_view text, std::string* why) {
  std::vector<fault_kind> kinds;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto kind = parse_fault_kind(item);
    if (!kind) {
      std::string known;
      for (auto k : all_fault_kinds)
        known += std::string{known.empty() ? "" : ", "} + name(k);
      *why = "--faults: unknown fault kind '" + std::string{item} + "' (known: " + known + ")";
      return std::nullopt;
    }
    if (std::find(kinds.begin(), kinds.end(), *kind) == kinds.end())
      kinds.push_back(*kind);
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  return kinds;
}

std::string fault::describe() const {
  std::string out = "#" + std::to_string(index) + " " + name(kind);
  if (kind == fault_kind::leader_kill) {
    out += " leader";
  } else {
    out += " node-" + std::to_string(target);
    for (std::size_t i = 1; i < minority.size(); ++i)
      out += "+node-" + std::to_string(minority[i]);
  }
  out += " hold=" + format_duration(hold) + " gap=" + format_duration(gap);
  if (kind == fault_kind::loss)
    out += " p=" + std::to_string(probability).substr(0, 4);
  if (kind == fault_kind::delay)
    out += " delay=" + format_duration(delay);
  return out;
}

std::vector<int> minority_side(int target, std::uint64_t pick, int nodes) {
  std::vector<int> side{target};
  int most = std::max(1, (nodes - 1) / 2);
  auto size = 1 + static_cast<int>(pick % static_cast<std::uint64_t>(most));
  std::vector<int> others;
  for (int i = 1; i <= nodes; ++i)
    if (i != target)
      others.push_back(i);
  std::mt19937_64 rng{pick};
  while (static_cast<int>(side.size()) < size && !others.empty()) {
    auto at = static_cast<std::ptrdiff_t>(draw(rng, 0, others.size() - 1));
    side.push_back(others[static_cast<std::size_t>(at)]);
    others.erase(others.begin() + at);
  }
  std::sort(side.begin() + 1, side.end());
  return side;
}

std::vector<fault> make_schedule(const schedule_config& config) {
  std::vector<fault> out;
  if (config.kinds.empty() || config.nodes < 1)
    return out;
  std::mt19937_64 rng{config.seed};
  for (std::size_t i = 0; i < config.count; ++i) {
    fault f;
    f.index = i;
    f.kind = config.kinds[draw(rng, 0, config.kinds.size() - 1)];
    f.target = static_cast<int>(draw(rng, 1, static_cast<std::uint64_t>(config.nodes)));
    f.pick = rng();
    f.gap = draw_ms(rng, config.min_gap, config.max_gap);
    auto [lo, hi] = hold_range(f.kind);
    f.hold = draw_ms(rng, lo, hi);
    // Drawn for every kind so that one kind's parameters never shift the
    // draws of the faults after it.
    f.probability = static_cast<double>(draw(rng, 10, 40)) / 100.0;
    f.delay = std::chrono::milliseconds{static_cast<std::int64_t>(draw(rng, 50, 300))};
    if (f.kind == fault_kind::partition)  // from pick: the draws of later faults stay as they were
      f.minority = minority_side(f.target, f.pick, config.nodes);
    out.push_back(f);
  }
  return out;
}

} // namespace troupe::chaos
