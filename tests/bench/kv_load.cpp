// kv_load: a small HTTP/1.1 load client for replicated key/value writes, the
// same for Troupe and for etcd so that both sides pay the same client cost
// (tests/bench/raft_bench.py drives it; docs/benchmarks.md shows results).
//
//   kv_load --system troupe|etcd --endpoints HOST:PORT,... [--clients N]
//           [--seconds S | --ops N] [--value-size B] [--warmup-ops N]
//           [--keys K] [--timeout-ms T] [--retry-ms R] [--quickack] [--json]
//   kv_load --failover --system ... --endpoints ... [--seconds S]
//
// One thread per client, each with one kept-alive connection (TCP_NODELAY)
// and one write in flight. Troupe: `PUT /v1/kv/{key}` with `{"value":"..."}`;
// etcd: its v3 JSON gateway, `POST /v3/kv/put` with base64 key and value.
// Client i starts on endpoint i mod n; a non-2xx answer, a connection error
// or a timeout counts as an error and the client moves to the next endpoint
// (a follower forwards writes to the leader in both systems). After a whole
// round of endpoints failed in a row it waits --retry-ms before the next try.
// A server that answers `Connection: close` is reconnected to (counted).
// --quickack is a diagnostic: the client re-arms TCP_QUICKACK before every
// read, so it acknowledges each segment at once instead of delaying the ACK
// (40 ms at least on Linux); a server that sends a response in two small
// writes with Nagle's algorithm on then no longer waits for that ACK.
//
// Load mode times the writes after every client has done --warmup-ops and
// prints count, errors, throughput and latency (median, p90, p99, max).
// --failover runs one sequential writer and prints one line per write as it
// ends, `ok|err START_NS END_NS ENDPOINT [why]`, on the monotonic clock
// (Python's time.monotonic_ns), so that an orchestrator can tell when the
// first write after a kill -9 succeeded. It runs until --seconds or SIGTERM.
#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t mono_ns(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct endpoint {
  std::string text;  // host:port, also the Host header
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct options {
  std::string system;
  std::vector<endpoint> endpoints;
  int clients = 1;
  double seconds = 0;
  std::uint64_t ops = 0;
  std::size_t value_size = 256;
  std::uint64_t warmup_ops = 0;
  std::uint64_t keys = 1000;
  int timeout_ms = 5000;
  int retry_ms = 5;
  bool json = false;
  bool failover = false;
  bool quickack = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "kv_load: %s\nusage: kv_load --system troupe|etcd --endpoints HOST:PORT,... [--clients N]\n"
               "       [--seconds S | --ops N] [--value-size B] [--warmup-ops N] [--keys K]\n"
               "       [--timeout-ms T] [--retry-ms R] [--quickack] [--json] [--failover]\n",
               why.c_str());
  std::exit(2);
}

bool resolve(const std::string& text, endpoint& out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(text.substr(0, colon).c_str(), text.substr(colon + 1).c_str(), &hints, &res) != 0 || !res)
    return false;
  std::memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
  out.len = res->ai_addrlen;
  out.text = text;
  freeaddrinfo(res);
  return true;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--system")
      o.system = value();
    else if (a == "--endpoints") {
      std::string list = value();
      for (std::size_t start = 0; start <= list.size();) {
        auto comma = std::min(list.find(',', start), list.size());
        endpoint e;
        if (!resolve(list.substr(start, comma - start), e))
          usage("cannot resolve endpoint '" + list.substr(start, comma - start) + "'");
        o.endpoints.push_back(e);
        start = comma + 1;
      }
    } else if (a == "--clients")
      o.clients = std::atoi(value().c_str());
    else if (a == "--seconds")
      o.seconds = std::atof(value().c_str());
    else if (a == "--ops")
      o.ops = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--value-size")
      o.value_size = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--warmup-ops")
      o.warmup_ops = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--keys")
      o.keys = std::max<std::uint64_t>(1, std::strtoull(value().c_str(), nullptr, 10));
    else if (a == "--timeout-ms")
      o.timeout_ms = std::atoi(value().c_str());
    else if (a == "--retry-ms")
      o.retry_ms = std::atoi(value().c_str());
    else if (a == "--json")
      o.json = true;
    else if (a == "--failover")
      o.failover = true;
    else if (a == "--quickack")
      o.quickack = true;
    else
      usage("unknown option " + a);
  }
  if (o.system != "troupe" && o.system != "etcd")
    usage("--system must be troupe or etcd");
  if (o.endpoints.empty())
    usage("--endpoints is required");
  if (o.clients < 1 || o.timeout_ms < 1 || o.retry_ms < 0)
    usage("--clients and --timeout-ms must be at least 1, --retry-ms at least 0");
  if (o.failover)
    o.clients = 1;
  else if ((o.seconds > 0) == (o.ops > 0))
    usage("give one of --seconds and --ops");
  return o;
}

