#include "actors/scheduler/state.hpp"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstdio>

#include "actors/access/token.hpp"
#include "actors/node/health.hpp"
#include "runtime/text.hpp"

namespace troupe::scheduler {
namespace {

std::string version_key(const std::string& service, std::uint64_t version) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(version));
  return service + "/" + digits;
}

template <class Record>
status put_all(storage::write_txn& t, const storage::table<Record>& table,
               const std::map<std::string, Record>& records) {
  for (const auto& [key, rec] : records)
    if (auto put = table.put(t, key, rec); !put)
      return put;
  return {};
}

template <class Record>
status load_all(const storage::read_txn& t, const storage::table<Record>& table, std::map<std::string, Record>& out) {
  out.clear();
  return table.scan(t, "", [&](std::string_view key, Record&& rec) {
    out.emplace(std::string{key}, std::move(rec));
    return true;
  });
}

} // namespace

std::string service_key(const v1::ServiceSpec& spec) {
  return (spec.namespace_().empty() ? std::string{"default"} : spec.namespace_()) + "/" + spec.name();
}

bool eligible(const v1::SchedNode& n) { return n.state() == "alive" && !n.drained(); }

node to_node(const v1::SchedNode& n) {
  node out;
  out.name = n.name();
  out.role = n.role();
  for (const auto& [k, v] : n.labels())
    out.labels.emplace(k, v);
  out.eligible = eligible(n);
  out.lost = n.state() == "dead" || n.state() == "left";
  out.drained = n.drained();
  out.capacity = {n.cpu_millis(), n.memory_bytes()};
  if (n.port_min() > 0 && n.port_min() <= n.port_max() && n.port_max() <= 65535) {
    out.port_min = static_cast<std::uint16_t>(n.port_min());
    out.port_max = static_cast<std::uint16_t>(n.port_max());
  }
  return out;
}

allocation to_allocation(const v1::AllocationRecord& a) {
  // One being stopped still holds its resources and ports, but is no
  // replica of its service any more: spread and keeping replicas apart
  // do not count it.
  return {a.id(), a.desired() == "stop" ? std::string{} : a.service(), a.node(), {a.cpu_millis(), a.memory_bytes()},
          std::vector<std::uint16_t>(a.ports().begin(), a.ports().end())};
}

bool holds(const v1::AllocationRecord& a) { return !finished(a.state()) && a.state() != "lost"; }

bool runs_spec(const v1::AllocationRecord& a, const v1::ServiceSpec& spec) {
  // What the scheduler gives a new allocation of `spec` (plan_service),
  // less its own name and host ports.
  auto want = spec.task();
  if (spec.has_health())
    *want.mutable_health() = spec.health();
  auto have = a.task();
  have.clear_name();
  want.clear_name();
  for (int i = 0; i < have.ports_size() && i < want.ports_size(); ++i)
    if (want.ports(i).port() == 0)
      have.mutable_ports(i)->set_port(0);
  return google::protobuf::util::MessageDifferencer::Equals(have, want);
}

bool finished(const std::string& state) { return state == "stopped" || state == "failed" || state == "exited"; }

std::uint32_t desired_count(const v1::ServiceRecord& record, const cluster& nodes) {
  if (!record.spec().global())
    return record.spec().replicas();
  return static_cast<std::uint32_t>(nodes.feasible_nodes(record.spec()).size());
}

bool service_state::handles(const v1::ClusterCommand& cmd) {
  return cmd.has_deploy() || cmd.has_remove_service() || cmd.has_scale() || cmd.has_plan() || cmd.has_nodes() ||
         cmd.has_allocation_updates() || cmd.has_rollback() || cmd.has_rollout_step() || cmd.has_drain() ||
         cmd.has_image_put() || cmd.has_token_put() || cmd.has_token_revoke();
}

status service_state::load(const storage::read_txn& t) {
  if (auto n = load_all(t, nodes_table, nodes_); !n)
    return n;
  if (auto s = load_all(t, services_table, services_); !s)
    return s;
  if (auto v = load_all(t, versions_table, versions_); !v)
    return v;
  if (auto a = load_all(t, allocations_table, allocations_); !a)
    return a;
  if (auto i = load_all(t, images_table, images_); !i)
    return i;
  if (auto k = load_all(t, tokens_table, tokens_); !k)
    return k;
  auto agent = agent_secret_table.get(t, "agent");
  if (!agent)
    return agent.error();
  agent_secret_ = *agent ? (*agent)->secret() : std::string{};
  rebuild();
  return {};
}

