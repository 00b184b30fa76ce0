#include "actors/image/pack.hpp"

#include "actors/image/posix.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string_view>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace troupe::image {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t block = 512;

/// One tar member's header as POSIX.1-2001 (pax) writes it: a ustar header,
/// preceded by a pax extended header ('x') when a path, link target, size or
/// owner does not fit ustar's fields. Written by hand rather than through
/// libarchive: its writers link every format it has (and libxml2 and ICU with
/// them) into the agent, for 1.4 MiB of mapped memory.
struct tar_member {
  std::string path;      // "dir/" for directories
  char type = '0';       // '0' file, '1' hardlink, '2' symlink, '5' directory
  std::uint32_t mode = 0;
  std::uint64_t uid = 0, gid = 0, size = 0;
  std::int64_t mtime = 0;
  std::string link;      // hardlink or symlink target
};

/// Writes value as NUL-terminated, zero-padded octal into a field of width
/// bytes; false if it does not fit.
bool put_octal(char* field, std::size_t width, std::uint64_t value) {
  std::size_t digits = width - 1;
  field[digits] = '\0';
  for (std::size_t i = digits; i-- > 0; value >>= 3)
    field[i] = static_cast<char>('0' + (value & 7));
  return value == 0;
}

/// One pax record, "LEN key=value\n", where LEN counts the whole record.
void pax_record(std::string& out, std::string_view key, std::string_view value) {
  std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  std::size_t len = body + 1;
  while (len != body + std::to_string(len).size())
    len = body + std::to_string(len).size();
  out += std::to_string(len);
  out += ' ';
  out += key;
  out += '=';
  out += value;
  out += '\n';
}

/// Fills a ustar header; the fields that do not fit are added to pax.
std::string ustar_header(const tar_member& m, std::string& pax) {
  std::string h(block, '\0');
  char* b = h.data();
  // The path goes in name (100), or split at a '/' into prefix (155) and name.
  if (m.path.size() <= 100) {
    m.path.copy(b, 100);
  } else {
    std::size_t cut = m.path.rfind('/', std::min<std::size_t>(m.path.size() - 2, 155));
    if (cut != std::string::npos && cut > 0 && m.path.size() - cut - 1 <= 100 &&
        m.path.size() - cut - 1 > 0) {
      m.path.copy(b + 345, cut);
      m.path.copy(b, 100, cut + 1);
    } else {
      pax_record(pax, "path", m.path);
      m.path.copy(b, 100);
    }
  }
  put_octal(b + 100, 8, m.mode & 07777);
  if (!put_octal(b + 108, 8, m.uid)) {
    pax_record(pax, "uid", std::to_string(m.uid));
    put_octal(b + 108, 8, 0);
  }
  if (!put_octal(b + 116, 8, m.gid)) {
    pax_record(pax, "gid", std::to_string(m.gid));
    put_octal(b + 116, 8, 0);
  }
  if (!put_octal(b + 124, 12, m.size)) {
    pax_record(pax, "size", std::to_string(m.size));
    put_octal(b + 124, 12, 0);
  }
  if (m.mtime < 0 || !put_octal(b + 136, 12, static_cast<std::uint64_t>(m.mtime))) {
    pax_record(pax, "mtime", std::to_string(m.mtime));
    put_octal(b + 136, 12, 0);
  }
  b[156] = m.type;
  if (m.link.size() > 100)
    pax_record(pax, "linkpath", m.link);
  m.link.copy(b + 157, 100);
  std::memcpy(b + 257, "ustar\0" "00", 8);
  put_octal(b + 329, 8, 0);
  put_octal(b + 337, 8, 0);
  std::memset(b + 148, ' ', 8);  // the checksum counts its own field as spaces
  unsigned sum = 0;
  for (unsigned char c : h)
    sum += c;
  put_octal(b + 148, 7, sum);
  b[155] = ' ';
  return h;
}

class packer {
public:
  explicit packer(blob_writer& out) : out_(out) {}

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

  /// The end of the archive: two zero blocks.
  status close() { return out_.write(std::string(2 * block, '\0').data(), 2 * block); }

private:
  status write_header(const tar_member& m) {
    std::string pax;
    std::string header = ustar_header(m, pax);
    if (!pax.empty()) {
      tar_member x;
      x.path = "PaxHeaders/" + m.path.substr(0, 89);
      x.type = 'x';
      x.mode = 0644;
      x.size = pax.size();
      std::string ignored;
      std::string xh = ustar_header(x, ignored);
      pax.resize((pax.size() + block - 1) / block * block, '\0');
      if (auto st = out_.write(xh.data(), xh.size()); !st)
        return st;
      if (auto st = out_.write(pax.data(), pax.size()); !st)
        return st;
    }
    return out_.write(header.data(), header.size());
  }

  status add(const fs::path& file, const std::string& rel) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0)
      return system_error("inspecting " + file.string());
    tar_member m;
    m.path = rel;
    m.mode = st.st_mode & 07777;
    m.uid = st.st_uid;
    m.gid = st.st_gid;
    m.mtime = st.st_mtim.tv_sec;
    std::optional<unique_fd> content;
    if (S_ISDIR(st.st_mode)) {
      m.type = '5';
      m.path += '/';
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(PATH_MAX), '\0');
      auto n = ::readlink(file.c_str(), target.data(), target.size());
      if (n < 0)
        return system_error("reading symlink " + file.string());
      target.resize(static_cast<std::size_t>(n));
      m.type = '2';
      m.link = std::move(target);
    } else if (S_ISREG(st.st_mode)) {
      const std::string* first_name = nullptr;
      if (st.st_nlink > 1) {
        auto [it, fresh] = links_.try_emplace({st.st_dev, st.st_ino}, rel);
        first_name = fresh ? nullptr : &it->second;
      }
      if (first_name) {
        m.type = '1';
        m.link = *first_name;
      } else {
        m.size = static_cast<std::uint64_t>(st.st_size);
        content.emplace(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!*content)
          return system_error("opening " + file.string());
      }
    } else {
      return error{file.string() + " is a " + special_file_type(st.st_mode) +
                   ": a rootfs to import may only hold files, directories and symlinks"};
    }
    if (auto written = write_header(m); !written)
      return written;
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
      return out_.write(data, n);
    });
    if (!read)
      return read;
    if (copied != size)
      return error{file.string() + " shrank while it was imported"};
    std::size_t pad = (block - static_cast<std::size_t>(size) % block) % block;
    return pad ? out_.write(std::string(pad, '\0').data(), pad) : status{};
  }

  blob_writer& out_;
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
    if (auto st = p.add_tree(dir, ""); !st)
      return st.error();
    if (auto st = p.close(); !st)
      return st.error();
  }
  return out->commit();
}

} // namespace troupe::image
