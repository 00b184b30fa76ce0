#include "net/address.hpp"

#include <arpa/inet.h>

#include "runtime/text.hpp"

namespace troupe::net {

namespace {

bool is_ip_literal(const std::string& ip) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, ip.c_str(), buf) == 1 || ::inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

} // namespace

result<address> address::parse(std::string_view text) {
  auto bad = [&](const char* why) {
    return error{"address " + quote(text) + ": " + why + " (expected IP:PORT or [IPv6]:PORT)"};
  };
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("unterminated IPv6 literal");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return bad("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return bad("an IPv6 literal needs brackets");
  }
  if (port.empty() || port.size() > 5)
    return bad("port is not a number in 1..65535");
  unsigned long n = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return bad("port is not a number in 1..65535");
    n = n * 10 + static_cast<unsigned long>(c - '0');
  }
  if (n == 0 || n > 65535)
    return bad("port is not a number in 1..65535");
  address a{std::string{host}, static_cast<uint16_t>(n)};
  if (!is_ip_literal(a.ip))
    return bad("host is not an IP literal");
  return a;
}

std::string address::to_string() const {
  if (ip.find(':') != std::string::npos)
    return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

} // namespace troupe::net
