#include "actors/agent/keys.hpp"

#include "runtime/text.hpp"

namespace troupe::keys {

result<loaded> load(storage::environment& env, const agent_config& config) {
  auto stored = env.read([&](storage::read_txn& txn) { return keyring_table.get(txn, keyring_key); });
  if (!stored)
    return stored.error();
  std::optional<net::key> flag;
  if (!config.encrypt_key.empty()) {
    auto k = net::key::from_bytes(config.encrypt_key);
    if (!k)
      return k.error().with_context("--encrypt");
    flag = *k;
  }
  loaded out;
  if (*stored && (*stored)->keys_size() > 0) {
    for (int i = 0; i < (*stored)->keys_size(); ++i) {
      auto k = net::key::from_bytes((*stored)->keys(i));
      if (!k)
        return error{"stored keyring (table local, key keyring): key " + std::to_string(i) + ": " +
                     k.error().message()};
      if (!out.ring)
        out.ring = std::make_shared<net::keyring>(*k);
      else
        out.ring->install(*k);
    }
    if (flag)
      out.ring->install(*flag);
    out.note = "stored keyring, primary " + out.ring->primary().fingerprint();
  } else if (flag) {
    out.ring = std::make_shared<net::keyring>(*flag);
    out.note = "--encrypt, key " + flag->fingerprint();
  } else {
    return out; // clear text
  }
  if (auto s = save(env, *out.ring); !s)
    return s.error();
  return out;
}

status save(storage::environment& env, const net::keyring& ring) {
  v1::StoredKeyring rec;
  for (auto& k : ring.keys())
    rec.add_keys(std::string(reinterpret_cast<const char*>(k.data()), net::key::size));
  return env.write([&](storage::write_txn& txn) { return keyring_table.put(txn, keyring_key, rec); });
}

status change(storage::environment& env, net::keyring& ring, const v1::KeyChange& change) {
  auto k = net::key::from_base64(change.key());
  if (!k)
    return k.error().with_context("key");
  status done;
  if (change.op() == "install")
    ring.install(*k);
  else if (change.op() == "use")
    done = ring.use(*k);
  else if (change.op() == "remove")
    done = ring.remove(*k);
  else
    return error{"op " + quote(change.op()) + " is not install, use or remove"};
  if (!done)
    return done;
  return save(env, ring);
}

v1::KeyList list(const net::keyring* ring) {
  v1::KeyList out;
  out.set_encrypted(ring != nullptr);
  if (!ring)
    return out;
  bool first = true;
  for (auto& k : ring->keys()) {
    auto* info = out.add_keys();
    info->set_fingerprint(k.fingerprint());
    info->set_primary(first);
    first = false;
  }
  return out;
}

} // namespace troupe::keys
