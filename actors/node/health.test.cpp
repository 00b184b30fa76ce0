// The health tracker against Docker's HEALTHCHECK rules (time as values),
// and the tcp and http probes against real loopback sockets the tests open.
#include "actors/node/health.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <tuple>

#include <doctest/doctest.h>

#include "actors/node/runc/process_driver.hpp"

using namespace troupe;
using namespace troupe::node;
using namespace std::chrono_literals;

namespace {

v1::TaskStatus started_at(int64_t ms) {
  v1::TaskStatus s;
  s.set_state("running");
  s.set_started_at_ms(ms);
  health_tracker::restart(s);
  return s;
}

health_settings with(uint32_t retries, std::chrono::milliseconds start_period = 0ms) {
  health_settings s;
  s.retries = retries;
  s.start_period = start_period;
  return s;
}

const probe_outcome pass{true, "HTTP/1.0 200 OK"};
const probe_outcome fail{false, "exit code 1: not ready"};

/// A TCP socket on 127.0.0.1 with a port of its own, closed at the end.
class loopback_socket {
public:
  /// Bound to a free port; listening when asked (else a connect is refused).
  explicit loopback_socket(bool listening) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    if (listening)
      REQUIRE(::listen(fd_, 16) == 0);
  }
  loopback_socket(const loopback_socket&) = delete;
  loopback_socket& operator=(const loopback_socket&) = delete;
  ~loopback_socket() { ::close(fd_); }

  int fd() const { return fd_; }
  int port() const { return port_; }

private:
  int fd_ = -1;
  int port_ = 0;
};

/// An HTTP server in a thread: answers every request with `answer` and
/// keeps the last request it read.
class tiny_server {
public:
  explicit tiny_server(std::string answer) : answer_(std::move(answer)), thread_([this] { serve(); }) {}
  tiny_server(const tiny_server&) = delete;
  tiny_server& operator=(const tiny_server&) = delete;
  ~tiny_server() {
    stop_ = true;
    thread_.join();
  }

  int port() const { return socket_.port(); }
  std::string last_request() {
    std::lock_guard<std::mutex> guard{mutex_};
    return request_;
  }

private:
  void serve() {
    while (!stop_) {
      pollfd p{socket_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0)
        continue;
      int conn = ::accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0)
        continue;
      std::string request;
      char buf[512];
      while (request.find("\r\n\r\n") == std::string::npos) {
        auto n = ::recv(conn, buf, sizeof buf, 0);
        if (n <= 0)
          break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard<std::mutex> guard{mutex_};
        request_ = request;
      }
      (void)::send(conn, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      ::close(conn);
    }
  }

  loopback_socket socket_{true};
  std::string answer_;
  std::mutex mutex_;
  std::string request_;
  std::atomic<bool> stop_{false};
  std::thread thread_; // last: starts once the rest is ready
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a health check's settings take Docker's defaults where the spec says 0") {
  using namespace std::chrono;
  // interval, timeout, retries, start period, first probe
  auto fields = [](const v1::HealthCheck& check) {
    auto s = health_settings::of(check);
    return std::tuple{s.interval, s.timeout, s.retries, s.start_period, s.first_probe()};
  };
  v1::HealthCheck check;
  CHECK(fields(check) == std::tuple{milliseconds{10s}, milliseconds{1s}, 3u, 0ms, milliseconds{1s}});
  check.set_interval_ms(200);
  check.set_timeout_ms(50);
  check.set_retries(5);
  check.set_start_period_ms(3000);
  CHECK(fields(check) == std::tuple{200ms, 50ms, 5u, 3000ms, 200ms});
}

TEST_CASE("a check is wanted only when it names exec, http or tcp") {
  v1::HealthCheck check;
  check.set_port("web");
  check.set_interval_ms(100);
  CHECK_FALSE(health_wanted(check));
  auto exec = check;
  exec.add_exec("true");
  CHECK(health_wanted(exec));
  auto http = check;
  http.set_http("/");
  CHECK(health_wanted(http));
  auto tcp = check;
  tcp.set_tcp(true);
  CHECK(health_wanted(tcp));
}

