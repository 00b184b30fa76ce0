#include "actors/access/authorizer.hpp"

#include <thread>

#include "runtime/clock.hpp"

namespace troupe::access {

authorizer::authorizer(fetch_fn fetch, save_fn save, std::optional<v1::TokenList> saved)
    : authorizer(std::move(fetch), std::move(save), std::move(saved), timing{}) {}

authorizer::authorizer(fetch_fn fetch, save_fn save, std::optional<v1::TokenList> saved, timing t)
    : fetch_(std::move(fetch)), save_(std::move(save)), timing_(t), list_(std::move(saved)) {}

result<v1::TokenList> authorizer::tokens() {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (list_ && !outdated_ && clock::now() - fetched_at_ < timing_.max_age)
      return *list_;
  }
  std::lock_guard<std::mutex> fetching{fetch_mutex_};
  {
    std::lock_guard<std::mutex> lock{mutex_};  // fetched while this one waited
    if (list_ && !outdated_ && clock::now() - fetched_at_ < timing_.max_age)
      return *list_;
  }
  return refetch();
}

result<v1::TokenList> authorizer::tokens_since(clock::time_point since) {
  std::lock_guard<std::mutex> fetching{fetch_mutex_};
  clock::time_point last;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    if (list_ && fetched_at_ >= since)
      return *list_;
    last = fetched_at_;
  }
  std::this_thread::sleep_until(last + timing_.min_refetch);
  return refetch();
}

result<v1::TokenList> authorizer::refetch() {
  auto started = clock::now();
  auto fetched = fetch_();
  if (fetched && fetched->tokens_size() == 0)
    fetched = error{"this agent knows no token yet: it has not joined a cluster, or the cluster is bootstrapping"};
  std::unique_lock<std::mutex> lock{mutex_};
  if (!fetched) {
    if (list_)
      return *list_;
    return error{"cannot check the token: " + fetched.error().message() + "; retry"};
  }
  bool changed = !list_ || list_->SerializeAsString() != fetched->SerializeAsString();
  list_ = std::move(*fetched);
  fetched_at_ = started;
  outdated_ = false;
  auto out = *list_;
  lock.unlock();
  if (changed && save_)
    save_(out);
  return out;
}

verdict authorizer::check(std::string_view authorization, std::string_view method, std::string_view path) {
  auto secret = secret_of(authorization);
  auto n = need_of(method, path);
  if (secret.empty())
    return decide(v1::TokenList{}, secret, n, 0);
  auto arrived = clock::now();
  auto list = tokens();
  if (!list)
    return {503, list.error().message(), ""};
  auto v = decide(*list, secret, n, unix_ms());
  if (v.status == 401 && v.token.empty()) {
    // Unknown here: perhaps created a moment ago on another agent.
    if (auto fresh = tokens_since(arrived))
      v = decide(*fresh, secret, n, unix_ms());
  }
  return v;
}

std::optional<v1::Token> authorizer::identify(std::string_view authorization) {
  auto secret = secret_of(authorization);
  if (secret.empty())
    return std::nullopt;
  auto list = tokens();
  if (!list)
    return std::nullopt;
  auto hash = sha256_hex(secret);
  for (const auto& t : list->tokens())
    if (t.secret_sha256() == hash)
      return t;
  return std::nullopt;
}

void authorizer::invalidate() {
  std::lock_guard<std::mutex> lock{mutex_};
  outdated_ = true;
}

} // namespace troupe::access
