// Storage as one thread sees it: round trips, scans, errors, map growth.
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "storage/testdata/test_record.pb.h"
#include "storage/testing.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace troupe;
using namespace troupe::storage;
using troupe::storage::test::TestRecord;
using troupe::storage::testing::fast_options;
using troupe::storage::testing::must;
using troupe::storage::testing::open_env;
using troupe::storage::testing::said;
using troupe::storage::testing::temp_dir;

namespace {

const table<TestRecord> nodes{"nodes"};

TestRecord record(const std::string& name, std::int64_t value,
                  std::size_t payload = 0) {
  TestRecord rec;
  rec.set_name(name);
  rec.set_value(value);
  rec.set_payload(std::string(payload, 'p'));
  return rec;
}

status put_all(environment& env, const table<TestRecord>& tbl,
               const std::vector<std::string>& keys) {
  return env.write([&](write_txn& txn) -> status {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      TestRecord rec; // keys may be any bytes; proto3 strings must be UTF-8
      rec.set_payload(keys[i]);
      rec.set_value(std::int64_t(i));
      if (auto st = tbl.put(txn, keys[i], rec); !st.ok())
        return st;
    }
    return {};
  });
}

std::optional<TestRecord> get(const environment& env,
                              const table<TestRecord>& tbl,
                              std::string_view key) {
  auto rec = env.read([&](read_txn& txn) { return tbl.get(txn, key); });
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  return *rec;
}

std::vector<std::string> scan_keys(const environment& env,
                                   const table<TestRecord>& tbl,
                                   std::string_view prefix,
                                   std::size_t stop_after = SIZE_MAX) {
  std::vector<std::string> keys;
  must(env.read([&](read_txn& txn) {
    return tbl.scan(txn, prefix, [&](std::string_view key, TestRecord&&) {
      keys.emplace_back(key);
      return keys.size() < stop_after;
    });
  }));
  return keys;
}

} // namespace

TEST_CASE("a record put in one write reads back in a later read") {
  temp_dir dir;
  auto env = open_env(dir);
  must(env->write([&](write_txn& txn) {
    return nodes.put(txn, "node/a", record("alpha", 7, 100));
  }));
  auto rec = get(*env, nodes, "node/a");
  REQUIRE(rec);
  CHECK(rec->name() == "alpha");
  CHECK(rec->value() == 7);
  CHECK(rec->payload() == std::string(100, 'p'));
  CHECK_FALSE(get(*env, nodes, "node/b"));
}

TEST_CASE("a record with every field at its default round-trips as present") {
  temp_dir dir;
  auto env = open_env(dir);
  must(env->write([&](write_txn& txn) {
    return nodes.put(txn, "empty", TestRecord{});
  }));
  auto rec = get(*env, nodes, "empty");
  REQUIRE(rec);
  CHECK(rec->value() == 0);
}

TEST_CASE("a put replaces the record stored under the same key") {
  temp_dir dir;
  auto env = open_env(dir);
  must(env->write([&](write_txn& txn) {
    return nodes.put(txn, "k", record("first", 1));
  }));
  must(env->write([&](write_txn& txn) {
    return nodes.put(txn, "k", record("second", 2));
  }));
  auto rec = get(*env, nodes, "k");
  REQUIRE(rec);
  CHECK(rec->name() == "second");
  CHECK(scan_keys(*env, nodes, "").size() == 1);
}

TEST_CASE("erase removes a key and says whether it was there") {
  temp_dir dir;
  auto env = open_env(dir);
  must(put_all(*env, nodes, {"a", "b"}));
  auto erased = env->write([&](write_txn& txn) -> result<std::vector<bool>> {
    std::vector<bool> out;
    for (auto key : {"a", "a", "zzz"}) {
      auto existed = nodes.erase(txn, key);
      if (!existed.ok())
        return existed.error();
      out.push_back(*existed);
    }
    auto in_fresh_table = table<TestRecord>{"never"}.erase(txn, "a");
    if (!in_fresh_table.ok())
      return in_fresh_table.error();
    out.push_back(*in_fresh_table);
    return out;
  });
  REQUIRE_MESSAGE(erased.ok(), said(erased));
  CHECK(*erased == std::vector<bool>{true, false, false, false});
  CHECK_FALSE(get(*env, nodes, "a"));
  CHECK(get(*env, nodes, "b"));
}

