#include "actors/image/layer_reader.hpp"

#include "actors/image/posix.hpp"
#include "runtime/text.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <climits>
#include <limits>
#include <new>

namespace troupe::image {
namespace {

constexpr std::string_view whiteout_prefix = ".wh.";
constexpr std::string_view opaque_marker = ".wh..wh..opq";
constexpr std::string_view aufs_prefix = ".wh..wh.";
constexpr std::size_t buffer_size = 1 << 16;

std::string archive_message(archive* a) {
  const char* msg = archive_error_string(a);
  return msg ? msg : "unknown libarchive error";
}

// The components of a name from a tarball, or why it may not be unpacked.
result<std::vector<std::string>> split_name(std::string_view name) {
  if (name.empty())
    return error{"empty name"};
  if (name.front() == '/')
    return error{"absolute path (entries must stay inside the rootfs)"};
  if (name.size() >= PATH_MAX)
    return error{"name longer than " + std::to_string(PATH_MAX - 1) + " bytes"};
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= name.size()) {
    auto end = name.find('/', start);
    if (end == std::string_view::npos)
      end = name.size();
    auto part = name.substr(start, end - start);
    if (part == "..")
      return error{"'..' component (entries must stay inside the rootfs)"};
    if (part.size() > NAME_MAX)
      return error{"component longer than " + std::to_string(NAME_MAX) + " bytes"};
    if (!part.empty() && part != ".")
      parts.emplace_back(part);
    start = end + 1;
  }
  return parts;
}

} // namespace

std::string join_parts(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0)
      out += '/';
    out += parts[i];
  }
  return out;
}

std::string layer_entry::path() const { return join_parts(parts, parts.size()); }

struct layer_reader::impl {
  unique_fd fd;
  archive* outer = nullptr;  // the decompressed byte stream ("raw" format)
  archive* inner = nullptr;  // the tar entries read from that stream
  sha256 stored_hash;
  sha256 tar_hash;
  std::string file_buf = std::string(buffer_size, '\0');
  std::string tar_buf = std::string(buffer_size, '\0');
  std::optional<error> stream_error;  // why a callback failed, said better than libarchive would
  std::string last_name;              // for errors about the stream after an entry
  std::string compression = "none";
  std::uint64_t entries = 0;
  std::uint64_t total_size = 0;

  ~impl() {
    if (inner)
      archive_read_free(inner);
    if (outer)
      archive_read_free(outer);
  }

  static la_ssize_t read_file(archive* a, void* self, const void** out) {
    auto* p = static_cast<impl*>(self);
    while (true) {
      auto n = ::read(p->fd.get(), p->file_buf.data(), p->file_buf.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        p->stream_error = system_error("reading the layer file");
        archive_set_error(a, errno, "read failed");
        return -1;
      }
      p->stored_hash.update(p->file_buf.data(), static_cast<std::size_t>(n));
      *out = p->file_buf.data();
      return n;
    }
  }

  static la_ssize_t read_tar(archive* a, void* self, const void** out) {
    auto* p = static_cast<impl*>(self);
    auto n = archive_read_data(p->outer, p->tar_buf.data(), p->tar_buf.size());
    if (n < 0) {
      if (!p->stream_error)
        p->stream_error = error{p->compression + " stream: " + archive_message(p->outer)};
      archive_set_error(a, EIO, "%s", p->stream_error->message().c_str());
      return -1;
    }
    p->tar_hash.update(p->tar_buf.data(), static_cast<std::size_t>(n));
    *out = p->tar_buf.data();
    return n;
  }

  error stream_failure(archive* a) const {
    std::string where = last_name.empty() ? "" : " after entry " + quote(last_name);
    return error{"layer is not a readable tar stream" + where + ": " +
                 (stream_error ? stream_error->message() : archive_message(a))};
  }

  result<layer_entry> classify(archive_entry* e);
};

layer_reader::layer_reader(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
layer_reader::~layer_reader() = default;

result<std::unique_ptr<layer_reader>> layer_reader::open(const std::filesystem::path& file) {
  auto p = std::make_unique<impl>();
  p->fd.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!p->fd)
    return system_error("opening " + file.string());
  p->outer = archive_read_new();
  p->inner = archive_read_new();
  if (!p->outer || !p->inner)
    throw std::bad_alloc{};
  // Only the compressions built into libarchive: support_filter_all would also
  // run external programs (lrzip, lzop, grzip) on untrusted input.
  archive_read_support_filter_gzip(p->outer);
  archive_read_support_filter_zstd(p->outer);
  archive_read_support_filter_xz(p->outer);
  archive_read_support_filter_bzip2(p->outer);
  archive_read_support_format_raw(p->outer);
  if (archive_read_open(p->outer, p.get(), nullptr, &impl::read_file, nullptr) != ARCHIVE_OK)
    return p->stream_failure(p->outer);
  archive_entry* raw = nullptr;
  int rc = archive_read_next_header(p->outer, &raw);
  if (rc != ARCHIVE_OK && rc != ARCHIVE_EOF)
    return p->stream_failure(p->outer);
  if (archive_filter_count(p->outer) > 2)
    return error{"layer is compressed more than once (" +
                 std::string{archive_filter_name(p->outer, 0)} + " inside " +
                 archive_filter_name(p->outer, 1) + ")"};
  if (archive_filter_code(p->outer, 0) != ARCHIVE_FILTER_NONE)
    p->compression = archive_filter_name(p->outer, 0);
  archive_read_support_format_tar(p->inner);
  archive_read_support_format_empty(p->inner);
  if (archive_read_open(p->inner, p.get(), nullptr, &impl::read_tar, nullptr) != ARCHIVE_OK)
    return p->stream_failure(p->inner);
  return std::unique_ptr<layer_reader>{new layer_reader{std::move(p)}};
}

