#include "actors/image/unpack.hpp"

#include "actors/image/posix.hpp"
#include "runtime/text.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace troupe::image {
namespace {

constexpr int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::string symlink_target(int dirfd, const std::string& name) {
  std::string buf(PATH_MAX, '\0');
  auto n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
  return n < 0 ? std::string{"?"} : buf.substr(0, static_cast<std::size_t>(n));
}

error through_symlink(const std::string& path, const std::string& target) {
  return error{"goes through symlink " + quote(path) + " (-> " + quote(target) +
               "): a layer may not write through a symlink"};
}

// Opens parts[0, count) below root, one component at a time and never
// following a symlink; with create, missing directories are made (0755, as
// Docker does). -1 with errno set on failure, *failed naming the component.
int open_beneath(int root, const std::vector<std::string>& parts, std::size_t count,
                 bool create, std::size_t* failed) {
  *failed = 0;
  unique_fd cur{::fcntl(root, F_DUPFD_CLOEXEC, 0)};
  auto fail = [&] { // closing must not lose the errno callers read
    int err = errno;
    cur.reset();
    errno = err;
    return -1;
  };
  for (std::size_t i = 0; cur && i < count; ++i) {
    *failed = i;
    const char* name = parts[i].c_str();
    unique_fd next{::openat(cur.get(), name, dir_flags)};
    if (!next && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), name, 0755) != 0)
        return fail();
      next.reset(::openat(cur.get(), name, dir_flags));
      if (next && ::fchmod(next.get(), 0755) != 0)
        return fail();
    }
    if (!next)
      return fail();
    cur = std::move(next);
  }
  return cur.release();
}

result<std::vector<std::string>> list_dir(int dirfd) {
  // fdopendir owns what it is given, and a dup shares the read offset.
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  DIR* dir = dup < 0 ? nullptr : ::fdopendir(dup);
  if (dir == nullptr) {
    auto err = system_error("listing a directory");
    if (dup >= 0)
      ::close(dup);
    return err;
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  while (dirent* ent = ::readdir(dir)) {
    std::string_view n = ent->d_name;
    if (n != "." && n != "..")
      names.emplace_back(n);
  }
  ::closedir(dir);
  return names;
}

// Removes name below dirfd with all it holds, never following a symlink.
status remove_tree_at(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? status{} : system_error("inspecting " + quote(name));
  if (S_ISDIR(st.st_mode)) {
    unique_fd fd{::openat(dirfd, name.c_str(), dir_flags)};
    if (!fd)
      return system_error("opening directory " + quote(name));
    auto names = list_dir(fd.get());
    if (!names)
      return names.error();
    for (const auto& n : *names)
      if (auto rm = remove_tree_at(fd.get(), n); !rm)
        return rm;
    fd.reset();
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0)
      return system_error("removing directory " + quote(name));
  } else if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return system_error("removing " + quote(name));
  }
  return {};
}

status pwrite_all(int fd, const void* data, std::size_t size, std::int64_t offset) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::pwrite(fd, p, size, offset);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return system_error("writing");
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
  return {};
}

// Writes one layer's entries below an open rootfs directory.
class rootfs_writer {
public:
  rootfs_writer(int root, unpack_options opts) : root_(root), opts_(opts) {}

  status apply(const layer_entry& e, layer_reader& reader);
  // Directory modes and times come last: creating entries inside a directory
  // changes its mtime, and a read-only mode would stop those entries.
  status finish();

private:
  struct dir_meta {
    std::vector<std::string> parts;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    std::timespec mtime;
  };

  result<unique_fd> open_dir(const std::vector<std::string>& parts, std::size_t count,
                             bool create) const;
  status make_directory(int parent, const layer_entry& e);
  status write_file(int parent, const layer_entry& e, layer_reader& reader);
  status make_symlink(int parent, const layer_entry& e);
  status make_hardlink(int parent, const layer_entry& e);
  status whiteout(const layer_entry& e);
  status clean_lower(int dirfd, const std::string& path);
  void note_written(const std::vector<std::string>& parts);

  int root_;
  unpack_options opts_;
  // Paths this layer wrote, and the directories above them: whiteouts only
  // remove what the layers below made (OCI image-spec, "Whiteouts").
  std::unordered_set<std::string> written_;
  std::unordered_set<std::string> ancestors_;
  std::map<std::string, dir_meta> dirs_;
};

result<unique_fd> rootfs_writer::open_dir(const std::vector<std::string>& parts,
                                          std::size_t count, bool create) const {
  std::size_t failed = 0;
  int fd = open_beneath(root_, parts, count, create, &failed);
  if (fd >= 0)
    return unique_fd{fd};
  int err = errno;
  if (err == ENOENT && !create)
    return unique_fd{};
  auto path = join_parts(parts, std::min(failed + 1, count));
  if ((err == ELOOP || err == ENOTDIR) && failed < count) {
    std::size_t ignored = 0;
    unique_fd parent{open_beneath(root_, parts, failed, false, &ignored)};
    const auto& name = parts[failed];
    struct stat st {};
    if (parent && ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISLNK(st.st_mode))
        return through_symlink(path, symlink_target(parent.get(), name));
      return error{quote(path) + " is not a directory"};
    }
  }
  return system_error("opening directory " + quote(path), err);
}