std::string base64(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += {abc[v >> 18], abc[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], '='};
  }
  return out;
}

/// The whole HTTP request for one write of `key`.
std::string write_request(const options& o, const endpoint& ep, const std::string& key, const std::string& value) {
  std::string body, head;
  if (o.system == "troupe") {
    body = "{\"value\":\"" + value + "\"}";
    head = "PUT /v1/kv/" + key + " HTTP/1.1\r\n";
  } else {
    body = "{\"key\":\"" + base64(key) + "\",\"value\":\"" + base64(value) + "\"}";
    head = "POST /v3/kv/put HTTP/1.1\r\n";
  }
  if (o.system == "troupe" && std::getenv("TROUPE_TOKEN"))  // the agent's API needs a token
    head += std::string{"Authorization: Bearer "} + std::getenv("TROUPE_TOKEN") + "\r\n";
  return head + "Host: " + ep.text + "\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool iequals_prefix(const char* line, std::size_t len, const char* name) {
  std::size_t n = std::strlen(name);
  return len >= n && strncasecmp(line, name, n) == 0;
}

/// One kept-alive connection. exchange() sends a request and reads one
/// response; on any failure the connection is closed and `why` says what.
class connection {
public:
  explicit connection(bool quickack) : quickack_(quickack) {}
  ~connection() { close(); }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
    buf_.clear();
  }

  bool is_open() const { return fd_ >= 0; }

  bool open(const endpoint& ep, int timeout_ms, std::string& why) {
    close();
    fd_ = ::socket(ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      return fail("socket", why);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect() too
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0)
      return fail("connect", why);
    return true;
  }

  /// The response's status code, or 0 with `why` set. `body` gets the
  /// start of the body (for error messages).
  int exchange(const std::string& request, std::string& why, std::string& body) {
    body.clear();
    for (std::size_t sent = 0; sent < request.size();) {
      auto n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0)
        return fail("send", why), 0;
      sent += std::size_t(n);
    }
    std::size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(why))
        return 0;
    int status = 0;
    if (buf_.compare(0, 5, "HTTP/") != 0 || std::sscanf(buf_.c_str(), "HTTP/%*d.%*d %d", &status) != 1) {
      why = "malformed response";
      close();
      return 0;
    }
    bool chunked = false, keep = buf_.compare(0, 8, "HTTP/1.0") != 0;
    long long length = -1;
    for (std::size_t pos = buf_.find("\r\n") + 2; pos < head_end;) {
      auto eol = buf_.find("\r\n", pos);
      const char* line = buf_.c_str() + pos;
      std::size_t len = eol - pos;
      if (iequals_prefix(line, len, "content-length:"))
        length = std::atoll(line + 15);
      else if (iequals_prefix(line, len, "transfer-encoding:") && strcasestr(std::string(line, len).c_str(), "chunked"))
        chunked = true;
      else if (iequals_prefix(line, len, "connection:"))
        keep = strcasestr(std::string(line, len).c_str(), "close") == nullptr;
      pos = eol + 2;
    }
    buf_.erase(0, head_end + 4);
    if (status / 100 == 1 || status == 204 || status == 304)  // never a body
      length = 0, chunked = false;
    bool ok = chunked ? read_chunked(why, body) : length >= 0 ? read_exact(std::size_t(length), why, body)
                                                                : read_to_close(body);
    if (!ok)
      return 0;
    if (!keep || (length < 0 && !chunked))
      close();
    return status;
  }

