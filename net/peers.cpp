#include "net/peers.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <vector>

#include <asio.hpp>

#include "net/io_thread.hpp"

#include "net/frame.hpp"

namespace troupe::net {

namespace {

using asio::ip::tcp;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One write gathers queued frames up to this many payload bytes (at least one).
constexpr std::size_t write_batch_bytes = 256 * 1024;
constexpr std::size_t read_chunk = 64 * 1024;

// The outbound side of one peer.
struct link {
  link(asio::io_context& io, address a, tcp::endpoint e, milliseconds b)
      : to(std::move(a)), ep(e), sock(io), timer(io), backoff(b), last_active(steady::now()) {}

  const address to;
  const tcp::endpoint ep;

  // Guarded by impl::mu. Only the links thread removes frames from the queue,
  // so it may read queued payloads outside the lock (deque elements do not
  // move when others are pushed).
  struct queued {
    std::string payload;
    steady::time_point expires;  // not written after this: its sender gave up
    std::size_t size() const { return payload.size(); }
  };
  std::deque<queued> queue;  // oldest first
  std::size_t bytes = 0;
  bool kicked = false;   // a pump is posted
  bool dropped = false;  // forgotten or stopped: counts no more

  // Links thread only.
  enum class state { idle, connecting, connected, backoff };
  state st = state::idle;
  tcp::socket sock;
  asio::steady_timer timer;  // connect timeout, then backoff
  // Bumped whenever the connection is dropped; handlers of an older
  // connection see a different number and do nothing.
  uint64_t gen = 0;
  bool writing = false;
  milliseconds backoff;
  steady::time_point last_active;
  char probe = 0;
};

// One connection a peer opened to us.
struct inbound {
  inbound(tcp::socket s, std::size_t max_wire)
      : sock(std::move(s)), reader(max_wire), buf(read_chunk) {}
  tcp::socket sock;
  frame_reader reader;
  std::vector<char> buf;
  address from;
  steady::time_point last_active = steady::now();
  bool closed = false;
};

} // namespace

struct peer_links::impl {
  impl(peer_options o, frame_fn f)
      : opt(std::move(o)), on_frame(std::move(f)), codec(purpose::frame, opt.keys, opt.replay),
        rng(std::random_device{}()) {}

  peer_options opt;
  frame_fn on_frame;
  packet_codec codec;
  io_thread loop;  // before every socket and timer: destroyed after them
  asio::io_context& io = loop.io;
  std::atomic<bool>& stopped = loop.stopped;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_timer{io};
  asio::steady_timer sweep_timer{io};
  address local;
  asio::ip::address bind_ip;

  std::mutex mu;  // links, their queues and the totals
  std::map<address, std::shared_ptr<link>> links;
  std::size_t total_frames = 0;
  std::size_t total_bytes = 0;

  // Links thread only.
  std::set<std::shared_ptr<inbound>> inbounds;
  std::minstd_rand rng;

  mutable std::mutex counters_mu;  // never held while taking mu
  peer_counters c;

  void bump(uint64_t peer_counters::*field, uint64_t n = 1) {
    std::lock_guard lock{counters_mu};
    c.*field += n;
  }

  bool has_frames(const std::shared_ptr<link>& l) {
    std::lock_guard lock{mu};
    return !l->dropped && !l->queue.empty();
  }

  // ---- outbound ----

  void pump(const std::shared_ptr<link>& l) {
    {
      std::lock_guard lock{mu};
      l->kicked = false;
      if (l->dropped)
        return;
    }
    if (l->st == link::state::idle)
      connect(l);
    else if (l->st == link::state::connected)
      write(l);
    // connecting or backing off: the queue waits for the connection
  }

  void connect(const std::shared_ptr<link>& l) {
    l->st = link::state::connecting;
    auto g = ++l->gen;
    // Outbound connections leave from the listening address, so that agents
    // sharing a host on 127.0.0.2, 127.0.0.3, ... are told apart by source.
    asio::error_code opened;
    l->sock.close(opened);
    l->sock.open(l->ep.protocol(), opened);
    if (!opened && !bind_ip.is_unspecified() && bind_ip.is_v4() == l->ep.address().is_v4())
      l->sock.bind(tcp::endpoint{bind_ip, 0}, opened);
    if (opened)
      return on_connect(l, g, opened);
    l->sock.async_connect(l->ep, [this, l, g](const asio::error_code& ec) { on_connect(l, g, ec); });
    l->timer.expires_after(opt.connect_timeout);
    l->timer.async_wait([l, g](const asio::error_code& ec) {
      if (!ec && l->gen == g && l->st == link::state::connecting) {
        asio::error_code ignored;
        l->sock.close(ignored);  // on_connect then sees operation_aborted
      }
    });
  }

