#include "actors/membership/codec.hpp"

#include <charconv>

#include <google/protobuf/io/coded_stream.h>

namespace troupe::swim::codec {

namespace {

constexpr std::uint32_t broadcasts_field = 8;  // GossipPacket.broadcasts
constexpr std::uint32_t length_delimited = 2;

status check_name(const std::string& name, const limits& lim, const char* what) {
  if (name.empty())
    return error{std::string{what} + " is empty"};
  if (name.size() > lim.max_name_length)
    return error{std::string{what} + " is longer than " + std::to_string(lim.max_name_length) + " bytes"};
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return error{std::string{what} + " holds a control character"};
  return {};
}

status check_address(const std::string& address, const limits& lim) {
  if (!valid_address(address, lim.max_address_length))
    return error{"address of at most " + std::to_string(lim.max_address_length) +
                 " bytes in the form host:port expected"};
  return {};
}

status check_tags(const v1::GossipTags& t, const limits& lim) {
  if (t.ByteSizeLong() > lim.max_tags_bytes)
    return error{"tags larger than " + std::to_string(lim.max_tags_bytes) + " bytes"};
  return {};
}

status check_alive(const v1::GossipAlive& a, const limits& lim) {
  if (auto s = check_name(a.name(), lim, "alive name"); !s)
    return s;
  if (auto s = check_address(a.address(), lim); !s)
    return s.error().with_context("alive " + a.name());
  return check_tags(a.tags(), lim);
}

// Suspect and dead have the same shape.
template <class Change>
status check_accusation(const Change& c, const limits& lim, const char* what) {
  if (auto s = check_name(c.name(), lim, what); !s)
    return s;
  return check_name(c.from(), lim, "accuser name");
}

status check_broadcast(const v1::GossipBroadcast& b, const limits& lim) {
  switch (b.change_case()) {
    case v1::GossipBroadcast::kAlive: return check_alive(b.alive(), lim);
    case v1::GossipBroadcast::kSuspect: return check_accusation(b.suspect(), lim, "suspect name");
    case v1::GossipBroadcast::kDead: return check_accusation(b.dead(), lim, "dead name");
    default: return error{"broadcast without a change"};
  }
}

status check_member_state(const v1::GossipMemberState& m, const limits& lim) {
  if (auto s = check_name(m.name(), lim, "member name"); !s)
    return s;
  if (!v1::GossipState_IsValid(m.state()))
    return error{"member " + m.name() + ": unknown state " + std::to_string(m.state())};
  if (auto s = check_address(m.address(), lim); !s)
    return s.error().with_context("member " + m.name());
  return check_tags(m.tags(), lim);
}

status check_body(const v1::GossipPacket& p, const limits& lim) {
  switch (p.body_case()) {
    case v1::GossipPacket::kPing: return check_name(p.ping().target(), lim, "ping target");
    case v1::GossipPacket::kIndirectPing:
      return check_name(p.indirect_ping().target(), lim, "indirect ping target");
    case v1::GossipPacket::kPushPull:
      for (const auto& m : p.push_pull().members())
        if (auto s = check_member_state(m, lim); !s)
          return s;
      return {};
    default: return {};  // ack, nack, or a packet of broadcasts only
  }
}

} // namespace

status validate(const v1::GossipPacket& packet, const limits& lim) {
  if (packet.version() != protocol_version)
    return error{"protocol version " + std::to_string(packet.version()) + " is not " +
                 std::to_string(protocol_version)};
  if (auto s = check_name(packet.sender(), lim, "sender name"); !s)
    return s;
  if (auto s = check_body(packet, lim); !s)
    return s;
  for (const auto& b : packet.broadcasts())
    if (auto s = check_broadcast(b, lim); !s)
      return s;
  return {};
}

status decode_into(std::string_view bytes, const limits& lim, v1::GossipPacket& out) {
  if (bytes.size() > lim.max_datagram)
    return error{"datagram of " + std::to_string(bytes.size()) + " bytes is over the limit of " +
                 std::to_string(lim.max_datagram)};
  if (!out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return error{"datagram of " + std::to_string(bytes.size()) + " bytes is not a GossipPacket"};
  if (auto s = validate(out, lim); !s)
    return s.error().with_context("gossip from " + out.sender().substr(0, lim.max_name_length));
  return {};
}

result<v1::GossipPacket> decode(std::string_view bytes, const limits& lim) {
  v1::GossipPacket packet;
  if (auto s = decode_into(bytes, lim, packet); !s)
    return s.error();
  return packet;
}

bool valid_address(std::string_view address, std::size_t max_length) {
  if (address.empty() || address.size() > max_length)
    return false;
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size())
    return false;
  auto port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return false;
  for (char c : address.substr(0, colon))
    if (c <= ' ' || c == '/' || static_cast<unsigned char>(c) >= 0x7f)
      return false;
  return true;
}

void to_proto(const tags& from, v1::GossipTags& to) {
  to.Clear();
  switch (from.role) {
    case role::server: to.set_role(v1::GOSSIP_ROLE_SERVER); break;
    case role::client: to.set_role(v1::GOSSIP_ROLE_CLIENT); break;
    case role::unspecified: break;
  }
  for (const auto& [k, v] : from.labels) {
    auto* pair = to.add_labels();
    pair->set_key(k);
    pair->set_value(v);
  }
  to.set_cpu_millis(from.cpu_millis);
  to.set_memory_bytes(from.memory_bytes);
  for (const auto& [k, v] : from.addresses) {
    auto* pair = to.add_addresses();
    pair->set_key(k);
    pair->set_value(v);
  }
  to.set_version(from.version);
}

tags from_proto(const v1::GossipTags& from) {
  tags t;
  switch (from.role()) {
    case v1::GOSSIP_ROLE_SERVER: t.role = role::server; break;
    case v1::GOSSIP_ROLE_CLIENT: t.role = role::client; break;
    default: break;  // unknown roles from newer peers read as unspecified
  }
  for (const auto& pair : from.labels())
    t.labels[pair.key()] = pair.value();  // a repeated key: the last one wins
  t.cpu_millis = from.cpu_millis();
  t.memory_bytes = from.memory_bytes();
  for (const auto& pair : from.addresses())
    t.addresses[pair.key()] = pair.value();
  t.version = from.version();
  return t;
}

std::size_t tags_size(const tags& t) {
  v1::GossipTags proto;
  to_proto(t, proto);
  return proto.ByteSizeLong();
}

void append_broadcast(std::string& packet, std::string_view encoded_broadcast) {
  using google::protobuf::io::CodedOutputStream;
  std::uint8_t head[16];
  auto* end = CodedOutputStream::WriteTagToArray((broadcasts_field << 3) | length_delimited, head);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(encoded_broadcast.size()), end);
  packet.append(reinterpret_cast<const char*>(head), static_cast<std::size_t>(end - head));
  packet.append(encoded_broadcast);
}

