// The interactive console on a pseudo-terminal, its scripted form, and the
// bash and zsh completion scripts, against a real agent.
#include <httplib.h>

#include <thread>

#include "tests/integration/agent_fixture.hpp"
#include "tests/integration/pty.hpp"
#include "troupe/v1/cluster.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

std::string addr_of(const agent& a) { return "127.0.0.1:" + std::to_string(a.http); }

/// Starts the agent and waits until it leads its one-node cluster, so that
/// the first prompt names the leader.
void start_leading(agent& a) {
  a.start();
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(a.token);
  bool leads = eventually(10s, [&] {
    auto res = http.Get("/v1/raft");
    return res && res->status == 200 && parse_json<v1::RaftStatus>(res->body).leader() == a.name;
  });
  REQUIRE_MESSAGE(leads, "the agent did not lead within 10s; log ends:\n" << a.log_tail());
}

/// `troupectl --addr ADDR [extra...] console` on a terminal, its history in the agent's dir.
std::unique_ptr<pty_session> console(const agent& a, const std::string& addr, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{TROUPECTL_BIN, "--addr", addr};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::vector<std::string> env{"TERM=xterm", "HOME=" + a.dir.path().string(),
                               "TROUPE_HISTORY=" + (a.dir.path() / "history").string(), "TROUPE_TOKEN=" + a.token};
  return std::make_unique<pty_session>(argv, env, a.dir.path());
}

const std::string prompt = "troupe it [leader it t";

/// `script` run by `sh -c` in the agent's dir; `troupectl` in it is the built one.
run_result shell(const agent& a, const std::string& program, const std::string& script) {
  return run({"/usr/bin/env", "TROUPECTL=" + std::string{TROUPECTL_BIN}, "TROUPE_ADDR=" + addr_of(a),
              "TROUPE_TOKEN=" + a.token, program, "-c",
              script},
             a.dir.path());
}

} // namespace

TEST_CASE("the console shows the node and the leader in its prompt and runs what is typed as troupectl would") {
  agent a;
  start_leading(a);
  auto c = console(a, addr_of(a));
  REQUIRE_MESSAGE(c->expect(prompt), c->screen());
  c->type("actors\r");
  CHECK(c->expect("ACTOR"));
  CHECK(c->expect("monitor"));
  REQUIRE(c->expect(prompt));
  c->type("-o json status\r");  // the line's own flags
  CHECK(c->expect("\"name\": \"it\""));
  REQUIRE(c->expect(prompt));
  c->type("service inspect nosuch\r");  // a failure: its message, then its status
  CHECK(c->expect("nosuch"));
  CHECK(c->expect("[exit 1]"));
  REQUIRE(c->expect(prompt));
  c->type("bogus\r");
  CHECK(c->expect("unknown command 'bogus'"));
  CHECK(c->expect("[exit 2]"));
  REQUIRE(c->expect(prompt));
  c->type("exit 3\r");
  CHECK(c->wait(5s) == 3);
}

TEST_CASE("TAB completes commands, subcommands, flags' values and live actor names") {
  agent a;
  start_leading(a);
  auto c = console(a, addr_of(a));
  REQUIRE_MESSAGE(c->expect(prompt), c->screen());
  // Two commands start with "servi": TAB completes their common "service",
  // a second TAB lists both.
  c->type("servi\t\t");
  CHECK_MESSAGE(c->expect("service   services"), c->screen());
  CHECK(c->expect("> service"));  // the line again, with "service" typed
  c->type("s\r");
  CHECK(c->expect("NAME  VERSION"));
  REQUIRE(c->expect(prompt));
  // Subcommand and the agent's own actor: typed short, the kill still works.
  c->type("actor ki\tmoni\t\r");
  CHECK(c->expect("killed monitor"));
  REQUIRE(c->expect(prompt));
  c->type("actors -o y\t\r");  // -o's values come from its check
  CHECK(c->expect("actors:"));
  REQUIRE(c->expect(prompt));
  // help and watch take a command, completed as one.
  c->type("help actor k\t\r");
  CHECK(c->expect("ACTOR or NODE/ACTOR"));
  REQUIRE(c->expect(prompt));
  c->type("watch -n 5 vers\t\r");
  CHECK(c->expect("Every 5s: version"));
  CHECK(c->expect("troupectl 0.1.0"));
  c->send("\x03");
  REQUIRE(c->expect(prompt));
  c->type("\x04");  // Ctrl-D
  CHECK(c->wait(5s) == 0);
  CHECK(eventually(2s, [&] { return a.respawned("monitor", 1); }));
}

