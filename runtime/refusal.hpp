// Refusals: an actor saying no to a request for a reason its caller can act
// on. A refusal is a caf::error of category "refused" whose code says what
// to do (retry later or elsewhere, give up, fix the request) and whose
// context is the reason, for people. Across the wire ErrorReply.code carries
// the kind ("refused_retry", "refused_conflict", "refused_invalid",
// "refused_missing"), so a refusal keeps its kind through a forward; the API
// maps the kinds to 503, 409, 400 and 404 without reading the text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/all.hpp>

namespace troupe {

enum class refusal : std::uint8_t {
  retry = 1,     // may work later or on another server (no leader, a timeout)
  conflict = 2,  // final: the state refused it (fenced, an unknown command)
  invalid = 3,   // the request itself is wrong (an empty key)
  missing = 4,   // what it names does not exist (a service that is not there)
};

inline caf::error refuse(refusal kind, std::string why) {
  return caf::error{static_cast<std::uint8_t>(kind), caf::atom("refused"), caf::make_message(std::move(why))};
}

/// The kind of a refusal; nothing for any other error.
inline std::optional<refusal> refusal_of(const caf::error& err) {
  if (!err || err.category() != caf::atom("refused") || err.code() < 1 || err.code() > 4)
    return std::nullopt;
  return static_cast<refusal>(err.code());
}

/// ErrorReply.code of a refusal.
inline const char* wire_code(refusal kind) {
  switch (kind) {
    case refusal::retry: return "refused_retry";
    case refusal::conflict: return "refused_conflict";
    case refusal::invalid: return "refused_invalid";
    case refusal::missing: return "refused_missing";
  }
  return "refused_retry";
}

/// The refusal an ErrorReply.code names; nothing for other codes.
inline std::optional<refusal> refusal_from_wire(std::string_view code) {
  for (auto kind : {refusal::retry, refusal::conflict, refusal::invalid, refusal::missing})
    if (code == wire_code(kind))
      return kind;
  return std::nullopt;
}

} // namespace troupe
