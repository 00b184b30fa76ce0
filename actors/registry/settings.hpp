// The registries file (--registries FILE): how this agent reaches each
// image registry, as containerd's hosts.toml or Docker's daemon.json and
// config.json say it:
//
//   registries:
//     - host: registry.example.com:5000
//       ca-file: /etc/troupe/registry-ca.pem    # trust this CA for its TLS
//       username: deploy
//       password-file: /etc/troupe/registry.pass  # first line is the password
//     - host: 10.0.0.5:5000
//       plain-http: true                         # no TLS (loopback hosts never use it)
//
// Read once at start; every problem is an error naming the file, the line
// and column, and the field.
#pragma once

#include "actors/image/registry_client.hpp"
#include "runtime/config.hpp"
#include "runtime/result.hpp"

#include <filesystem>

namespace troupe::registry {

/// The registry client's options from the agent's flags and, when given,
/// the registries file.
result<image::registry_options> load_options(const agent_config& config);

/// Parses the registries file's text; file names it in errors.
result<std::vector<image::registry_host>> parse_registries(const std::string& text, const std::string& file);

} // namespace troupe::registry
