#include "actors/node/health.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "runtime/text.hpp"

namespace troupe::node {

using namespace std::chrono;

namespace {

using clock = steady_clock;

/// Bytes of an HTTP answer read at most while looking for the status line.
constexpr std::size_t http_read_limit = 4096;

/// Probe output is stored in a protobuf string (valid UTF-8 only) and
/// logged: printable ASCII, cut to about what an exec returns.
std::string printable(std::string_view text) {
  return escape(runc::trim(std::string{text}, runc::exec_output_limit), runc::exec_output_limit + 3);
}

std::string address(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

class socket_fd {
public:
  explicit socket_fd(int fd) : fd_(fd) {}
  socket_fd(socket_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  socket_fd& operator=(socket_fd&&) = delete;
  socket_fd(const socket_fd&) = delete;
  socket_fd& operator=(const socket_fd&) = delete;
  ~socket_fd() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int get() const { return fd_; }

private:
  int fd_;
};

/// Waits until `fd` is ready for `events` or `deadline` passes: true when ready.
bool wait_ready(int fd, short events, clock::time_point deadline) {
  for (;;) {
    auto left = ceil<milliseconds>(deadline - clock::now()).count();
    pollfd p{fd, events, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left, 0, INT_MAX)));
    if (ready > 0)
      return true;
    if (ready == 0 || errno != EINTR)
      return false;
  }
}

std::string too_slow(const std::string& what, milliseconds timeout) {
  return what + ": no answer within " + std::to_string(timeout.count()) + " ms";
}

/// A connected non-blocking socket to 127.0.0.1:port, or why there is none.
result<socket_fd> connect_loopback(int port, clock::time_point deadline, milliseconds timeout) {
  auto what = "connect to " + address(port);
  if (port <= 0 || port > 65535)
    return error{what + ": not a TCP port"};
  socket_fd s{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (s.get() < 0)
    return error{what + ": " + std::strerror(errno)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return s;
  if (errno != EINPROGRESS)
    return error{what + ": " + std::strerror(errno)};
  if (!wait_ready(s.get(), POLLOUT, deadline))
    return error{too_slow(what, timeout)};
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0)
    return error{what + ": " + std::strerror(err)};
  return s;
}

/// The request path goes into the request line as it is: nothing that
/// would end or split it.
bool plain_path(const std::string& path) {
  return !path.empty() && path.front() == '/' &&
         std::none_of(path.begin(), path.end(), [](char c) { return std::iscntrl(static_cast<unsigned char>(c)) || c == ' '; });
}

} // namespace

health_settings health_settings::of(const v1::HealthCheck& check) {
  health_settings s;
  if (check.interval_ms() > 0)
    s.interval = milliseconds{check.interval_ms()};
  if (check.timeout_ms() > 0)
    s.timeout = milliseconds{check.timeout_ms()};
  s.start_period = milliseconds{check.start_period_ms()};
  if (check.retries() > 0)
    s.retries = check.retries();
  return s;
}

milliseconds health_settings::first_probe() const {
  return std::min<milliseconds>(interval, seconds{1});
}

bool health_wanted(const v1::HealthCheck& check) {
  return check.exec_size() > 0 || !check.http().empty() || check.tcp();
}

void health_tracker::restart(v1::TaskStatus& status) {
  status.set_health("starting");
  status.set_health_output("");
  status.set_healthy_since_ms(0);
  status.set_health_failures(0);
}

void health_tracker::clear(v1::TaskStatus& status) {
  status.clear_health();
  status.clear_health_output();
  status.clear_healthy_since_ms();
  status.clear_health_failures();
}

bool health_tracker::observe(v1::TaskStatus& status, const probe_outcome& outcome, std::int64_t now_ms) const {
  auto before = status.health();
  if (outcome.passed) {
    status.set_health_failures(0);
    if (before != "healthy") {
      status.set_health("healthy");
      status.set_healthy_since_ms(now_ms);
    }
    return status.health() != before;
  }
  status.set_health_output(outcome.output);
  bool starting = before == "starting" || before.empty();
  if (starting && now_ms < status.started_at_ms() + settings_.start_period.count())
    return false; // still allowed to come up: not counted
  status.set_health_failures(status.health_failures() + 1);
  if (status.health_failures() >= settings_.retries && before != "unhealthy") {
    status.set_health("unhealthy");
    status.set_healthy_since_ms(0);
  }
  return status.health() != before;
}

std::optional<int> parse_status_line(std::string_view line) {
  // HTTP/<digit>.<digit> <3 digits>[ <reason>]
  auto digit = [&](std::size_t i) { return i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); };
  if (line.substr(0, 5) != "HTTP/" || !digit(5) || line.size() < 12 || line[6] != '.' || !digit(7) ||
      line[8] != ' ' || !digit(9) || !digit(10) || !digit(11) || (line.size() > 12 && line[12] != ' '))
    return std::nullopt;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

probe_outcome probe_tcp(int port, milliseconds timeout) {
  auto conn = connect_loopback(port, clock::now() + timeout, timeout);
  if (!conn)
    return {false, printable(conn.error().message())};
  return {true, "connected to " + address(port)};
}

probe_outcome probe_http(int port, const std::string& path, milliseconds timeout) {
  auto what = "GET " + escape(path) + " on " + address(port);
  if (!plain_path(path))
    return {false, what + ": the path must start with '/' and hold no spaces or control characters"};
  auto deadline = clock::now() + timeout;
  auto conn = connect_loopback(port, deadline, timeout);
  if (!conn)
    return {false, printable(conn.error().message())};
  int fd = conn->get();
  auto request = "GET " + path + " HTTP/1.0\r\nHost: " + address(port) +
                 "\r\nUser-Agent: troupe-health\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return {false, printable(what + ": sending the request: " + std::strerror(errno))};
    } else if (!wait_ready(fd, POLLOUT, deadline)) {
      return {false, too_slow(what, timeout)};
    }
  }
  std::string answer;
  while (answer.find('\n') == std::string::npos && answer.size() < http_read_limit) {
    char buf[1024];
    auto n = ::recv(fd, buf, std::min(sizeof buf, http_read_limit - answer.size()), 0);
    if (n > 0) {
      answer.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break; // closed: what came is all there is
    } else if (errno != EAGAIN && errno != EINTR) {
      return {false, printable(what + ": reading the answer: " + std::strerror(errno))};
    } else if (!wait_ready(fd, POLLIN, deadline)) {
      return {false, too_slow(what, timeout)};
    }
  }
  auto line = answer.substr(0, answer.find('\n'));
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  auto code = parse_status_line(line);
  if (!code)
    return {false, printable(what + ": not an HTTP status line: " + quote(line))};
  return {*code >= 200 && *code < 400, printable(what + ": " + line)};
}

probe_outcome probe_exec(const runc::container_driver& driver, const std::string& container_id,
                         const std::vector<std::string>& argv, milliseconds timeout) {
  auto ran = driver.exec(container_id, argv, timeout);
  if (!ran)
    return {false, printable(ran.error().message())};
  return {ran->success(), printable(ran->describe())};
}

probe_outcome run_probe(const v1::HealthCheck& check, const health_settings& settings,
                        const std::map<std::string, int>& ports, const runc::container_driver& driver,
                        const std::string& container_id) {
  if (check.exec_size() > 0)
    return probe_exec(driver, container_id, {check.exec().begin(), check.exec().end()}, settings.timeout);
  auto port = ports.find(check.port());
  if (port == ports.end())
    return {false, "health.port " + quote(check.port()) + " names no port of the task"};
  if (!check.http().empty())
    return probe_http(port->second, check.http(), settings.timeout);
  return probe_tcp(port->second, settings.timeout);
}

} // namespace troupe::node
