#include "tools/troupectl/console.hpp"

#include <histedit.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "tools/troupectl/complete.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupectl {

namespace {

using namespace std::chrono_literals;

volatile std::sig_atomic_t interrupted = 0;

void on_interrupt(int) { interrupted = 1; }

/// Ctrl-C stops the command running (it gets the signal too, in the
/// terminal's foreground process group) or a watch, not the console.
void catch_interrupts() {
  struct sigaction sa{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a waiting read or sleep returns
  sigaction(SIGINT, &sa, nullptr);
}

/// The console's own commands.
struct builtin {
  std::vector<std::string> names;
  std::string usage, what;
};
const std::vector<builtin> builtins{
  {{"help"}, "help [COMMAND]", "the commands, or one command's flags and arguments"},
  {{"watch"}, "watch [-n SECS] COMMAND", "clear the screen and rerun COMMAND every SECS seconds (1) until Ctrl-C"},
  {{"exit", "quit"}, "exit [STATUS], quit, Ctrl-D", "leave the console"},
};

struct session {
  const CLI::App& app;
  globals g;
  std::string prompt;
};

/// Runs this program with the console's output format and `words`; its exit
/// status (128 + the signal that killed it).
int run_command(const session& s, const std::vector<std::string>& words) {
  // TROUPE_ADDR and TROUPE_TOKEN (set by run_console) carry the address and
  // token: a flag on the line still wins, and the token stays out of `ps`.
  std::vector<std::string> args{s.app.get_name().empty() ? "troupectl" : s.app.get_name(), "-o", s.g.output};
  args.insert(args.end(), words.begin(), words.end());
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0)
    return std::fprintf(stderr, "troupectl: cannot start the command: %s\n", std::strerror(errno)), exit_failed;
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "troupectl: cannot run /proc/self/exe: %s\n", std::strerror(errno));
    ::_exit(exit_failed);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int help(const session& s, const std::vector<std::string>& topic) {
  if (!topic.empty()) {
    for (auto& b : builtins)
      if (std::find(b.names.begin(), b.names.end(), topic[0]) != b.names.end())
        return print(b.usage + "\n  " + b.what + "\n"), exit_ok;
    auto words = topic;
    words.emplace_back("--help");
    return run_command(s, words);
  }
  // A table, so that a narrow terminal cuts the descriptions instead of
  // wrapping them; its first row (the header) is left out.
  table t{{"", ""}};
  for (auto& [name, what] : visible_commands(s.app))
    t.add({"  " + name, what});
  t.add({""});
  t.add({"Console:"});
  for (auto& b : builtins)
    t.add({"  " + b.usage, b.what});
  auto rows = t.str(false);
  auto out = "Commands (help COMMAND for one):\n" + rows.substr(rows.find('\n') + 1);
  out += "\nEvery line runs as `troupectl LINE` would, with the console's --addr, --token and -o;\n"
         "a line may give its own. TAB completes commands, flags, services, nodes and actors.\n";
  print(out);
  return exit_ok;
}

int watch(const session& s, std::vector<std::string> words) {
  double secs = 1;
  if (!words.empty() && words[0] == "-n") {
    char* end = nullptr;
    secs = words.size() > 1 ? std::strtod(words[1].c_str(), &end) : 0;
    if (words.size() < 2 || *end != '\0' || !(secs >= 0.1 && secs <= 86400))
      return usage("watch -n: give the seconds between runs, 0.1 to 86400");
    words.erase(words.begin(), words.begin() + 2);
  }
  if (words.empty())
    return usage("watch: give a command to rerun, for example: watch -n 2 services");
  std::string line;
  for (auto& w : words)
    line += (line.empty() ? "" : " ") + w;
  bool tty = ::isatty(STDOUT_FILENO) == 1;
  interrupted = 0;
  while (!interrupted) {
    if (tty)
      print("\033[H\033[2J");
    std::printf("Every %gs: %s   (Ctrl-C to stop)\n\n", secs, line.c_str());
    run_command(s, words);
    for (auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(secs);
         !interrupted && std::chrono::steady_clock::now() < until;)
      std::this_thread::sleep_for(20ms);
  }
  print("\n");
  return exit_ok;
}

struct outcome {
  int status = exit_ok;
  bool leave = false;  // exit or quit; `status` given with it when `given`
  bool given = false;
};

outcome run_line(const session& s, const std::string& text) {
  auto words = split_words(text);
  if (!words)
    return {usage(words.error().message())};
  auto& w = *words;
  if (w.empty() || w[0][0] == '#')
    return {};
  if (w[0] == "exit" || w[0] == "quit") {
    if (w.size() == 1)
      return {exit_ok, true};
    char* end = nullptr;
    long code = std::strtol(w[1].c_str(), &end, 10);
    if (w.size() > 2 || *end != '\0' || code < 0 || code > 255)
      return {usage(w[0] + ": give no status or one from 0 to 255")};
    return {static_cast<int>(code), true, true};
  }
  if (w[0] == "help")
    return {help(s, {w.begin() + 1, w.end()})};
  if (w[0] == "watch")
    return {watch(s, {w.begin() + 1, w.end()})};
  interrupted = 0;
  return {run_command(s, w)};
}

/// "troupe node-1 [leader node-2 t3]> ", asked with short timeouts.
std::string prompt_of(const globals& g) {
  client c{g.addr, g.token};
  c.set_connect_timeout(500ms);
  c.set_read_timeout(1s);
  troupe::v1::NodeStatus st;
  if (!c.get("/v1/status", st))
    return "troupe " + g.addr + " [unreachable]> ";
  troupe::v1::RaftStatus raft;
  std::string leader = !c.get("/v1/raft", raft) ? "raft unknown"
                       : raft.leader().empty()  ? "no leader t" + std::to_string(raft.term())
                                                : "leader " + raft.leader() + " t" + std::to_string(raft.term());
  return "troupe " + st.name() + " [" + leader + "]> ";
}

std::string history_path() {
  if (const char* p = std::getenv("TROUPE_HISTORY"); p && *p)
    return p;
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    auto* pw = ::getpwuid(::getuid());
    home = pw ? pw->pw_dir : nullptr;
  }
  return home ? std::string{home} + "/.troupe_history" : std::string{};
}

