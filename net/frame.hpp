// Length-prefixed frames on a byte stream (TCP): a 4-byte big-endian length,
// then that many bytes. The reader refuses a length over its bound before
// reading the body, so a hostile peer cannot make it allocate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/result.hpp"
#include "runtime/wire.hpp"

namespace troupe::net {

inline constexpr std::size_t frame_header_bytes = 4;

/// `payload` with its length prefix.
std::string frame(std::string_view payload);

class frame_reader {
public:
  explicit frame_reader(std::size_t max_frame = wire::max_envelope_bytes) : max_(max_frame) {}

  /// Appends bytes read from the stream.
  void feed(std::string_view bytes) { buf_.append(bytes.data(), bytes.size()); }

  /// The next complete frame; nothing while more bytes are needed; an error
  /// once the stream is broken (empty or oversized frame), after which the
  /// connection must be closed: every later call returns the same error.
  result<std::optional<std::string>> next();

  /// Bytes received and not yet returned as frames.
  std::size_t buffered() const { return buf_.size() - pos_; }

private:
  std::size_t max_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::optional<error> broken_;
};

} // namespace troupe::net