TEST_CASE("a prefix scan visits exactly the matching keys in byte order") {
  temp_dir dir;
  auto env = open_env(dir);
  must(put_all(*env, nodes,
               {"node/b", "node/a", "nodes", "nod", "task/x", "node/\xff",
                "node/c", "node/"}));
  CHECK(scan_keys(*env, nodes, "node/") ==
        std::vector<std::string>{"node/", "node/a", "node/b", "node/c",
                                 "node/\xff"});
  CHECK(scan_keys(*env, nodes, "node/b") == std::vector<std::string>{"node/b"});
}

TEST_CASE("a prefix scan stops as soon as the callback returns false") {
  temp_dir dir;
  auto env = open_env(dir);
  must(put_all(*env, nodes, {"k/1", "k/2", "k/3", "k/4"}));
  CHECK(scan_keys(*env, nodes, "k/", 2) ==
        std::vector<std::string>{"k/1", "k/2"});
}

TEST_CASE("a prefix scan with no match visits nothing and an empty prefix "
          "visits everything") {
  temp_dir dir;
  auto env = open_env(dir);
  must(put_all(*env, nodes, {"b", "a", "c/1"}));
  CHECK(scan_keys(*env, nodes, "x").empty());
  CHECK(scan_keys(*env, nodes, "zzzz").empty()); // past the last key
  CHECK(scan_keys(*env, nodes, std::string(600, 'a')).empty());
  CHECK(scan_keys(*env, nodes, "") ==
        std::vector<std::string>{"a", "b", "c/1"});
}