result<std::optional<layer_entry>> layer_reader::next() {
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(impl_->inner, &e);
  if (rc == ARCHIVE_EOF)
    return std::optional<layer_entry>{};
  // A warning (a name libarchive could not convert, say) still leaves a
  // usable entry; anything worse means the stream is broken.
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
    return impl_->stream_failure(impl_->inner);
  auto entry = impl_->classify(e);
  if (!entry)
    return entry.error();
  ++impl_->entries;
  return std::optional<layer_entry>{std::move(*entry)};
}

result<layer_entry> layer_reader::impl::classify(archive_entry* e) {
  layer_entry out;
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr)
    raw = archive_entry_pathname_utf8(e);
  if (raw == nullptr)
    return error{"entry #" + std::to_string(entries + 1) + " has no readable name"};
  out.name = raw;
  last_name = out.name;
  auto fail = [&](const std::string& why) { return error{"entry " + quote(out.name) + ": " + why}; };

  auto parts = split_name(out.name);
  if (!parts)
    return fail(parts.error().message());
  out.parts = std::move(*parts);
  out.mode = archive_entry_perm(e) & 07777;
  out.uid = static_cast<uid_t>(archive_entry_uid(e));
  out.gid = static_cast<gid_t>(archive_entry_gid(e));
  out.mtime.tv_sec = archive_entry_mtime(e);
  out.mtime.tv_nsec = archive_entry_mtime_nsec(e);
  if (archive_entry_uid(e) < 0 || archive_entry_uid(e) > std::numeric_limits<uid_t>::max() - 1 ||
      archive_entry_gid(e) < 0 || archive_entry_gid(e) > std::numeric_limits<gid_t>::max() - 1)
    return fail("owner " + std::to_string(archive_entry_uid(e)) + ":" +
                std::to_string(archive_entry_gid(e)) + " is out of range");
  out.size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (out.size < 0)
    return fail("negative size " + std::to_string(out.size));
  if (total_size > std::numeric_limits<std::int64_t>::max() - static_cast<std::uint64_t>(out.size))
    return fail("sizes add up past 2^63 bytes");
  total_size += static_cast<std::uint64_t>(out.size);

  // A copy: the whiteout branch below drops the component it came from.
  std::string base = out.parts.empty() ? std::string{} : out.parts.back();
  if (base.compare(0, whiteout_prefix.size(), whiteout_prefix) == 0) {
    out.parts.pop_back();
    if (base == opaque_marker) {
      out.kind = entry_kind::opaque;
    } else if (base.compare(0, aufs_prefix.size(), aufs_prefix) == 0) {
      out.kind = entry_kind::ignored;
    } else {
      auto target = base.substr(whiteout_prefix.size());
      if (target.empty() || target == "." || target == "..")
        return fail("whiteout names no file");
      out.kind = entry_kind::whiteout;
      out.parts.emplace_back(target);
    }
    return out;
  }

  if (const char* hard = archive_entry_hardlink(e)) {
    out.kind = entry_kind::hardlink;
    out.link = hard;
    auto target = split_name(out.link);
    if (!target)
      return fail("hardlink target " + quote(out.link) + ": " + target.error().message());
    if (target->empty() || *target == out.parts)
      return fail("hardlink to " + quote(out.link) + " links nothing");
    out.link_parts = std::move(*target);
  } else {
    switch (archive_entry_filetype(e)) {
    case AE_IFDIR: out.kind = entry_kind::directory; break;
    case AE_IFREG: out.kind = entry_kind::regular; break;
    case AE_IFLNK: {
      out.kind = entry_kind::symlink;
      const char* target = archive_entry_symlink(e);
      if (target == nullptr)
        target = archive_entry_symlink_utf8(e);
      if (target == nullptr || *target == '\0')
        return fail("symlink without a target");
      out.link = target;
      break;
    }
    default:
      // A device node in a rootfs is a way around the container's device cgroup.
      return fail(std::string{special_file_type(archive_entry_filetype(e))} +
                  " refused: images may not carry device nodes, FIFOs or sockets");
    }
  }
  if (out.parts.empty() && out.kind != entry_kind::directory)
    return fail("only a directory may stand for the rootfs itself");
  return out;
}

status layer_reader::read_data(
  const std::function<status(std::int64_t, const void*, std::size_t)>& fn) {
  while (true) {
    const void* buf = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(impl_->inner, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF)
      return {};
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return impl_->stream_failure(impl_->inner);
    if (auto st = fn(offset, buf, size); !st)
      return st;
  }
}

result<layer_summary> layer_reader::finish() {
  auto& p = *impl_;
  // The tar reader stops at the end-of-archive blocks; the digests cover
  // every byte, padding and trailing data included.
  while (true) {
    auto n = archive_read_data(p.outer, p.tar_buf.data(), p.tar_buf.size());
    if (n < 0)
      return p.stream_failure(p.outer);
    if (n == 0)
      break;
    p.tar_hash.update(p.tar_buf.data(), static_cast<std::size_t>(n));
  }
  auto rest = read_chunks(p.fd.get(), "the layer file", [&](const char* data, std::size_t n) {
    p.stored_hash.update(data, n);
    return status{};
  });
  if (!rest)
    return rest.error();
  return layer_summary{p.stored_hash.finish(), p.tar_hash.finish(), p.compression, p.entries};
}

} // namespace troupe::image