/// The console's history: the last 1000 lines, saved after every line so
/// that a console killed keeps them.
class history_file {
public:
  explicit history_file(std::string path) : h_(::history_init()), path_(std::move(path)) {
    ::history(h_, &ev_, H_SETSIZE, 1000);
    ::history(h_, &ev_, H_SETUNIQUE, 1);
    if (!path_.empty())
      ::history(h_, &ev_, H_LOAD, path_.c_str());  // none yet is fine
  }
  ~history_file() { ::history_end(h_); }
  history_file(const history_file&) = delete;
  history_file& operator=(const history_file&) = delete;

  History* get() const { return h_; }

  void add(const std::string& line) {
    ::history(h_, &ev_, H_ENTER, line.c_str());
    if (!path_.empty() && ::history(h_, &ev_, H_SAVE, path_.c_str()) < 0 && !warned_) {
      std::fprintf(stderr, "troupectl: cannot save the history to %s: %s\n", path_.c_str(), std::strerror(errno));
      warned_ = true;
    }
  }

private:
  History* h_;
  HistEvent ev_{};
  std::string path_;
  bool warned_ = false;
};

/// The words of a line up to the cursor, the last one the word being typed
/// ("" after a blank); a quote still open is closed.
std::vector<std::string> words_to_complete(const std::string& text) {
  auto words = split_words(text);
  for (const char* close : {"'", "\""})
    if (!words)
      words = split_words(text + close);
  if (!words)
    return {};
  auto w = *words;
  if (text.empty() || text.back() == ' ' || text.back() == '\t')
    w.emplace_back();
  return w;
}

std::vector<std::string> candidates(const session& s, std::vector<std::string> words) {
  if (words.size() == 1) {
    auto out = complete_line(s.app, s.g, words);
    for (auto& b : builtins)
      for (auto& name : b.names)
        if (name.compare(0, words[0].size(), words[0]) == 0)
          out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
  }
  // help and watch take a command: complete it as one.
  if (words[0] == "watch" && words[1] == "-n") {
    if (words.size() <= 3)
      return {};  // the seconds
    words.erase(words.begin() + 1, words.begin() + 3);
  }
  if (words[0] == "help" || words[0] == "watch")
    words.erase(words.begin());
  return complete_line(s.app, s.g, words);
}