TEST_CASE("a range scan starts at the first key at or after `from` and runs to the end") {
  temp_dir dir;
  auto env = open_env(dir);
  must(put_all(*env, nodes, {"b", "a", "c/1", "d"}));
  auto from = [&](std::string_view start, std::size_t stop_after = SIZE_MAX) {
    std::vector<std::string> keys;
    must(env->read([&](read_txn& txn) {
      return nodes.scan_from(txn, start, [&](std::string_view key, TestRecord&&) {
        keys.emplace_back(key);
        return keys.size() < stop_after;
      });
    }));
    return keys;
  };
  CHECK(from("b") == std::vector<std::string>{"b", "c/1", "d"});
  CHECK(from("bb") == std::vector<std::string>{"c/1", "d"});  // not a prefix scan
  CHECK(from("") == std::vector<std::string>{"a", "b", "c/1", "d"});
  CHECK(from("e").empty());
  CHECK(from("a", 2) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("clearing a table removes its keys in one transaction and leaves the others") {
  temp_dir dir;
  auto env = open_env(dir);
  const table<TestRecord> other{"other"};
  must(put_all(*env, nodes, {"a", "b", "c"}));
  must(put_all(*env, other, {"x"}));
  must(env->write([&](write_txn& t) { return t.clear("nodes"); }));
  CHECK(scan_keys(*env, nodes, "").empty());
  CHECK(scan_keys(*env, other, "") == std::vector<std::string>{"x"});
  must(env->write([&](write_txn& t) { return t.clear("never_written"); }));
  // An aborted transaction clears nothing.
  must(put_all(*env, nodes, {"a"}));
  auto aborted = env->write([&](write_txn& t) -> status {
    if (auto st = t.clear("nodes"); !st.ok())
      return st;
    return error{"stop"};
  });
  CHECK_FALSE(aborted.ok());
  CHECK(scan_keys(*env, nodes, "") == std::vector<std::string>{"a"});
}

TEST_CASE("a table that was never written reads as empty") {
  temp_dir dir;
  auto env = open_env(dir);
  const table<TestRecord> unknown{"unknown"};
  CHECK_FALSE(get(*env, unknown, "k"));
  CHECK(scan_keys(*env, unknown, "").empty());
  auto raw = env->read([&](read_txn& txn) { return txn.get("unknown", "k"); });
  REQUIRE(raw.ok());
  CHECK_FALSE(*raw);
  // Reading it inside a write does not create it either.
  must(env->write([&](write_txn& txn) -> status {
    auto rec = unknown.get(txn, "k");
    if (!rec.ok())
      return rec.error();
    CHECK_FALSE(*rec);
    return {};
  }));
}

TEST_CASE("a record that does not parse is an error naming the table and key") {
  temp_dir dir;
  auto env = open_env(dir);
  must(put_all(*env, nodes, {"node/a", "node/c"}));
  // Field 1 claims five bytes and only two follow: never a valid message.
  must(env->write([&](write_txn& txn) {
    return txn.put("nodes", "node/b\x01", std::string_view{"\x0a\x05" "ab"});
  }));
  const std::string expected = "table nodes, key node/b\\x01: stored record "
                               "does not parse as troupe.storage.test.TestRecord";
  auto rec = env->read([&](read_txn& txn) { return nodes.get(txn, "node/b\x01"); });
  REQUIRE_FALSE(rec.ok());
  CHECK(rec.error().message() == expected);

  std::vector<std::string> seen;
  auto st = env->read([&](read_txn& txn) {
    return nodes.scan(txn, "node/", [&](std::string_view key, TestRecord&&) {
      seen.emplace_back(key);
      return true;
    });
  });
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message() == expected);
  CHECK(seen == std::vector<std::string>{"node/a"});
  CHECK(get(*env, nodes, "node/c")); // the rest of the table is fine
}

TEST_CASE("empty and over-long keys are errors that name the key") {
  temp_dir dir;
  auto env = open_env(dir);
  const std::string long_key = "key-" + std::string(600, 'x');
  auto put = [&](std::string_view key) {
    return env->write([&](write_txn& txn) { return nodes.put(txn, key, {}); });
  };
  auto empty = put("");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message() ==
        "table nodes, key <empty>: keys must not be empty");
  auto too_long = put(long_key);
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().message().find("table nodes, key key-xxx") == 0);
  CHECK(too_long.error().message().find("(604 bytes): longer than LMDB's 511-byte key limit") !=
        std::string::npos);
  auto read_long = env->read([&](read_txn& txn) { return nodes.get(txn, long_key); });
  CHECK_FALSE(read_long.ok());
  auto bad_table = env->write([&](write_txn& txn) { return txn.put("", "k", "v"); });
  REQUIRE_FALSE(bad_table.ok());
  CHECK(bad_table.error().message().find("table name <empty>") == 0);
}

TEST_CASE("a write whose function returns an error leaves nothing behind") {
  temp_dir dir;
  auto env = open_env(dir);
  const table<TestRecord> fresh{"fresh"};
  auto st = env->write([&](write_txn& txn) -> status {
    must(nodes.put(txn, "a", record("a", 1)));
    must(fresh.put(txn, "b", record("b", 2))); // creates the table, then aborts
    return error{"changed my mind"};
  });
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message() == "changed my mind");
  CHECK_FALSE(get(*env, nodes, "a"));
  CHECK_FALSE(get(*env, fresh, "b"));
  // The table handle died with the aborted transaction; a new one works.
  must(env->write([&](write_txn& txn) { return fresh.put(txn, "b", record("b", 3)); }));
  CHECK(get(*env, fresh, "b")->value() == 3);
}

TEST_CASE("a write whose function throws is aborted and the exception reaches "
          "the caller") {
  temp_dir dir;
  auto env = open_env(dir);
  CHECK_THROWS_AS(env->write([&](write_txn& txn) -> status {
    must(nodes.put(txn, "a", record("a", 1)));
    throw std::runtime_error("boom");
  }),
                  std::runtime_error);
  CHECK_FALSE(get(*env, nodes, "a"));
  must(env->write([&](write_txn& txn) { return nodes.put(txn, "a", record("a", 2)); }));
  CHECK(get(*env, nodes, "a")->value() == 2);
}