void service_state::rebuild() {
  cluster_ = cluster{};
  for (const auto& [name, n] : nodes_)
    cluster_.upsert(to_node(n));
  for (const auto& [id, a] : allocations_)
    if (holds(a))
      (void)cluster_.add(to_allocation(a));  // a node the table no longer has: not counted
}

status service_state::install(storage::write_txn& t, const v1::KvSnapshot& snap) {
  for (const auto& table : {nodes_table.name(), services_table.name(), versions_table.name(), allocations_table.name(),
                            images_table.name(), tokens_table.name(), agent_secret_table.name()})
    if (auto cleared = t.clear(table); !cleared)
      return cleared;
  nodes_.clear();
  services_.clear();
  versions_.clear();
  allocations_.clear();
  images_.clear();
  tokens_.clear();
  for (const auto& k : snap.tokens())
    tokens_[k.id()] = k;
  agent_secret_ = snap.agent_secret();
  if (!agent_secret_.empty()) {
    v1::AgentToken agent;
    agent.set_secret(agent_secret_);
    if (auto put = agent_secret_table.put(t, "agent", agent); !put)
      return put.error();
  }
  for (const auto& i : snap.images())
    images_[i.name()] = i;
  for (const auto& n : snap.nodes())
    nodes_[n.name()] = n;
  for (const auto& s : snap.services())
    services_[service_key(s.spec())] = s;
  for (const auto& v : snap.versions())
    versions_[version_key(service_key(v.spec()), v.version())] = v;
  for (const auto& a : snap.allocations())
    allocations_[a.id()] = a;
  for (auto st : {put_all(t, nodes_table, nodes_), put_all(t, services_table, services_),
                  put_all(t, versions_table, versions_), put_all(t, allocations_table, allocations_),
                  put_all(t, images_table, images_), put_all(t, tokens_table, tokens_)})
    if (!st)
      return st;
  rebuild();
  return {};
}

void service_state::snapshot(v1::KvSnapshot& snap) const {
  for (const auto& [k, n] : nodes_)
    *snap.add_nodes() = n;
  for (const auto& [k, s] : services_)
    *snap.add_services() = s;
  for (const auto& [k, v] : versions_)
    *snap.add_versions() = v;
  for (const auto& [k, a] : allocations_)
    *snap.add_allocations() = a;
  for (const auto& [k, i] : images_)
    *snap.add_images() = i;
  for (const auto& [k, tok] : tokens_)
    *snap.add_tokens() = tok;
  snap.set_agent_secret(agent_secret_);
}

result<service_state::applied> service_state::apply(storage::write_txn& t, const v1::ClusterCommand& cmd) {
  if (cmd.has_deploy())
    return deploy(t, cmd.deploy());
  if (cmd.has_remove_service())
    return remove(t, cmd.remove_service());
  if (cmd.has_scale())
    return scale(t, cmd.scale());
  if (cmd.has_plan())
    return plan(t, cmd.plan());
  if (cmd.has_nodes())
    return upsert_nodes(t, cmd.nodes());
  if (cmd.has_allocation_updates())
    return update_allocations(t, cmd.allocation_updates());
  if (cmd.has_rollback())
    return rollback(t, cmd.rollback());
  if (cmd.has_rollout_step())
    return rollout_step(t, cmd.rollout_step());
  if (cmd.has_drain())
    return drain(t, cmd.drain());
  if (cmd.has_image_put())
    return put_image(t, cmd.image_put());
  if (cmd.has_token_put())
    return put_token(t, cmd.token_put());
  if (cmd.has_token_revoke())
    return revoke_token(t, cmd.token_revoke());
  return applied{{}, "not a service command"};
}

result<service_state::applied> service_state::deploy(storage::write_txn& t, const v1::DeployService& d) {
  applied out;
  if (d.spec().name().empty()) {
    out.refused = "name: must not be empty";
    out.kind = refusal::invalid;
    return out;
  }
  return new_version(t, d.spec(), d.at_ms(), "updating", "");
}