status rootfs_writer::apply(const layer_entry& e, layer_reader& reader) {
  if (e.kind == entry_kind::ignored)
    return {};
  if (e.kind == entry_kind::opaque) {
    auto dir = open_dir(e.parts, e.parts.size(), true);
    return dir ? clean_lower(dir->get(), e.path()) : status{dir.error()};
  }
  if (e.kind == entry_kind::whiteout)
    return whiteout(e);
  if (e.parts.empty()) { // "./": the rootfs directory itself
    dirs_[""] = dir_meta{{}, e.mode, e.uid, e.gid, e.mtime};
    return {};
  }
  auto parent = open_dir(e.parts, e.parts.size() - 1, true);
  if (!parent)
    return parent.error();
  status st;
  switch (e.kind) {
  case entry_kind::directory: st = make_directory(parent->get(), e); break;
  case entry_kind::regular: st = write_file(parent->get(), e, reader); break;
  case entry_kind::symlink: st = make_symlink(parent->get(), e); break;
  case entry_kind::hardlink: st = make_hardlink(parent->get(), e); break;
  default: break;
  }
  if (st)
    note_written(e.parts);
  return st;
}

status rootfs_writer::make_directory(int parent, const layer_entry& e) {
  const auto& name = e.parts.back();
  struct stat st {};
  bool exists = ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT)
    return system_error("inspecting " + quote(name));
  // A directory over a directory merges with it; over anything else replaces it.
  if (exists && !S_ISDIR(st.st_mode)) {
    if (auto rm = remove_tree_at(parent, name); !rm)
      return rm;
    exists = false;
  }
  if (!exists && ::mkdirat(parent, name.c_str(), 0700) != 0)
    return system_error("creating directory");
  dirs_[e.path()] = dir_meta{e.parts, e.mode, e.uid, e.gid, e.mtime};
  return {};
}

status rootfs_writer::write_file(int parent, const layer_entry& e, layer_reader& reader) {
  const auto& name = e.parts.back();
  if (auto rm = remove_tree_at(parent, name); !rm)
    return rm;
  unique_fd fd{::openat(parent, name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  if (!fd)
    return system_error("creating file");
  auto data = reader.read_data([&](std::int64_t offset, const void* bytes, std::size_t n) {
    return pwrite_all(fd.get(), bytes, n, offset);
  });
  if (!data)
    return data;
  // Sparse files end in a hole that no data block reaches.
  if (::ftruncate(fd.get(), e.size) != 0)
    return system_error("setting the size");
  // chown before chmod: chown clears set-user-ID bits.
  if (opts_.keep_owners && ::fchown(fd.get(), e.uid, e.gid) != 0)
    return system_error("setting the owner");
  std::timespec times[2] = {e.mtime, e.mtime};
  if (::fchmod(fd.get(), e.mode) != 0 || ::futimens(fd.get(), times) != 0)
    return system_error("setting mode and times");
  return {};
}

status rootfs_writer::make_symlink(int parent, const layer_entry& e) {
  const auto& name = e.parts.back();
  if (auto rm = remove_tree_at(parent, name); !rm)
    return rm;
  if (::symlinkat(e.link.c_str(), parent, name.c_str()) != 0)
    return system_error("creating symlink");
  if (opts_.keep_owners &&
      ::fchownat(parent, name.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return system_error("setting the owner");
  std::timespec times[2] = {e.mtime, e.mtime};
  if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return system_error("setting times");
  return {};
}

status rootfs_writer::make_hardlink(int parent, const layer_entry& e) {
  const auto& name = e.parts.back();
  const auto& target = e.link_parts.back();
  auto missing = [&] {
    return error{"hardlink target " + quote(e.link) + " does not exist in the rootfs"};
  };
  auto target_dir = open_dir(e.link_parts, e.link_parts.size() - 1, false);
  if (!target_dir)
    return target_dir.error().with_context("hardlink target " + quote(e.link));
  if (!*target_dir)
    return missing();
  struct stat ts {};
  if (::fstatat(target_dir->get(), target.c_str(), &ts, AT_SYMLINK_NOFOLLOW) != 0)
    return missing();
  if (S_ISDIR(ts.st_mode))
    return error{"hardlink target " + quote(e.link) + " is a directory"};
  struct stat cur {};
  if (::fstatat(parent, name.c_str(), &cur, AT_SYMLINK_NOFOLLOW) == 0 &&
      cur.st_dev == ts.st_dev && cur.st_ino == ts.st_ino)
    return {};
  if (auto rm = remove_tree_at(parent, name); !rm)
    return rm;
  // Flags 0: if the target is a symlink, the link is to the symlink itself.
  if (::linkat(target_dir->get(), target.c_str(), parent, name.c_str(), 0) != 0)
    return system_error("linking to " + quote(e.link));
  return {};
}

status rootfs_writer::whiteout(const layer_entry& e) {
  auto parent = open_dir(e.parts, e.parts.size() - 1, false);
  if (!parent)
    return parent.error();
  auto path = e.path();
  if (!*parent || written_.count(path))
    return {};
  const auto& name = e.parts.back();
  // This layer put entries below the whited-out directory: they stay, and
  // only what the layers below put there goes.
  if (ancestors_.count(path)) {
    unique_fd dir{::openat(parent->get(), name.c_str(), dir_flags)};
    if (!dir)
      return system_error("opening directory " + quote(path));
    return clean_lower(dir.get(), path);
  }
  return remove_tree_at(parent->get(), name);
}

status rootfs_writer::clean_lower(int dirfd, const std::string& path) {
  auto names = list_dir(dirfd);
  if (!names)
    return names.error();
  for (const auto& n : *names) {
    auto child = path.empty() ? n : path + "/" + n;
    if (!written_.count(child) && !ancestors_.count(child)) {
      if (auto rm = remove_tree_at(dirfd, n); !rm)
        return rm;
      continue;
    }
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      unique_fd sub{::openat(dirfd, n.c_str(), dir_flags)};
      if (!sub)
        return system_error("opening directory " + quote(child));
      if (auto st2 = clean_lower(sub.get(), child); !st2)
        return st2;
    }
  }
  return {};
}

void rootfs_writer::note_written(const std::vector<std::string>& parts) {
  std::string path;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      ancestors_.insert(path);
      path += '/';
    }
    path += parts[i];
  }
  written_.insert(path);
}

status rootfs_writer::finish() {
  // Deepest first, so that a parent's times are set after its children's.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    const auto& m = it->second;
    std::size_t failed = 0;
    unique_fd fd{open_beneath(root_, m.parts, m.parts.size(), false, &failed)};
    if (!fd) {
      // A later entry of the layer removed or replaced the directory.
      if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
        continue;
      return system_error("directory " + quote(it->first));
    }
    if (opts_.keep_owners && ::fchown(fd.get(), m.uid, m.gid) != 0)
      return system_error("setting the owner of directory " + quote(it->first));
    mode_t mode = opts_.keep_owners ? m.mode : (m.mode | 0700);
    std::timespec times[2] = {m.mtime, m.mtime};
    if (::fchmod(fd.get(), mode) != 0 || ::futimens(fd.get(), times) != 0)
      return system_error("setting mode and times of directory " + quote(it->first));
  }
  return {};
}

