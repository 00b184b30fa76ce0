// Readers and checks for the values operators type: integers, IP literals,
// strict base64, IP:PORT seeds, node names, label keys, CPU amounts and
// memory sizes. Each says yes or no (or what is wrong) without throwing;
// callers name the field.
#pragma once

#include "runtime/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace troupe {

/// A decimal integer, or nullopt. Values beyond long long saturate, which
/// every range check then rejects.
std::optional<long long> parse_integer(std::string_view text);

struct ip_literal {
  bool valid = false;
  bool v6 = false;
  bool unspecified = false;  // 0.0.0.0 or ::
};

/// An IPv4 or IPv6 literal (inet_pton), classified.
ip_literal read_ip(const std::string& text);

/// Base64, standard alphabet, '=' padding (what decode_base64 reads).
std::string encode_base64(std::string_view bytes);

/// Strict base64: the standard alphabet, '=' padding to a multiple of four,
/// and zero bits in the unused tail, so that every value has one spelling.
std::optional<std::string> decode_base64(std::string_view text);

inline constexpr std::string_view seed_form = "expected IP:PORT or [IPv6]:PORT";

/// What is wrong with a seed, or nullopt if it is IP:PORT or [IPv6]:PORT.
std::optional<std::string> seed_problem(const std::string& seed);

/// [a-z0-9][a-z0-9._-]{0,62}
bool valid_node_name(std::string_view name);

/// [a-zA-Z0-9._/-]{1,63}
bool valid_label_key(std::string_view key);

/// Printable ASCII only.
bool printable(std::string_view text);

/// "250m" -> 250, "0.5" -> 500, "2" -> 2000 (millicores). At least 1m; the
/// error quotes the text and shows the accepted forms; callers name the field.
result<std::uint32_t> parse_cpu(std::string_view text);

/// "64Mi", "1Gi" (also Ki, Ti), "100M" (also k, K, G), "512k" or plain bytes
/// ("1048576") -> bytes, more than 0. The error quotes the text and shows the
/// accepted forms; callers name the field.
result<std::uint64_t> parse_memory(std::string_view text);

} // namespace troupe