result<service_state::applied> service_state::new_version(storage::write_txn& t, const v1::ServiceSpec& spec,
                                                           std::int64_t at_ms, const std::string& rollout,
                                                           const std::string& reason) {
  applied out;
  auto key = service_key(spec);
  auto& rec = services_[key];
  auto previous = rec.version();
  if (previous == 0)
    rec.set_created_ms(at_ms);
  *rec.mutable_spec() = spec;
  if (rec.spec().namespace_().empty())
    rec.mutable_spec()->set_namespace_("default");
  rec.set_version(previous + 1);
  rec.set_previous(previous);
  rec.set_updated_ms(at_ms);
  rec.clear_message();
  rec.clear_rollout();
  // Tasks that already run what the new version asks (a rollback, or a
  // deploy that changed only the count or the update policy) become tasks
  // of the new version: like Kubernetes' pod template hash, only a changed
  // task is replaced. Other started tasks of an older version are replaced
  // in batches (ones never started at once).
  std::uint32_t adopted = 0;
  bool older_run = false;
  for (auto& [id, a] : allocations_) {
    if (a.service() != key || a.desired() != "run" || !holds(a))
      continue;
    if (!runs_spec(a, rec.spec())) {
      older_run = older_run || a.state() != "pending";
      continue;
    }
    a.set_version(rec.version());
    a.clear_verdict();
    ++adopted;
    if (auto put = allocations_table.put(t, id, a); !put)
      return put.error();
  }
  // A rollback is always recorded as one (with why), even when nothing
  // needs replacing: it completes as rolled_back once its tasks are ready.
  if (older_run || (rollout == "rolling_back" && previous > 0)) {
    auto* r = rec.mutable_rollout();
    r->set_state(rollout);
    r->set_from_version(previous);
    r->set_allowed(adopted + std::max<std::uint32_t>(1, rec.spec().update().parallelism()));
    r->set_reason(reason);
    r->set_started_ms(at_ms);
  }
  if (auto put = services_table.put(t, key, rec); !put)
    return put.error();
  versions_[version_key(key, rec.version())] = rec;
  if (auto put = versions_table.put(t, version_key(key, rec.version()), rec); !put)
    return put.error();
  if (rec.version() > versions_kept) {
    auto old = version_key(key, rec.version() - versions_kept);
    versions_.erase(old);
    if (auto gone = versions_table.erase(t, old); !gone)
      return gone.error();
  }
  *out.reply.mutable_service() = rec;
  return out;
}

result<service_state::applied> service_state::rollback(storage::write_txn& t, const v1::RollbackService& r) {
  auto it = services_.find(r.service());
  if (it == services_.end())
    return missing(r.service());
  applied out;
  const auto& rec = it->second;
  if (r.from_version() != 0 && r.from_version() != rec.version()) {
    out.refused = "service " + r.service() + " is at version " + std::to_string(rec.version()) + ", not " +
                  std::to_string(r.from_version());
    return out;
  }
  auto before = versions_.find(version_key(r.service(), rec.previous()));
  if (rec.previous() == 0 || before == versions_.end()) {
    out.refused = "service " + r.service() + " has no previous version to roll back to";
    return out;
  }
  auto reason = r.reason().empty() ? "rollback to version " + std::to_string(rec.previous()) + " requested"
                                   : r.reason();
  auto spec = before->second.spec();
  spec.set_replicas(rec.spec().replicas());  // a rollback restores the spec, not an older scale
  return new_version(t, spec, r.at_ms(), "rolling_back", reason);
}

result<service_state::applied> service_state::rollout_step(storage::write_txn& t, const v1::RolloutStep& s) {
  auto it = services_.find(s.service());
  if (it == services_.end())
    return missing(s.service());
  applied out;
  auto& rec = it->second;
  if (rec.version() != s.version()) {
    out.refused = "service " + s.service() + " version " + std::to_string(s.version()) + " is no longer current";
    return out;
  }
  auto* r = rec.mutable_rollout();
  auto judge = [&](const std::string& id, const char* verdict) -> status {
    auto a = allocations_.find(id);
    if (a == allocations_.end() || a->second.service() != s.service() || a->second.version() != s.version() ||
        !a->second.verdict().empty())
      return {};  // gone, or judged already: counted once
    a->second.set_verdict(verdict);
    if (verdict == std::string{"done"})
      r->set_done(r->done() + 1);
    else
      r->set_failed(r->failed() + 1);
    return allocations_table.put(t, id, a->second);
  };
  for (const auto& id : s.done())
    if (auto st = judge(id, "done"); !st)
      return st.error();
  for (const auto& id : s.failed())
    if (auto st = judge(id, "failed"); !st)
      return st.error();
  r->set_state(s.state());
  r->set_allowed(s.allowed());
  r->set_reason(s.reason());
  r->set_batch_done_ms(s.batch_done_ms());
  if (auto put = services_table.put(t, s.service(), rec); !put)
    return put.error();
  *out.reply.mutable_service() = rec;
  return out;
}

