// Image garbage collection: which images to drop so that the blobs fit in
// the cache budget (least recently used first, never one a task of this
// node uses), then the sweep that deletes what no image refers to any more:
// blobs and unpacked rootfs. The choice is pure; the sweep touches disk.
#pragma once

#include "actors/image/store.hpp"
#include "troupe/v1/image.pb.h"
#include "troupe/v1/registry.pb.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace troupe::registry {

struct gc_input {
  std::vector<v1::ImageRecord> images;
  std::set<std::string> in_use;                  // image record names a task uses
  std::map<std::string, std::int64_t> last_used;  // record name -> unix ms; missing: created_at_ms
  std::uint64_t budget = 0;                      // bytes of blobs to keep at most
  bool all = false;                              // drop every unused image
  std::set<std::string> keep_blobs;              // digests held for other reasons (tags of pushed indexes)
};

struct gc_choice {
  std::vector<std::string> remove;      // oldest use first
  std::vector<std::string> kept_in_use;
  std::uint64_t bytes_before = 0;       // distinct blobs the images refer to
  std::uint64_t bytes_after = 0;
};

/// Blobs shared by images count once; dropping an image frees only the
/// blobs no kept image refers to.
gc_choice choose(const gc_input& in);

/// Removes the chosen images' records, then every blob and rootfs no
/// remaining image refers to: at once those the removed images held, and
/// others (left by crashed pulls, or cached for peers) only when older
/// than grace. Returns the report.
v1::GcReport sweep(image::image_store& store, const gc_input& in, const gc_choice& choice,
                   std::chrono::seconds grace);

} // namespace troupe::registry