void append_field_head(std::string& out, std::uint32_t field, std::size_t length) {
  using google::protobuf::io::CodedOutputStream;
  std::uint8_t head[16];
  auto* end = CodedOutputStream::WriteTagToArray((field << 3) | length_delimited, head);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(length), end);
  out.append(reinterpret_cast<const char*>(head), static_cast<std::size_t>(end - head));
}

void append_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes) {
  append_field_head(out, field, bytes.size());
  out.append(bytes);
}

void append_varint_field(std::string& out, std::uint32_t field, std::uint64_t value) {
  using google::protobuf::io::CodedOutputStream;
  if (value == 0)
    return;
  std::uint8_t head[16];
  auto* end = CodedOutputStream::WriteTagToArray(field << 3, head);  // wire type 0: varint
  end = CodedOutputStream::WriteVarint64ToArray(value, end);
  out.append(reinterpret_cast<const char*>(head), static_cast<std::size_t>(end - head));
}

std::size_t varint_size(std::uint64_t value) {
  return google::protobuf::io::CodedOutputStream::VarintSize64(value);
}

std::size_t broadcast_field_size(std::size_t encoded_size) {
  using google::protobuf::io::CodedOutputStream;
  return 1 + CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(encoded_size)) + encoded_size;
}

} // namespace troupe::swim::codec