result<service_state::applied> service_state::drain(storage::write_txn& t, const v1::DrainNode& d) {
  applied out;
  auto it = nodes_.find(d.node());
  if (it == nodes_.end()) {
    out.refused = "node " + d.node() + " is not known to the scheduler";
    out.kind = refusal::missing;
    return out;
  }
  it->second.set_drained(d.drain());
  cluster_.upsert(to_node(it->second));
  if (auto put = nodes_table.put(t, d.node(), it->second); !put)
    return put.error();
  return out;
}

result<service_state::applied> service_state::put_image(storage::write_txn& t, const v1::PutClusterImage& p) {
  applied out;
  auto image = p.image();
  // Checked here too: every server refuses the same bad entry the same way.
  auto at = image.name().rfind(':');
  if (image.name().empty() || at == std::string::npos || image.name().find('@') != std::string::npos ||
      image.manifest_digest().rfind("sha256:", 0) != 0 || image.manifest_digest().size() != 71) {
    out.refused = "cluster image " + image.name() + ": expected repo:tag and a sha256 manifest digest";
    out.kind = refusal::invalid;
    return out;
  }
  image.set_at_ms(p.at_ms());
  if (auto put = images_table.put(t, image.name(), image); !put)
    return put.error();
  images_[image.name()] = image;
  *out.reply.mutable_image() = image;
  return out;
}

v1::ClusterImageList service_state::images() const {
  v1::ClusterImageList out;
  for (const auto& [name, i] : images_)
    *out.add_images() = i;
  return out;
}