TEST_CASE("a second console recalls the first one's commands from the history file") {
  agent a;
  start_leading(a);
  auto history = a.dir.path() / "history";
  {
    auto c = console(a, addr_of(a));
    REQUIRE_MESSAGE(c->expect(prompt), c->screen());
    c->type("version\r");
    CHECK(c->expect("troupectl 0.1.0"));
    REQUIRE(c->expect(prompt));
    // Saved after every line: a console killed now keeps it.
    CHECK(contains(read_file(history), "version"));
  }  // killed
  auto c = console(a, addr_of(a));
  REQUIRE_MESSAGE(c->expect(prompt), c->screen());
  c->type("\033[A\r");  // up arrow, Enter
  CHECK(c->expect("troupectl 0.1.0"));
  REQUIRE(c->expect(prompt));
  c->type("exit\r");
  CHECK(c->wait(5s) == 0);
}

TEST_CASE("watch reruns a command until Ctrl-C, which returns to the prompt") {
  agent a;
  start_leading(a);
  auto c = console(a, addr_of(a));
  REQUIRE_MESSAGE(c->expect(prompt), c->screen());
  c->type("watch -n 0.3 actors\r");
  CHECK(c->expect("\033[H\033[2J"));  // cleared
  CHECK(c->expect("Every 0.3s: actors"));
  CHECK(c->expect("monitor"));
  CHECK(c->expect("Every 0.3s: actors"));  // and again
  CHECK(c->expect("monitor"));
  c->send("\x03");  // Ctrl-C
  REQUIRE(c->expect(prompt));
  c->type("version\r");  // the console lives on
  CHECK(c->expect("troupectl 0.1.0"));
  REQUIRE(c->expect(prompt));
  c->type("watch -n x actors\r");
  CHECK(c->expect("watch -n: give the seconds between runs"));
  REQUIRE(c->expect(prompt));
  c->type("exit\r");
  CHECK(c->wait(5s) == 0);
}

TEST_CASE("help lists the commands from the command tree and a command's own help") {
  agent a;
  start_leading(a);
  auto c = console(a, addr_of(a));
  REQUIRE_MESSAGE(c->expect(prompt), c->screen());
  c->type("help\r");
  CHECK(c->expect("Commands"));
  CHECK(c->expect("status"));
  CHECK(c->expect("completion"));
  CHECK(c->expect("watch [-n SECS] COMMAND"));
  REQUIRE(c->expect(prompt));
  c->type("help actor kill\r");
  CHECK(c->expect("ACTOR or NODE/ACTOR"));
  REQUIRE(c->expect(prompt));
  c->type("help watch\r");  // the console's own commands too
  CHECK(c->expect("watch [-n SECS] COMMAND\r\n  clear the screen"));
  REQUIRE(c->expect(prompt));
  c->type("exit\r");
  CHECK(c->wait(5s) == 0);
}