TEST_CASE("a write that returns ok after a failed operation is not committed") {
  temp_dir dir;
  auto opts = fast_options();
  opts.max_tables = 1;
  auto env = open_env(dir, opts);
  auto st = env->write([&](write_txn& txn) -> status {
    must(txn.put("one", "k", "v"));
    auto second = txn.put("two", "k", "v"); // no room for a second table
    CHECK_FALSE(second.ok());
    return {}; // ignores the failure
  });
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message().find("not committed") != std::string::npos);
  CHECK(st.error().message().find("data dir " + dir.path().string()) !=
        std::string::npos);
  CHECK(st.error().message().find("(max_tables 1)") != std::string::npos);
  auto one = env->read([&](read_txn& txn) { return txn.get("one", "k"); });
  REQUIRE(one.ok());
  CHECK_FALSE(*one);
}

TEST_CASE("a write sees its own changes before they commit, readers do not") {
  temp_dir dir;
  auto env = open_env(dir);
  must(env->write([&](write_txn& txn) -> status {
    must(nodes.put(txn, "a", record("a", 1)));
    auto rec = nodes.get(txn, "a");
    REQUIRE(rec.ok());
    CHECK(*rec);
    CHECK_FALSE(get(*env, nodes, "a")); // a nested read sees the old snapshot
    std::size_t n = 0;
    must(nodes.scan(txn, "", [&](std::string_view, TestRecord&&) {
      ++n;
      return true;
    }));
    CHECK(n == 1);
    return {};
  }));
  CHECK(get(*env, nodes, "a"));
}

TEST_CASE("read and write pass a value back from their function") {
  temp_dir dir;
  auto env = open_env(dir);
  auto written = env->write([&](write_txn& txn) -> result<int> {
    if (auto st = nodes.put(txn, "a", record("a", 41)); !st.ok())
      return st.error();
    return 41;
  });
  REQUIRE(written.ok());
  CHECK(*written == 41);
  auto value = env->read([&](read_txn& txn) -> result<std::int64_t> {
    auto rec = nodes.get(txn, "a");
    if (!rec.ok())
      return rec.error();
    return (*rec)->value() + 1;
  });
  REQUIRE(value.ok());
  CHECK(*value == 42);
}

TEST_CASE("a write inside a write or a read on the same thread is refused") {
  temp_dir dir;
  auto env = open_env(dir);
  auto put_a = [&](write_txn& txn) { return nodes.put(txn, "a", record("a", 1)); };
  auto inner = [&](auto&) { return env->write(put_a); };
  auto in_write = env->write(inner);
  REQUIRE_FALSE(in_write.ok());
  CHECK(in_write.error().message().find("inside a write()") != std::string::npos);
  auto in_read = env->read(inner);
  REQUIRE_FALSE(in_read.ok());
  CHECK(in_read.error().message().find("inside a read()") != std::string::npos);
  CHECK_FALSE(get(*env, nodes, "a"));
  must(env->write(put_a));
}

TEST_CASE("records and tables survive closing and reopening the environment") {
  temp_dir dir;
  const table<TestRecord> tasks{"tasks"};
  {
    auto env = open_env(dir);
    must(put_all(*env, nodes, {"n1", "n2"}));
    must(put_all(*env, tasks, {"t1"}));
  }
  auto env = open_env(dir);
  CHECK(scan_keys(*env, nodes, "") == std::vector<std::string>{"n1", "n2"});
  CHECK(scan_keys(*env, tasks, "") == std::vector<std::string>{"t1"});
  must(put_all(*env, tasks, {"t2"}));
  CHECK(scan_keys(*env, tasks, "") == std::vector<std::string>{"t1", "t2"});
}

