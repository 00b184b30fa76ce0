#include "actors/image/blob_store.hpp"

#include "actors/image/posix.hpp"

#include <cstdio>
#include <cstdlib>
#include <system_error>

#include <sys/stat.h>

namespace troupe::image {
namespace fs = std::filesystem;

namespace {
constexpr std::string_view temp_prefix = ".tmp-";
} // namespace

blob_writer::blob_writer(fs::path dir, fs::path temp, int fd)
  : dir_(std::move(dir)), temp_(std::move(temp)), fd_(fd) {}

blob_writer::blob_writer(blob_writer&& other) noexcept
  : dir_(std::move(other.dir_)), temp_(std::move(other.temp_)),
    fd_(std::exchange(other.fd_, -1)), hash_(std::move(other.hash_)),
    size_(other.size_) {}

blob_writer::~blob_writer() { discard(); }

void blob_writer::discard() {
  if (fd_ < 0)
    return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());
}

status blob_writer::write(const void* data, std::size_t size) {
  if (fd_ < 0)
    return error{"blob writer used after commit"};
  if (auto st = write_all(fd_, data, size, "writing blob temp file " + temp_.string()); !st)
    return st;
  hash_.update(data, size);
  size_ += size;
  return {};
}

result<blob_info> blob_writer::commit(const std::optional<digest>& expected) {
  if (fd_ < 0)
    return error{"blob writer used after commit"};
  blob_info info{hash_.finish(), size_};
  if (expected && *expected != info.digest) {
    discard();
    return error{"blob " + expected->str() + " does not match its content, which hashes to " +
                 info.digest.str()};
  }
  // Blobs are never changed in place; read-only says so to anyone looking.
  if (::fchmod(fd_, 0444) != 0 || ::fsync(fd_) != 0) {
    auto err = system_error("syncing blob temp file " + temp_.string());
    discard();
    return err;
  }
  ::close(std::exchange(fd_, -1));
  auto final_path = dir_ / info.digest.hex();
  if (::rename(temp_.c_str(), final_path.c_str()) != 0) {
    auto err = system_error("storing blob " + info.digest.str() + " at " + final_path.string());
    ::unlink(temp_.c_str());
    return err;
  }
  if (auto st = sync_dir(dir_); !st)
    return st.error();
  return info;
}

blob_store::blob_store(fs::path root) : dir_(std::move(root) / "blobs" / "sha256") {}

result<blob_writer> blob_store::begin() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec)
    return error{"creating blob directory " + dir_.string() + ": " + ec.message()};
  auto pattern = (dir_ / (std::string{temp_prefix} + "XXXXXX")).string();
  int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0)
    return system_error("creating a temp file in " + dir_.string());
  return blob_writer{dir_, pattern, fd};
}

result<blob_info> blob_store::put(std::string_view bytes, const std::optional<digest>& expected) {
  auto w = begin();
  if (!w)
    return w.error();
  if (auto st = w->write(bytes.data(), bytes.size()); !st)
    return st.error();
  return w->commit(expected);
}

result<blob_info> blob_store::put_file(const fs::path& file,
                                       const std::optional<digest>& expected) {
  unique_fd in{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in)
    return system_error("opening " + file.string());
  auto w = begin();
  if (!w)
    return w.error();
  auto copied = read_chunks(in.get(), file.string(), [&](const char* data, std::size_t n) {
    return w->write(data, n);
  });
  if (!copied)
    return copied.error();
  auto info = w->commit(expected);
  if (!info)
    return info.error().with_context(file.string());
  return info;
}

result<blob_info> blob_store::put_moved(const fs::path& file, const std::optional<digest>& expected) {
  unique_fd in{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in)
    return system_error("opening " + file.string());
  sha256 h;
  std::uint64_t size = 0;
  auto read = read_chunks(in.get(), file.string(), [&](const char* data, std::size_t n) {
    h.update(data, n);
    size += n;
    return status{};
  });
  if (!read)
    return read.error();
  blob_info info{h.finish(), size};
  if (expected && *expected != info.digest)
    return error{"blob " + expected->str() + " does not match its content, which hashes to " +
                 info.digest.str()};
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec)
    return error{"creating blob directory " + dir_.string() + ": " + ec.message()};
  // Synced before the rename, so that a blob file that exists is whole.
  if (::fchmod(in.get(), 0444) != 0 || ::fsync(in.get()) != 0)
    return system_error("syncing " + file.string());
  auto final_path = path(info.digest);
  if (::rename(file.c_str(), final_path.c_str()) != 0) {
    if (errno != EXDEV)
      return system_error("storing blob " + info.digest.str() + " at " + final_path.string());
    auto copied = put_file(file, info.digest);
    if (!copied)
      return copied.error();
    ::unlink(file.c_str());
    return copied;
  }
  if (auto st = sync_dir(dir_); !st)
    return st.error();
  return info;
}

fs::path blob_store::path(const digest& d) const { return dir_ / d.hex(); }

bool blob_store::has(const digest& d) const {
  struct stat st {};
  return ::stat(path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

result<std::uint64_t> blob_store::size(const digest& d) const {
  struct stat st {};
  if (::stat(path(d).c_str(), &st) != 0)
    return system_error("blob " + d.str());
  return static_cast<std::uint64_t>(st.st_size);
}

status blob_store::verify(const digest& d) const {
  unique_fd in{::open(path(d).c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in)
    return system_error("blob " + d.str() + " (" + path(d).string() + ")");
  sha256 h;
  auto read = read_chunks(in.get(), "blob " + d.str(), [&](const char* data, std::size_t n) {
    h.update(data, n);
    return status{};
  });
  if (!read)
    return read;
  auto got = h.finish();
  if (got != d)
    return error{"blob " + d.str() + " is corrupt: its content hashes to " + got.str()};
  return {};
}

result<std::string> blob_store::read_small(const digest& d, std::size_t max_bytes) const {
  auto bytes = read_small_file(path(d), max_bytes);
  if (!bytes)
    return bytes.error().with_context("blob " + d.str());
  if (auto got = digest::of(*bytes); got != d)
    return error{"blob " + d.str() + " is corrupt: its content hashes to " + got.str()};
  return bytes;
}

void blob_store::remove_stale_temps() const { remove_with_prefix(dir_, temp_prefix); }

result<std::string> read_small_file(const fs::path& file, std::size_t max_bytes) {
  unique_fd in{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in)
    return system_error("opening " + file.string());
  std::string out;
  auto read = read_chunks(in.get(), file.string(), [&](const char* data, std::size_t n) -> status {
    out.append(data, n);
    if (out.size() > max_bytes)
      return error{file.string() + " is larger than " + std::to_string(max_bytes) +
                   " bytes, too large for a JSON document"};
    return {};
  });
  if (!read)
    return read.error();
  return out;
}

} // namespace troupe::image
