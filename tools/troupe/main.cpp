// troupe: the agent binary. `troupe agent ...` runs an agent (see
// docs/operations.md); `troupe version` prints the version.
#include <cstdio>
#include <string>
#include <vector>

#include "actors/agent/agent.hpp"
#include "runtime/config.hpp"

namespace {

constexpr const char* usage =
  "usage: troupe agent --name NAME --data-dir DIR --bind IP [flags]   run an agent\n"
  "       troupe version                                             print the version\n"
  "Run 'troupe agent --help' for the agent's flags.\n";

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(usage, args.empty() ? stderr : stdout);
    return args.empty() ? troupe::exit_usage : troupe::exit_ok;
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::printf("troupe %s\n", TROUPE_VERSION);
    return troupe::exit_ok;
  }
  if (args[0] != "agent") {
    std::fprintf(stderr, "troupe: unknown command '%s'\n%s", args[0].c_str(), usage);
    return troupe::exit_usage;
  }
  args.erase(args.begin());
  auto outcome = troupe::parse_agent_command_line(args);
  if (!outcome.config) {
    std::fputs(outcome.message.c_str(), outcome.exit_code == 0 ? stdout : stderr);
    if (!outcome.message.empty() && outcome.message.back() != '\n')
      std::fputc('\n', outcome.exit_code == 0 ? stdout : stderr);
    return outcome.exit_code;
  }
  return troupe::run_agent(*outcome.config);
}
