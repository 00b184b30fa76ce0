// Gossip datagrams on the wire (gossip.proto): decoding that never trusts its
// input, and the few encoding helpers the core needs to fill a datagram with
// piggybacked broadcasts without re-encoding them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/membership/config.hpp"
#include "actors/membership/swim.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/gossip.pb.h"

namespace troupe::swim::codec {

inline constexpr std::uint32_t protocol_version = 1;

/// What a datagram may hold, taken from the config.
struct limits {
  std::size_t max_datagram = 1400;
  std::size_t max_name_length = 128;
  std::size_t max_address_length = 64;
  std::size_t max_tags_bytes = 768;

  static limits from(const config& c) {
    return {c.max_datagram, c.max_name_length, c.max_address_length, c.max_tags_bytes};
  }
};

/// A member in a push-pull table, as views into the datagram.
struct member_view {
  std::string_view name, address;
  std::string_view tags;  // an encoded GossipTags, checked
  std::uint64_t incarnation = 0;
  v1::GossipState state = v1::GOSSIP_STATE_ALIVE;
};

/// A piggybacked change (GossipBroadcast), as views into the datagram.
struct change_view {
  v1::GossipBroadcast::ChangeCase kind = v1::GossipBroadcast::CHANGE_NOT_SET;
  std::string_view name;
  std::uint64_t incarnation = 0;
  std::string_view address, tags;  // alive
  std::string_view from;           // suspect, dead
};

/// One datagram decoded without copying: every view points into the bytes
/// it was decoded from. Reused from datagram to datagram, so that a busy
/// member decodes without allocating.
struct packet_view {
  std::uint32_t version = 0, live_members = 0;
  std::string_view sender;
  v1::GossipPacket::BodyCase body = v1::GossipPacket::BODY_NOT_SET;
  std::uint32_t seq = 0;       // ping, indirect ping, ack, nack
  std::string_view target;     // ping, indirect ping
  bool want_nack = false;      // indirect ping
  bool join = false, want_reply = false, reply = false, introduce = false;  // push-pull
  std::vector<member_view> members;                                         // push-pull
  std::vector<change_view> broadcasts;
};

/// Decodes and checks one datagram (gossip.proto's GossipPacket): size,
/// version, a sender name, names and addresses within bounds, tags within
/// bounds and well formed, known member states, no empty broadcast. Unknown
/// fields are skipped as protobuf skips them; stricter than protobuf, a
/// message field that may appear once may not appear twice (protobuf would
/// merge them) and groups are refused. The error names the first thing wrong.
status decode(std::string_view bytes, const limits& lim, packet_view& out);

/// "host:port" with a non-empty host and a port in 1..65535 ("[::1]:7946" too).
bool valid_address(std::string_view address, std::size_t max_length);

void to_proto(const tags& from, v1::GossipTags& to);
tags from_proto(const v1::GossipTags& from);
/// The tags of an encoded GossipTags that decode() accepted.
tags tags_from_bytes(std::string_view bytes);
/// Encoded size of `t`, for the max_tags_bytes check before it is announced.
std::size_t tags_size(const tags& t);

/// Appends an encoded GossipBroadcast as one GossipPacket.broadcasts field:
/// protobuf concatenates repeated fields, so a queued broadcast is encoded
/// once and copied into every datagram that carries it.
void append_broadcast(std::string& packet, std::string_view encoded_broadcast);
/// Bytes append_broadcast adds for a broadcast of `encoded_size` bytes.
std::size_t broadcast_field_size(std::size_t encoded_size);

// Hand-made fields, for messages assembled from parts encoded once (a
// member's profile) rather than re-encoded for every datagram.
/// A length-delimited field (bytes or an encoded message).
void append_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes);
/// A varint field; proto3 leaves out zero, and so does this.
void append_varint_field(std::string& out, std::uint32_t field, std::uint64_t value);
/// The tag and length of a length-delimited field whose body follows.
void append_field_head(std::string& out, std::uint32_t field, std::size_t length);
/// Bytes a varint of `value` takes.
std::size_t varint_size(std::uint64_t value);

} // namespace troupe::swim::codec
