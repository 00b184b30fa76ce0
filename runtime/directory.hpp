// The names of one agent's actors: "node", "monitor", "api", ... Written by
// the supervisor as it spawns and buries children, read from any thread
// (HTTP handlers, the network) to address an actor by name.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>

namespace troupe {

class directory {
public:
  void put(const std::string& name, caf::actor hdl) {
    std::lock_guard<std::mutex> guard{mtx_};
    names_[name] = std::move(hdl);
  }

  /// Removes `name` only if it still maps to `hdl` (a newer incarnation stays).
  void erase(const std::string& name, const caf::actor& hdl) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = names_.find(name);
    if (i != names_.end() && i->second == hdl)
      names_.erase(i);
  }

  /// The actor called `name`, or an invalid handle.
  caf::actor get(const std::string& name) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = names_.find(name);
    return i == names_.end() ? caf::actor{} : i->second;
  }

  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::string> out;
    for (auto& kv : names_)
      out.push_back(kv.first);
    return out;
  }

  /// Drops every handle (strong references would keep actors alive at shutdown).
  void clear() {
    std::lock_guard<std::mutex> guard{mtx_};
    names_.clear();
  }

private:
  mutable std::mutex mtx_;
  std::map<std::string, caf::actor> names_;
};

} // namespace troupe
