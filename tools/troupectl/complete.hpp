// Completion of troupectl command lines: the console's TAB and the bash and
// zsh scripts (which call `troupectl __complete WORDS...`) share it. Commands,
// subcommands, flags and a flag's fixed values come from the CLI11 tree that
// main.cpp builds; what a value names (a node, an actor, a service) comes
// from the name of its flag or positional: --node and NODE, ACTOR, SERVICE.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/result.hpp"
#include "tools/troupectl/commands.hpp"

namespace troupectl {

enum class object_kind { node, actor, service };

/// The names of the cluster's live objects of one kind; for actors, those
/// of `node` ("" the agent asked). Empty when the agent does not answer.
using object_lookup = std::function<std::vector<std::string>(object_kind kind, const std::string& node)>;

/// Candidates for the last of `words` (the word being typed, maybe empty);
/// the words before it are a command line without the program name. Sorted,
/// each starting with the last word. A candidate ending in '/' (NODE/ of
/// NODE/ACTOR) wants more typed after it.
std::vector<std::string> complete(const CLI::App& app, std::vector<std::string> words, const object_lookup& objects);

/// complete() with the agent of `g` asked for live objects, or the agent
/// that the words' own --addr and --token name.
std::vector<std::string> complete_line(const CLI::App& app, globals g, const std::vector<std::string>& words);

/// Asks the agent of `g` (its address and token), waiting at most about a
/// second per lookup so that a dead agent never holds up a prompt.
object_lookup agent_objects(const globals& g);

/// The commands of `app` a person sees (not the hidden ones): each as
/// "name", "  description", in the order main.cpp declares them.
std::vector<std::pair<std::string, std::string>> visible_commands(const CLI::App& app);

/// The completion script for `shell` ("bash" or "zsh"); an error names the
/// shells there are.
troupe::result<std::string> completion_script(const std::string& shell);

/// A console line split as a shell splits words: blanks separate them,
/// '...' and "..." quote, a backslash escapes the next character (in "..."
/// only before " and \). An unterminated quote is an error.
troupe::result<std::vector<std::string>> split_words(const std::string& line);

/// Words as bash gives them in COMP_WORDS, where ':' and '=' (in
/// COMP_WORDBREAKS) are words of their own: "127.0.0.1" ":" "7070" joined
/// back into one word, a "=" after a flag dropped.
std::vector<std::string> join_word_breaks(const std::vector<std::string>& words);

} // namespace troupectl
