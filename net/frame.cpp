#include "net/frame.hpp"

namespace troupe::net {

std::string frame(std::string_view payload) {
  auto n = static_cast<uint32_t>(payload.size());
  std::string out;
  out.reserve(frame_header_bytes + payload.size());
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(payload.data(), payload.size());
  return out;
}

result<std::optional<std::string>> frame_reader::next() {
  if (broken_)
    return *broken_;
  if (buffered() < frame_header_bytes)
    return std::optional<std::string>{};
  auto byte = [&](std::size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(buf_[pos_ + i])); };
  uint32_t n = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
  if (n == 0 || n > max_) {
    broken_ = error{"frame length " + std::to_string(n) + " is outside 1.." +
                    std::to_string(max_) + " bytes: closing the stream"};
    return *broken_;
  }
  if (buffered() < frame_header_bytes + n)
    return std::optional<std::string>{};
  std::string out = buf_.substr(pos_ + frame_header_bytes, n);
  pos_ += frame_header_bytes + n;
  // Compact once the consumed prefix dominates, so the buffer stays bounded.
  if (pos_ > 4096 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<std::string>{std::move(out)};
}

} // namespace troupe::net
