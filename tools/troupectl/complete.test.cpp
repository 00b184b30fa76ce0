#include <doctest/doctest.h>

#include "tools/troupectl/complete.hpp"

using namespace troupectl;

namespace {

using list = std::vector<std::string>;

/// A command tree shaped like troupectl's, and a cluster to name.
struct tree {
  CLI::App app{"test"};
  std::string addr, output, node, target, service, restart, image;
  std::vector<std::string> command;
  bool all = false;
  std::vector<std::string> asked;  // "kind:node" of each lookup

  tree() {
    app.add_option("--addr", addr);
    app.add_option("-o,--output", output)->check(CLI::IsMember({"table", "json", "yaml"}));
    app.fallthrough();
    auto* actors = app.add_subcommand("actors", "the node's actors");
    actors->add_option("--node", node);
    actors->add_flag("--all", all);
    app.add_subcommand("actor", "act on one actor")->add_subcommand("kill", "kill")->add_option("ACTOR", target);
    app.add_subcommand("services", "services");
    app.add_subcommand("service", "one service")->add_subcommand("inspect", "in full")->add_option("SERVICE", service);
    app.add_subcommand("drain", "drain a node")->add_option("NODE", node);
    auto* run = app.add_subcommand("run", "run a container");
    run->add_option("--restart", restart)->check(CLI::IsMember({"always", "on-failure", "never"}));
    run->add_option("IMAGE", image);
    run->add_option("CMD", command);
    app.add_subcommand("__secret", "")->group("");
  }

  list operator()(list words) {
    return complete(app, std::move(words), [this](object_kind kind, const std::string& on) -> list {
      asked.push_back(std::to_string(static_cast<int>(kind)) + ":" + on);
      switch (kind) {
      case object_kind::node:
        return {"node-1", "node-2"};
      case object_kind::service:
        return {"web", "worker", "ops/backup"};
      case object_kind::actor:
        return on == "node-2" ? list{"raft", "monitor"} : list{"monitor", "membership", "node"};
      }
      return {};
    });
  }
};

} // namespace

TEST_CASE("commands complete from the tree, hidden ones left out") {
  tree t;
  CHECK(t({"servi"}) == list{"service", "services"});
  CHECK(t({""}) == list{"actor", "actors", "drain", "run", "service", "services"});
  CHECK(t({"__"}).empty());
  CHECK(t.asked.empty());  // command names need no agent
}

TEST_CASE("subcommands complete after their command") {
  tree t;
  CHECK(t({"actor", ""}) == list{"kill"});
  CHECK(t({"service", "in"}) == list{"inspect"});
}

TEST_CASE("an ACTOR completes from the agent's actors, and NODE/ACTOR from that node's") {
  tree t;
  CHECK(t({"actor", "kill", "moni"}) == list{"monitor"});
  CHECK(t({"actor", "kill", "n"}) == list{"node", "node-1/", "node-2/"});
  CHECK(t({"actor", "kill", "node-2/r"}) == list{"node-2/raft"});
  CHECK(t.asked.back() == "1:node-2");
}

TEST_CASE("NODE, --node and SERVICE complete from the cluster's nodes and services") {
  tree t;
  CHECK(t({"drain", ""}) == list{"node-1", "node-2"});
  CHECK(t({"actors", "--node", "node-"}) == list{"node-1", "node-2"});
  CHECK(t({"service", "inspect", "w"}) == list{"web", "worker"});
  CHECK(t({"service", "inspect", "web", ""}).empty());  // SERVICE given: nothing more
}

TEST_CASE("flags complete with those of the commands above, and fixed values from their check") {
  tree t;
  CHECK(t({"actors", "--"}) == list{"--addr", "--all", "--help", "--node", "--output"});
  CHECK(t({"-o", ""}) == list{"json", "table", "yaml"});
  CHECK(t({"run", "--restart", "on"}) == list{"on-failure"});
}

TEST_CASE("a flag's value is no command, and words after -- are not completed") {
  tree t;
  CHECK(t({"--addr", "127.0.0.1:7070", "act"}) == list{"actor", "actors"});
  CHECK(t({"--addr=127.0.0.1:7070", "act"}) == list{"actor", "actors"});
  CHECK(t({"actors", "--all", "-o", "json", "--node", "node-1", "--no"}) == list{"--node"});
  CHECK(t({"run", "busybox", "--", "e"}).empty());
}

TEST_CASE("a line splits into words as a shell splits it") {
  CHECK(*split_words("  actor   kill monitor ") == list{"actor", "kill", "monitor"});
  CHECK(*split_words(R"(run busybox -- sh -c 'echo "hi there"')") ==
        list{"run", "busybox", "--", "sh", "-c", "echo \"hi there\""});
  CHECK(*split_words(R"(a "b \"c\" \\ \d" e\ f '')") == list{"a", R"(b "c" \ \d)", "e f", ""});
  CHECK(split_words("").value().empty());
  auto open = split_words("run 'busybox");
  REQUIRE(!open);
  CHECK(open.error().message() == "unterminated ' quote");
  CHECK(!split_words("status \\"));
}

TEST_CASE("bash's words split at ':' and '=' are joined back") {
  CHECK(join_word_breaks({"--addr", "127.0.0.1", ":", "7070", "act"}) == list{"--addr", "127.0.0.1:7070", "act"});
  CHECK(join_word_breaks({"--output", "=", "js"}) == list{"--output", "js"});
  CHECK(join_word_breaks({"status", ""}) == list{"status", ""});
}

TEST_CASE("completion scripts exist for bash and zsh only") {
  CHECK(completion_script("bash").value().find("complete -o default -F _troupectl troupectl") != std::string::npos);
  CHECK(completion_script("zsh").value().find("compdef _troupectl troupectl") != std::string::npos);
  auto fish = completion_script("fish");
  REQUIRE(!fish);
  CHECK(fish.error().message() == "completion: 'fish' is not a shell troupectl completes; give bash or zsh");
}
