// Crash safety: a writer process killed with SIGKILL in the middle of its
// write loop leaves the last committed state, and an environment that opens.
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "storage/testdata/test_record.pb.h"
#include "storage/testing.hpp"

#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

using namespace troupe;
using namespace troupe::storage;
using troupe::storage::test::TestRecord;
using troupe::storage::testing::said;
using troupe::storage::testing::temp_dir;

namespace {

const table<TestRecord> records{"records"};
const table<TestRecord> meta{"meta"};
constexpr std::size_t payload_size = 3000; // a few pages per commit

std::string key_of(std::int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rec/%08lld", static_cast<long long>(i));
  return buf;
}

TestRecord record_of(std::int64_t i) {
  TestRecord rec;
  rec.set_name(key_of(i));
  rec.set_value(i);
  rec.set_payload(std::string(payload_size, static_cast<char>('a' + i % 26)));
  return rec;
}

// The child: commit record i and "last" = i together, forever, every other
// commit syncing its data only (as the raft actor's apply-only batches do).
// It reports on the pipe once commits are flowing, never returns, and never
// touches doctest.
[[noreturn]] void write_until_killed(const std::filesystem::path& dir,
                                     std::int64_t first, int ready_fd) {
  auto env = environment::open(dir); // real fsync, as an agent would
  if (!env.ok())
    ::_exit(2);
  for (std::int64_t i = first;; ++i) {
    auto st = (*env)->write([&](write_txn& txn) -> status {
      if (i % 2)
        txn.sync_data_only();
      if (auto put = records.put(txn, key_of(i), record_of(i)); !put.ok())
        return put;
      return meta.put(txn, "last", record_of(i));
    });
    if (!st.ok())
      ::_exit(3);
    if (i == first + 20 && ::write(ready_fd, "r", 1) != 1)
      ::_exit(4);
  }
}

// Runs one child from record `first` and SIGKILLs it mid-loop. Returns the
// child's wait status.
int run_and_kill(const std::filesystem::path& dir, std::int64_t first) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    write_until_killed(dir, first, fds[1]);
  }
  ::close(fds[1]);
  pollfd ready{fds[0], POLLIN, 0};
  int polled = ::poll(&ready, 1, 5000);
  // Let it run on so that the kill lands in the middle of some write.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(child, SIGKILL);
  int wstatus = 0;
  ::waitpid(child, &wstatus, 0);
  ::close(fds[0]);
  CHECK_MESSAGE(polled == 1, "the writer child never got going");
  return wstatus;
}

// Checks that "last" = n and that records 0..n, and only those, are there.
std::int64_t check_committed_state(const std::filesystem::path& dir) {
  auto env = environment::open(dir);
  REQUIRE_MESSAGE(env.ok(), said(env));
  auto last = (*env)->read([&](read_txn& txn) { return meta.get(txn, "last"); });
  REQUIRE_MESSAGE(last.ok(), said(last));
  REQUIRE(last->has_value());
  std::int64_t n = (*last)->value();

  std::int64_t expected = 0;
  bool intact = true;
  auto st = (*env)->read([&](read_txn& txn) {
    return records.scan(txn, "rec/", [&](std::string_view key, TestRecord&& rec) {
      intact = key == key_of(expected) && rec.value() == expected &&
               rec.payload() == record_of(expected).payload();
      ++expected;
      return intact;
    });
  });
  REQUIRE_MESSAGE(st.ok(), said(st));
  CHECK_MESSAGE(intact, "record " << expected - 1 << " is wrong");
  CHECK(expected == n + 1);
  // The environment still takes writes after the crash.
  auto write = (*env)->write([&](write_txn& txn) { return meta.put(txn, "checked", record_of(n)); });
  CHECK_MESSAGE(write.ok(), said(write));
  return n;
}

} // namespace

TEST_CASE("a writer killed with SIGKILL mid-loop leaves the last committed "
          "state readable and the environment openable") {
  temp_dir dir;
  std::int64_t next = 0;
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    int wstatus = run_and_kill(dir.path(), next);
    REQUIRE_MESSAGE(WIFSIGNALED(wstatus),
                    "the child exited on its own with " << WEXITSTATUS(wstatus));
    CHECK(WTERMSIG(wstatus) == SIGKILL);
    std::int64_t last = check_committed_state(dir.path());
    CHECK(last >= next + 20); // at least the commits it reported
    next = last + 1;
  }
}
