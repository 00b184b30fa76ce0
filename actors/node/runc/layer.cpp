#include "actors/node/runc/layer.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/text.hpp"

namespace troupe::runc {
namespace fs = std::filesystem;
namespace {

error errno_error(const std::string& what, int err = errno) {
  return error{what + ": " + std::strerror(err)};
}

// overlayfs splits its options at ',' and lowerdir at ':'; both (and the
// escape itself) are escaped with a backslash inside paths.
std::string overlay_escape(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ',' || c == ':' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

std::string unescape_octal(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::all_of(s.begin() + static_cast<long>(i) + 1,
                                                        s.begin() + static_cast<long>(i) + 4,
                                                        [](char c) { return c >= '0' && c <= '7'; })) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

status set_owner_mode_times(const fs::path& to, const struct stat& st) {
  if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0)
    return errno_error("chown " + quote(to.native()));
  // chmod after chown: chown clears set-user-id bits.
  if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
    return errno_error("chmod " + quote(to.native()));
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, to.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return errno_error("setting times of " + quote(to.native()));
  return {};
}

status copy_file_contents(const fs::path& from, const fs::path& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return errno_error("opening " + quote(from.native()));
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    int saved = errno;
    ::close(in);
    return errno_error("creating " + quote(to.native()), saved);
  }
  char buf[1 << 16];
  status result;
  for (;;) {
    ssize_t got = ::read(in, buf, sizeof buf);
    if (got == 0)
      break;
    if (got < 0) {
      if (errno == EINTR)
        continue;
      result = errno_error("reading " + quote(from.native()));
      break;
    }
    for (ssize_t done = 0; done < got;) {
      ssize_t put = ::write(out, buf + done, static_cast<std::size_t>(got - done));
      if (put < 0 && errno == EINTR)
        continue;
      if (put < 0) {
        result = errno_error("writing " + quote(to.native()));
        break;
      }
      done += put;
    }
    if (!result)
      break;
  }
  ::close(in);
  ::close(out);
  return result;
}

status copy_tree(const fs::path& from, const fs::path& to, std::size_t& entries) {
  struct stat st {};
  if (::lstat(from.c_str(), &st) != 0)
    return errno_error("lstat " + quote(from.native()));
  ++entries;
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(to.c_str(), 0700) != 0)
      return errno_error("mkdir " + quote(to.native()));
    std::error_code ec;
    for (fs::directory_iterator it{from, ec}, end; !ec && it != end; it.increment(ec))
      if (auto s = copy_tree(it->path(), to / it->path().filename(), entries); !s)
        return s;
    if (ec)
      return error{"listing " + quote(from.native()) + ": " + ec.message()};
  } else if (S_ISREG(st.st_mode)) {
    if (auto s = copy_file_contents(from, to); !s)
      return s;
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
    if (n < 0)
      return errno_error("readlink " + quote(from.native()));
    target.resize(static_cast<std::size_t>(n));
    if (::symlink(target.c_str(), to.c_str()) != 0)
      return errno_error("symlink " + quote(to.native()));
  } else if (::mknod(to.c_str(), st.st_mode, st.st_rdev) != 0) { // devices, fifos, sockets
    return errno_error("mknod " + quote(to.native()));
  }
  return set_owner_mode_times(to, st);
}

bool is_dir(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

result<prepared_rootfs> copy_layer(const fs::path& image, const fs::path& dir, std::string why) {
  fs::path rootfs = dir / "rootfs";
  std::error_code ec;
  fs::remove_all(rootfs, ec);
  std::size_t entries = 0;
  if (auto s = copy_tree(image, rootfs, entries); !s)
    return s.error().with_context("copying image rootfs " + quote(image.native()));
  return prepared_rootfs{rootfs, layer_kind::copy,
                         why + "; copied the image rootfs instead (" + std::to_string(entries) + " entries)", {}};
}

} // namespace

void mark_unrelated_subdirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL) == 0) {
    flags |= FS_TOPDIR_FL;
    (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
}

std::vector<fs::path> mounts_under(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  std::string prefix = fs::weakly_canonical(dir, ec).native(); // mountinfo shows resolved paths
  if (ec)
    prefix = dir.lexically_normal().native();
  while (prefix.size() > 1 && prefix.back() == '/')
    prefix.pop_back();
  std::ifstream in{"/proc/self/mountinfo"};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    mount_point = unescape_octal(mount_point);
    if (mount_point == prefix || mount_point.rfind(prefix + "/", 0) == 0)
      found.emplace_back(mount_point);
  }
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) { return a.native() > b.native(); });
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