  void on_connect(const std::shared_ptr<link>& l, uint64_t g, const asio::error_code& ec) {
    if (l->gen != g)
      return;
    l->timer.cancel();
    if (ec) {
      bump(&peer_counters::connect_failures);
      return retry_later(l);
    }
    bump(&peer_counters::connects);
    l->st = link::state::connected;
    l->last_active = steady::now();
    asio::error_code ignored;
    l->sock.set_option(tcp::no_delay{true}, ignored);
    unsigned int unacked_ms = static_cast<unsigned int>(opt.unacked_timeout.count());
    if (unacked_ms > 0)
      (void) ::setsockopt(l->sock.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &unacked_ms, sizeof unacked_ms);
    watch(l, g);
    write(l);
  }

  // Outbound connections are one-way: a read completes only when the peer
  // closes (or speaks out of turn), and either ends the connection.
  void watch(const std::shared_ptr<link>& l, uint64_t g) {
    l->sock.async_read_some(asio::buffer(&l->probe, 1), [this, l, g](const asio::error_code&, std::size_t) {
      if (l->gen == g)
        connection_lost(l);
    });
  }

  void close_connection(const std::shared_ptr<link>& l) {
    asio::error_code ignored;
    l->sock.close(ignored);
    l->timer.cancel();
    ++l->gen;
    l->writing = false;
  }

  void connection_lost(const std::shared_ptr<link>& l) {
    if (has_frames(l))
      return retry_later(l);
    close_connection(l);
    l->st = link::state::idle;  // reconnect on the next send
  }

  void retry_later(const std::shared_ptr<link>& l) {
    close_connection(l);
    l->st = link::state::backoff;
    auto d = l->backoff.count();
    l->backoff = std::min(l->backoff * 2, opt.backoff_max);
    auto delay = std::uniform_int_distribution<long long>{d / 2, d}(rng);
    auto g = l->gen;
    l->timer.expires_after(milliseconds{delay});
    l->timer.async_wait([this, l, g](const asio::error_code& ec) {
      if (ec || l->gen != g)
        return;
      l->st = link::state::idle;
      if (has_frames(l))
        connect(l);
    });
  }

