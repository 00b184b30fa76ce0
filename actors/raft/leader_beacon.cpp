#include "actors/raft/leader_beacon.hpp"

#include <chrono>

#include "runtime/logging.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/wire.hpp"

namespace troupe::raft {

caf::behavior leader_beacon(caf::event_based_actor* self, leader_context lc) {
  auto log = logging::get("leader_beacon");
  auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
  v1::ClusterCommand cmd;
  cmd.set_term(lc.term);
  cmd.mutable_put()->set_key(leader_key);
  cmd.mutable_put()->set_value(R"({"node":")" + lc.ctx->config.name + R"(","term":)" + std::to_string(lc.term) +
                               R"(,"since_ms":)" + std::to_string(since) + "}");
  self->request(lc.raft, write_timeout + std::chrono::seconds{1}, wire::make_pb(std::move(cmd)))
    .then([log, term = lc.term](wire::pb<v1::KvReply>& r) { log->info("recorded term={} index={}", term, r.msg.index()); },
          [log, term = lc.term](caf::error& err) {
            log->warn("record_refused term={} reason=\"{}\"", term, caf::to_string(err));
          });
  name_exceptions(self);
  return {[term = lc.term](caf::get_atom) { return term; }};
}

} // namespace troupe::raft
