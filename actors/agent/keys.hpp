// The node's encryption keyring (gossip datagrams and RPC frames): built at
// start from the stored keyring (table "local", key "keyring": what the last
// rotation left) and --encrypt, changed at run time through POST /v1/keys,
// and stored again after every change so that a rotation survives restarts.
#pragma once

#include <memory>

#include "net/keyring.hpp"
#include "runtime/config.hpp"
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupe::keys {

inline const storage::table<v1::StoredKeyring> keyring_table{"local"};
inline constexpr const char* keyring_key = "keyring";

struct loaded {
  std::shared_ptr<net::keyring> ring;  // null: no encryption
  std::string note;                    // for the start log: where the keys came from
};

/// The stored keyring with --encrypt installed into it (primary only when
/// nothing was stored), or --encrypt alone, or none.
result<loaded> load(storage::environment& env, const agent_config& config);

status save(storage::environment& env, const net::keyring& ring);

/// Applies one KeyChange (install | use | remove) and stores the result.
/// Errors name the problem ("op 'swap' is not install, use or remove").
status change(storage::environment& env, net::keyring& ring, const v1::KeyChange& change);

v1::KeyList list(const net::keyring* ring);

} // namespace troupe::keys
