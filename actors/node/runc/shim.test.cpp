// What the drivers and troupe-shim agree on: the process spec file, the
// shim's flags in both modes, the pid file, and process identities.
#include "actors/node/runc/shim.hpp"

#include <unistd.h>

#include <doctest/doctest.h>

#include "actors/node/runc/process.hpp"
#include "actors/node/runc/test_support.hpp"

using namespace troupe::runc;
using namespace troupe::runc::testing;

TEST_CASE("a process spec survives encoding with any bytes but NUL in its words") {
  shim::process_spec spec;
  spec.executable = "/bin/sh";
  spec.args = {"sh", "-c", "echo 'a b'\n\"c\"=d", ""};
  spec.env = {"PATH=/bin", "EMPTY=", "MULTI=line\nline"};
  spec.cwd = "/tmp/with space";
  spec.switch_user = true;
  spec.uid = 65534;
  spec.gid = 100;
  spec.cgroups = {"/sys/fs/cgroup/memory/t/x", "/sys/fs/cgroup/pids/t/x"};
  auto back = shim::parse_process_spec(shim::encode_process_spec(spec));
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message()));
  CHECK(back->executable == spec.executable);
  CHECK(back->args == spec.args);
  CHECK(back->env == spec.env);
  CHECK(back->cwd == spec.cwd);
  CHECK(back->switch_user);
  CHECK(back->uid == 65534);
  CHECK(back->gid == 100);
  CHECK(back->cgroups == spec.cgroups);

  spec.switch_user = false;
  back = shim::parse_process_spec(shim::encode_process_spec(spec));
  REQUIRE(back.ok());
  CHECK_FALSE(back->switch_user);
}

TEST_CASE("a process spec that is cut short, unknown or without a command is refused") {
  using namespace std::string_literals;
  CHECK_FALSE(shim::parse_process_spec("executable\0/bin/sh"s).ok());          // no final NUL
  CHECK_FALSE(shim::parse_process_spec("executable\0/bin/sh\0arg\0"s).ok());   // key without value
  CHECK_FALSE(shim::parse_process_spec("executable\0/bin/sh\0nope\0x\0"s).ok());
  CHECK_FALSE(shim::parse_process_spec("arg\0sh\0"s).ok());                    // no executable
  CHECK_FALSE(shim::parse_process_spec("executable\0/bin/sh\0arg\0sh\0uid\0-1\0"s).ok());
  CHECK(shim::parse_process_spec("executable\0/bin/sh\0arg\0sh\0"s).ok());
}

TEST_CASE("the shim's flags name its mode: runc needs runc and its root, process mode a spec") {
  shim::arguments a;
  a.id = "c1";
  a.bundle = "/b";
  a.stdout_log = "/l/out";
  a.stderr_log = "/l/err";
  a.process_spec = "/b/process.spec";
  auto argv = shim::to_argv("/bin/troupe-shim", a);
  std::vector<char*> raw;
  for (auto& word : argv)
    raw.push_back(word.data());
  auto back = shim::parse_argv(static_cast<int>(raw.size()), raw.data());
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message()));
  CHECK(back->process_spec == a.process_spec);
  CHECK(back->runc.empty());

  a.process_spec.clear();
  argv = shim::to_argv("/bin/troupe-shim", a);
  raw.clear();
  for (auto& word : argv)
    raw.push_back(word.data());
  auto refused = shim::parse_argv(static_cast<int>(raw.size()), raw.data());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().find("--runc") != std::string::npos);

  // runc mode with the overlay for the shim to mount: its options and target survive.
  a.runc = "/usr/sbin/runc";
  a.root = "/state";
  a.overlay = "lowerdir=/img,upperdir=/b/upper,workdir=/b/work";
  a.rootfs = "/b/merged";
  argv = shim::to_argv("/bin/troupe-shim", a);
  raw.clear();
  for (auto& word : argv)
    raw.push_back(word.data());
  auto overlay = shim::parse_argv(static_cast<int>(raw.size()), raw.data());
  REQUIRE_MESSAGE(overlay.ok(), (overlay.ok() ? "" : overlay.error().message()));
  CHECK(overlay->overlay == a.overlay);
  CHECK(overlay->rootfs == a.rootfs);
  a.rootfs.clear();
  argv = shim::to_argv("/bin/troupe-shim", a);
  raw.clear();
  for (auto& word : argv)
    raw.push_back(word.data());
  CHECK_FALSE(shim::parse_argv(static_cast<int>(raw.size()), raw.data()).ok());
}

TEST_CASE("the pid file gives the pid and, when written by the process mode, its start time") {
  scratch_dir dir;
  CHECK(shim::read_init_pid(dir.path()).pid == 0);
  write_text(dir.path() / shim::pid_file, "1234");
  CHECK(shim::read_init_pid(dir.path()).pid == 1234);
  CHECK(shim::read_init_pid(dir.path()).start_time == 0);
  write_text(dir.path() / shim::pid_file, "1234 98765\n");
  CHECK(shim::read_init_pid(dir.path()).start_time == 98765);
}

TEST_CASE("a process is known by its pid and start time, so a reused pid is not mistaken for it") {
  auto mine = process_start_time(::getpid());
  REQUIRE(mine.has_value());
  CHECK(same_process(::getpid(), *mine));
  CHECK(same_process(::getpid(), 0));
  CHECK_FALSE(same_process(::getpid(), *mine + 1));
  CHECK_FALSE(process_start_time(0).has_value());
  CHECK_FALSE(same_process(-1, 0));
}
