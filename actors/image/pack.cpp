#include "actors/image/pack.hpp"

#include "actors/image/posix.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace troupe::image {
namespace fs = std::filesystem;
namespace {

struct archive_deleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct entry_deleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class packer {
public:
  explicit packer(blob_writer& out) : out_(out), a_(archive_write_new()) {
    if (!a_)
      throw std::bad_alloc{};
  }

  status open() {
    archive_write_set_format_pax_restricted(a_.get());
    archive_write_add_filter_none(a_.get());
    if (archive_write_open(a_.get(), this, nullptr, &packer::write_cb, nullptr) != ARCHIVE_OK)
      return failure("starting the tar stream");
    return {};
  }

  status add_tree(const fs::path& dir, const std::string& rel) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec)
      return error{"listing " + dir.string() + ": " + ec.message()};
    std::sort(names.begin(), names.end());
    for (const auto& name : names)
      if (auto st = add(dir / name, rel.empty() ? name : rel + "/" + name); !st)
        return st;
    return {};
  }

  status close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK)
      return failure("finishing the tar stream");
    return {};
  }

private:
  static la_ssize_t write_cb(archive*, void* self, const void* data, std::size_t size) {
    auto* p = static_cast<packer*>(self);
    if (auto st = p->out_.write(data, size); !st) {
      p->write_error = st.error();
      return -1;
    }
    return static_cast<la_ssize_t>(size);
  }

  error failure(const std::string& what) const {
    if (write_error)
      return *write_error;
    const char* msg = archive_error_string(a_.get());
    return error{what + ": " + (msg ? msg : "unknown libarchive error")};
  }

  status add(const fs::path& file, const std::string& rel) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0)
      return system_error("inspecting " + file.string());
    std::unique_ptr<archive_entry, entry_deleter> e{archive_entry_new()};
    if (!e)
      throw std::bad_alloc{};
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);
    std::optional<unique_fd> content;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(PATH_MAX), '\0');
      auto n = ::readlink(file.c_str(), target.data(), target.size());
      if (n < 0)
        return system_error("reading symlink " + file.string());
      target.resize(static_cast<std::size_t>(n));
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_symlink(e.get(), target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      const std::string* first_name = nullptr;
      if (st.st_nlink > 1) {
        auto [it, fresh] = links_.try_emplace({st.st_dev, st.st_ino}, rel);
        first_name = fresh ? nullptr : &it->second;
      }
      if (first_name) {
        archive_entry_set_hardlink(e.get(), first_name->c_str());
      } else {
        archive_entry_set_size(e.get(), st.st_size);
        content.emplace(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!*content)
          return system_error("opening " + file.string());
      }
    } else {
      return error{file.string() + " is a " + special_file_type(st.st_mode) +
                   ": a rootfs to import may only hold files, directories and symlinks"};
    }
    int rc = archive_write_header(a_.get(), e.get());
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return failure("adding " + file.string());
    if (content)
      if (auto copied = copy(content->get(), file, st.st_size); !copied)
        return copied;
    if (S_ISDIR(st.st_mode))
      return add_tree(file, rel);
    return {};
  }

  status copy(int fd, const fs::path& file, off_t size) {
    off_t copied = 0;
    auto read = read_chunks(fd, file.string(), [&](const char* data, std::size_t n) -> status {
      copied += static_cast<off_t>(n);
      if (copied > size)
        return error{file.string() + " grew while it was imported"};
      if (archive_write_data(a_.get(), data, n) != static_cast<la_ssize_t>(n))
        return failure("writing " + file.string() + " into the layer");
      return {};
    });
    if (!read)
      return read;
    if (copied != size)
      return error{file.string() + " shrank while it was imported"};
    return {};
  }

  blob_writer& out_;
  std::unique_ptr<archive, archive_deleter> a_;
  std::optional<error> write_error;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first name of each multi-linked file
};

} // namespace

result<blob_info> pack_directory(const fs::path& dir, blob_store& blobs) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return error{dir.string() + " is not a directory"};
  auto out = blobs.begin();
  if (!out)
    return out.error();
  {
    packer p{*out};
    if (auto st = p.open(); !st)
      return st.error();
    if (auto st = p.add_tree(dir, ""); !st)
      return st.error();
    if (auto st = p.close(); !st)
      return st.error();
  }
  return out->commit();
}

} // namespace troupe::image
