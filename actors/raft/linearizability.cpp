#include "actors/raft/linearizability.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_set>

namespace troupe::raft {

std::string kv_operation::describe() const {
  std::string out = "c" + std::to_string(client) + " ";
  switch (kind) {
  case kv_op::put: out += "put(" + key + ", " + value + ")"; break;
  case kv_op::get: out += "get(" + key + ")=" + (known ? (ok ? value : std::string("absent")) : "?"); break;
  case kv_op::cas:
    out += "cas(" + key + ", " + expected + "->" + value + ")=" + (known ? (ok ? "ok" : "fail") : "?");
    break;
  }
  out += " [" + std::to_string(invoke) + ", " + (ret == never ? std::string("...") : std::to_string(ret)) + "]";
  return out;
}

const char* to_string(verdict v) {
  switch (v) {
  case verdict::linearizable: return "linearizable";
  case verdict::not_linearizable: return "not linearizable";
  case verdict::inconclusive: return "inconclusive";
  }
  return "?";
}

namespace {

using value = std::optional<std::string>;

/// The register's sequential semantics: whether `op` may happen in state
/// `v`, and the state after it.
bool step(const kv_operation& op, value& v) {
  switch (op.kind) {
  case kv_op::put: v = op.value; return true;
  case kv_op::get:
    if (!op.known)
      return true;
    return op.ok ? v == op.value : !v.has_value();
  case kv_op::cas: {
    bool matches = v == op.expected;
    if (op.known && op.ok != matches)
      return false;
    if (matches)
      v = op.value;
    return true;
  }
  }
  return false;
}

struct node {
  int op = -1;      // -1: the list's head
  bool call = false;
  int match = -1;   // a call's return node
  int prev = -1, next = -1;
};

struct cache_key {
  std::vector<std::uint64_t> done;
  value state;
  bool operator==(const cache_key& o) const { return done == o.done && state == o.state; }
};

struct cache_hash {
  std::size_t operator()(const cache_key& k) const {
    std::size_t h = k.state ? std::hash<std::string>{}(*k.state) : 0x9e3779b97f4a7c15ull;
    for (auto w : k.done)
      h = h * 1099511628211ull ^ std::hash<std::uint64_t>{}(w);
    return h;
  }
};

struct one_key {
  verdict result = verdict::linearizable;
  std::uint64_t steps = 0;
  int stuck = -1;  // an operation that could not follow the longest prefix
  std::size_t longest = 0;
};

one_key check_key(const std::vector<const kv_operation*>& ops, std::uint64_t max_steps) {
  // The list: head, then every call and return in real-time order (calls
  // before returns at equal times: such operations count as concurrent).
  struct event {
    std::int64_t at;
    bool call;
    int op;
  };
  std::vector<event> events;
  for (int i = 0; i < static_cast<int>(ops.size()); ++i) {
    events.push_back({ops[i]->invoke, true, i});
    events.push_back({ops[i]->ret, false, i});
  }
  std::stable_sort(events.begin(), events.end(), [](const event& a, const event& b) {
    return a.at != b.at ? a.at < b.at : (a.call && !b.call);
  });
  std::vector<node> list(events.size() + 1);
  std::vector<int> call_node(ops.size());
  for (std::size_t k = 0; k < events.size(); ++k) {
    auto& n = list[k + 1];
    n.op = events[k].op;
    n.call = events[k].call;
    n.prev = static_cast<int>(k);
    n.next = k + 2 < list.size() ? static_cast<int>(k + 2) : -1;
    if (n.call)
      call_node[n.op] = static_cast<int>(k + 1);
    else
      list[call_node[n.op]].match = static_cast<int>(k + 1);
  }
  list[0].next = list.size() > 1 ? 1 : -1;
  auto unlink = [&](int i) {
    list[list[i].prev].next = list[i].next;
    if (list[i].next >= 0)
      list[list[i].next].prev = list[i].prev;
  };
  auto relink = [&](int i) {
    list[list[i].prev].next = i;
    if (list[i].next >= 0)
      list[list[i].next].prev = i;
  };

  one_key out;
  std::vector<std::uint64_t> done((ops.size() + 63) / 64);
  std::unordered_set<cache_key, cache_hash> cache;
  std::vector<std::pair<int, value>> stack;  // linearized calls and the state before each
  value state;
  std::size_t linearized = 0;
  int cur = list[0].next;
  while (list[0].next >= 0) {
    if (++out.steps > max_steps) {
      out.result = verdict::inconclusive;
      return out;
    }
    auto& n = list[cur];
    if (n.call) {
      value next_state = state;
      bool legal = step(*ops[n.op], next_state);
      if (!legal && (out.stuck < 0 || linearized >= out.longest))
        out.stuck = n.op;  // cannot follow the deepest prefix found: the likely culprit
      if (legal) {
        auto bits = done;
        bits[n.op / 64] |= std::uint64_t{1} << (n.op % 64);
        if (cache.insert({bits, next_state}).second) {
          stack.emplace_back(cur, state);
          state = std::move(next_state);
          done = std::move(bits);
          out.longest = std::max(out.longest, ++linearized);
          unlink(cur);
          unlink(n.match);
          cur = list[0].next;
          continue;
        }
      }
      cur = n.next;
    } else {
      // This operation returned and nothing placed it: undo the last choice.
      if (stack.empty()) {
        out.result = verdict::not_linearizable;
        if (out.stuck < 0)
          out.stuck = n.op;
        return out;
      }
      auto [call, before] = stack.back();
      stack.pop_back();
      state = std::move(before);
      --linearized;
      done[list[call].op / 64] &= ~(std::uint64_t{1} << (list[call].op % 64));
      relink(list[call].match);
      relink(call);
      cur = list[call].next;
    }
  }
  return out;
}

} // namespace

check_result check_linearizable(const std::vector<kv_operation>& history, std::uint64_t max_steps) {
  std::map<std::string, std::vector<const kv_operation*>> by_key;
  for (const auto& op : history)
    if (op.known || op.kind != kv_op::get)  // a read never answered constrains nothing
      by_key[op.key].push_back(&op);
  check_result out;
  for (auto& [key, ops] : by_key) {
    auto r = check_key(ops, max_steps);
    out.steps += r.steps;
    if (r.result == verdict::linearizable)
      continue;
    out.verdict = r.result;
    out.key = key;
    out.explanation = r.result == verdict::inconclusive
                          ? "gave up after " + std::to_string(r.steps) + " steps on " + std::to_string(ops.size()) +
                                " operations"
                          : "no linearization places " + ops[r.stuck]->describe() + " (longest prefix " +
                                std::to_string(r.longest) + " of " + std::to_string(ops.size()) + ")";
    if (r.result == verdict::not_linearizable)
      return out;
  }
  return out;
}

} // namespace troupe::raft
