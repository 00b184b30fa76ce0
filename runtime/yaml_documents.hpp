// What the YAML readers (agent config, service specs) share. How many YAML
// documents a text holds, without YAML::LoadAll: in yaml-cpp
// 0.7 LoadAll never returns on a stray ',' at the top level (each call
// yields one more empty document without consuming the token), so a config
// file or a service spec with one would hang the process until it runs out
// of memory. An event pass over the first documents finds the same thing in
// bounded time.
#pragma once

#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

namespace troupe {

/// Why a text is not exactly one YAML document (an empty text is one).
struct yaml_document_problem {
  enum { stray_token, second_document } kind;
  YAML::Mark mark;  // where the offending document starts
};

/// Nothing when `text` holds at most one document. Throws YAML::Exception on
/// a syntax error, as YAML::Load does.
std::optional<yaml_document_problem> check_single_document(const std::string& text);

/// A YAML value for an error message: "a list", "a map", the scalar quoted,
/// or "nothing".
std::string describe_yaml(const YAML::Node& node);

} // namespace troupe
