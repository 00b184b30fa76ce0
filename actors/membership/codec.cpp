#include "actors/membership/codec.hpp"

#include <charconv>

#include <google/protobuf/io/coded_stream.h>

namespace troupe::swim::codec {

namespace {

constexpr std::uint32_t broadcasts_field = v1::GossipPacket::kBroadcastsFieldNumber;
constexpr std::uint32_t varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5;

/// One field of a message in protobuf's wire format.
struct field {
  std::uint32_t number = 0, type = 0;
  std::uint64_t value = 0;  // a varint
  std::string_view bytes;   // a length-delimited field
};

/// Walks the fields of one message without reading past its end. Groups
/// (deprecated, never sent by us) are refused.
class reader {
public:
  explicit reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  /// The next field; false at the end or at malformed input (then !ok()).
  bool next(field& f) {
    if (p_ == end_)
      return false;
    std::uint64_t tag = 0;
    if (!read_varint(tag) || tag > 0xffffffffu || (tag >> 3) == 0)
      return fail();
    f.number = static_cast<std::uint32_t>(tag >> 3);
    f.type = static_cast<std::uint32_t>(tag & 7);
    switch (f.type) {
      case varint: return read_varint(f.value) || fail();
      case fixed64: return skip(8);
      case fixed32: return skip(4);
      case length_delimited: {
        std::uint64_t n = 0;
        if (!read_varint(n) || n > static_cast<std::uint64_t>(end_ - p_))
          return fail();
        f.bytes = std::string_view{p_, static_cast<std::size_t>(n)};
        p_ += n;
        return true;
      }
      default: return fail();
    }
  }
  bool ok() const { return ok_; }

private:
  bool read_varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      auto b = static_cast<std::uint8_t>(*p_++);
      v |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80))
        return true;
    }
    return false;  // truncated, or longer than ten bytes
  }
  bool skip(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n)
      return fail();
    p_ += n;
    return true;
  }
  bool fail() {
    ok_ = false;
    p_ = end_;
    return false;
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
};

bool is(const field& f, std::uint32_t number, std::uint32_t type) { return f.number == number && f.type == type; }

/// Tracks the message fields of one message: each may appear once.
struct once {
  std::uint32_t seen = 0;
  bool first(std::uint32_t number) {
    bool was = seen & (1u << number);
    seen |= 1u << number;
    return !was;
  }
};

// Each parser below reads one message of gossip.proto into views and
// returns false when it is malformed. Fields of other numbers or wire types
// are unknown fields, skipped.

bool parse_pair(std::string_view bytes) {
  reader r{bytes};
  field f;
  while (r.next(f)) {
  }
  return r.ok();
}

bool parse_tags(std::string_view bytes) {
  reader r{bytes};
  field f;
  while (r.next(f))
    if ((is(f, 2, length_delimited) || is(f, 5, length_delimited)) && !parse_pair(f.bytes))  // labels, addresses
      return false;
  return r.ok();
}

bool parse_member(std::string_view bytes, member_view& m) {
  reader r{bytes};
  field f;
  once seen;
  while (r.next(f)) {
    if (is(f, 1, length_delimited))
      m.name = f.bytes;
    else if (is(f, 2, length_delimited))
      m.address = f.bytes;
    else if (is(f, 3, varint))
      m.incarnation = f.value;
    else if (is(f, 4, varint))
      m.state = static_cast<v1::GossipState>(static_cast<std::int32_t>(f.value));
    else if (is(f, 5, length_delimited) && !(seen.first(5) && parse_tags(m.tags = f.bytes)))
      return false;
  }
  return r.ok();
}

bool parse_push_pull(std::string_view bytes, packet_view& p) {
  reader r{bytes};
  field f;
  while (r.next(f)) {
    if (is(f, 1, varint))
      p.join = f.value != 0;
    else if (is(f, 2, varint))
      p.want_reply = f.value != 0;
    else if (is(f, 3, varint))
      p.reply = f.value != 0;
    else if (is(f, 5, varint))
      p.introduce = f.value != 0;
    else if (is(f, 4, length_delimited) && !parse_member(f.bytes, p.members.emplace_back()))
      return false;
  }
  return r.ok();
}

/// Ping, indirect ping, ack and nack: seq = 1, target = 2, want_nack = 3.
bool parse_probe(std::string_view bytes, packet_view& p) {
  reader r{bytes};
  field f;
  while (r.next(f)) {
    if (is(f, 1, varint))
      p.seq = static_cast<std::uint32_t>(f.value);
    else if (is(f, 2, length_delimited))
      p.target = f.bytes;
    else if (is(f, 3, varint))
      p.want_nack = f.value != 0;
  }
  return r.ok();
}

/// Alive (name 1, incarnation 2, address 3, tags 4), suspect and dead (name
/// 1, incarnation 2, from 3).
bool parse_change(std::string_view bytes, change_view& c) {
  bool alive = c.kind == v1::GossipBroadcast::kAlive;
  reader r{bytes};
  field f;
  once seen;
  while (r.next(f)) {
    if (is(f, 1, length_delimited))
      c.name = f.bytes;
    else if (is(f, 2, varint))
      c.incarnation = f.value;
    else if (is(f, 3, length_delimited))
      (alive ? c.address : c.from) = f.bytes;
    else if (alive && is(f, 4, length_delimited) && !(seen.first(4) && parse_tags(c.tags = f.bytes)))
      return false;
  }
  return r.ok();
}

