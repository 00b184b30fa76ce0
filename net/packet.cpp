#include "net/packet.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace troupe::net {

namespace {

constexpr unsigned char clear_byte = 0x00;
constexpr unsigned char sealed_v1 = 0x01;
constexpr std::size_t time_bytes = 8;

std::string associated_data(purpose p) {
  std::string aad(1, static_cast<char>(sealed_v1));
  aad += p == purpose::gossip ? "troupe/gossip" : "troupe/frame";
  return aad;
}

struct cipher_ctx {
  EVP_CIPHER_CTX* p = EVP_CIPHER_CTX_new();
  ~cipher_ctx() { EVP_CIPHER_CTX_free(p); }
  cipher_ctx() = default;
  cipher_ctx(const cipher_ctx&) = delete;
  cipher_ctx& operator=(const cipher_ctx&) = delete;
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes(std::string& s, std::size_t at) {
  return reinterpret_cast<unsigned char*>(s.data()) + at;
}

int64_t to_ms(packet_codec::clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// AES-256-GCM of `plain` into `out` (same length); the tag into `tag`.
// False only when OpenSSL fails (out of memory).
bool encrypt(const key& k, const unsigned char* nonce, std::string_view aad,
             std::string_view plain, unsigned char* out, unsigned char* tag) {
  cipher_ctx c;
  int len = 0;
  return c.p && EVP_EncryptInit_ex(c.p, EVP_aes_256_gcm(), nullptr, k.data(), nonce) == 1 &&
         EVP_EncryptUpdate(c.p, nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
         EVP_EncryptUpdate(c.p, out, &len, bytes(plain), static_cast<int>(plain.size())) == 1 &&
         EVP_EncryptFinal_ex(c.p, out + len, &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(c.p, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_bytes), tag) == 1;
}

// The inverse; false when the tag does not authenticate under `k`.
bool decrypt(const key& k, const unsigned char* nonce, std::string_view aad,
             std::string_view cipher, const unsigned char* tag, unsigned char* out) {
  cipher_ctx c;
  int len = 0;
  return c.p && EVP_DecryptInit_ex(c.p, EVP_aes_256_gcm(), nullptr, k.data(), nonce) == 1 &&
         EVP_DecryptUpdate(c.p, nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1 &&
         EVP_DecryptUpdate(c.p, out, &len, bytes(cipher), static_cast<int>(cipher.size())) == 1 &&
         EVP_CIPHER_CTX_ctrl(c.p, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_bytes),
                             const_cast<unsigned char*>(tag)) == 1 &&
         EVP_DecryptFinal_ex(c.p, out + len, &len) == 1;
}

} // namespace

packet_codec::packet_codec(purpose p, std::shared_ptr<keyring> keys, replay_options replay)
    : purpose_(p), keys_(std::move(keys)), replay_(replay) {}

std::size_t packet_codec::nonce_hash::operator()(const nonce& n) const {
  // Nonces are random: their first bytes are as good a hash as any.
  std::size_t h;
  std::memcpy(&h, n.data(), sizeof h);
  return h;
}

std::string packet_codec::seal_at(std::string_view payload, clock::time_point sent) const {
  if (!keys_) {
    std::string out(1, static_cast<char>(clear_byte));
    out.append(payload.data(), payload.size());
    return out;
  }
  std::string plain(time_bytes, '\0');
  auto ms = static_cast<uint64_t>(to_ms(sent));
  for (std::size_t i = 0; i < time_bytes; ++i)
    plain[i] = static_cast<char>((ms >> (8 * (time_bytes - 1 - i))) & 0xff);
  plain.append(payload.data(), payload.size());

  std::string out(sealed_overhead + payload.size(), '\0');
  out[0] = static_cast<char>(sealed_v1);
  unsigned char* iv = bytes(out, 1);
  unsigned char* cipher = iv + nonce_bytes;
  unsigned char* tag = cipher + plain.size();
  // A failing CSPRNG or cipher leaves nothing safe to send: a repeated nonce
  // under GCM gives the key away.
  random_bytes(iv, nonce_bytes);
  if (!encrypt(keys_->primary(), iv, associated_data(purpose_), plain, cipher, tag))
    std::abort();
  return out;
}

opened packet_codec::open_at(std::string_view packet, clock::time_point now) {
  opened r;
  if (packet.empty())
    return r;
  auto lead = static_cast<unsigned char>(packet[0]);
  if (lead == clear_byte) {
    if (keys_) {
      r.why = verdict::unauthenticated;
      return r;
    }
    r.why = verdict::ok;
    r.payload.assign(packet.data() + 1, packet.size() - 1);
    return r;
  }
  if (lead != sealed_v1)
    return r;
  if (!keys_) {
    r.why = verdict::unauthenticated;
    return r;
  }
  if (packet.size() < sealed_overhead)
    return r;

  nonce n;
  std::memcpy(n.data(), packet.data() + 1, nonce_bytes);
  auto cipher = packet.substr(1 + nonce_bytes, packet.size() - 1 - nonce_bytes - tag_bytes);
  auto tag = bytes(packet.substr(packet.size() - tag_bytes));
  auto aad = associated_data(purpose_);
  std::string plain(cipher.size(), '\0');
  bool authentic = false;
  for (const auto& k : keys_->keys())
    if ((authentic = decrypt(k, n.data(), aad, cipher, tag, bytes(plain, 0))))
      break;
  if (!authentic) {
    r.why = verdict::unauthenticated;
    return r;
  }

  uint64_t sent = 0;
  for (std::size_t i = 0; i < time_bytes; ++i)
    sent = sent << 8 | static_cast<unsigned char>(plain[i]);
  // Authentic but not trusted to be sane: a time past INT64_MAX is refused
  // before the subtraction could overflow.
  auto window = replay_.window.count();
  auto age = sent > static_cast<uint64_t>(INT64_MAX) ? INT64_MIN
                                                     : to_ms(now) - static_cast<int64_t>(sent);
  if (age > window || age < -window || !first_sighting(n)) {
    r.why = verdict::replayed;
    return r;
  }
  r.why = verdict::ok;
  r.payload = plain.substr(time_bytes);
  return r;
}

bool packet_codec::first_sighting(const nonce& n) {
  std::lock_guard lock{seen_mu_};
  if (!seen_.insert(n).second)
    return false;
  seen_order_.push_back(n);
  while (seen_order_.size() > replay_.remembered_nonces) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  return true;
}

} // namespace troupe::net
