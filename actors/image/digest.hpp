// digest: the sha256 content address of a blob ("sha256:<64 hex>"), and the
// streaming hasher that makes one. A digest only exists parsed and checked,
// so one taken from hostile JSON can never name a path outside the store.
#pragma once

#include "runtime/result.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace troupe::image {

class digest {
public:
  /// "sha256:<64 lowercase hex>"; anything else is an error quoting text.
  static result<digest> parse(std::string_view text);

  /// The digest of bytes held in memory.
  static digest of(std::string_view bytes);

  /// The 64 hex digits, as blob file names use them.
  const std::string& hex() const noexcept { return hex_; }
  /// "sha256:<hex>".
  std::string str() const { return "sha256:" + hex_; }

  friend bool operator==(const digest& a, const digest& b) { return a.hex_ == b.hex_; }
  friend bool operator!=(const digest& a, const digest& b) { return !(a == b); }

private:
  explicit digest(std::string hex) : hex_(std::move(hex)) {}
  std::string hex_;

  friend class sha256;
};

/// Hashes bytes as they stream past (OpenSSL EVP).
class sha256 {
public:
  sha256();
  ~sha256();
  sha256(sha256&&) noexcept;
  sha256& operator=(sha256&&) noexcept;

  void update(const void* data, std::size_t size);
  /// The digest of everything passed to update(); the hasher is spent.
  digest finish();

private:
  struct state;
  std::unique_ptr<state> state_;
};

} // namespace troupe::image
