// The API's token routes (docs/api.md, "Tokens"): create, list, revoke and
// "who am I"; and the bootstrap of the management token on the agent that
// started the cluster.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/access/authorizer.hpp"
#include "runtime/ask.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/service.pb.h"

namespace httplib {
class Server;
}

namespace troupe::api {

/// How the token routes reach the replicated state (the raft actor here, or
/// a server's over RPC on a client).
struct token_backend {
  std::function<result<v1::ServiceReply>(const v1::PutToken&, ask_failure&)> put;
  std::function<result<v1::ServiceReply>(const v1::RevokeToken&, ask_failure&)> revoke;
  std::function<result<v1::TokenList>(const v1::GetTokens&, ask_failure&)> list;
};

class token_routes {
public:
  token_routes(token_backend backend, std::shared_ptr<access::authorizer> auth, std::shared_ptr<spdlog::logger> log);

  /// POST /v1/tokens, GET /v1/tokens, GET /v1/tokens/self, DELETE /v1/tokens/{id or name}.
  void install(httplib::Server& svr);

private:
  token_backend backend_;
  std::shared_ptr<access::authorizer> auth_;
  std::shared_ptr<spdlog::logger> log_;
};

/// Where the bootstrapping agent writes the management token's secret.
inline constexpr const char* management_token_file = "management.token";

/// The token in `file` (its first line): 16 to 256 printable characters,
/// no spaces; an error names the file and the problem.
result<std::string> read_token_file(const std::filesystem::path& file);

/// One attempt at the bootstrap: once the cluster answers and has no token
/// yet, records the management token (admin, never expires) and the agents'
/// own secret. The secret is the one in `preset` (--management-token-file),
/// else the one management.token holds from an attempt that did not finish,
/// else a new one; it is written to DATA_DIR/management.token (mode 0600)
/// before it is proposed. True once the cluster has tokens.
result<bool> bootstrap_tokens(const token_backend& backend, const std::filesystem::path& data_dir,
                              const std::filesystem::path& preset, spdlog::logger& log);

/// Runs bootstrap_tokens every half second on its own thread until it is
/// done or the object is destroyed.
class token_bootstrapper {
public:
  token_bootstrapper(token_backend backend, std::filesystem::path data_dir, std::filesystem::path preset,
                     std::shared_ptr<spdlog::logger> log);
  ~token_bootstrapper();

private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

} // namespace troupe::api