private:
  bool fail(const char* what, std::string& why) {
    why = std::string(what) + ": " + (errno == EAGAIN || errno == EWOULDBLOCK ? "timeout" : std::strerror(errno));
    close();
    return false;
  }

  bool fill(std::string& why) {
    char chunk[16384];
    if (quickack_) {
      int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, std::size_t(n));
      return true;
    }
    if (n == 0) {
      why = "recv: connection closed";
      close();
      return false;
    }
    return fail("recv", why);
  }

  bool read_exact(std::size_t n, std::string& why, std::string& body) {
    while (buf_.size() < n)
      if (!fill(why))
        return false;
    body.assign(buf_, 0, std::min<std::size_t>(n, 200));
    buf_.erase(0, n);
    return true;
  }

  bool read_chunked(std::string& why, std::string& body) {
    for (;;) {
      std::size_t eol;
      while ((eol = buf_.find("\r\n")) == std::string::npos)
        if (!fill(why))
          return false;
      std::size_t size = std::strtoull(buf_.c_str(), nullptr, 16);
      buf_.erase(0, eol + 2);
      if (size == 0) {  // trailers end with an empty line
        while ((eol = buf_.find("\r\n")) == std::string::npos)
          if (!fill(why))
            return false;
        while (eol != 0) {
          buf_.erase(0, eol + 2);
          while ((eol = buf_.find("\r\n")) == std::string::npos)
            if (!fill(why))
              return false;
        }
        buf_.erase(0, 2);
        return true;
      }
      while (buf_.size() < size + 2)
        if (!fill(why))
          return false;
      if (body.size() < 200)
        body.append(buf_, 0, std::min<std::size_t>(size, 200 - body.size()));
      buf_.erase(0, size + 2);
    }
  }

  bool read_to_close(std::string& body) {
    std::string ignored;
    while (fd_ >= 0 && fill(ignored)) {
    }
    body.assign(buf_, 0, std::min<std::size_t>(buf_.size(), 200));
    buf_.clear();
    return true;
  }

  bool quickack_;
  int fd_ = -1;
  std::string buf_;
};

/// What one client thread did.
struct client_result {
  std::vector<double> latency_ms;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t reconnects = 0;
  clock_type::time_point end;
};

/// One client: its connection, its keys and where it writes.
class client {
public:
  client(const options& o, int index)
      : o_(o), index_(index), ep_(std::size_t(index) % o.endpoints.size()), conn_(o.quickack) {
    value_.resize(o.value_size);
    for (std::size_t i = 0; i < value_.size(); ++i)
      value_[i] = char('a' + (i + std::size_t(index)) % 26);
  }

  /// One write; true if it succeeded. `ep` is the endpoint it went to.
  bool write(client_result& r, std::size_t& ep, std::string& why) {
    ep = ep_;
    const endpoint& e = o_.endpoints[ep_];
    std::string key = "kvload-" + std::to_string(index_) + "-" + std::to_string(seq_++ % o_.keys);
    std::string request = write_request(o_, e, key, value_), body;
    int status = 0;
    // A kept-alive connection the server closed while idle fails at once:
    // that is no answer, so the write goes once more on a new connection.
    for (int attempt = 0; attempt < 2 && status == 0; ++attempt) {
      bool reused = conn_.is_open();
      if (!reused) {
        if (opened_++ > 0 && failures_in_row_ == 0)  // the server closed it after an answer
          ++r.reconnects;
        if (!conn_.open(e, o_.timeout_ms, why))
          return failed(why);
      }
      status = conn_.exchange(request, why, body);
      if (status == 0 && !(reused && (why == "recv: connection closed" || why.rfind("send:", 0) == 0)))
        break;
    }
    bool ok = status >= 200 && status < 300;
    if (status != 0 && !ok)
      why = "status " + std::to_string(status) + " " + first_line(body);
    return ok ? (failures_in_row_ = 0, true) : failed(why);
  }

private:
  static std::string first_line(const std::string& body) {
    auto s = body.substr(0, std::min(body.find('\n'), std::size_t(120)));
    std::replace(s.begin(), s.end(), '\t', ' ');
    return s;
  }

  /// Moves to the next endpoint; after a whole round of failures, pauses.
  bool failed(const std::string&) {
    conn_.close();
    ep_ = (ep_ + 1) % o_.endpoints.size();
    if (++failures_in_row_ % o_.endpoints.size() == 0 && o_.retry_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(o_.retry_ms));
    return false;
  }

  const options& o_;
  int index_;
  std::size_t ep_;
  std::string value_;
  std::uint64_t seq_ = 0, opened_ = 0, failures_in_row_ = 0;
  connection conn_;
};

/// Errors are grouped by their text with every run of digits as one '#',
/// so that "term 7" or "index 123" do not make one group per write.
std::string error_group(const std::string& why) {
  std::string out;
  for (char ch : why.substr(0, 100)) {
    bool digit = ch >= '0' && ch <= '9';
    if (!digit)
      out += ch;
    else if (out.empty() || out.back() != '#')
      out += '#';
  }
  return out;
}

double nearest_rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty())
    return 0;
  auto k = std::size_t(std::ceil(q * double(sorted.size()) - 1e-9));
  return sorted[std::min(std::max<std::size_t>(k, 1), sorted.size()) - 1];
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if ((unsigned char)c < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out;
}

