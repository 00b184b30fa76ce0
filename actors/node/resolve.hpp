// From what an operator asked (TaskSpec) and the image it names to what the
// container driver runs (container_config): argv from command or entrypoint+cmd,
// environment image-then-task, user names looked up in the image, volumes
// turned into host paths, ports as allocated. Pure: no actors, no driver.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "actors/node/runc/container.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupe::node {

struct resolve_input {
  std::string container_id;
  const v1::TaskSpec* spec = nullptr;
  const v1::ImageRecord* image = nullptr;
  std::filesystem::path rootfs;               // the image's prepared rootfs
  std::filesystem::path volumes_root;         // <data dir>/volumes
  std::map<std::string, int> ports;           // name -> host port, already allocated
};

/// The container to run, or an error naming the field of the spec at fault.
result<runc::container_config> resolve(const resolve_input& in);

/// Checks a TaskSpec before anything is stored: name, image, restart policy,
/// ports, volumes and limits, each error naming the field.
status validate_spec(const v1::TaskSpec& spec);

} // namespace troupe::node
