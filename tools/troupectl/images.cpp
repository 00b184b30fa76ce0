// troupectl image: the node's image store and its registry actor
// (docs/console.md, "image ..."): import, ls, pull (with progress), push,
// rm and gc.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "runtime/text.hpp"
#include "tools/troupectl/commands.hpp"
#include "troupe/v1/api.pb.h"
#include "troupe/v1/registry.pb.h"

namespace troupectl {

namespace v1 = troupe::v1;
namespace {

using namespace std::chrono_literals;

// The agent waits up to 15 minutes for a pull or a push (actors/api/images.cpp);
// troupectl waits as long, plus a margin for the reply.
constexpr std::chrono::seconds registry_wait = 15min + 30s;
constexpr auto progress_poll = 300ms;

/// "sha256:0123456789ab": enough of a digest to tell images apart.
std::string short_digest(const std::string& d) {
  auto colon = d.find(':');
  return colon == std::string::npos ? d.substr(0, 12) : d.substr(0, colon + 1 + 12);
}

/// path with every byte that is not unreserved, ':', '/' or '@' as %XX, so
/// that an image name (which may hold a registry, '/' and a digest) stays
/// one path under /v1/images/.
std::string escape_path(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// The pull of `image` among those in progress: the one named so, or the
/// only one when the agent spelled the name out (a default registry or tag).
const v1::PullProgress* find_pull(const v1::PullList& list, const std::string& image) {
  const v1::PullProgress* suffix = nullptr;
  for (auto& p : list.pulls()) {
    if (p.image() == image || p.image() == image + ":latest")
      return &p;
    auto& name = p.image();
    if (name.size() > image.size() && name.compare(name.size() - image.size(), image.size(), image) == 0 &&
        name[name.size() - image.size() - 1] == '/')
      suffix = &p;
  }
  if (suffix)
    return suffix;
  return list.pulls_size() == 1 ? &list.pulls(0) : nullptr;
}

/// "12.0MiB / 100.0MiB  12%  4.0MiB/s", or what is known of it.
std::string progress_line(const std::string& image, const v1::PullProgress& p,
                          std::chrono::steady_clock::duration took) {
  auto line = "pulling " + image + "  " + human_bytes(p.done_bytes());
  if (p.total_bytes() > 0) {
    line += " / " + human_bytes(p.total_bytes());
    char pct[16];
    std::snprintf(pct, sizeof pct, "  %3.0f%%", 100.0 * static_cast<double>(p.done_bytes()) /
                                                     static_cast<double>(p.total_bytes()));
    line += pct;
  }
  auto secs = std::chrono::duration<double>(took).count();
  if (secs > 0.5)
    line += "  " + human_bytes(static_cast<uint64_t>(static_cast<double>(p.done_bytes()) / secs)) + "/s";
  return line;
}

/// Polls GET /v1/images/pulls on its own connection while the pull's
/// request waits, and keeps one line on the terminal up to date.
class pull_progress {
public:
  pull_progress(const client& c, std::string image) : c_(c), image_(std::move(image)) {
    thread_ = std::thread{[this] { run(); }};
  }
  ~pull_progress() { stop(); }

  void stop() {
    {
      std::lock_guard lock{mutex_};
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
    if (shown_)
      std::fputs("\r\033[K", stderr);
  }

private:
  void run() {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock lock{mutex_};
    while (!wake_.wait_for(lock, progress_poll, [&] { return done_; })) {
      lock.unlock();
      v1::PullList list;
      if (c_.get("/v1/images/pulls", list))
        if (auto* p = find_pull(list, image_)) {
          auto line = progress_line(image_, *p, std::chrono::steady_clock::now() - start);
          std::fprintf(stderr, "\r\033[K%s", line.c_str());
          std::fflush(stderr);
          shown_ = true;
        }
      lock.lock();
    }
  }

  const client& c_;
  std::string image_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  bool shown_ = false;
  std::thread thread_;
};

void print_image_row(const v1::ImageRecord& rec) {
  table t{{"NAME", "MANIFEST", "LAYERS", "SIZE"}};
  t.add({rec.name(), rec.manifest_digest(), std::to_string(rec.layers_size()), human_bytes(rec.size_bytes())});
  print(t.str(false));
}

} // namespace

int cmd_image_import(const globals& g, const client& c, const std::string& source, const std::string& name) {
  v1::ImportImage req;
  std::error_code ec;
  // The agent reads the path on its own host: send it absolute.
  req.set_source(std::filesystem::absolute(source, ec).string());
  req.set_name(name);
  v1::ImageRecord rec;
  if (auto r = c.post_json("/v1/images/import", req, rec); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rec, g.fmt)), exit_ok;
  print(rec.name() + " " + rec.id() + "\n");
  return exit_ok;
}

int cmd_image_ls(const globals& g, const client& c) {
  v1::ImageList list;
  if (auto r = c.get("/v1/images", list); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  table t{{"NAME", "MANIFEST", "LAYERS", "SIZE", "SOURCE"}};
  for (auto& img : list.images())
    t.add({img.name(), short_digest(img.manifest_digest()), std::to_string(img.layers_size()),
           human_bytes(img.size_bytes()), img.source()});
  print(t.str(false));
  return exit_ok;
}

int cmd_image_pull(const globals& g, client c, const std::string& image) {
  c.set_read_timeout(registry_wait);
  v1::EnsureImage req;
  req.set_image(image);
  v1::ImageRecord rec;
  troupe::status r;
  if (::isatty(STDERR_FILENO) == 1) {
    pull_progress progress{c, image};
    r = c.post_json("/v1/images/pull", req, rec);
  } else {
    r = c.post_json("/v1/images/pull", req, rec);
  }
  if (!r)
    return fail(r.error());  // the agent's reason names the image
  if (g.fmt != format::table)
    return print(render(rec, g.fmt)), exit_ok;
  print_image_row(rec);
  return exit_ok;
}

int cmd_image_push(const globals& g, client c, const std::string& image, const std::string& target) {
  c.set_read_timeout(registry_wait);
  v1::PushImage req;
  req.set_image(image);
  req.set_target(target);
  v1::PushImageReply rep;
  if (auto r = c.post_json("/v1/images/push", req, rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print("pushed " + image + " to " + rep.target() + " (manifest " + rep.manifest_digest() + ")\n");
  return exit_ok;
}

int cmd_image_rm(const globals& g, const client& c, const std::string& image) {
  v1::ImageRecord rec;
  if (auto r = c.del("/v1/images/" + escape_path(image), rec); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rec, g.fmt)), exit_ok;
  print("removed " + rec.name() + " (manifest " + short_digest(rec.manifest_digest()) + ", " +
        human_bytes(rec.size_bytes()) + ")\n");
  return exit_ok;
}

int cmd_image_gc(const globals& g, client c, bool all) {
  c.set_read_timeout(registry_wait);
  v1::CollectImages req;
  req.set_all(all);
  v1::GcReport rep;
  if (auto r = c.post_json("/v1/images/gc", req, rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  if (rep.removed_size() > 0) {
    table t{{"REMOVED"}};
    for (auto& name : rep.removed())
      t.add({name});
    print(t.str(false));
  }
  std::string in_use;
  for (auto& name : rep.kept_in_use())
    in_use += (in_use.empty() ? "" : ", ") + name;
  print("removed " + std::to_string(rep.removed_size()) + (rep.removed_size() == 1 ? " image" : " images") +
        ", freed " + human_bytes(rep.freed_bytes()) + "; blobs kept " + human_bytes(rep.kept_bytes()) +
        (rep.budget_bytes() ? " of a " + human_bytes(rep.budget_bytes()) + " cache" : "") + "\n" +
        (in_use.empty() ? "" : "kept in use by tasks: " + in_use + "\n"));
  return exit_ok;
}

} // namespace troupectl