int run_load(const options& o) {
  std::vector<client_result> results(std::size_t(o.clients));
  std::mutex m;
  std::condition_variable cv;
  int warmed = 0;
  bool go = false;
  clock_type::time_point start, deadline;
  std::atomic<std::uint64_t> claimed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i)
    threads.emplace_back([&, i] {
      client c(o, i);
      client_result& r = results[std::size_t(i)];
      client_result warm;
      std::size_t ep;
      std::string why;
      for (std::uint64_t w = 0; w < o.warmup_ops; ++w)
        c.write(warm, ep, why);
      {
        std::unique_lock<std::mutex> lock(m);
        ++warmed;
        cv.notify_all();
        cv.wait(lock, [&] { return go; });
      }
      for (;;) {
        if (o.ops > 0 ? claimed.fetch_add(1) >= o.ops : clock_type::now() >= deadline)
          break;
        auto t0 = clock_type::now();
        bool ok = c.write(r, ep, why);
        auto t1 = clock_type::now();
        if (ok)
          r.latency_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        else
          ++r.errors[error_group(why)];
      }
      r.end = clock_type::now();
    });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return warmed == o.clients; });
    start = clock_type::now();
    deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.seconds));
    go = true;
    cv.notify_all();
  }
  for (auto& t : threads)
    t.join();

  std::vector<double> all;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t error_count = 0, reconnects = 0;
  auto end = start;
  for (auto& r : results) {
    all.insert(all.end(), r.latency_ms.begin(), r.latency_ms.end());
    for (auto& [why, n] : r.errors)
      errors[why] += n, error_count += n;
    reconnects += r.reconnects;
    end = std::max(end, r.end);
  }
  std::sort(all.begin(), all.end());
  double elapsed = std::chrono::duration<double>(end - start).count();
  double mean = 0;
  for (double v : all)
    mean += v / double(all.size());
  double throughput = elapsed > 0 ? double(all.size()) / elapsed : 0;
  double med = nearest_rank(all, 0.5), p90 = nearest_rank(all, 0.9), p99 = nearest_rank(all, 0.99);
  double max = all.empty() ? 0 : all.back();
  if (o.json) {
    std::printf("{\"system\":\"%s\",\"clients\":%d,\"endpoints\":%zu,\"value_size\":%zu,\"elapsed_s\":%.4f,"
                "\"ok\":%zu,\"errors\":%llu,\"reconnects\":%llu,\"throughput\":%.2f,\"latency_ms\":{"
                "\"median\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f,\"mean\":%.4f},\"error_kinds\":{",
                o.system.c_str(), o.clients, o.endpoints.size(), o.value_size, elapsed, all.size(),
                (unsigned long long)error_count, (unsigned long long)reconnects, throughput, med, p90, p99, max, mean);
    const char* sep = "";
    for (auto& [why, n] : errors)
      std::printf("%s\"%s\":%llu", sep, json_escape(why).c_str(), (unsigned long long)n), sep = ",";
    std::printf("}}\n");
  } else {
    std::printf("kv_load: %s, %d client%s over %zu endpoint%s, %.2f s, values of %zu B\n", o.system.c_str(),
                o.clients, o.clients == 1 ? "" : "s", o.endpoints.size(), o.endpoints.size() == 1 ? "" : "s",
                elapsed, o.value_size);
    std::printf("  writes ok %zu, errors %llu, reconnects %llu\n", all.size(), (unsigned long long)error_count,
                (unsigned long long)reconnects);
    for (auto& [why, n] : errors)
      std::printf("    %llu x %s\n", (unsigned long long)n, why.c_str());
    std::printf("  throughput %.1f writes/s\n", throughput);
    std::printf("  latency ms: median %.2f, p90 %.2f, p99 %.2f, max %.2f, mean %.2f\n", med, p90, p99, max, mean);
  }
  return all.empty() ? 1 : 0;
}

int run_failover(const options& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  client c(o, 0);
  client_result r;
  auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                           std::chrono::duration<double>(o.seconds > 0 ? o.seconds : 1e9));
  std::size_t ep;
  std::string why;
  while (clock_type::now() < deadline) {
    auto t0 = clock_type::now();
    bool ok = c.write(r, ep, why);
    auto t1 = clock_type::now();
    if (ok)
      std::printf("ok %lld %lld %zu\n", (long long)mono_ns(t0), (long long)mono_ns(t1), ep);
    else
      std::printf("err %lld %lld %zu %s\n", (long long)mono_ns(t0), (long long)mono_ns(t1), ep,
                  error_group(why).c_str());
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options o = parse(argc, argv);
  return o.failover ? run_failover(o) : run_load(o);
}
