#include "actors/raft/kv.hpp"

namespace troupe::raft {

namespace {

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>(v >> (8 * i)));
}

bool get_u64(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8)
    return false;
  v = 0;
  for (int i = 0; i < 8; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  in.remove_prefix(8);
  return true;
}

void put_text(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

bool get_text(std::string_view& in, std::string& s) {
  std::uint64_t n;
  if (!get_u64(in, n) || n > in.size())
    return false;
  s.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

constexpr char tag = 'K';  // first byte of every command

} // namespace

std::string encode(const kv_command& c) {
  std::string out{tag, static_cast<char>(c.kind)};
  put_u64(out, c.client);
  put_u64(out, c.seq);
  put_text(out, c.key);
  put_text(out, c.value);
  put_text(out, c.expected);
  return out;
}

std::optional<kv_command> decode_command(std::string_view in) {
  if (in.size() < 2 || in[0] != tag || static_cast<unsigned char>(in[1]) > static_cast<unsigned char>(kv_op::cas))
    return std::nullopt;
  kv_command c;
  c.kind = static_cast<kv_op>(in[1]);
  in.remove_prefix(2);
  std::uint64_t client;
  if (!get_u64(in, client) || client > UINT32_MAX || !get_u64(in, c.seq) || !get_text(in, c.key) ||
      !get_text(in, c.value) || !get_text(in, c.expected) || !in.empty())
    return std::nullopt;
  c.client = static_cast<std::uint32_t>(client);
  return c;
}

kv_result kv_store::apply(std::string_view bytes) {
  auto c = decode_command(bytes);
  if (!c) {
    ++rejected_;
    return {};
  }
  return apply(*c);
}

kv_result kv_store::apply(const kv_command& c) {
  kv_result r;
  r.applied = true;
  auto it = data_.find(c.key);
  switch (c.kind) {
  case kv_op::put:
    data_[c.key] = c.value;
    r.ok = true;
    break;
  case kv_op::get:
    r.ok = it != data_.end();
    if (r.ok)
      r.value = it->second;
    break;
  case kv_op::cas:
    r.ok = it != data_.end() && it->second == c.expected;
    if (r.ok)
      it->second = c.value;
    break;
  }
  return r;
}

std::optional<std::string> kv_store::get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end())
    return std::nullopt;
  return it->second;
}

std::string kv_store::snapshot() const {
  std::string out;
  put_u64(out, rejected_);
  put_u64(out, data_.size());
  for (const auto& [k, v] : data_) {
    put_text(out, k);
    put_text(out, v);
  }
  return out;
}

std::optional<kv_store> kv_store::restore(std::string_view in) {
  kv_store s;
  std::uint64_t n;
  if (in.empty())
    return s;  // no snapshot yet: the empty map
  if (!get_u64(in, s.rejected_) || !get_u64(in, n))
    return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!get_text(in, k) || !get_text(in, v))
      return std::nullopt;
    s.data_.emplace(std::move(k), std::move(v));
  }
  if (!in.empty())
    return std::nullopt;
  return s;
}

std::uint64_t kv_store::digest() const {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s)
      h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  for (const auto& [k, v] : data_) {
    mix(k);
    mix(v);
  }
  return h;
}

} // namespace troupe::raft
