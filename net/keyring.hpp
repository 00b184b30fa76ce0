// Gossip encryption keys (`--encrypt KEY`): AES-256 keys in a keyring, after
// memberlist's. One key is primary and encrypts everything sent; every
// installed key is tried when opening, primary first. Rotation without
// downtime, on every node in turn: install(new), then use(new) once all
// nodes have it installed, then remove(old) once all nodes use the new one.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"

namespace troupe::net {

/// Fills out with bytes from the kernel's CSPRNG (getrandom(2)); aborts if
/// the kernel cannot give them, since nothing safe can be done without.
/// Used for keys and nonces instead of RAND_bytes: OpenSSL's DRBG would map
/// 0.6 MiB more of libcrypto into every agent for the same kernel entropy.
void random_bytes(unsigned char* out, std::size_t n);

/// One AES-256 key.
class key {
public:
  static constexpr std::size_t size = 32;

  /// From standard base64 (44 characters, as `--encrypt` takes it).
  static result<key> from_base64(std::string_view text);
  /// From exactly 32 raw bytes.
  static result<key> from_bytes(std::string_view bytes);
  /// 32 bytes from the system's CSPRNG.
  static key generate();

  std::string to_base64() const;
  /// The first 12 hex digits of the key's SHA-256: names a key in logs and
  /// the API without revealing it.
  std::string fingerprint() const;
  const unsigned char* data() const { return bytes_.data(); }

  friend bool operator==(const key& a, const key& b) { return a.bytes_ == b.bytes_; }
  friend bool operator!=(const key& a, const key& b) { return !(a == b); }

private:
  key() = default;
  std::array<unsigned char, size> bytes_{};
};

/// The installed keys. Thread-safe: the operator rotates keys from any
/// thread while the network threads seal and open.
class keyring {
public:
  explicit keyring(key primary) : keys_{std::move(primary)} {}

  /// Adds `k` (no-op when installed); it opens packets from now on.
  void install(const key& k);
  /// Makes an installed key primary: packets are sealed with it from now on.
  status use(const key& k);
  /// Removes a key. Refused for the primary key; no-op when not installed.
  status remove(const key& k);

  /// The primary key.
  key primary() const;
  /// Every installed key, primary first (the order open() tries them in).
  std::vector<key> keys() const;

private:
  mutable std::mutex mu_;
  std::vector<key> keys_;  // keys_[0] is primary
};

} // namespace troupe::net
