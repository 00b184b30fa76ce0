#include "runtime/yaml_documents.hpp"

#include "runtime/text.hpp"

#include <yaml-cpp/eventhandler.h>

#include <sstream>
#include <vector>

namespace troupe {
namespace {

/// Where each document starts.
struct document_starts : YAML::EventHandler {
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

} // namespace

std::optional<yaml_document_problem> check_single_document(const std::string& text) {
  std::istringstream in{text};
  YAML::Parser parser{in};
  document_starts starts;
  // Three looks suffice: a stuck parser starts its next document where the last one started.
  for (int i = 0; i < 3 && parser.HandleNextDocument(starts); ++i) {
  }
  for (std::size_t i = 1; i < starts.marks.size(); ++i)
    if (starts.marks[i].pos <= starts.marks[i - 1].pos)
      return yaml_document_problem{yaml_document_problem::stray_token, starts.marks[i]};
  if (starts.marks.size() > 1)
    return yaml_document_problem{yaml_document_problem::second_document, starts.marks[1]};
  return std::nullopt;
}

std::string describe_yaml(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Sequence: return "a list";
  case YAML::NodeType::Map: return "a map";
  case YAML::NodeType::Scalar: return quote(node.Scalar());
  default: return "nothing";
  }
}

} // namespace troupe
