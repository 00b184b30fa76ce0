// The interactive console: `troupectl` with no command, or `troupectl
// console`. Each line runs exactly what the one-shot command would: the
// console executes this program again with its global flags and the line's
// words, so output, errors and exit status are the same.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/troupectl/commands.hpp"

namespace troupectl {

/// Reads command lines from stdin, with line editing, history
/// ($TROUPE_HISTORY, else ~/.troupe_history) and completion when stdin is a
/// terminal, and runs each. `app` is troupectl's command tree (for
/// completion and help). Returns 0, or the status of the last line that
/// failed (a script), or the status given to `exit`.
int run_console(const CLI::App& app, const globals& g);

} // namespace troupectl