namespace {

// container_dir made (and checked to have nothing mounted in it).
status make_container_dir(const fs::path& image_rootfs, const fs::path& container_dir) {
  if (!image_rootfs.is_absolute() || !is_dir(image_rootfs))
    return error{"image rootfs " + quote(image_rootfs.native()) + " is not a directory"};
  if (!container_dir.is_absolute())
    return error{"container dir " + quote(container_dir.native()) + " is not an absolute path"};
  std::error_code ec;
  // A new container's dir does not exist yet, and nothing can be mounted
  // in it: mountinfo is read only for a dir that is there already.
  if (fs::exists(container_dir, ec) && !mounts_under(container_dir).empty())
    return error{"container dir " + quote(container_dir.native()) + " still has a mounted layer"};
  fs::create_directories(container_dir, ec);
  if (ec)
    return error{"creating " + quote(container_dir.native()) + ": " + ec.message()};
  return {};
}

// upper/ work/ merged/ made; the overlay's options.
result<prepared_rootfs> make_overlay_dirs(const fs::path& image_rootfs, const fs::path& container_dir) {
  fs::path upper = container_dir / "upper", work = container_dir / "work", merged = container_dir / "merged";
  std::error_code ec;
  for (const auto& d : {upper, work, merged}) {
    fs::create_directories(d, ec);
    if (ec)
      return error{"creating " + quote(d.native()) + ": " + ec.message()};
  }
  std::string options = "lowerdir=" + overlay_escape(image_rootfs.native()) +
                        ",upperdir=" + overlay_escape(upper.native()) + ",workdir=" + overlay_escape(work.native());
  return prepared_rootfs{merged, layer_kind::overlay, {}, options};
}

} // namespace

result<prepared_rootfs> prepare_overlay_dirs(const fs::path& image_rootfs, const fs::path& container_dir) {
  if (auto s = make_container_dir(image_rootfs, container_dir); !s)
    return s.error();
  return make_overlay_dirs(image_rootfs, container_dir);
}

result<prepared_rootfs> prepare_writable_layer(const fs::path& image_rootfs, const fs::path& container_dir,
                                               layer_preference preference) {
  if (auto s = make_container_dir(image_rootfs, container_dir); !s)
    return s.error();
  if (preference == layer_preference::copy_only)
    return copy_layer(image_rootfs, container_dir, "copy requested");
  auto layer = make_overlay_dirs(image_rootfs, container_dir);
  if (!layer)
    return layer;
  if (::mount("overlay", layer->path.c_str(), "overlay", 0, layer->mount_options.c_str()) == 0) {
    layer->mount_options.clear();
    return layer;
  }
  std::string why = "overlay mount on " + quote(layer->path.native()) + " failed: " + std::strerror(errno);
  std::error_code ec;
  for (const char* d : {"upper", "work", "merged"})
    fs::remove_all(container_dir / d, ec);
  return copy_layer(image_rootfs, container_dir, why);
}

status release_writable_layer(const fs::path& container_dir) {
  if (!container_dir.is_absolute() || container_dir.relative_path().empty())
    return error{"refusing to release layer dir " + quote(container_dir.native())};
  std::error_code ec;
  if (!fs::exists(container_dir, ec) && !ec)
    return {}; // nothing is mounted in a dir that is not there
  auto mounted = mounts_under(container_dir);
  for (const auto& m : mounted) {
    if (::umount2(m.c_str(), UMOUNT_NOFOLLOW) != 0 && errno == EBUSY)
      ::umount2(m.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  }
  if (auto left = mounted.empty() ? mounted : mounts_under(container_dir); !left.empty())
    return error{"cannot unmount " + quote(left.front().native()) + "; leaving " + quote(container_dir.native())};
  fs::remove_all(container_dir, ec);
  if (ec)
    return error{"removing " + quote(container_dir.native()) + ": " + ec.message()};
  return {};
}

} // namespace troupe::runc
