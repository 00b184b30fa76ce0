#include "net/port.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace troupe::net {

namespace {

status probe_port(const std::string& ip, uint16_t port, int type, bool reuse_address) {
  bool v6 = ip.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error{std::string{"socket: "} + std::strerror(errno)};
  if (reuse_address) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  int rc;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (::inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr) != 1)
      a.sin6_addr = in6addr_any;
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
      a.sin_addr.s_addr = htonl(INADDR_ANY);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  int err = errno;
  ::close(fd);
  if (rc != 0)
    return error{std::strerror(err)};
  return {};
}

} // namespace

status probe_tcp_port(const std::string& ip, uint16_t port, bool reuse_address) {
  return probe_port(ip, port, SOCK_STREAM, reuse_address);
}

status probe_udp_port(const std::string& ip, uint16_t port) {
  return probe_port(ip, port, SOCK_DGRAM, false);
}

} // namespace troupe::net