TEST_CASE("one passing probe makes a starting task healthy at once, since then") {
  auto s = started_at(1000);
  CHECK(s.health() == "starting");
  health_tracker t{with(3)};
  CHECK(t.observe(s, pass, 1200));
  CHECK(s.health() == "healthy");
  CHECK(s.healthy_since_ms() == 1200);
  CHECK(s.health_failures() == 0);
  CHECK_FALSE(t.observe(s, pass, 1400)); // no change: healthy since the first pass
  CHECK(s.healthy_since_ms() == 1200);
}

TEST_CASE("retries failures in a row make a task unhealthy, and a pass in between starts the count over") {
  auto s = started_at(0);
  health_tracker t{with(3)};
  CHECK(t.observe(s, pass, 100));
  CHECK_FALSE(t.observe(s, fail, 200));
  CHECK_FALSE(t.observe(s, fail, 300));
  CHECK(s.health() == "healthy");
  CHECK(s.health_failures() == 2);
  CHECK_FALSE(t.observe(s, pass, 400));
  CHECK(s.health_failures() == 0);
  CHECK(s.health_output() == fail.output); // what the last failed probe said stays
  CHECK_FALSE(t.observe(s, fail, 500));
  CHECK_FALSE(t.observe(s, fail, 600));
  CHECK(t.observe(s, probe_outcome{false, "exit code 2: gone"}, 700));
  CHECK(s.health() == "unhealthy");
  CHECK(s.health_failures() == 3);
  CHECK(s.healthy_since_ms() == 0);
  CHECK(s.health_output() == "exit code 2: gone");
  CHECK_FALSE(t.observe(s, fail, 800)); // stays unhealthy, counting on
  CHECK(s.health_failures() == 4);
  CHECK(t.observe(s, pass, 900)); // one pass is enough to come back
  CHECK(s.health() == "healthy");
  CHECK(s.healthy_since_ms() == 900);
}

TEST_CASE("a task that never passes goes from starting to unhealthy after its retries") {
  auto s = started_at(0);
  health_tracker t{with(2)};
  CHECK_FALSE(t.observe(s, fail, 100));
  CHECK(s.health() == "starting");
  CHECK(s.health_failures() == 1);
  CHECK(t.observe(s, fail, 200));
  CHECK(s.health() == "unhealthy");
}

TEST_CASE("failures in the start period do not count, but a pass in it makes the task healthy and later failures count") {
  auto s = started_at(10000);
  health_tracker t{with(1, 5000ms)};
  for (int64_t at = 10100; at < 15000; at += 1000)
    CHECK_FALSE(t.observe(s, fail, at));
  CHECK(s.health() == "starting");
  CHECK(s.health_failures() == 0);
  CHECK(s.health_output() == fail.output); // said, though not counted
  CHECK(t.observe(s, fail, 15000)); // the period is over
  CHECK(s.health() == "unhealthy");

  auto early = started_at(10000);
  CHECK(t.observe(early, pass, 11000));
  CHECK(early.health() == "healthy");
  CHECK(t.observe(early, fail, 12000)); // started: failures count, even within the period
  CHECK(early.health() == "unhealthy");
}

TEST_CASE("a restart starts the health over at starting, and a container that does not run has none") {
  auto s = started_at(0);
  health_tracker t{with(1)};
  CHECK(t.observe(s, fail, 100));
  health_tracker::restart(s);
  CHECK(s.health() == "starting");
  CHECK(s.health_failures() == 0);
  CHECK(s.health_output().empty());
  CHECK(s.healthy_since_ms() == 0);
  CHECK(t.observe(s, pass, 200));
  health_tracker::clear(s);
  CHECK(s.health().empty());
  CHECK(s.healthy_since_ms() == 0);
  CHECK(s.health_failures() == 0);
}