// A symlink an earlier entry of this layer made at one of parts[0, count), if any.
std::optional<error>
through_known_symlink(const std::unordered_map<std::string, std::string>& symlinks,
                      const std::vector<std::string>& parts, std::size_t count) {
  std::string path;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0)
      path += '/';
    path += parts[i];
    if (auto it = symlinks.find(path); it != symlinks.end())
      return through_symlink(path, it->second);
  }
  return std::nullopt;
}

} // namespace

unpack_options unpack_options::for_this_process() {
  unpack_options opts;
  opts.keep_owners = ::geteuid() == 0;
  return opts;
}

result<layer_summary> check_layer(const std::filesystem::path& file) {
  auto reader = layer_reader::open(file);
  if (!reader)
    return reader.error();
  // Only this layer's own symlinks are known here; the ones below it are
  // caught by apply_layer's walk, which never follows any.
  std::unordered_map<std::string, std::string> symlinks;
  while (true) {
    auto next = (*reader)->next();
    if (!next)
      return next.error();
    if (!*next)
      break;
    const auto& e = **next;
    if (e.kind == entry_kind::ignored || (e.parts.empty() && e.kind != entry_kind::opaque))
      continue;
    auto fail = [&](const error& why) { return why.with_context("entry " + quote(e.name)); };
    // The directories an entry goes through; an opaque marker's own directory is one.
    std::size_t own = e.kind == entry_kind::opaque ? e.parts.size() : e.parts.size() - 1;
    if (auto bad = through_known_symlink(symlinks, e.parts, own))
      return fail(*bad);
    if (e.kind == entry_kind::hardlink)
      if (auto bad = through_known_symlink(symlinks, e.link_parts, e.link_parts.size() - 1))
        return fail(bad->with_context("hardlink target " + quote(e.link)));
    if (e.kind == entry_kind::symlink)
      symlinks[e.path()] = e.link;
    else if (e.kind != entry_kind::whiteout && e.kind != entry_kind::opaque)
      symlinks.erase(e.path());
  }
  return (*reader)->finish();
}

result<layer_summary> apply_layer(const std::filesystem::path& file,
                                  const std::filesystem::path& rootfs,
                                  const unpack_options& opts) {
  auto reader = layer_reader::open(file);
  if (!reader)
    return reader.error();
  unique_fd root{::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!root)
    return system_error("opening rootfs " + rootfs.string());
  rootfs_writer writer{root.get(), opts};
  while (true) {
    auto next = (*reader)->next();
    if (!next)
      return next.error();
    if (!*next)
      break;
    if (auto st = writer.apply(**next, **reader); !st)
      return st.error().with_context("entry " + quote((*next)->name));
  }
  if (auto st = writer.finish(); !st)
    return st.error();
  return (*reader)->finish();
}

} // namespace troupe::image
