#include "actors/registry/gc.hpp"

#include "actors/image/digest.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace troupe::registry {
namespace fs = std::filesystem;
namespace {

/// The blobs an image refers to, with their sizes where the record says.
std::map<std::string, std::uint64_t> blobs_of(const v1::ImageRecord& r) {
  std::map<std::string, std::uint64_t> out;
  for (const auto& l : r.layers())
    out[l.digest()] = l.size();
  out.emplace(r.id(), 0);
  out.emplace(r.manifest_digest(), 0);
  return out;
}

std::uint64_t total(const std::map<std::string, std::uint64_t>& sizes, const std::map<std::string, int>& refs) {
  std::uint64_t sum = 0;
  for (const auto& [d, n] : refs)
    if (n > 0)
      sum += sizes.at(d);
  return sum;
}

} // namespace

gc_choice choose(const gc_input& in) {
  gc_choice out;
  std::map<std::string, std::uint64_t> sizes;
  std::map<std::string, int> refs;
  for (const auto& r : in.images)
    for (const auto& [d, size] : blobs_of(r)) {
      sizes[d] = std::max(sizes[d], size);
      ++refs[d];
    }
  out.bytes_before = out.bytes_after = total(sizes, refs);
  std::vector<const v1::ImageRecord*> candidates;
  for (const auto& r : in.images) {
    if (in.in_use.count(r.name()))
      out.kept_in_use.push_back(r.name());
    else
      candidates.push_back(&r);
  }
  auto used = [&](const v1::ImageRecord* r) {
    auto it = in.last_used.find(r->name());
    return it != in.last_used.end() ? it->second : r->created_at_ms();
  };
  std::stable_sort(candidates.begin(), candidates.end(), [&](auto* a, auto* b) {
    return used(a) != used(b) ? used(a) < used(b) : a->name() < b->name();
  });
  for (const auto* r : candidates) {
    if (!in.all && out.bytes_after <= in.budget)
      break;
    for (const auto& [d, size] : blobs_of(*r))
      if (--refs[d] == 0)
        out.bytes_after -= sizes[d];
    out.remove.push_back(r->name());
  }
  return out;
}

v1::GcReport sweep(image::image_store& store, const gc_input& in, const gc_choice& choice,
                   std::chrono::seconds grace) {
  v1::GcReport report;
  report.set_budget_bytes(in.budget);
  for (const auto& name : choice.kept_in_use)
    report.add_kept_in_use(name);
  std::set<std::string> freed;  // blobs of removed images: go at once
  std::set<std::string> kept = in.keep_blobs;
  std::set<std::string> removed{choice.remove.begin(), choice.remove.end()};
  std::set<std::string> kept_ids;
  for (const auto& r : in.images) {
    auto blobs = blobs_of(r);
    if (removed.count(r.name())) {
      if (store.remove(r.name()))
        report.add_removed(r.name());
      for (const auto& [d, size] : blobs)
        freed.insert(d);
    } else {
      for (const auto& [d, size] : blobs)
        kept.insert(d);
      kept_ids.insert(r.id());
    }
  }
  // Over budget (or asked for all), orphans older than grace go too.
  bool sweep_orphans = in.all || choice.bytes_after > in.budget;
  auto old_enough = [&](const fs::path& p) {
    std::error_code ec;
    auto t = fs::last_write_time(p, ec);
    return !ec && fs::file_time_type::clock::now() - t > grace;
  };
  std::error_code ec;
  std::uint64_t kept_bytes = 0;
  for (const auto& entry : fs::directory_iterator(store.root() / "blobs" / "sha256", ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind(".tmp", 0) == 0)
      continue;  // a blob being written
    auto d = "sha256:" + name;
    auto size = entry.file_size(ec);
    if (kept.count(d) || (!freed.count(d) && !(sweep_orphans && old_enough(entry.path())))) {
      kept_bytes += ec ? 0 : size;
      continue;
    }
    if (fs::remove(entry.path(), ec))
      report.set_freed_bytes(report.freed_bytes() + size);
  }
  // The unpacked rootfs of each removed image, unless a kept image has the
  // same id. Others stay: a container may still run from the rootfs of an
  // image whose name moved on to another version.
  for (const auto& r : in.images) {
    auto id = image::digest::parse(r.id());
    if (!removed.count(r.name()) || kept_ids.count(r.id()) || !id)
      continue;
    fs::remove_all(store.root() / "rootfs" / id->hex(), ec);
  }
  report.set_kept_bytes(kept_bytes);
  return report;
}

} // namespace troupe::registry