  // Whether the peer closed a connection we have not written on for a while:
  // the watch read may not have run yet, and a write would then vanish into a
  // dead socket. A peek costs one system call per batch.
  static bool peer_closed(link& l) {
    char c;
    auto n = ::recv(l.sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  void write(const std::shared_ptr<link>& l) {
    if (l->writing)
      return;
    std::vector<std::string_view> payloads;
    std::size_t expired = 0;
    {
      std::lock_guard lock{mu};
      if (l->dropped)
        return;
      // Nothing is in flight (not writing): frames whose sender gave up
      // (a request past its timeout) go now, wherever they wait, so that a
      // peer back from an outage never acts on a request answered "retry".
      auto now = steady::now();
      for (auto f = l->queue.begin(); f != l->queue.end();) {
        if (f->expires > now) {
          ++f;
          continue;
        }
        l->bytes -= f->size();
        total_bytes -= f->size();
        --total_frames;
        ++expired;
        f = l->queue.erase(f);
      }
      std::size_t n = 0;
      for (const auto& p : l->queue) {
        if (!payloads.empty() && n + p.size() > write_batch_bytes)
          break;
        payloads.emplace_back(p.payload);
        n += p.size();
      }
    }
    if (expired)
      bump(&peer_counters::frames_expired, expired);
    if (payloads.empty())
      return;
    if (peer_closed(*l))
      return connection_lost(l);
    // Sealed now, not when queued: the sender time is fresh for the receiver's
    // replay window however long the frame waited.
    auto batch = std::make_shared<std::vector<std::string>>();
    std::vector<asio::const_buffer> buffers;
    batch->reserve(payloads.size());
    for (auto p : payloads)
      batch->push_back(frame(codec.seal(p)));
    for (const auto& f : *batch)
      buffers.push_back(asio::buffer(f));
    l->writing = true;
    auto g = l->gen;
    asio::async_write(l->sock, buffers, [this, l, g, batch](const asio::error_code& ec, std::size_t written) {
      if (l->gen != g)
        return;  // that connection is gone; the frames are still queued
      l->writing = false;
      // Frames the kernel took whole are done (delivered, or lost with the
      // connection); the rest are retried, so none arrives twice.
      std::size_t done = 0;
      for (std::size_t at = 0; done < batch->size() && at + (*batch)[done].size() <= written; ++done)
        at += (*batch)[done].size();
      {
        std::lock_guard lock{mu};
        if (l->dropped)
          return;
        for (std::size_t i = 0; i < done; ++i) {
          l->bytes -= l->queue.front().size();
          total_bytes -= l->queue.front().size();
          --total_frames;
          l->queue.pop_front();
        }
      }
      bump(&peer_counters::frames_sent, done);
      if (ec) {
        bump(&peer_counters::write_failures);
        return connection_lost(l);
      }
      // Reset only now: a peer that accepts and hangs up at once (full, or
      // dying) keeps backing off rather than being redialled every 50 ms.
      l->backoff = opt.backoff_min;
      l->last_active = steady::now();
      write(l);
    });
  }

  // ---- inbound ----

  void accept() {
    acceptor.async_accept([this](const asio::error_code& ec, tcp::socket s) {
      if (stopped || ec == asio::error::operation_aborted)
        return;
      if (ec) {
        // Out of descriptors and the like: try again shortly rather than spin.
        accept_timer.expires_after(milliseconds{100});
        accept_timer.async_wait([this](const asio::error_code& e) {
          if (!e && !stopped)
            accept();
        });
        return;
      }
      admit(std::move(s));
      accept();
    });
  }

  void admit(tcp::socket s) {
    asio::error_code ec;
    auto remote = s.remote_endpoint(ec);
    if (ec || inbounds.size() >= opt.max_inbound) {
      if (!ec)
        bump(&peer_counters::inbound_refused);
      s.close(ec);
      return;
    }
    auto in = std::make_shared<inbound>(std::move(s), opt.max_frame + codec.overhead());
    in->from = address{remote.address().to_string(), remote.port()};
    inbounds.insert(in);
    bump(&peer_counters::inbound_accepted);
    read(in);
  }

  void close_inbound(const std::shared_ptr<inbound>& in) {
    in->closed = true;
    asio::error_code ignored;
    in->sock.close(ignored);
    inbounds.erase(in);
  }

  void read(const std::shared_ptr<inbound>& in) {
    in->sock.async_read_some(asio::buffer(in->buf), [this, in](const asio::error_code& ec, std::size_t n) {
      if (in->closed)
        return;
      if (ec)
        return close_inbound(in);  // the peer is done (or gone)
      in->last_active = steady::now();
      in->reader.feed(std::string_view{in->buf.data(), n});
      for (;;) {
        auto f = in->reader.next();
        if (!f) {
          bump(&peer_counters::closed_bad_frame);
          return close_inbound(in);
        }
        if (!*f)
          break;
        auto o = codec.open(**f);
        // A peer that sends one bad packet on a stream is not heard further.
        switch (o.why) {
          case verdict::malformed: bump(&peer_counters::dropped_malformed); return close_inbound(in);
          case verdict::unauthenticated: bump(&peer_counters::dropped_auth); return close_inbound(in);
          case verdict::replayed: bump(&peer_counters::dropped_replay); return close_inbound(in);
          case verdict::ok: break;
        }
        bump(&peer_counters::frames_received);
        try {
          on_frame(in->from, std::move(o.payload));
        } catch (...) {
          bump(&peer_counters::callback_errors);
        }
      }
      read(in);
    });
  }

  // ---- idle connections ----

  milliseconds sweep_period() const {
    return std::clamp(opt.idle_timeout / 2, milliseconds{10}, milliseconds{1000});
  }

  void sweep() {
    sweep_timer.expires_after(sweep_period());
    sweep_timer.async_wait([this](const asio::error_code& ec) {
      if (ec || stopped)
        return;
      sweep_idle(steady::now());
      sweep();
    });
  }

  void sweep_idle(steady::time_point now) {
    std::vector<std::shared_ptr<link>> idle;
    {
      std::lock_guard lock{mu};
      for (auto it = links.begin(); it != links.end();) {
        auto& l = it->second;
        bool quiet = (l->st == link::state::idle || (l->st == link::state::connected && !l->writing)) &&
                     now - l->last_active >= opt.idle_timeout;
        if (quiet && l->queue.empty() && !l->kicked) {
          l->dropped = true;
          idle.push_back(l);
          it = links.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& l : idle) {
      if (l->st == link::state::connected)
        bump(&peer_counters::closed_idle);
      close_connection(l);
    }
    std::vector<std::shared_ptr<inbound>> quiet;
    for (const auto& in : inbounds)
      if (now - in->last_active >= opt.idle_timeout)
        quiet.push_back(in);
    for (auto& in : quiet) {
      bump(&peer_counters::closed_idle);
      close_inbound(in);
    }
  }

  void shutdown() {
    asio::error_code ignored;
    acceptor.close(ignored);
    accept_timer.cancel();
    sweep_timer.cancel();
    std::lock_guard lock{mu};
    for (auto& [to, l] : links) {
      l->dropped = true;
      close_connection(l);
    }
    for (const auto& in : inbounds)
      in->sock.close(ignored);
  }
};

peer_links::peer_links(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

peer_links::~peer_links() { stop(); }

result<std::unique_ptr<peer_links>> peer_links::start(peer_options opt, frame_fn on_frame) {
  auto where = "tcp " + opt.ip + ":" + std::to_string(opt.port);
  if (opt.max_frame == 0 || opt.max_frame > (1u << 30) || opt.backoff_min.count() <= 0 ||
      opt.backoff_max < opt.backoff_min)
    return error{where + ": max_frame must be in 1..1 GiB and 0 < backoff_min <= backoff_max"};
  auto p = std::make_unique<impl>(std::move(opt), std::move(on_frame));
  asio::error_code ec;
  auto ip = asio::ip::make_address(p->opt.ip, ec);
  if (ec)
    return error{where + ": not an IP address"};
  tcp::endpoint ep{ip, p->opt.port};
  auto& a = p->acceptor;
  a.open(ep.protocol(), ec);
  // SO_REUSEADDR lets a restarted agent listen again while old connections
  // linger in TIME_WAIT.
  if (!ec)
    a.set_option(tcp::acceptor::reuse_address{true}, ec);
  if (!ec)
    a.bind(ep, ec);
  if (!ec)
    a.listen(asio::socket_base::max_listen_connections, ec);
  auto bound = ec ? tcp::endpoint{} : a.local_endpoint(ec);
  if (ec)
    return error{where + ": " + ec.message()};
  p->local = address{bound.address().to_string(), bound.port()};
  p->bind_ip = ip;
  p->accept();
  p->sweep();
  p->loop.start("troupe-peers");
  return std::unique_ptr<peer_links>{new peer_links{std::move(p)}};
}

address peer_links::local() const { return impl_->local; }

status peer_links::send(const address& to, std::string_view payload, steady::time_point expires) {
  auto& p = *impl_;
  auto refuse = [&](uint64_t peer_counters::*field, const std::string& why) {
    p.bump(field);
    return status{error{"frame to " + to.to_string() + ": " + why}};
  };
  if (p.stopped)
    return error{"tcp " + p.local.to_string() + " is stopped"};
  if (payload.size() > p.opt.max_frame)
    return refuse(&peer_counters::refused_too_large, "payload of " + std::to_string(payload.size()) +
                                                       " bytes exceeds " + std::to_string(p.opt.max_frame));
  asio::error_code ec;
  auto ip = asio::ip::make_address(to.ip, ec);
  if (ec)
    return error{"frame to " + to.to_string() + ": not an IP address"};

  std::unique_lock lock{p.mu};
  auto it = p.links.find(to);
  if (it == p.links.end()) {
    if (p.links.size() >= p.opt.max_peers) {
      lock.unlock();
      return refuse(&peer_counters::refused_too_many_peers,
                    "already linked to " + std::to_string(p.opt.max_peers) + " peers");
    }
    it = p.links.emplace(to, std::make_shared<link>(p.io, to, tcp::endpoint{ip, to.port}, p.opt.backoff_min))
           .first;
  }
  auto l = it->second;
  auto n = payload.size();
  if (l->queue.size() >= p.opt.queue_frames || l->bytes + n > p.opt.queue_bytes ||
      p.total_bytes + n > p.opt.total_queue_bytes) {
    auto frames = l->queue.size(), bytes = l->bytes;
    lock.unlock();
    return refuse(&peer_counters::refused_queue_full,
                  "queue full (" + std::to_string(frames) + " frames, " + std::to_string(bytes) +
                    " bytes waiting): the peer is slow or down");
  }
  l->queue.push_back({std::string{payload}, expires});
  l->bytes += n;
  p.total_bytes += n;
  ++p.total_frames;
  if (!l->kicked) {
    l->kicked = true;
    asio::post(p.io, [&p, l] { p.pump(l); });
  }
  return {};
}

void peer_links::forget(const address& to) {
  auto& p = *impl_;
  std::shared_ptr<link> l;
  {
    std::lock_guard lock{p.mu};
    auto it = p.links.find(to);
    if (it == p.links.end())
      return;
    l = it->second;
    p.links.erase(it);
    l->dropped = true;
    p.total_bytes -= l->bytes;
    p.total_frames -= l->queue.size();
  }
  // The socket belongs to the links thread.
  asio::post(p.io, [&p, l] { p.close_connection(l); });
}

peer_counters peer_links::counters() const {
  auto& p = *impl_;
  std::size_t frames, bytes;
  {
    std::lock_guard lock{p.mu};
    frames = p.total_frames;
    bytes = p.total_bytes;
  }
  std::lock_guard lock{p.counters_mu};
  auto out = p.c;
  out.queued_frames = frames;
  out.queued_bytes = bytes;
  return out;
}

void peer_links::stop() {
  auto& p = *impl_;
  p.loop.stop([&p] { p.shutdown(); });
}

} // namespace troupe::net