TEST_CASE("a console whose agent is down or silent says so in its prompt and does not hang") {
  agent a;  // not started: nothing listens on its port
  // A socket that listens but never accepts: connections succeed, and no reply ever comes.
  struct silent_listener {
    uint16_t port = free_port();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ~silent_listener() { ::close(fd); }
  } silent;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(silent.port);
  REQUIRE(::bind(silent.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(silent.fd, 16) == 0);
  for (auto addr : {addr_of(a), "127.0.0.1:" + std::to_string(silent.port)}) {
    CAPTURE(addr);
    auto t0 = std::chrono::steady_clock::now();
    auto c = console(a, addr);
    REQUIRE_MESSAGE(c->expect("troupe " + addr + " [unreachable]> ", 5s), c->screen());
    auto prompt_took = std::chrono::steady_clock::now() - t0;
    CHECK(prompt_took < 3s);  // 1 s waiting for the reply, and the start
    c->type("actor kill mo\t");  // no actors to offer, and no long wait for them
    c->type("\x15" "version\r");  // Ctrl-U clears the line
    CHECK(c->expect("troupectl 0.1.0"));
    REQUIRE(c->expect("[unreachable]> ", 5s));
    c->type("exit\r");
    CHECK(c->wait(5s) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);  // not the 120 s a command waits
  }
}

TEST_CASE("lines not from a terminal run as a script that exits with the last failure") {
  agent a;
  start_leading(a);
  auto ok = shell(a, "sh", "printf 'version\\n\\n# a comment\\nactors\\n' | $TROUPECTL");
  CHECK(ok.code == 0);
  CHECK(contains(ok.output, "troupectl 0.1.0"));
  CHECK(contains(ok.output, "monitor"));
  CHECK(!contains(ok.output, "troupe it"));  // no prompt
  auto failed = shell(a, "sh", "printf 'service inspect nosuch\\nrun\\nversion\\n' | $TROUPECTL console");
  CHECK(failed.code == 2);  // run without an IMAGE: a usage error, the last failure
  CHECK(contains(failed.output, "troupectl 0.1.0"));
  auto quoted = shell(a, "sh", "printf \"actor kill 'moni\\n\" | $TROUPECTL");
  CHECK(quoted.code == 2);
  CHECK(contains(quoted.output, "unterminated ' quote"));
}

TEST_CASE("the console passes its token to every command and every completion request") {
  std::mutex mu;
  std::vector<std::string> seen;
  struct fake_agent {  // records who asks
    httplib::Server server;
    std::thread thread;
    ~fake_agent() {
      server.stop();
      if (thread.joinable())
        thread.join();
    }
  } fake;
  auto reply = [&](const std::string& body) {
    return [&, body](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock{mu};
      seen.push_back(req.path + " " + req.get_header_value("Authorization"));
      res.set_content(body, "application/json");
    };
  };
  fake.server.Get("/v1/status", reply(R"({"name": "fake"})"));
  fake.server.Get("/v1/raft", reply(R"({"leader": "fake", "term": "7"})"));
  fake.server.Get("/v1/members", reply(R"({"members": [{"name": "fake"}]})"));
  fake.server.Get("/v1/actors", reply(R"({"node": "fake", "actors": [{"name": "monitor", "state": "running"}]})"));
  auto port = free_port();
  fake.thread = std::thread{[&] { fake.server.listen("127.0.0.1", port); }};
  REQUIRE(eventually(5s, [&] { return fake.server.is_running(); }));
  agent a;  // for its scratch dir
  {
    auto c = console(a, "127.0.0.1:" + std::to_string(port), {"--token", "s3cret"});
    REQUIRE_MESSAGE(c->expect("troupe fake [leader fake t7]> "), c->screen());
    c->type("actor kill moni\t\x15" "actors\r");
    CHECK(c->expect("monitor"));
    REQUIRE(c->expect("troupe fake"));
    c->type("exit\r");
    CHECK(c->wait(5s) == 0);
  }
  std::lock_guard lock{mu};
  CHECK(std::count(seen.begin(), seen.end(), "/v1/actors Bearer s3cret") == 2);  // completion, command
  CHECK(std::count(seen.begin(), seen.end(), "/v1/members Bearer s3cret") == 1);
  for (auto& s : seen)
    CHECK(contains(s, " Bearer s3cret"));
}

TEST_CASE("the bash completion script completes commands, subcommands and live objects") {
  agent a;
  start_leading(a);
  std::string complete = "source <($TROUPECTL completion bash); "
                         "complete_words() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _troupectl; "
                         "echo \"[${COMPREPLY[*]}]\"; }; ";
  auto r = shell(a, "bash", complete +
                              "complete_words $TROUPECTL servi; "
                              "complete_words $TROUPECTL actor k; "
                              "complete_words $TROUPECTL actor kill moni; "
                              "complete_words $TROUPECTL actor kill it/r; "
                              "complete_words $TROUPECTL --addr 127.0.0.1 : ${TROUPE_ADDR#*:} -o ''; "
                              "complete_words $TROUPECTL --addr 127.0.0.1 : 1 actor kill moni; "
                              "complete_words $TROUPECTL nodes --bogus ''; "
                              "complete -p troupectl");
  CHECK(r.code == 0);
  CHECK(r.output == "[service services]\n[kill]\n[monitor]\n[it/raft it/raft_forward it/registry it/rpc]\n[json table yaml]\n"
                    "[]\n[]\ncomplete -o default -F _troupectl troupectl\n");
}

TEST_CASE("the zsh completion script offers what troupectl __complete prints") {
  if (::access("/usr/bin/zsh", X_OK) != 0 && ::access("/bin/zsh", X_OK) != 0) {
    MESSAGE("skipped: zsh is not installed (apt-get install zsh to test the zsh script)");
    return;
  }
  agent a;
  start_leading(a);
  // compadd and compdef belong to zsh's completion system; stand-ins print
  // what the script offers ("-S ''": no space after it).
  auto r = shell(a, "zsh",
                 "compdef() { :; }; _files() { print files; }; "
                 "compadd() { local how=; [[ $1 == -S ]] && { how=' (no space)'; shift 2; }; shift; "
                 "print -r -- \"offer$how: ${(P)1}\"; }; "
                 "source <($TROUPECTL completion zsh); "
                 "words=($TROUPECTL actor kill moni); CURRENT=4; _troupectl; "
                 "words=($TROUPECTL actor kill ''); CURRENT=4; _troupectl; "
                 "words=($TROUPECTL deploy -f ''); CURRENT=4; _troupectl");
  CHECK(r.code == 0);
  CHECK(r.output == "offer: monitor\n"
                    "offer (no space): it/\n"
                    "offer: api membership monitor node raft raft_forward registry rpc\n"
                    "files\n");
}
