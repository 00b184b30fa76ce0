// The LMDB log against the in-memory one it must behave like, what survives a
// reopen, and the damage open() must refuse with the table, index and problem.
#include "actors/raft/disk/lmdb_log.hpp"

#include <random>

#include <doctest/doctest.h>

#include "storage/testing.hpp"

using namespace troupe;
using namespace troupe::raft;
using troupe::storage::testing::must;
using troupe::storage::testing::open_env;
using troupe::storage::testing::said;
using troupe::storage::testing::temp_dir;

namespace {

v1::RaftConfState voters(std::initializer_list<std::uint64_t> ids) {
  v1::RaftConfState c;
  for (auto id : ids)
    c.add_voters(id);
  return c;
}

entry make(std::uint64_t index, std::uint64_t term, std::string data = "x") {
  entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

std::vector<entry> run(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  std::vector<entry> out;
  for (auto i = from; i <= to; ++i)
    out.push_back(make(i, term, "e" + std::to_string(i)));
  return out;
}

std::unique_ptr<lmdb_log> open_log(const std::shared_ptr<storage::environment>& env, v1::RaftConfState initial = {}) {
  auto log = lmdb_log::open(env, std::move(initial));
  REQUIRE_MESSAGE(log.ok(), said(log));
  return std::move(*log);
}

/// Everything the core can observe of a log, as one comparable string.
std::string observed(const log_storage& s) {
  std::string out = "first " + std::to_string(s.first_index()) + " last " + std::to_string(s.last_index()) +
                    " hs " + s.hard_state().ShortDebugString() + " snap " + s.snapshot().ShortDebugString() + " terms";
  for (auto i = s.first_index() - 1; i <= s.last_index() + 1; ++i)
    out += " " + (s.term(i) ? std::to_string(*s.term(i)) : std::string{"-"});
  if (s.first_index() <= s.last_index())
    for (const auto& e : s.entries(s.first_index(), s.last_index() + 1, UINT64_MAX))
      out += " " + e.ShortDebugString();
  return out;
}

/// Writes raw bytes into the environment, as damage would.
void poke(storage::environment& env, std::string_view table, std::string key, std::string value, bool erase = false) {
  must(env.write([&](storage::write_txn& t) -> status {
    if (erase)
      return t.erase(table, key).ok() ? status{} : status{error{"erase failed"}};
    return t.put(table, key, value);
  }));
}

std::string open_error(const std::shared_ptr<storage::environment>& env) {
  auto log = lmdb_log::open(env);
  REQUIRE_FALSE_MESSAGE(log.ok(), "a damaged log opened");
  return log.error().message();
}

} // namespace

TEST_CASE("a bootstrap, appends, a conflicting suffix and the hard state survive a reopen") {
  temp_dir dir;
  auto env = open_env(dir);
  auto log = open_log(env, voters({1, 2, 3}));
  CHECK(log->snapshot().meta().index() == 1);
  CHECK(log->first_index() == 2);
  CHECK(log->last_index() == 1);
  CHECK(log->term(1) == 1u);

  v1::RaftHardState hs;
  hs.set_term(2);
  hs.set_vote(3);
  hs.set_commit(4);
  must(log->save(&hs, run(2, 10, 2)));
  must(log->save(nullptr, run(7, 8, 3)));  // drops 7..10, appends 7, 8 of term 3
  CHECK(log->last_index() == 8);
  CHECK(log->term(6) == 2u);
  CHECK(log->term(7) == 3u);
  CHECK_FALSE(log->term(9));
  auto before = observed(*log);

  log.reset();
  auto again = open_log(env, voters({9}));  // a stored log ignores `initial`
  CHECK(observed(*again) == before);
  CHECK(again->hard_state().vote() == 3);
  CHECK(again->snapshot().meta().conf_state().voters_size() == 3);
}

TEST_CASE("entries stop before max_bytes but always return one, and a range outside the log throws") {
  temp_dir dir;
  auto env = open_env(dir);
  auto log = open_log(env, voters({1}));
  must(log->save(nullptr, run(2, 6, 1)));
  CHECK(log->entries(2, 7, 0).size() == 1);
  CHECK(log->entries(2, 7, 2 * entry_size(make(2, 1, "e2"))).size() == 2);
  CHECK(log->entries(3, 5, UINT64_MAX).size() == 2);
  CHECK_THROWS_AS(log->entries(1, 3, UINT64_MAX), std::out_of_range);
  CHECK_THROWS_AS(log->entries(5, 8, UINT64_MAX), std::out_of_range);
  CHECK_FALSE(log->save(nullptr, run(9, 9, 1)).ok());  // a gap after 6
  CHECK(log->last_index() == 6);
}

TEST_CASE("the LMDB log behaves as memory_storage through 3000 random operations") {
  std::mt19937_64 rng{20261126};
  temp_dir dir;
  auto env = open_env(dir);
  auto disk = open_log(env, voters({1, 2, 3}));
  memory_storage mem{voters({1, 2, 3})};
  std::uint64_t term = 1;
  for (int step = 0; step < 3000; ++step) {
    CAPTURE(step);
    switch (rng() % 6) {
      case 0:
      case 1: {  // append after a random point in the log (a conflicting suffix sometimes),
                 // never below the snapshot: what is applied is committed and never conflicts
        std::uint64_t floor = std::max(mem.first_index(), mem.snapshot().meta().index() + 1);
        std::uint64_t lo = floor + rng() % (mem.last_index() + 2 - floor);
        term += rng() % 3 == 0;
        auto ents = run(lo, lo + rng() % 5, term);
        mem.append(ents);
        must(disk->save(nullptr, ents));
        break;
      }
      case 2: {  // hard state
        v1::RaftHardState hs;
        hs.set_term(term);
        hs.set_vote(rng() % 4);
        hs.set_commit(mem.last_index() == 0 ? 0 : rng() % (mem.last_index() + 1));
        mem.set_hard_state(hs);
        must(disk->save(&hs, {}));
        break;
      }
      case 3: {  // the state machine snapshots an applied index
        auto snap_at = mem.snapshot().meta().index();
        if (mem.last_index() > snap_at) {
          std::uint64_t at = snap_at + 1 + rng() % (mem.last_index() - snap_at);
          at = std::max(at, mem.first_index() - 1);
          if (at > snap_at) {
            mem.create_snapshot(at, voters({1, 2, 3}), "state@" + std::to_string(at));
            must(disk->create_snapshot(at, voters({1, 2, 3}), "state@" + std::to_string(at)));
          }
        }
        break;
      }
      case 4: {  // compaction, up to the snapshot
        std::uint64_t at = mem.snapshot().meta().index();
        if (at > 0 && rng() % 2)
          at -= rng() % (at + 1 - std::min(at, mem.first_index() - 1));
        mem.compact(at);
        must(disk->compact(at));
        break;
      }
      default: {  // a snapshot from the leader: newer replaces, older is ignored
        if (rng() % 3 == 0) {
          v1::RaftSnapshot s;
          auto at = mem.last_index() + rng() % 20;
          at = at > 5 ? at - 5 : 1;
          s.mutable_meta()->set_index(at);
          s.mutable_meta()->set_term(term);
          *s.mutable_meta()->mutable_conf_state() = voters({1, 2, 3, 4});
          s.set_data("leader@" + std::to_string(at));
          mem.apply_snapshot(s);
          must(disk->save(nullptr, {}, &s));
        }
      }
    }
    REQUIRE(observed(*disk) == observed(mem));
    if (step % 500 == 499) {  // and the same after a reopen
      disk.reset();
      disk = open_log(env);
      REQUIRE(observed(*disk) == observed(mem));
    }
  }
}

TEST_CASE("a damaged log is refused at open, naming the table, the index and the problem") {
  temp_dir dir;
  auto env = open_env(dir);
  open_log(env, voters({1}));
  {
    auto log = open_log(env);
    must(log->save(nullptr, run(2, 9, 2)));
  }
  auto bytes_of = [](const entry& e) { return e.SerializeAsString(); };

  SUBCASE("garbage in place of an entry") {
    poke(*env, "raft_log", lmdb_log::key_of(5), "\xff\xff\xff garbage");
    CHECK(open_error(env) == "raft log damaged: table raft_log, index 5: does not parse as a Raft entry (11 bytes)");
  }
  SUBCASE("an entry missing in the middle") {
    poke(*env, "raft_log", lmdb_log::key_of(5), "", true);
    CHECK(open_error(env) == "raft log damaged: table raft_log, index 6: entries 5 to 5 are missing");
  }
  SUBCASE("an entry stored under another index") {
    poke(*env, "raft_log", lmdb_log::key_of(5), bytes_of(make(6, 2)));
    CHECK(open_error(env) == "raft log damaged: table raft_log, index 5: the entry stored here says index 6");
  }
  SUBCASE("a term that goes down") {
    poke(*env, "raft_log", lmdb_log::key_of(7), bytes_of(make(7, 1)));
    CHECK(open_error(env) == "raft log damaged: table raft_log, index 7: term 1 is below the previous entry's 2");
  }
  SUBCASE("a key that is no index") {
    poke(*env, "raft_log", "abc", bytes_of(make(1, 1)));
    CHECK(open_error(env) == "raft log damaged: table raft_log: key abc is not an 8-byte index");
  }
  SUBCASE("a truncated tail under a commit index that points past it") {
    v1::RaftHardState hs;
    hs.set_term(2);
    hs.set_commit(9);
    poke(*env, "raft", "hard_state", hs.SerializeAsString());
    poke(*env, "raft_log", lmdb_log::key_of(9), "", true);
    poke(*env, "raft_log", lmdb_log::key_of(8), "", true);
    CHECK(open_error(env) ==
          "raft log damaged: table raft, hard_state: commit index 9 is past the log's last entry, 7");
  }
  SUBCASE("a hard state that does not parse") {
    poke(*env, "raft", "hard_state", "\x08");
    CHECK(open_error(env).find("raft log damaged: table raft, key hard_state: stored record does not parse") == 0);
  }
}
