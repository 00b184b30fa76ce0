// The data dir lock: one agent per data dir, and a clear message naming the
// dir and the holder's pid for the second.
#include "storage/data_dir.hpp"
#include "storage/testing.hpp"

#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>

using namespace troupe;
using namespace troupe::storage;
using troupe::storage::testing::said;
using troupe::storage::testing::temp_dir;

namespace {

std::string in_use_message(const temp_dir& dir, pid_t holder) {
  return "data dir " + dir.path().string() + " is in use by another agent (pid " +
         std::to_string(holder) + ")";
}

} // namespace

TEST_CASE("a second lock on a data dir fails at once naming the dir and the "
          "holder's pid") {
  temp_dir dir;
  auto first = data_dir_lock::acquire(dir.path());
  REQUIRE_MESSAGE(first.ok(), said(first));
  CHECK(first->dir() == dir.path());
  auto second = data_dir_lock::acquire(dir.path());
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message() == in_use_message(dir, ::getpid()));
}

TEST_CASE("a data dir lock is released when its holder is destroyed or "
          "replaced") {
  temp_dir dir;
  temp_dir other;
  {
    auto lock = data_dir_lock::acquire(dir.path());
    REQUIRE(lock.ok());
    data_dir_lock moved = std::move(lock).value();
    CHECK_FALSE(data_dir_lock::acquire(dir.path()).ok());
  }
  auto again = data_dir_lock::acquire(dir.path());
  REQUIRE(again.ok());
  auto elsewhere = data_dir_lock::acquire(other.path());
  REQUIRE(elsewhere.ok());
  *again = std::move(elsewhere).value(); // gives up dir, now holds other
  CHECK(again->dir() == other.path());
  CHECK(data_dir_lock::acquire(dir.path()).ok());
  CHECK_FALSE(data_dir_lock::acquire(other.path()).ok());
}

TEST_CASE("acquiring a data dir lock creates the data dir") {
  temp_dir dir;
  auto nested = dir.path() / "a" / "b";
  auto lock = data_dir_lock::acquire(nested);
  REQUIRE_MESSAGE(lock.ok(), said(lock));
  CHECK(std::filesystem::is_directory(nested));
  CHECK(std::filesystem::exists(nested / "LOCK"));
}

TEST_CASE("a data dir locked by another process names that process, and "
          "frees up when it is killed") {
  temp_dir dir;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    auto lock = data_dir_lock::acquire(dir.path());
    if (!lock.ok() || ::write(fds[1], "l", 1) != 1)
      ::_exit(2);
    for (;;)
      ::pause(); // hold the lock until killed
  }
  ::close(fds[1]);
  pollfd locked{fds[0], POLLIN, 0};
  bool child_locked = ::poll(&locked, 1, 5000) == 1;
  auto while_held = data_dir_lock::acquire(dir.path());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(fds[0]);

  REQUIRE(child_locked);
  REQUIRE_FALSE(while_held.ok());
  CHECK(while_held.error().message() == in_use_message(dir, child));
  auto after = data_dir_lock::acquire(dir.path());
  CHECK_MESSAGE(after.ok(), said(after));
}
