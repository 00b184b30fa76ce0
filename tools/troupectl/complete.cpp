#include "tools/troupectl/complete.hpp"

#include <algorithm>
#include <set>

#include "runtime/text.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/service.pb.h"

namespace troupectl {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool visible(const CLI::App* sub) { return !sub->get_group().empty(); }

bool takes_value(const CLI::Option* opt) { return opt->nonpositional() && opt->get_type_size_max() > 0; }

/// A flag of `cmd` or of a command above it (global flags fall through).
const CLI::Option* find_flag(const CLI::App* cmd, const std::string& word) {
  for (; cmd; cmd = cmd->get_parent())
    for (auto* opt : cmd->get_options())
      if (opt->nonpositional() && opt->check_name(word))
        return opt;
  return nullptr;
}

const CLI::App* find_subcommand(const CLI::App* cmd, const std::string& word) {
  for (auto* sub : cmd->get_subcommands([](const CLI::App*) { return true; }))
    if (sub->check_name(word))
      return sub;
  return nullptr;
}

/// The positional that the `index`th positional word of `cmd` fills.
const CLI::Option* positional_at(const CLI::App* cmd, std::size_t index) {
  for (auto* opt : cmd->get_options()) {
    if (!opt->get_positional() || opt->nonpositional())
      continue;
    auto takes = static_cast<std::size_t>(std::max(opt->get_items_expected_max(), 1));
    if (index < takes)
      return opt;
    index -= takes;
  }
  return nullptr;
}

/// The values of an IsMember check, from its description "{a,b,c}".
std::vector<std::string> fixed_values(const CLI::Option* opt) {
  auto type = opt->get_type_name();
  auto open = type.find('{'), close = type.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return {};
  std::vector<std::string> values;
  std::string item;
  for (char c : type.substr(open + 1, close - open - 1)) {
    if (c == ',') {
      values.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  values.push_back(item);
  return values;
}

std::vector<std::string> actor_candidates(const std::string& current, const object_lookup& objects) {
  std::vector<std::string> out;
  if (auto slash = current.find('/'); slash != std::string::npos) {
    auto node = current.substr(0, slash);
    for (auto& a : objects(object_kind::actor, node))
      out.push_back(node + "/" + a);
    return out;
  }
  out = objects(object_kind::actor, "");
  for (auto& n : objects(object_kind::node, ""))
    out.push_back(n + "/");
  return out;
}

/// What the value of `opt` may be: its fixed values, or the live objects its
/// name says it names.
std::vector<std::string> values_of(const CLI::Option* opt, const std::string& current, const object_lookup& objects) {
  if (auto fixed = fixed_values(opt); !fixed.empty())
    return fixed;
  auto& lnames = opt->get_lnames();
  auto name = opt->get_positional() && !opt->nonpositional() ? opt->get_name(true) : std::string{};
  if (name == "NODE" || std::find(lnames.begin(), lnames.end(), "node") != lnames.end())
    return objects(object_kind::node, "");
  if (name == "SERVICE" || name == "TARGET")  // TARGET: logs, a service or a task
    return objects(object_kind::service, "");
  if (name == "ACTOR")
    return actor_candidates(current, objects);
  return {};
}

std::vector<std::string> flags_of(const CLI::App* cmd) {
  std::vector<std::string> out;
  for (; cmd; cmd = cmd->get_parent())
    for (auto* opt : cmd->get_options()) {
      for (auto& l : opt->get_lnames())
        out.push_back("--" + l);
      if (opt->get_lnames().empty())
        for (auto& s : opt->get_snames())
          out.push_back("-" + s);
    }
  return out;
}

} // namespace

std::vector<std::string> complete(const CLI::App& app, std::vector<std::string> words, const object_lookup& objects) {
  if (words.empty())
    words.emplace_back();
  auto current = words.back();
  words.pop_back();
  const CLI::App* cmd = &app;
  const CLI::Option* pending = nullptr;  // a flag whose value comes next
  std::size_t positionals = 0;
  bool only_positionals = false;  // after "--"
  for (auto& w : words) {
    if (pending) {
      pending = nullptr;
    } else if (only_positionals) {
      ++positionals;
    } else if (w == "--") {
      only_positionals = true;
    } else if (w.size() > 1 && w[0] == '-') {
      auto* flag = find_flag(cmd, w.substr(0, w.find('=')));
      if (flag && takes_value(flag) && w.find('=') == std::string::npos)
        pending = flag;
    } else if (auto* sub = find_subcommand(cmd, w)) {
      cmd = sub;
      positionals = 0;
    } else {
      ++positionals;
    }
  }
  std::vector<std::string> all;
  if (pending) {
    all = values_of(pending, current, objects);
  } else if (only_positionals) {
    return {};
  } else if (starts_with(current, "-")) {
    all = flags_of(cmd);
  } else {
    for (auto* sub : cmd->get_subcommands(visible))
      all.push_back(sub->get_name());
    if (auto* pos = positional_at(cmd, positionals))
      for (auto& v : values_of(pos, current, objects))
        all.push_back(v);
  }
  std::set<std::string> matching;
  for (auto& c : all)
    if (!c.empty() && starts_with(c, current))
      matching.insert(c);
  return {matching.begin(), matching.end()};
}

std::vector<std::string> complete_line(const CLI::App& app, globals g, const std::vector<std::string>& words) {
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    auto& w = words[i];
    if (w == "--")
      break;
    auto eq = w.find('=');
    auto name = w.substr(0, eq);
    if (name != "--addr" && name != "--token")
      continue;
    std::string value;
    if (eq != std::string::npos)
      value = w.substr(eq + 1);
    else if (i + 2 < words.size())
      value = words[++i];
    (name == "--addr" ? g.addr : g.token) = value;
  }
  return complete(app, words, agent_objects(g));
}

object_lookup agent_objects(const globals& g) {
  return [g](object_kind kind, const std::string& node) {
    client c{g.addr, g.token};
    c.set_connect_timeout(std::chrono::milliseconds{500});
    c.set_read_timeout(std::chrono::seconds{1});
    std::vector<std::string> names;
    if (kind == object_kind::node) {
      troupe::v1::MemberList list;
      if (c.get("/v1/members", list))
        for (auto& m : list.members())
          names.push_back(m.name());
    } else if (kind == object_kind::actor) {
      troupe::v1::ActorList list;
      if (c.get("/v1/actors" + (node.empty() ? "" : "?node=" + node), list))
        for (auto& a : list.actors())
          names.push_back(a.name());
    } else {
      troupe::v1::ServiceList list;
      if (c.get("/v1/services", list))
        for (auto& s : list.services()) {
          auto& spec = s.service().spec();
          bool plain = spec.namespace_().empty() || spec.namespace_() == "default";
          names.push_back(plain ? spec.name() : spec.namespace_() + "/" + spec.name());
        }
    }
    return names;
  };
}

std::vector<std::pair<std::string, std::string>> visible_commands(const CLI::App& app) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto* sub : app.get_subcommands(visible))
    out.emplace_back(sub->get_name(), sub->get_description());
  return out;
}

