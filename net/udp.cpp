#include "net/udp.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <mutex>

#include <asio.hpp>

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "net/io_thread.hpp"

namespace troupe::net {

namespace {

using asio::ip::udp;
using steady = std::chrono::steady_clock;

// Token buckets per source, in a table bounded by evicting the source heard
// from least recently. An evicted source comes back with a full bucket, so
// eviction never punishes a well-behaved source. Endpoint thread only.
class source_limiter {
public:
  source_limiter(double rate, double burst, std::size_t max_sources)
      : rate_(rate), burst_(burst), max_(std::max<std::size_t>(max_sources, 1)) {}

  bool admit(const udp::endpoint& src, steady::time_point now) {
    auto it = table_.find(src);
    if (it == table_.end()) {
      if (table_.size() >= max_) {
        table_.erase(recent_.back());
        recent_.pop_back();
      }
      recent_.push_front(src);
      it = table_.emplace(src, bucket{burst_, now, recent_.begin()}).first;
    } else {
      auto& b = it->second;
      recent_.splice(recent_.begin(), recent_, b.pos);
      double elapsed = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
      b.last = now;
    }
    auto& b = it->second;
    if (b.tokens < 1)
      return false;
    b.tokens -= 1;
    return true;
  }

private:
  struct bucket {
    double tokens;
    steady::time_point last;
    std::list<udp::endpoint>::iterator pos;
  };
  double rate_, burst_;
  std::size_t max_;
  std::map<udp::endpoint, bucket> table_;
  std::list<udp::endpoint> recent_;  // most recent first
};

} // namespace

struct udp_endpoint::impl {
  impl(udp_options o, datagram_fn f, unreachable_fn u)
      : opt(std::move(o)), on_datagram(std::move(f)), on_unreachable(std::move(u)),
        codec(purpose::gossip, opt.keys, opt.replay),
        limiter(opt.source_rate, opt.source_burst, opt.max_sources),
        buf(opt.max_datagram + 1, '\0') {}

  udp_options opt;
  datagram_fn on_datagram;
  unreachable_fn on_unreachable;
  packet_codec codec;
  io_thread loop;  // before the socket: destroyed after it
  asio::io_context& io = loop.io;
  std::atomic<bool>& stopped = loop.stopped;
  udp::socket sock{io};
  std::atomic<std::size_t> pending{0};
  address local;

  mutable std::mutex counters_mu;
  udp_counters c;

  // Endpoint thread only.
  source_limiter limiter;
  std::string buf;  // one byte over the bound, so that a longer datagram shows
  udp::endpoint from;

  void bump(uint64_t udp_counters::*field) {
    std::lock_guard lock{counters_mu};
    ++(c.*field);
  }

  void receive() {
    sock.async_receive_from(asio::buffer(buf), from, [this](const asio::error_code& ec, std::size_t n) {
      if (ec == asio::error::operation_aborted || stopped)
        return;
      if (!ec)
        handle(n);
      else if (ec == asio::error::connection_refused)
        read_errors();
      receive();
    });
  }

