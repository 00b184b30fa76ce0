#include "net/keyring.hpp"

#include <openssl/evp.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace troupe::net {

void random_bytes(unsigned char* out, std::size_t n) {
  while (n > 0) {
    ssize_t got = ::getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      std::abort();
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

result<key> key::from_base64(std::string_view text) {
  // 32 bytes are 44 characters with one '=' of padding; anything else is not a key.
  if (text.size() != 44 || text[43] != '=' || text[42] == '=')
    return error{"encryption key must be 32 bytes in base64 (44 characters), got " +
                 std::to_string(text.size()) + " characters"};
  unsigned char out[33];  // EVP_DecodeBlock writes 3 bytes per 4 characters, padding included
  std::string in{text};
  int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n != 33)
    return error{"encryption key is not valid base64"};
  return from_bytes(std::string_view{reinterpret_cast<const char*>(out), size});
}

result<key> key::from_bytes(std::string_view bytes) {
  if (bytes.size() != size)
    return error{"encryption key must be 32 bytes, got " + std::to_string(bytes.size())};
  key k;
  std::copy(bytes.begin(), bytes.end(), k.bytes_.begin());
  return k;
}

key key::generate() {
  key k;
  random_bytes(k.bytes_.data(), size);
  return k;
}

std::string key::fingerprint() const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes_.data(), size, digest, &n, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 6 && i < n; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

std::string key::to_base64() const {
  unsigned char out[45];
  int n = EVP_EncodeBlock(out, bytes_.data(), static_cast<int>(size));
  return std::string{reinterpret_cast<const char*>(out), static_cast<std::size_t>(n)};
}

void keyring::install(const key& k) {
  std::lock_guard lock{mu_};
  if (std::find(keys_.begin(), keys_.end(), k) == keys_.end())
    keys_.push_back(k);
}

status keyring::use(const key& k) {
  std::lock_guard lock{mu_};
  auto it = std::find(keys_.begin(), keys_.end(), k);
  if (it == keys_.end())
    return error{"key is not installed: install it before using it"};
  std::rotate(keys_.begin(), it, it + 1);
  return {};
}

status keyring::remove(const key& k) {
  std::lock_guard lock{mu_};
  if (keys_.front() == k)
    return error{"the primary key cannot be removed: use another key first"};
  keys_.erase(std::remove(keys_.begin(), keys_.end(), k), keys_.end());
  return {};
}

key keyring::primary() const {
  std::lock_guard lock{mu_};
  return keys_.front();
}

std::vector<key> keyring::keys() const {
  std::lock_guard lock{mu_};
  return keys_;
}

} // namespace troupe::net