troupe::result<std::string> completion_script(const std::string& shell) {
  if (shell == "bash")
    return std::string{R"(# troupectl completion for bash; load it with
#   source <(troupectl completion bash)
# Candidates come from `troupectl __complete WORDS...`: commands and flags,
# and the services, nodes and actors of the agent at --addr / TROUPE_ADDR.
_troupectl() {
  local IFS=$'\n'
  COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  # NODE/ of NODE/ACTOR: the actor's name comes next, after no space.
  if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
    compopt -o nospace 2>/dev/null
  fi
  return 0
}
complete -o default -F _troupectl troupectl
)"};
  if (shell == "zsh")
    return std::string{R"(#compdef troupectl
# troupectl completion for zsh; load it (after compinit) with
#   source <(troupectl completion zsh)
# Candidates come from `troupectl __complete WORDS...`: commands and flags,
# and the services, nodes and actors of the agent at --addr / TROUPE_ADDR.
_troupectl() {
  local -a candidates more
  candidates=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(${candidates:#})
  more=(${(M)candidates:#*/})
  candidates=(${candidates:#*/})
  (( ${#more} )) && compadd -S '' -a more
  (( ${#candidates} )) && compadd -a candidates
  (( ${#candidates} + ${#more} )) || _files
}
compdef _troupectl troupectl
)"};
  return troupe::error{"completion: " + troupe::quote(shell) + " is not a shell troupectl completes; give bash or zsh"};
}

troupe::result<std::vector<std::string>> split_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        word += c;
    } else if (quote == '"') {
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\'))
        word += line[++i];
      else
        word += c;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word)
        words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 == line.size())
        return troupe::error{"a line may not end in a backslash"};
      word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote)
    return troupe::error{std::string{"unterminated "} + quote + " quote"};
  if (in_word)
    words.push_back(std::move(word));
  return words;
}

std::vector<std::string> join_word_breaks(const std::vector<std::string>& words) {
  std::vector<std::string> out;
  bool glue = false;  // the last word ended in ':': the next one continues it
  for (std::size_t i = 0; i < words.size(); ++i) {
    auto& w = words[i];
    bool last = i + 1 == words.size();
    if (w == "=" && !last)
      continue;
    if (w == ":" && !out.empty() && !last) {
      out.back() += w;
      glue = true;
      continue;
    }
    if (glue && !last)
      out.back() += w;
    else
      out.push_back(w);
    glue = false;
  }
  return out;
}

} // namespace troupectl
