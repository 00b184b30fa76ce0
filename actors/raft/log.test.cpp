// The small pure parts against their definitions: quorum, progress and
// inflights, the in-memory storage and the log over it.
#include <doctest/doctest.h>

#include "actors/raft/log.hpp"
#include "actors/raft/progress.hpp"

using namespace troupe::raft;
namespace v1 = troupe::v1;

namespace {

entry make_entry(std::uint64_t index, std::uint64_t term, std::string data = {}) {
  entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

std::vector<entry> terms_from(std::uint64_t first, std::vector<std::uint64_t> terms) {
  std::vector<entry> out;
  for (auto t : terms)
    out.push_back(make_entry(first++, t));
  return out;
}

} // namespace

TEST_CASE("the quorum index is the highest index a majority has reached") {
  CHECK(quorum_index({5}) == 5);
  CHECK(quorum_index({5, 3}) == 3);
  CHECK(quorum_index({1, 5, 3}) == 3);
  CHECK(quorum_index({9, 1, 5, 3}) == 3);
  CHECK(quorum_index({9, 1, 5, 3, 7}) == 5);
  CHECK(quorum_index({}) == 0);
}

TEST_CASE("inflights fill up to their capacity and free by acknowledged index") {
  inflights window(3);
  window.add(4);
  window.add(8);
  CHECK_FALSE(window.full());
  window.add(12);
  CHECK(window.full());
  window.free_le(8);
  CHECK(window.count() == 1);
  window.free_first_one();
  CHECK(window.count() == 0);
}

TEST_CASE("a probing progress ignores rejections of appends it is not waiting for") {
  progress pr(11);
  pr.probe_sent = true;
  CHECK_FALSE(pr.maybe_decrease_to(7, 3));  // we probed at 10, not 7
  CHECK(pr.maybe_decrease_to(10, 3));
  CHECK(pr.next == 4);
  CHECK_FALSE(pr.probe_sent);
  pr.match = 5;
  pr.become_replicate();
  CHECK(pr.next == 6);
  CHECK_FALSE(pr.maybe_decrease_to(5, 0));  // already acknowledged: stale
  CHECK(pr.maybe_decrease_to(9, 2));
  CHECK(pr.next == 6);  // back to just after the match
}

TEST_CASE("memory storage appends, truncates conflicts, snapshots and compacts") {
  memory_storage s;
  s.append(terms_from(1, {1, 1, 2, 2}));
  CHECK(s.first_index() == 1);
  CHECK(s.last_index() == 4);
  s.append(terms_from(3, {3}));  // replaces 3 and 4
  CHECK(s.last_index() == 3);
  CHECK(s.term(3) == 3);
  CHECK(s.entries(1, 4, UINT64_MAX).size() == 3);
  CHECK(s.entries(1, 4, 1).size() == 1);  // at least one even past max_bytes
  v1::RaftConfState conf;
  conf.add_voters(1);
  s.create_snapshot(2, conf, "state");
  s.compact(2);
  CHECK(s.first_index() == 3);
  CHECK(s.term(2) == 1);
  CHECK_FALSE(s.term(1));
  CHECK(s.snapshot().meta().index() == 2);
  CHECK_THROWS(s.compact(3));  // beyond the snapshot
  s.append(terms_from(2, {1, 3, 3}));  // 2 is in the snapshot already
  CHECK(s.last_index() == 4);
}

TEST_CASE("the log reads across storage and the unstable tail and only applies what is durable") {
  memory_storage s;
  s.append(terms_from(1, {1, 1}));
  raft_log log(s);
  CHECK(log.last_index() == 2);
  log.append(terms_from(3, {2, 2}));
  CHECK(log.last_index() == 4);
  CHECK(log.slice(1, 5, UINT64_MAX).size() == 4);
  CHECK(log.term(4) == 2);
  log.commit_to(4);
  CHECK(log.next_committed(UINT64_MAX).size() == 2);  // 3 and 4 are not on disk yet
  s.append(log.unstable_entries());
  log.stable_to(4, 2);
  CHECK(log.next_committed(UINT64_MAX).size() == 4);
  CHECK_THROWS(log.append(terms_from(2, {3})));  // below the commit
}

TEST_CASE("maybe_append refuses a mismatch and drops only a conflicting tail") {
  memory_storage s;
  s.append(terms_from(1, {1, 1, 1}));
  raft_log log(s);
  CHECK_FALSE(log.maybe_append(3, 2, 0, terms_from(4, {2})));
  auto last = log.maybe_append(1, 1, 2, terms_from(2, {1, 2, 2}));  // 2 matches, 3 conflicts
  REQUIRE(last);
  CHECK(*last == 4);
  CHECK(log.term(3) == 2);
  CHECK(log.committed() == 2);
  // A duplicate of an older, shorter append changes nothing.
  CHECK(log.maybe_append(1, 1, 2, terms_from(2, {1})) == 2u);
  CHECK(log.last_index() == 4);
  CHECK(log.find_conflict_by_term(4, 1) == 2);
}