bool parse_broadcast(std::string_view bytes, change_view& c) {
  reader r{bytes};
  field f;
  std::string_view change;
  while (r.next(f)) {
    if (f.type != length_delimited || f.number < 1 || f.number > 3)
      continue;
    if (c.kind != v1::GossipBroadcast::CHANGE_NOT_SET)
      return false;  // one change per broadcast
    c.kind = static_cast<v1::GossipBroadcast::ChangeCase>(f.number);
    change = f.bytes;
  }
  return r.ok() && (c.kind == v1::GossipBroadcast::CHANGE_NOT_SET || parse_change(change, c));
}

bool parse_packet(std::string_view bytes, packet_view& p) {
  reader r{bytes};
  field f;
  while (r.next(f)) {
    if (is(f, 1, varint)) {
      p.version = static_cast<std::uint32_t>(f.value);
    } else if (is(f, 2, length_delimited)) {
      p.sender = f.bytes;
    } else if (is(f, 9, varint)) {
      p.live_members = static_cast<std::uint32_t>(f.value);
    } else if (is(f, broadcasts_field, length_delimited)) {
      if (!parse_broadcast(f.bytes, p.broadcasts.emplace_back()))
        return false;
    } else if (f.type == length_delimited && f.number >= 3 && f.number <= 7) {
      if (p.body != v1::GossipPacket::BODY_NOT_SET)
        return false;  // one body per datagram
      p.body = static_cast<v1::GossipPacket::BodyCase>(f.number);
      if (!(p.body == v1::GossipPacket::kPushPull ? parse_push_pull(f.bytes, p) : parse_probe(f.bytes, p)))
        return false;
    }
  }
  return r.ok();
}

status check_name(std::string_view name, const limits& lim, const char* what) {
  if (name.empty())
    return error{std::string{what} + " is empty"};
  if (name.size() > lim.max_name_length)
    return error{std::string{what} + " is longer than " + std::to_string(lim.max_name_length) + " bytes"};
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      return error{std::string{what} + " holds a control character"};
  return {};
}

status check_address(std::string_view address, const limits& lim) {
  if (!valid_address(address, lim.max_address_length))
    return error{"address of at most " + std::to_string(lim.max_address_length) +
                 " bytes in the form host:port expected"};
  return {};
}

status check_tags(std::string_view tags, const limits& lim) {
  if (tags.size() > lim.max_tags_bytes)
    return error{"tags larger than " + std::to_string(lim.max_tags_bytes) + " bytes"};
  return {};
}

status check_change(const change_view& c, const limits& lim) {
  switch (c.kind) {
    case v1::GossipBroadcast::kAlive:
      if (auto s = check_name(c.name, lim, "alive name"); !s)
        return s;
      if (auto s = check_address(c.address, lim); !s)
        return s.error().with_context("alive " + std::string{c.name});
      return check_tags(c.tags, lim);
    case v1::GossipBroadcast::kSuspect:
    case v1::GossipBroadcast::kDead:
      if (auto s = check_name(c.name, lim, c.kind == v1::GossipBroadcast::kDead ? "dead name" : "suspect name"); !s)
        return s;
      return check_name(c.from, lim, "accuser name");
    default: return error{"broadcast without a change"};
  }
}

status check_member(const member_view& m, const limits& lim) {
  if (auto s = check_name(m.name, lim, "member name"); !s)
    return s;
  if (!v1::GossipState_IsValid(m.state))
    return error{"member " + std::string{m.name} + ": unknown state " + std::to_string(m.state)};
  if (auto s = check_address(m.address, lim); !s)
    return s.error().with_context("member " + std::string{m.name});
  return check_tags(m.tags, lim);
}

status check_body(const packet_view& p, const limits& lim) {
  switch (p.body) {
    case v1::GossipPacket::kPing: return check_name(p.target, lim, "ping target");
    case v1::GossipPacket::kIndirectPing: return check_name(p.target, lim, "indirect ping target");
    case v1::GossipPacket::kPushPull:
      for (const auto& m : p.members)
        if (auto s = check_member(m, lim); !s)
          return s;
      return {};
    default: return {};  // ack, nack, or a packet of broadcasts only
  }
}

status check_packet(const packet_view& p, const limits& lim) {
  if (p.version != protocol_version)
    return error{"protocol version " + std::to_string(p.version) + " is not " + std::to_string(protocol_version)};
  if (auto s = check_name(p.sender, lim, "sender name"); !s)
    return s;
  if (auto s = check_body(p, lim); !s)
    return s;
  for (const auto& b : p.broadcasts)
    if (auto s = check_change(b, lim); !s)
      return s;
  return {};
}

} // namespace

status decode(std::string_view bytes, const limits& lim, packet_view& out) {
  if (bytes.size() > lim.max_datagram)
    return error{"datagram of " + std::to_string(bytes.size()) + " bytes is over the limit of " +
                 std::to_string(lim.max_datagram)};
  out.members.clear();
  out.broadcasts.clear();
  auto members = std::move(out.members);
  auto broadcasts = std::move(out.broadcasts);
  out = packet_view{};
  out.members = std::move(members);  // their capacity, kept from datagram to datagram
  out.broadcasts = std::move(broadcasts);
  if (!parse_packet(bytes, out))
    return error{"datagram of " + std::to_string(bytes.size()) + " bytes is not a GossipPacket"};
  if (auto s = check_packet(out, lim); !s)
    return s.error().with_context("gossip from " + std::string{out.sender.substr(0, lim.max_name_length)});
  return {};
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
  to.set_port_min(from.port_min);
  to.set_port_max(from.port_max);
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
  if (from.port_min() <= from.port_max() && from.port_max() <= 65535) {  // else: the default range
    t.port_min = static_cast<std::uint16_t>(from.port_min());
    t.port_max = static_cast<std::uint16_t>(from.port_max());
  }
  return t;
}

tags tags_from_bytes(std::string_view bytes) {
  v1::GossipTags proto;
  proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));  // checked by decode()
  return from_proto(proto);
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