TEST_CASE("an HTTP status line gives its code, anything else nothing") {
  CHECK(parse_status_line("HTTP/1.0 200 OK") == 200);
  CHECK(parse_status_line("HTTP/1.1 503 Service Unavailable") == 503);
  CHECK(parse_status_line("HTTP/1.1 204") == 204);
  CHECK_FALSE(parse_status_line("HTTP/1.1 20 OK"));
  CHECK_FALSE(parse_status_line("HTTP/1.1 2000 OK"));
  CHECK_FALSE(parse_status_line("SSH-2.0-OpenSSH_9.2"));
  CHECK_FALSE(parse_status_line(""));
  CHECK_FALSE(parse_status_line("HTTP/1.1"));
}

TEST_CASE("a tcp probe passes on a listening port and fails on a closed one") {
  loopback_socket listening{true};
  auto ok = probe_tcp(listening.port(), 1s);
  CHECK(ok.passed);
  CHECK(ok.output == "connected to 127.0.0.1:" + std::to_string(listening.port()));
  loopback_socket closed{false};
  auto refused = probe_tcp(closed.port(), 1s);
  CHECK_FALSE(refused.passed);
  CHECK(contains(refused.output, "Connection refused"));
  CHECK_FALSE(probe_tcp(0, 1s).passed);
}

TEST_CASE("an http probe passes on 200 and 3xx, fails on 500, and sends an HTTP/1.0 GET of its path") {
  tiny_server ok{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  auto passed = probe_http(ok.port(), "/ready?x=1", 1s);
  CHECK(passed.passed);
  CHECK(contains(passed.output, "HTTP/1.0 200 OK"));
  auto request = ok.last_request();
  CHECK(request.rfind("GET /ready?x=1 HTTP/1.0\r\n", 0) == 0);
  CHECK(contains(request, "\r\nHost: 127.0.0.1:" + std::to_string(ok.port()) + "\r\n"));

  tiny_server moved{"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\n"};
  CHECK(probe_http(moved.port(), "/", 1s).passed);

  tiny_server broken{"HTTP/1.0 500 Internal Server Error\r\n\r\n"};
  auto failed = probe_http(broken.port(), "/", 1s);
  CHECK_FALSE(failed.passed);
  CHECK(contains(failed.output, "500 Internal Server Error"));

  tiny_server chatter{"hello, not http\r\n"};
  auto odd = probe_http(chatter.port(), "/", 1s);
  CHECK_FALSE(odd.passed);
  CHECK(contains(odd.output, "not an HTTP status line"));
}

TEST_CASE("an http probe fails on a closed port, on a server that never answers, and on a path it cannot send") {
  loopback_socket closed{false};
  auto refused = probe_http(closed.port(), "/", 1s);
  CHECK_FALSE(refused.passed);
  CHECK(contains(refused.output, "Connection refused"));

  loopback_socket silent{true}; // the kernel accepts; nobody reads or answers
  auto begin = std::chrono::steady_clock::now();
  auto slow = probe_http(silent.port(), "/", 300ms);
  auto took = std::chrono::steady_clock::now() - begin;
  CHECK_FALSE(slow.passed);
  CHECK(contains(slow.output, "no answer within 300 ms"));
  CHECK(took >= 300ms);
  CHECK(took < 3s);

  tiny_server ok{"HTTP/1.0 200 OK\r\n\r\n"};
  CHECK_FALSE(probe_http(ok.port(), "/a b", 1s).passed);
  CHECK_FALSE(probe_http(ok.port(), "/a\r\nX-Evil: 1", 1s).passed);
  CHECK_FALSE(probe_http(ok.port(), "relative", 1s).passed);
}

TEST_CASE("http and tcp probes use the host port of the port the check names") {
  runc::process_driver driver{runc::process_driver_config{}}; // not used by these probes
  tiny_server ok{"HTTP/1.0 200 OK\r\n\r\n"};
  v1::HealthCheck check;
  check.set_http("/");
  check.set_port("web");
  health_settings s;
  CHECK(run_probe(check, s, {{"web", ok.port()}}, driver, "t-x").passed);
  auto unknown = run_probe(check, s, {{"admin", ok.port()}}, driver, "t-x");
  CHECK_FALSE(unknown.passed);
  CHECK(contains(unknown.output, "'web' names no port of the task"));
  check.clear_http();
  check.set_tcp(true);
  CHECK(run_probe(check, s, {{"web", ok.port()}}, driver, "t-x").passed);
}
