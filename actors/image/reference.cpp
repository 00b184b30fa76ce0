#include "actors/image/reference.hpp"

#include "actors/image/digest.hpp"
#include "runtime/text.hpp"

#include <vector>

namespace troupe::image {
namespace {

// Docker caps the whole name (registry and repository) at 255 bytes.
constexpr std::size_t max_name_length = 255;
constexpr std::size_t max_tag_length = 128;

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

// [a-z0-9]+ joined by one separator: '.', '_', "__" or a run of '-'.
bool valid_path_component(std::string_view s) {
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    while (i < s.size() && lower_alnum(s[i]))
      ++i;
    if (i == start)
      return false;
    if (i == s.size())
      return true;
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      i += (i + 1 < s.size() && s[i + 1] == '_') ? 2 : 1;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-')
        ++i;
    } else {
      return false;
    }
  }
}

// host labels [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by '.', then an
// optional ":port" of 1 to 65535.
bool valid_registry(std::string_view s) {
  auto colon = s.find(':');
  auto host = s.substr(0, colon);
  if (host.empty())
    return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    auto dot = host.find('.', start);
    auto label = host.substr(start, dot == std::string_view::npos ? host.size() - start
                                                                  : dot - start);
    if (label.empty() || !alnum(label.front()) || !alnum(label.back()))
      return false;
    for (char c : label)
      if (!alnum(c) && c != '-')
        return false;
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  if (colon == std::string_view::npos)
    return true;
  auto port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5)
    return false;
  unsigned value = 0;
  for (char c : port) {
    if (!digit(c))
      return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value >= 1 && value <= 65535;
}

bool valid_tag(std::string_view s) {
  if (s.empty() || s.size() > max_tag_length)
    return false;
  if (!(alnum(s.front()) || s.front() == '_'))
    return false;
  for (char c : s)
    if (!(alnum(c) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

bool looks_like_registry(std::string_view first) {
  return first == "localhost" || first.find_first_of(".:") != std::string_view::npos;
}

} // namespace

result<reference> reference::parse(std::string_view text) {
  auto fail = [&](const std::string& what) {
    return error{"image name " + quote(text) + ": " + what};
  };
  if (text.empty())
    return error{"image name is empty (want REPO[:TAG], e.g. busybox:1)"};

  reference ref;
  auto rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    auto d = digest::parse(rest.substr(at + 1));
    if (!d)
      return fail(d.error().message());
    ref.digest = d->str();
    rest = rest.substr(0, at);
  }
  // A ':' after the last '/' starts the tag; one before it is a registry port.
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    auto tag = rest.substr(colon + 1);
    if (!valid_tag(tag))
      return fail("tag " + quote(tag) +
                  " must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'");
    ref.tag = std::string{tag};
    rest = rest.substr(0, colon);
  }
  if (rest.empty())
    return fail("the repository is missing");
  if (rest.size() > max_name_length)
    return fail("the repository name is longer than 255 bytes");

  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    auto end = rest.find('/', start);
    parts.push_back(rest.substr(start, end == std::string_view::npos ? rest.size() - start
                                                                     : end - start));
    if (end == std::string_view::npos)
      break;
    start = end + 1;
  }
  std::size_t first = 0;
  if (parts.size() > 1 && looks_like_registry(parts.front())) {
    if (!valid_registry(parts.front()))
      return fail("registry " + quote(parts.front()) +
                  " must be a host name (letters, digits, '-', '.') with an optional :port");
    ref.registry = std::string{parts.front()};
    first = 1;
  }
  for (std::size_t i = first; i < parts.size(); ++i) {
    if (!valid_path_component(parts[i]))
      return fail("repository component " + quote(parts[i]) +
                  " must be lowercase letters and digits, joined by '.', '_', '__' or '-'");
    if (!ref.repository.empty())
      ref.repository += '/';
    ref.repository += parts[i];
  }
  if (ref.tag.empty() && ref.digest.empty())
    ref.tag = "latest";
  return ref;
}

std::string reference::name() const {
  return registry.empty() ? repository : registry + "/" + repository;
}

std::string reference::canonical() const {
  auto out = name();
  if (!tag.empty())
    out += ":" + tag;
  if (!digest.empty())
    out += "@" + digest;
  return out;
}

} // namespace troupe::image
