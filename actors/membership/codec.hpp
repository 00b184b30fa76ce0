// Gossip datagrams on the wire (gossip.proto): decoding that never trusts its
// input, and the few encoding helpers the core needs to fill a datagram with
// piggybacked broadcasts without re-encoding them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

/// Parses one datagram and checks it: size, version, a sender name, names and
/// addresses within bounds, tags within bounds, no empty broadcast. The
/// error names the first thing wrong.
result<v1::GossipPacket> decode(std::string_view bytes, const limits& lim);
/// The same into `out`, whose allocations a hot loop reuses.
status decode_into(std::string_view bytes, const limits& lim, v1::GossipPacket& out);
status validate(const v1::GossipPacket& packet, const limits& lim);

/// "host:port" with a non-empty host and a port in 1..65535 ("[::1]:7946" too).
bool valid_address(std::string_view address, std::size_t max_length);

void to_proto(const tags& from, v1::GossipTags& to);
tags from_proto(const v1::GossipTags& from);
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