std::string common_prefix(const std::vector<std::string>& all) {
  std::string prefix = all.front();
  for (auto& c : all)
    prefix.resize(std::mismatch(prefix.begin(), prefix.end(), c.begin(), c.end()).first - prefix.begin());
  return prefix;
}

session* session_of(EditLine* el) {
  void* data = nullptr;
  el_get(el, EL_CLIENTDATA, &data);
  return static_cast<session*>(data);
}

char* prompt_fn(EditLine* el) { return session_of(el)->prompt.data(); }

/// TAB: one candidate is inserted, several their common start, or listed.
unsigned char on_tab(EditLine* el, int) {
  const LineInfo* li = el_line(el);
  auto words = words_to_complete(std::string(li->buffer, li->cursor));
  if (words.empty())
    return CC_REFRESH_BEEP;
  auto all = candidates(*session_of(el), words);
  if (all.empty())
    return CC_REFRESH_BEEP;
  auto& current = words.back();
  auto common = common_prefix(all);
  if (all.size() == 1) {
    auto rest = common.substr(current.size()) + (common.back() == '/' ? "" : " ");
    el_insertstr(el, rest.c_str());
    return CC_REFRESH;
  }
  if (common.size() > current.size()) {
    el_insertstr(el, common.substr(current.size()).c_str());
    return CC_REFRESH;
  }
  std::size_t widest = 0;
  for (auto& c : all)
    widest = std::max(widest, c.size());
  auto term = terminal_width() ? terminal_width() : 80;
  auto per_line = std::max<std::size_t>(1, term / (widest + 2));
  std::string list = "\n";
  for (std::size_t i = 0; i < all.size(); ++i) {
    bool end = (i + 1) % per_line == 0 || i + 1 == all.size();
    list += all[i] + (end ? "\n" : std::string(widest - all[i].size() + 2, ' '));
  }
  print(list);
  return CC_REDISPLAY;
}

int interactive(session& s) {
  history_file hist{history_path()};
  EditLine* el = el_init("troupectl", stdin, stdout, stderr);
  if (!el)
    return std::fprintf(stderr, "troupectl: cannot start line editing on this terminal\n"), exit_failed;
  el_set(el, EL_CLIENTDATA, &s);
  el_set(el, EL_PROMPT, &prompt_fn);
  el_set(el, EL_EDITOR, "emacs");
  el_set(el, EL_SIGNAL, 1);
  el_set(el, EL_HIST, history, hist.get());
  // el_wset: el_set copies the name and help of a function and never frees them.
  el_wset(el, EL_ADDFN, L"troupectl-complete", L"complete a command, flag, service, node or actor", &on_tab);
  el_set(el, EL_BIND, "^I", "troupectl-complete", nullptr);
  el_source(el, nullptr);  // ~/.editrc
  for (;;) {
    s.prompt = prompt_of(s.g);
    interrupted = 0;
    int count = 0;
    const char* line = el_gets(el, &count);
    if (!line && count < 0 && errno == EINTR) {
      print("\n");  // Ctrl-C at the prompt: a fresh line
      continue;
    }
    if (!line) {
      print("\n");  // Ctrl-D
      break;
    }
    std::string text{line};
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
      text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos)
      continue;
    hist.add(text);
    auto o = run_line(s, text);
    if (o.leave) {
      el_end(el);
      return o.status;
    }
    if (o.status != exit_ok && !(o.status == 128 + SIGINT && interrupted))
      std::fprintf(stderr, "[exit %d]\n", o.status);
  }
  el_end(el);
  return exit_ok;
}

/// Lines from a script or a pipe: no editing, no prompt.
int scripted(session& s) {
  int last_failed = exit_ok;
  std::string text;
  while (std::getline(std::cin, text)) {
    auto o = run_line(s, text);
    if (o.leave)
      return o.given ? o.status : last_failed;
    if (o.status != exit_ok)
      last_failed = o.status;
  }
  return last_failed;
}

} // namespace

int run_console(const CLI::App& app, const globals& g) {
  ::setenv("TROUPE_ADDR", g.addr.c_str(), 1);
  if (!g.token.empty())
    ::setenv("TROUPE_TOKEN", g.token.c_str(), 1);
  catch_interrupts();
  session s{app, g, {}};
  return ::isatty(STDIN_FILENO) == 1 ? interactive(s) : scripted(s);
}

} // namespace troupectl
