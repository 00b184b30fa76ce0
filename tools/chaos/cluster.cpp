#include "tools/chaos/cluster.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/text.hpp"
#include "tools/troupectl/client.hpp"

namespace troupe::chaos {

namespace fs = std::filesystem;

namespace {

std::string read_trimmed(const fs::path& file) {
  std::ifstream in{file};
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r'))
    s.pop_back();
  return s;
}

// VALUE of KEY=VALUE in DIR/env, "" when absent.
std::string env_value(const fs::path& env, const std::string& key) {
  std::ifstream in{env};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + "=", 0) == 0)
      return line.substr(key.size() + 1);
  return {};
}

} // namespace

bool process_alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0)
    return false;
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string all;
  std::getline(stat, all);
  auto close = all.rfind(')');
  if (close == std::string::npos || close + 2 >= all.size())
    return true;
  return all[close + 2] != 'Z' && all[close + 2] != 'X';
}

result<cluster> cluster::load(const fs::path& dir) {
  cluster c;
  std::error_code ec;
  c.dir_ = fs::absolute(dir, ec);
  if (!fs::is_directory(c.dir_))
    return error{"--cluster: " + quote(dir.native()) + " is not a directory (make one with deploy/local-cluster.sh start N --dir DIR)"};
  if (!fs::exists(c.dir_ / "env"))
    return error{"--cluster: " + quote((c.dir_ / "env").native()) + " is missing: not a cluster made by local-cluster.sh"};
  c.mode_ = env_value(c.dir_ / "env", "CLUSTER_MODE");
  if (c.mode_.empty())
    c.mode_ = "loopback";
  if (c.mode_ != "loopback" && c.mode_ != "netns")
    return error{"--cluster: CLUSTER_MODE=" + quote(c.mode_) + " in " + (c.dir_ / "env").native() +
                 " is neither loopback nor netns"};
  for (int i = 1;; ++i) {
    auto d = c.dir_ / ("node-" + std::to_string(i));
    if (!fs::is_directory(d))
      break;
    node_info n;
    n.index = i;
    n.name = "node-" + std::to_string(i);
    n.dir = d;
    n.http = read_trimmed(d / "http");
    n.addr = read_trimmed(d / "addr");
    n.role = read_trimmed(d / "role");
    if (n.http.empty() || !fs::exists(d / "run"))
      return error{"--cluster: " + quote(d.native()) + " has no http or run file: not started by local-cluster.sh"};
    if (c.mode_ == "netns") {
      n.netns = read_trimmed(d / "netns");
      if (n.netns.empty())
        return error{"--cluster: CLUSTER_MODE=netns but " + quote((d / "netns").native()) + " is missing"};
    }
    c.nodes_.push_back(std::move(n));
  }
  if (c.nodes_.empty())
    return error{"--cluster: " + quote(c.dir_.native()) + " has no node-1"};
  c.token_ = read_trimmed(c.dir_ / "node-1" / "data" / "management.token");
  if (c.token_.empty())
    return error{"--cluster: no management token in " + quote((c.dir_ / "node-1/data/management.token").native())};
  return c;
}

int cluster::index_of(const std::string& name) const {
  for (const auto& n : nodes_)
    if (n.name == name)
      return n.index;
  return 0;
}

pid_t cluster::pid_of(int index) const {
  auto s = read_trimmed(node(index).dir / "pid");
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return static_cast<pid_t>(std::stol(s));
}

bool cluster::running(int index) const {
  return process_alive(pid_of(index));
}

result<pid_t> cluster::start(int index) const {
  const auto& n = node(index);
  // Twice forked, so that the agent is no child of ours (init reaps it when
  // it is killed, as it does for the agents local-cluster.sh started).
  int fds[2];
  if (::pipe(fds) != 0)
    return error{std::string{"pipe: "} + std::strerror(errno)};
  pid_t child = ::fork();
  if (child < 0)
    return error{std::string{"fork: "} + std::strerror(errno)};
  if (child == 0) {
    ::close(fds[0]);
    ::setsid();
    pid_t agent = ::fork();
    if (agent == 0) {
      ::close(fds[1]);
      int in = ::open("/dev/null", O_RDONLY);
      int log = ::open((n.dir / "log").c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
      if (in >= 0)
        ::dup2(in, 0);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      for (int fd = 3; fd < 1024; ++fd)
        ::close(fd);
      auto run = (n.dir / "run").string();
      ::execl(run.c_str(), run.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto written = ::write(fds[1], &agent, sizeof agent);
    ::_exit(written == sizeof agent ? 0 : 1);
  }
  ::close(fds[1]);
  pid_t agent = -1;
  auto got = ::read(fds[0], &agent, sizeof agent);
  ::close(fds[0]);
  int ignored = 0;
  ::waitpid(child, &ignored, 0);
  if (got != sizeof agent || agent <= 0)
    return error{"starting " + n.name + ": fork failed"};
  std::ofstream{n.dir / "pid", std::ios::trunc} << agent << '\n';
  return agent;
}

status cluster::signal(int index, int sig) const {
  auto pid = pid_of(index);
  if (pid <= 0)
    return error{node(index).name + " has no pid file"};
  if (::kill(pid, sig) != 0)
    return error{"signal " + std::to_string(sig) + " to " + node(index).name + " (pid " + std::to_string(pid) +
                 "): " + std::strerror(errno)};
  return {};
}

bool cluster::wait_exit(int index, std::chrono::milliseconds timeout) const {
  auto pid = pid_of(index);
  auto until = std::chrono::steady_clock::now() + timeout;
  while (process_alive(pid)) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return true;
}

api::api(const cluster& c, std::chrono::milliseconds read_timeout) : cluster_(c), read_timeout_(read_timeout) {}

api::outcome api::call_on(int index, const char* method, const std::string& path, const std::string& body,
                          google::protobuf::Message& out) const {
  troupectl::client cli{cluster_.node(index).http, cluster_.token()};
  cli.set_read_timeout(read_timeout_);
  cli.set_connect_timeout(std::chrono::milliseconds{1000});
  outcome o;
  o.node = index;
  bool not_sent = false;
  o.st = cli.call(method, path, body, out, &o.http, &not_sent);
  o.sent = !not_sent;
  return o;
}

api::outcome api::call(const char* method, const std::string& path, const std::string& body,
                       google::protobuf::Message& out) {
  int first = 0;
  {
    std::lock_guard lock{mutex_};
    first = preferred_;
  }
  bool read = std::string{method} == "GET";
  auto n = static_cast<int>(cluster_.nodes().size());
  outcome o;
  for (int k = 0; k < n; ++k) {
    int index = (first - 1 + k) % n + 1;
    if (!cluster_.running(index))
      continue;
    o = call_on(index, method, path, body, out);
    bool move_on = read ? (o.http == 0 || o.http == 503 || o.http == 504) : !o.sent;
    if (!move_on) {
      std::lock_guard lock{mutex_};
      preferred_ = o.http == 0 || o.http >= 500 ? index % n + 1 : index;
      return o;
    }
  }
  std::lock_guard lock{mutex_};
  preferred_ = first % n + 1;
  if (o.node == 0)
    o.st = error{"no agent of " + cluster_.dir().native() + " is running"};
  return o;
}

} // namespace troupe::chaos