namespace {

bool hex_of_size(const std::string& s, std::size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool never_expiring_admin(const v1::Token& t) {
  return t.expires_at_ms() == 0 && std::find(t.scopes().begin(), t.scopes().end(), "admin") != t.scopes().end();
}

} // namespace

result<service_state::applied> service_state::put_token(storage::write_txn& t, const v1::PutToken& p) {
  applied out;
  out.kind = refusal::invalid;
  auto token = p.token();
  // Checked here as well as by the API: every server refuses alike.
  if (auto bad = access::token_name_problem(token.name()); !bad.empty())
    out.refused = "name: " + bad;
  else if (!hex_of_size(token.id(), 16))
    out.refused = "token id: expected 16 hex digits";
  else if (!hex_of_size(token.secret_sha256(), 64))
    out.refused = "token " + token.name() + ": expected the secret's SHA-256 in hex";
  else if (token.scopes().empty())
    out.refused = "scopes: give at least one of read, write, admin";
  else if (p.ttl_ms() < 0)
    out.refused = "ttl: must not be negative";
  for (const auto& s : token.scopes())
    if (s != "read" && s != "write" && s != "admin")
      out.refused = "scopes: " + quote(s) + " is none of read, write, admin";
  if (!out.refused.empty())
    return out;
  out.kind = refusal::conflict;
  if (p.bootstrap() && !tokens_.empty()) {
    out.refused = "the cluster has its tokens already: bootstrap happens once";
    return out;
  }
  if (tokens_.count(token.id())) {
    out.refused = "a token with id " + token.id() + " exists";
    return out;
  }
  for (const auto& [id, other] : tokens_)
    if (other.name() == token.name()) {
      out.refused = "a token named " + quote(token.name()) + " exists (id " + id + ")";
      return out;
    }
  token.set_created_at_ms(p.at_ms());
  token.set_expires_at_ms(p.ttl_ms() == 0 ? 0 : p.at_ms() + p.ttl_ms());
  if (auto put = tokens_table.put(t, token.id(), token); !put)
    return put.error();
  if (p.bootstrap() && !p.agent_secret().empty()) {
    v1::AgentToken agent;
    agent.set_secret(p.agent_secret());
    if (auto put = agent_secret_table.put(t, "agent", agent); !put)
      return put.error();
    agent_secret_ = p.agent_secret();
  }
  tokens_[token.id()] = token;
  *out.reply.mutable_token() = token;
  return out;
}

result<service_state::applied> service_state::revoke_token(storage::write_txn& t, const v1::RevokeToken& r) {
  applied out;
  auto it = tokens_.find(r.token());
  if (it == tokens_.end())
    it = std::find_if(tokens_.begin(), tokens_.end(), [&](const auto& kv) { return kv.second.name() == r.token(); });
  if (it == tokens_.end()) {
    out.refused = "no token with id or name " + quote(r.token());
    out.kind = refusal::missing;
    return out;
  }
  if (never_expiring_admin(it->second) &&
      std::count_if(tokens_.begin(), tokens_.end(), [](const auto& kv) { return never_expiring_admin(kv.second); }) ==
        1) {
    out.refused = "token " + quote(it->second.name()) +
                  " is the last admin token that never expires: create another one before revoking it";
    return out;
  }
  if (auto gone = tokens_table.erase(t, it->first); !gone)
    return gone.error();
  *out.reply.mutable_token() = it->second;
  tokens_.erase(it);
  return out;
}

v1::TokenList service_state::tokens() const {
  v1::TokenList out;
  for (const auto& [id, tok] : tokens_)
    *out.add_tokens() = tok;
  if (!agent_secret_.empty())
    out.set_agent_secret_sha256(access::sha256_hex(agent_secret_));
  return out;
}

status service_state::forget(storage::write_txn& t, const std::string& id) {
  cluster_.remove(id);
  allocations_.erase(id);
  auto gone = allocations_table.erase(t, id);
  return gone ? status{} : status{gone.error()};
}

service_state::applied service_state::missing(const std::string& service) {
  applied out;
  out.refused = "service " + service + " does not exist";
  out.kind = refusal::missing;
  return out;
}

status service_state::stop(storage::write_txn& t, const std::string& id, const std::string& why, std::int64_t at_ms) {
  auto it = allocations_.find(id);
  if (it == allocations_.end())
    return {};
  auto& a = it->second;
  auto n = nodes_.find(a.node());
  bool node_gone = n == nodes_.end() || n->second.state() == "dead" || n->second.state() == "left";
  // Nothing runs, or its node is gone (lost: should the node come back, it
  // stops what no allocation of the state owns): forget it.
  if (a.state() == "pending" || !holds(a) || node_gone)
    return forget(t, id);
  if (a.desired() == "stop")
    return {};
  a.set_desired("stop");
  a.set_reason(why);
  a.set_updated_ms(at_ms);
  cluster_.remove(id);  // counted again as resources held, no longer as a replica
  (void)cluster_.add(to_allocation(a));
  return allocations_table.put(t, id, a);
}

result<service_state::applied> service_state::remove(storage::write_txn& t, const v1::RemoveService& r) {
  auto it = services_.find(r.service());
  if (it == services_.end())
    return missing(r.service());
  applied out;
  *out.reply.mutable_service() = it->second;
  std::vector<std::string> ids;
  for (const auto& [id, a] : allocations_)
    if (a.service() == r.service())
      ids.push_back(id);
  for (const auto& id : ids)
    if (auto st = stop(t, id, "service removed", it->second.updated_ms()); !st)
      return st.error();
  for (auto v = versions_.lower_bound(r.service() + "/"); v != versions_.end() && v->first.rfind(r.service() + "/", 0) == 0;) {
    if (auto gone = versions_table.erase(t, v->first); !gone)
      return gone.error();
    v = versions_.erase(v);
  }
  services_.erase(it);
  if (auto gone = services_table.erase(t, r.service()); !gone)
    return gone.error();
  return out;
}

result<service_state::applied> service_state::scale(storage::write_txn& t, const v1::ScaleService& s) {
  auto it = services_.find(s.service());
  if (it == services_.end())
    return missing(s.service());
  applied out;
  if (it->second.spec().global()) {
    out.refused = "service " + s.service() + " runs in mode global (one task per eligible node): it cannot be scaled";
    return out;
  }
  it->second.mutable_spec()->set_replicas(s.replicas());
  if (auto put = services_table.put(t, s.service(), it->second); !put)
    return put.error();
  *out.reply.mutable_service() = it->second;
  return out;
}

result<service_state::applied> service_state::plan(storage::write_txn& t, const v1::ApplyPlan& p) {
  applied out;
  for (const auto& id : p.stop())
    if (auto st = stop(t, id, "stopped by the scheduler", p.at_ms()); !st)
      return st.error();
  auto it = services_.find(p.service());
  bool current = it != services_.end() && it->second.version() == p.version();
  for (const auto& a : p.place()) {
    if (!current) {
      out.reply.add_refused(a.id() + ": service " + p.service() + " version " + std::to_string(p.version()) +
                            " is no longer current");
      continue;
    }
    if (a.service() != p.service()) {
      out.reply.add_refused(a.id() + ": belongs to " + a.service() + ", not " + p.service());
      continue;
    }
    if (auto admitted = cluster_.admit(to_allocation(a)); !admitted) {
      out.reply.add_refused(admitted.error().message());
      continue;
    }
    auto& rec = allocations_[a.id()] = a;
    rec.set_desired("run");
    rec.set_state("pending");
    rec.set_created_ms(p.at_ms());
    rec.set_updated_ms(p.at_ms());
    if (auto put = allocations_table.put(t, a.id(), rec); !put)
      return put.error();
    out.reply.set_placed(out.reply.placed() + 1);
  }
  if (current && it->second.message() != p.unplaced()) {
    it->second.set_message(p.unplaced());
    if (auto put = services_table.put(t, p.service(), it->second); !put)
      return put.error();
  }
  if (it != services_.end())
    *out.reply.mutable_service() = it->second;
  return out;
}

result<service_state::applied> service_state::upsert_nodes(storage::write_txn& t, const v1::UpsertNodes& u) {
  applied out;
  for (const auto& n : u.nodes()) {
    if (n.name().empty()) {
      out.reply.add_refused("a node without a name");
      continue;
    }
    nodes_[n.name()] = n;
    cluster_.upsert(to_node(n));
    if (auto put = nodes_table.put(t, n.name(), n); !put)
      return put.error();
  }
  return out;
}

result<service_state::applied> service_state::update_allocations(storage::write_txn& t,
                                                                  const v1::AllocationUpdates& u) {
  applied out;
  for (const auto& up : u.updates()) {
    auto it = allocations_.find(up.id());
    if (it == allocations_.end())
      continue;  // removed meanwhile; the node stops what the state no longer has
    auto& a = it->second;
    if (a.node() != u.node()) {
      out.reply.add_refused(up.id() + ": assigned to " + a.node() + ", not " + u.node());
      continue;
    }
    a.set_state(up.state());
    a.set_health(up.health());
    a.set_restarts(up.restarts());
    a.set_reason(up.reason());
    a.set_updated_ms(u.at_ms());
    bool ready = a.state() == "running" && (!troupe::node::health_wanted(a.task().health()) || a.health() == "healthy");
    if (!ready)
      a.set_ready_since_ms(0);
    else if (a.ready_since_ms() == 0)
      a.set_ready_since_ms(u.at_ms());
    if (finished(a.state()) && a.desired() == "stop") {  // done with
      if (auto gone = forget(t, up.id()); !gone)
        return gone.error();
      continue;
    }
    if (finished(a.state()))
      cluster_.remove(a.id());  // its resources are free again
    if (auto put = allocations_table.put(t, a.id(), a); !put)
      return put.error();
  }
  return out;
}

v1::ServiceList service_state::services(const std::string& only) const {
  v1::ServiceList out;
  std::map<std::string, v1::ServiceSummary*> by_key;
  for (const auto& [key, rec] : services_) {
    if (!only.empty() && key != only)
      continue;
    auto* s = out.add_services();
    *s->mutable_service() = rec;
    s->set_desired(desired_count(rec, cluster_));
    by_key[key] = s;
  }
  for (const auto& [id, a] : allocations_) {
    auto s = by_key.find(a.service());
    if (s == by_key.end() || a.desired() != "run" || a.version() != s->second->service().version())
      continue;
    s->second->set_placed(s->second->placed() + 1);
    if (a.state() == "running")
      s->second->set_running(s->second->running() + 1);
    if (a.health() == "healthy")
      s->second->set_healthy(s->second->healthy() + 1);
    if (a.state() == "failed") {
      s->second->set_failed(s->second->failed() + 1);
      s->second->set_failure(a.node() + ": " + a.reason());
    }
  }
  return out;
}

v1::AllocationList service_state::allocations(const std::string& service, const std::string& node) const {
  v1::AllocationList out;
  for (const auto& [id, a] : allocations_)
    if ((service.empty() || a.service() == service) && (node.empty() || a.node() == node))
      *out.add_allocations() = a;
  return out;
}

v1::NodeList service_state::nodes() const {
  v1::NodeList out;
  for (const auto& [name, n] : nodes_)
    *out.add_nodes() = n;
  return out;
}

} // namespace troupe::scheduler
