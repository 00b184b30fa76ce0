// Storage under threads: snapshots stay consistent, readers never hold up
// the writer, and the map can grow while readers come and go.
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "storage/testdata/test_record.pb.h"
#include "storage/testing.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace troupe;
using namespace troupe::storage;
using troupe::storage::test::TestRecord;
using troupe::storage::testing::fast_options;
using troupe::storage::testing::must;
using troupe::storage::testing::open_env;
using troupe::storage::testing::said;
using troupe::storage::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

const table<TestRecord> accounts{"accounts"};

TestRecord amount(std::int64_t value) {
  TestRecord rec;
  rec.set_value(value);
  return rec;
}

// The sum of both accounts as one snapshot sees it.
result<std::int64_t> total(read_txn& txn) {
  std::int64_t sum = 0;
  for (auto key : {"a", "b"}) {
    auto rec = accounts.get(txn, key);
    if (!rec.ok())
      return rec.error();
    if (!*rec)
      return error{std::string{"account "} + key + " is missing"};
    sum += (*rec)->value();
  }
  return sum;
}

// An account's value, or -1 when it cannot be read.
std::int64_t value_of(const read_txn& txn, std::string_view key) {
  auto rec = accounts.get(txn, key);
  return rec.ok() && *rec ? (*rec)->value() : -1;
}

// A one-shot signal between two threads, with a timeout so that a bug shows
// up as a failed check instead of a hung test.
class latch {
public:
  void open() {
    std::lock_guard lock{mutex_};
    open_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock{mutex_};
    return cv_.wait_for(lock, timeout, [&] { return open_; });
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

} // namespace

TEST_CASE("readers on many threads always see a consistent snapshot while a "
          "writer moves value between keys") {
  temp_dir dir;
  auto env = open_env(dir);
  must(env->write([&](write_txn& txn) -> status {
    must(accounts.put(txn, "a", amount(1000)));
    return accounts.put(txn, "b", amount(0));
  }));

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r)
    readers.emplace_back([&] {
      while (!done.load()) {
        auto sum = env->read(total);
        if (!sum.ok() || *sum != 1000)
          ++inconsistent;
        ++reads;
      }
    });

  for (int i = 0; i < 400; ++i)
    must(env->write([&](write_txn& txn) -> status {
      auto a = accounts.get(txn, "a");
      auto b = accounts.get(txn, "b");
      if (!a.ok() || !b.ok())
        return error{"lost an account"};
      std::int64_t move = (i % 7 + 1) * (i % 2 == 0 ? 1 : -1);
      if (auto st = accounts.put(txn, "a", amount((*a)->value() - move)); !st.ok())
        return st;
      return accounts.put(txn, "b", amount((*b)->value() + move));
    }));
  // Let the readers overlap the writes for at least a few rounds.
  while (reads.load() < 100)
    std::this_thread::sleep_for(1ms);
  done = true;
  for (auto& t : readers)
    t.join();

  CHECK(inconsistent.load() == 0);
  CHECK(reads.load() >= 100);
  auto sum = env->read(total);
  REQUIRE(sum.ok());
  CHECK(*sum == 1000);
}

TEST_CASE("a reader holding a long transaction does not block the writer and "
          "keeps its snapshot") {
  temp_dir dir;
  auto env = open_env(dir);
  must(env->write([&](write_txn& txn) { return accounts.put(txn, "a", amount(1)); }));

  latch reader_inside;
  latch writes_done;
  bool writer_finished_first = false;
  std::int64_t before = 0;
  std::int64_t after = 0;
  status read_status;
  std::thread reader{[&] {
    read_status = env->read([&](read_txn& txn) -> status {
      before = value_of(txn, "a");
      reader_inside.open();
      writer_finished_first = writes_done.wait(5s);
      after = value_of(txn, "a");
      return {};
    });
  }};

  REQUIRE(reader_inside.wait(5s));
  for (int i = 2; i <= 21; ++i)
    must(env->write([&](write_txn& txn) { return accounts.put(txn, "a", amount(i)); }));
  writes_done.open();
  reader.join();

  CHECK(read_status.ok());
  CHECK(writer_finished_first);
  CHECK(before == 1);
  CHECK(after == 1); // the reader's snapshot did not move
  auto now = env->read([&](read_txn& txn) { return accounts.get(txn, "a"); });
  REQUIRE(now.ok());
  CHECK((*now)->value() == 21);
}

TEST_CASE("a reader that began before a table existed sees it as empty") {
  temp_dir dir;
  auto env = open_env(dir);
  const table<TestRecord> late{"late"};
  latch reader_inside;
  latch table_created;
  bool saw_table = true;
  bool read_failed = false;
  std::size_t scanned = 0;
  std::thread reader{[&] {
    auto st = env->read([&](read_txn& txn) -> status {
      reader_inside.open();
      table_created.wait(5s);
      auto rec = late.get(txn, "k");
      if (!rec.ok())
        return rec.error();
      saw_table = rec->has_value();
      return late.scan(txn, "", [&](std::string_view, TestRecord&&) {
        ++scanned;
        return true;
      });
    });
    read_failed = !st.ok();
  }};
  REQUIRE(reader_inside.wait(5s));
  must(env->write([&](write_txn& txn) { return late.put(txn, "k", amount(5)); }));
  table_created.open();
  reader.join();

  CHECK_FALSE(read_failed);
  CHECK_FALSE(saw_table);
  CHECK(scanned == 0);
  auto rec = env->read([&](read_txn& txn) { return late.get(txn, "k"); });
  REQUIRE(rec.ok());
  REQUIRE(rec->has_value());
  CHECK((*rec)->value() == 5);
}

TEST_CASE("the map grows while other threads keep reading") {
  temp_dir dir;
  auto opts = fast_options();
  opts.initial_map_size = std::size_t{1} << 20;
  auto env = open_env(dir, opts);
  const table<TestRecord> blobs{"blobs"};
  constexpr int per_write = 64;

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r)
    readers.emplace_back([&] {
      while (!done.load()) {
        std::size_t count = 0;
        auto st = env->read([&](read_txn& txn) {
          return blobs.scan(txn, "", [&](std::string_view, TestRecord&&) {
            ++count;
            return true;
          });
        });
        // Writes add whole batches, so a snapshot never holds a partial one.
        if (!st.ok() || count % per_write != 0)
          ++torn;
        ++reads;
      }
    });

  for (int batch = 0; batch < 24; ++batch)
    must(env->write([&](write_txn& txn) -> status {
      for (int i = 0; i < per_write; ++i) {
        TestRecord rec;
        rec.set_payload(std::string(4000, 'x'));
        auto key = "blob/" + std::to_string(batch * per_write + i);
        if (auto st = blobs.put(txn, key, rec); !st.ok())
          return st;
      }
      return {};
    }));
  done = true;
  for (auto& t : readers)
    t.join();

  CHECK(torn.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(env->map_size() > opts.initial_map_size * 4);
}