TEST_CASE("the map grows when a change needs more room than it has") {
  temp_dir dir;
  auto opts = fast_options();
  opts.initial_map_size = std::size_t{1} << 20;
  auto env = open_env(dir, opts);
  CHECK(env->map_size() == opts.initial_map_size);
  // One 9 MiB change, then more small ones: growth inside and across writes.
  int runs = 0;
  must(env->write([&](write_txn& txn) -> status {
    ++runs;
    for (int i = 0; i < 9 * 256; ++i) {
      auto key = "big/" + std::to_string(i);
      if (auto st = nodes.put(txn, key, record(key, i, 4000)); !st.ok())
        return st;
    }
    return {};
  }));
  CHECK(runs > 1); // ran again after each growth step
  for (int chunk = 0; chunk < 4; ++chunk)
    must(env->write([&](write_txn& txn) -> status {
      for (int i = 0; i < 256; ++i) {
        auto key = "more/" + std::to_string(chunk * 256 + i);
        if (auto st = nodes.put(txn, key, record(key, i, 4000)); !st.ok())
          return st;
      }
      return {};
    }));
  auto grown = env->map_size();
  CHECK(grown > std::size_t{8} << 20);
  CHECK(scan_keys(*env, nodes, "big/").size() == 9 * 256);
  CHECK(scan_keys(*env, nodes, "more/").size() == 4 * 256);
  env.reset();
  env = open_env(dir, opts); // starts at the grown size, not at 1 MiB again
  CHECK(env->map_size() >= std::filesystem::file_size(dir.path() / "data.mdb"));
  CHECK(env->map_size() > std::size_t{8} << 20);
}

TEST_CASE("a change bigger than max_map_size fails naming the data dir and "
          "size, and the environment keeps working") {
  temp_dir dir;
  auto opts = fast_options();
  opts.initial_map_size = std::size_t{1} << 20;
  opts.max_map_size = std::size_t{2} << 20;
  auto env = open_env(dir, opts);
  must(env->write([&](write_txn& txn) { return nodes.put(txn, "small", record("small", 1)); }));
  auto st = env->write([&](write_txn& txn) -> status {
    for (int i = 0; i < 1024; ++i)
      if (auto put = nodes.put(txn, "big/" + std::to_string(i), record("", i, 4000));
          !put.ok())
        return put;
    return {};
  });
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message() ==
        "data dir " + dir.path().string() +
          ": LMDB map full at 2 MiB (max_map_size 2 MiB); raise max_map_size "
          "or delete records");
  CHECK(env->map_size() == opts.max_map_size);
  CHECK(scan_keys(*env, nodes, "big/").empty());
  must(env->write([&](write_txn& txn) { return nodes.put(txn, "after", record("after", 2)); }));
  CHECK(get(*env, nodes, "small"));
  CHECK(get(*env, nodes, "after"));
}

TEST_CASE("opening a data dir that holds something other than LMDB fails "
          "naming the dir") {
  temp_dir dir;
  {
    std::ofstream junk{dir.path() / "data.mdb", std::ios::binary};
    junk << std::string(16384, 'j');
  }
  auto env = environment::open(dir.path(), fast_options());
  REQUIRE_FALSE(env.ok());
  CHECK(env.error().message().find("data dir " + dir.path().string() +
                                   ": mdb_env_open: ") == 0);

  auto opts = fast_options();
  opts.initial_map_size = opts.max_map_size + 1;
  auto bad = environment::open(dir.path() / "other", opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("must be above zero and at most max_map_size") !=
        std::string::npos);
}

TEST_CASE("a data dir that is already open in this process is not opened "
          "twice") {
  temp_dir dir;
  auto env = open_env(dir);
  auto twice = environment::open(dir.path() / ".", fast_options());
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().message().find("is already open in this process") !=
        std::string::npos);
  env.reset();
  auto again = environment::open(dir.path(), fast_options());
  CHECK_MESSAGE(again.ok(), said(again));
}

TEST_CASE("table_names lists the tables made before and after the environment was opened") {
  temp_dir dir;
  {
    auto env = open_env(dir);
    must(env->write([&](write_txn& txn) { return txn.put("beta", "k", "v"); }));
  }
  auto env = open_env(dir);
  CHECK(env->table_names() == std::vector<std::string>{"beta"});
  must(env->write([&](write_txn& txn) { return txn.put("alpha", "k", "v"); }));
  CHECK(env->table_names() == std::vector<std::string>{"alpha", "beta"});
}