  /// IP_RECVERR: an ICMP error for a datagram we sent is queued on the
  /// socket and the next send or receive on it fails once with
  /// ECONNREFUSED. Either path reads the whole queue here; msg_name holds
  /// the destination of the datagram that bounced.
  void read_errors() {
    for (int i = 0; i < 256; ++i) {
      sockaddr_storage name{};
      char data[64];
      alignas(cmsghdr) char control[512];
      iovec iov{data, sizeof data};
      msghdr m{};
      m.msg_name = &name;
      m.msg_namelen = sizeof name;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      if (::recvmsg(sock.native_handle(), &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
        return;
      for (cmsghdr* h = CMSG_FIRSTHDR(&m); h != nullptr; h = CMSG_NXTHDR(&m, h)) {
        bool v4 = h->cmsg_level == SOL_IP && h->cmsg_type == IP_RECVERR;
        bool v6 = h->cmsg_level == SOL_IPV6 && h->cmsg_type == IPV6_RECVERR;
        if (!v4 && !v6)
          continue;
        sock_extended_err ee;
        std::memcpy(&ee, CMSG_DATA(h), sizeof ee);
        bool port_closed = (ee.ee_origin == SO_EE_ORIGIN_ICMP && ee.ee_type == 3 && ee.ee_code == 3) ||
                           (ee.ee_origin == SO_EE_ORIGIN_ICMP6 && ee.ee_type == 1 && ee.ee_code == 4);
        if (port_closed)
          report_unreachable(name);
      }
    }
  }

  void report_unreachable(const sockaddr_storage& name) {
    udp::endpoint to;
    if (name.ss_family == AF_INET)
      std::memcpy(to.data(), &name, sizeof(sockaddr_in));
    else if (name.ss_family == AF_INET6)
      std::memcpy(to.data(), &name, sizeof(sockaddr_in6));
    else
      return;
    bump(&udp_counters::unreachable);
    if (!on_unreachable)
      return;
    try {
      on_unreachable(address{to.address().to_string(), to.port()});
    } catch (...) {
      bump(&udp_counters::callback_errors);
    }
  }

  /// On the endpoint thread. A send that fails with ECONNREFUSED failed for
  /// an earlier datagram's ICMP error, not its own: read the errors and
  /// send it again, once.
  void send_now(std::shared_ptr<std::string> data, udp::endpoint dest, bool retried) {
    auto sent = [this, data, dest, retried](const asio::error_code& err, std::size_t) {
      if (err == asio::error::connection_refused && !retried && !stopped) {
        read_errors();
        return send_now(data, dest, true);
      }
      pending.fetch_sub(1);
      bump(err ? &udp_counters::send_errors : &udp_counters::sent);
    };
    sock.async_send_to(asio::buffer(*data), dest, std::move(sent));
  }

  void handle(std::size_t n) {
    // Cheapest checks first: a flood costs one table lookup per datagram.
    if (!limiter.admit(from, steady::now()))
      return bump(&udp_counters::dropped_flood);
    if (n > opt.max_datagram)
      return bump(&udp_counters::dropped_too_large);
    auto o = codec.open(std::string_view{buf.data(), n});
    switch (o.why) {
      case verdict::malformed: return bump(&udp_counters::dropped_malformed);
      case verdict::unauthenticated: return bump(&udp_counters::dropped_auth);
      case verdict::replayed: return bump(&udp_counters::dropped_replay);
      case verdict::ok: break;
    }
    bump(&udp_counters::received);
    try {
      on_datagram(address{from.address().to_string(), from.port()}, std::move(o.payload));
    } catch (...) {
      bump(&udp_counters::callback_errors);
    }
  }
};

udp_endpoint::udp_endpoint(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

udp_endpoint::~udp_endpoint() { stop(); }

result<std::unique_ptr<udp_endpoint>> udp_endpoint::start(udp_options opt, datagram_fn on_datagram,
                                                          unreachable_fn on_unreachable) {
  auto where = "udp " + opt.ip + ":" + std::to_string(opt.port);
  if (opt.max_datagram <= (opt.keys ? sealed_overhead : clear_overhead) || opt.max_datagram > 65507)
    return error{where + ": max_datagram " + std::to_string(opt.max_datagram) +
                 " leaves no room for a payload or exceeds 65507"};
  auto p = std::make_unique<impl>(std::move(opt), std::move(on_datagram), std::move(on_unreachable));
  asio::error_code ec;
  auto ip = asio::ip::make_address(p->opt.ip, ec);
  if (ec)
    return error{where + ": not an IP address"};
  udp::endpoint ep{ip, p->opt.port};
  p->sock.open(ep.protocol(), ec);
  if (!ec)
    p->sock.bind(ep, ec);
  if (ec)
    return error{where + ": " + ec.message()};
  asio::error_code ignored;
  p->sock.set_option(udp::socket::receive_buffer_size{p->opt.receive_buffer}, ignored);
  int on = 1;
  bool v4 = ep.protocol() == udp::v4();
  int level = v4 ? SOL_IP : SOL_IPV6, option = v4 ? IP_RECVERR : IPV6_RECVERR;
  if (::setsockopt(p->sock.native_handle(), level, option, &on, sizeof on) != 0)
    return error{where + ": setsockopt(" + (v4 ? "IP_RECVERR" : "IPV6_RECVERR") + "): " + std::strerror(errno)};
  auto bound = p->sock.local_endpoint(ec);
  if (ec)
    return error{where + ": " + ec.message()};
  p->local = address{bound.address().to_string(), bound.port()};
  p->receive();
  p->loop.start("troupe-udp");
  return std::unique_ptr<udp_endpoint>{new udp_endpoint{std::move(p)}};
}

address udp_endpoint::local() const { return impl_->local; }

std::size_t udp_endpoint::max_payload() const {
  return impl_->opt.max_datagram - impl_->codec.overhead();
}

status udp_endpoint::send(const address& to, std::string_view payload) {
  auto& p = *impl_;
  if (p.stopped)
    return error{"udp " + p.local.to_string() + " is stopped"};
  if (payload.size() > max_payload()) {
    p.bump(&udp_counters::refused_too_large);
    return error{"datagram to " + to.to_string() + ": payload of " + std::to_string(payload.size()) +
                 " bytes exceeds " + std::to_string(max_payload())};
  }
  asio::error_code ec;
  auto ip = asio::ip::make_address(to.ip, ec);
  if (ec)
    return error{"datagram to " + to.to_string() + ": not an IP address"};
  if (p.pending.fetch_add(1) >= p.opt.max_pending_sends) {
    p.pending.fetch_sub(1);
    p.bump(&udp_counters::refused_backlog);
    return error{"datagram to " + to.to_string() + ": " + std::to_string(p.opt.max_pending_sends) +
                 " datagrams already wait to be sent"};
  }
  auto data = std::make_shared<std::string>(p.codec.seal(payload));
  // The socket belongs to the endpoint thread: post, never touch it here.
  asio::post(p.io, [&p, data, dest = udp::endpoint{ip, to.port}] { p.send_now(data, dest, false); });
  return {};
}

udp_counters udp_endpoint::counters() const {
  std::lock_guard lock{impl_->counters_mu};
  return impl_->c;
}

void udp_endpoint::stop() {
  auto& p = *impl_;
  p.loop.stop([&p] {
    asio::error_code ignored;
    p.sock.close(ignored);
  });
}

} // namespace troupe::net
