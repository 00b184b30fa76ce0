#include "actors/image/digest.hpp"

#include "runtime/text.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace troupe::image {

result<digest> digest::parse(std::string_view text) {
  constexpr std::string_view prefix = "sha256:";
  auto bad = [&](const char* why) {
    return error{"digest " + quote(text) + " " + why +
                 " (want sha256:<64 lowercase hex digits>)"};
  };
  if (text.substr(0, prefix.size()) != prefix)
    return bad("is not a sha256 digest");
  auto hex = text.substr(prefix.size());
  if (hex.size() != 64)
    return bad("has the wrong length");
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return bad("has a character that is not a lowercase hex digit");
  return digest{std::string{hex}};
}

digest digest::of(std::string_view bytes) {
  sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.finish();
}

struct sha256::state {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state() { EVP_MD_CTX_free(ctx); }
};

// The EVP calls below only fail when OpenSSL cannot allocate or its sha256
// is disabled (a broken install): neither is an input error to report, so
// they end the process like any other allocation failure.
namespace {
[[noreturn]] void evp_failed(const char* what) {
  std::fprintf(stderr, "troupe: OpenSSL %s failed for sha256\n", what);
  std::abort();
}
} // namespace

sha256::sha256() : state_(std::make_unique<state>()) {
  if (state_->ctx == nullptr)
    throw std::bad_alloc{};
  if (EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1)
    evp_failed("EVP_DigestInit_ex");
}

sha256::~sha256() = default;
sha256::sha256(sha256&&) noexcept = default;
sha256& sha256::operator=(sha256&&) noexcept = default;

void sha256::update(const void* data, std::size_t size) {
  if (size > 0 && EVP_DigestUpdate(state_->ctx, data, size) != 1)
    evp_failed("EVP_DigestUpdate");
}

digest sha256::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(state_->ctx, md, &len) != 1 || len != 32)
    evp_failed("EVP_DigestFinal_ex");
  static const char* digits = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (unsigned i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 0xf];
  }
  return digest{std::move(hex)};
}

} // namespace troupe::image
