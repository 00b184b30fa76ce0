#include "actors/node/identity.hpp"

#include "storage/testing.hpp"

using namespace troupe;
using storage::testing::temp_dir;

TEST_CASE("a new data dir gets an id that later boots keep and count") {
  temp_dir dir;
  auto env = storage::testing::open_env(dir);
  auto first = node::boot(*env, "alpha");
  REQUIRE(first);
  CHECK(first->id().size() == 32);
  CHECK(first->boot_count() == 1);
  auto second = node::boot(*env, "alpha");
  REQUIRE(second);
  CHECK(second->id() == first->id());
  CHECK(second->boot_count() == 2);
  auto loaded = node::load(*env);
  REQUIRE(loaded);
  CHECK(loaded->boot_count() == 2);
}

TEST_CASE("a data dir of another node is refused with both names") {
  temp_dir dir;
  auto env = storage::testing::open_env(dir);
  REQUIRE(node::boot(*env, "alpha"));
  auto other = node::boot(*env, "beta");
  REQUIRE_FALSE(other);
  CHECK(other.error().message().find("belongs to node 'alpha'") != std::string::npos);
  CHECK(other.error().message().find("not 'beta'") != std::string::npos);
}

TEST_CASE("loading from an empty data dir says the record is missing") {
  temp_dir dir;
  auto env = storage::testing::open_env(dir);
  auto rec = node::load(*env);
  REQUIRE_FALSE(rec);
  CHECK(rec.error().message().find("no node record") != std::string::npos);
}

TEST_CASE("identifying a node keeps its id and does not count a boot") {
  temp_dir dir;
  auto env = storage::testing::open_env(dir);
  auto fresh = node::identify(*env, "alpha");
  REQUIRE(fresh);
  CHECK(fresh->boot_count() == 0);
  auto booted = node::boot(*env, "alpha");
  REQUIRE(booted);
  CHECK(booted->id() == fresh->id());
  CHECK(booted->boot_count() == 1);
  auto again = node::identify(*env, "alpha");
  REQUIRE(again);
  CHECK(again->boot_count() == 1);
  CHECK_FALSE(node::identify(*env, "beta"));
}
