// authorizer: decides every API request against the cluster's tokens, read
// from the replicated state through `fetch` and cached: a list is trusted for
// `max_age` (so a revoked token stops working within it on every agent); an
// unknown token makes it fetch again (a token just made on another agent):
// the request waits for a list fetched after it arrived, and fetches are at
// least `min_refetch` apart, so that a flood of bad tokens slows down only
// itself. When the state cannot be read (no leader, no server reachable, the
// raft actor down) the last list read still decides, also one `save`d to
// disk by an earlier run (Consul's "extend-cache"); an agent that never read
// one answers 503 rather than guess. A list without any token is not one:
// the agent has not joined a cluster, or the cluster is bootstrapping.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>

#include "actors/access/token.hpp"
#include "runtime/result.hpp"

namespace troupe::access {

class authorizer {
public:
  using fetch_fn = std::function<result<v1::TokenList>()>;
  using clock = std::chrono::steady_clock;

  /// Keeps a list read from the cluster (on disk, for the next run).
  using save_fn = std::function<void(const v1::TokenList&)>;

  struct timing {
    std::chrono::milliseconds max_age{2000};
    std::chrono::milliseconds min_refetch{250};
  };

  /// `saved`: the list an earlier run saved, if any.
  explicit authorizer(fetch_fn fetch, save_fn save = {}, std::optional<v1::TokenList> saved = std::nullopt);
  authorizer(fetch_fn fetch, save_fn save, std::optional<v1::TokenList> saved, timing t);

  /// The verdict on one request (status 503 when no token list can be had).
  verdict check(std::string_view authorization, std::string_view method, std::string_view path);

  /// The token an Authorization header presents, if the cluster knows it
  /// (for GET /v1/tokens/self and created_by).
  std::optional<v1::Token> identify(std::string_view authorization);

  /// Forgets the cached list: the next request fetches (after a token
  /// is created or revoked here).
  void invalidate();

private:
  /// The list to decide with: the cached one while younger than max_age.
  result<v1::TokenList> tokens();
  /// A list fetched after `since` (a token missing from the cache may have
  /// been made since): fetches, waiting first so that fetches are at least
  /// min_refetch apart.
  result<v1::TokenList> tokens_since(clock::time_point since);
  /// Fetches under fetch_mutex_; on failure the cached list within grace.
  result<v1::TokenList> refetch();

  fetch_fn fetch_;
  save_fn save_;
  timing timing_;
  std::mutex fetch_mutex_;  // one fetch at a time; held while fetching
  std::mutex mutex_;        // the cache; held only to read or replace it
  std::optional<v1::TokenList> list_;
  clock::time_point fetched_at_{};
  bool outdated_ = false;
};

} // namespace troupe::access
