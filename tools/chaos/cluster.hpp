// The cluster under test, as deploy/local-cluster.sh (or netns-cluster.sh)
// lays it out in DIR: node-I/{run,pid,log,addr,http,role,data/}, DIR/env.
// Reads that layout, starts and signals agents keeping its pid contract,
// and calls the HTTP API of whichever agent answers.
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <sys/types.h>

#include <google/protobuf/message.h>

#include "runtime/result.hpp"

namespace troupe::chaos {

struct node_info {
  int index = 0;               // node-1 is 1
  std::string name;            // "node-1"
  std::filesystem::path dir;   // DIR/node-1
  std::string http;            // "127.0.0.41:7270"
  std::string addr;            // "127.0.0.41"
  std::string role;            // server | client
  std::string netns;           // the namespace, in netns mode
};

class cluster {
public:
  /// Reads DIR; the error names the file that is missing or malformed.
  static result<cluster> load(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& mode() const { return mode_; }  // loopback | netns
  const std::string& token() const { return token_; }
  const std::vector<node_info>& nodes() const { return nodes_; }
  const node_info& node(int index) const { return nodes_.at(static_cast<std::size_t>(index - 1)); }
  /// The index of "node-3", or 0.
  int index_of(const std::string& name) const;

  /// node-I/pid, or 0 when there is none.
  pid_t pid_of(int index) const;
  /// Its pid file names a live process (not a zombie).
  bool running(int index) const;
  /// Starts node-I/run in its own session, appending to node-I/log, and
  /// writes the new pid to node-I/pid, as local-cluster.sh does.
  result<pid_t> start(int index) const;
  status signal(int index, int sig) const;
  /// Waits up to `timeout` for the agent to exit; true when it did.
  bool wait_exit(int index, std::chrono::milliseconds timeout) const;

private:
  std::filesystem::path dir_;
  std::string mode_;
  std::string token_;
  std::vector<node_info> nodes_;
};

/// A live process (signal 0 works and /proc says it is no zombie).
bool process_alive(pid_t pid);

/// Calls the API of any agent that answers, starting with the one that
/// answered last and moving on when one cannot be reached.
class api {
public:
  api(const cluster& c, std::chrono::milliseconds read_timeout);

  struct outcome {
    status st;
    int http = 0;          // 0: no reply
    bool sent = false;     // the request may have reached an agent
    int node = 0;          // the node asked last
  };

  /// Reads (GET) move on after any failure without a reply, and after 503
  /// and 504. Writes move on only while no agent could be connected to, so
  /// that a write is never sent twice; `outcome.sent` says whether it may
  /// have been applied.
  outcome call(const char* method, const std::string& path, const std::string& body,
               google::protobuf::Message& out);
  outcome get(const std::string& path, google::protobuf::Message& out) { return call("GET", path, "", out); }
  /// The same on one node only, without moving on.
  outcome call_on(int index, const char* method, const std::string& path, const std::string& body,
                  google::protobuf::Message& out) const;

private:
  const cluster& cluster_;
  std::chrono::milliseconds read_timeout_;
  std::mutex mutex_;
  int preferred_ = 1;
};

} // namespace troupe::chaos
