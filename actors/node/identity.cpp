#include "actors/node/identity.hpp"

#include <chrono>
#include <random>

#include "runtime/text.hpp"

namespace troupe::node {

namespace {

std::string random_id() {
  std::random_device rd;
  static constexpr char hex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    auto word = rd();
    for (int k = 0; k < 8; ++k, word >>= 4)
      id += hex[word & 0xf];
  }
  return id;
}

result<v1::NodeRecord> open_record(storage::environment& env, const std::string& name, bool count_boot) {
  return env.write([&](storage::write_txn& txn) -> result<v1::NodeRecord> {
    auto stored = local_node_table.get(txn, node_key);
    if (!stored)
      return stored.error();
    v1::NodeRecord rec;
    if (*stored) {
      rec = std::move(**stored);
      if (rec.name() != name)
        return error{"data dir " + env.dir().string() + " belongs to node " + quote(rec.name()) +
                     " (id " + rec.id() + "), not " + quote(name) +
                     ": start it as --name " + rec.name() + " or use another --data-dir"};
    } else {
      rec.set_id(random_id());
      rec.set_name(name);
      rec.set_created_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
    }
    if (count_boot)
      rec.set_boot_count(rec.boot_count() + 1);
    else if (*stored)
      return rec; // nothing to write
    if (auto st = local_node_table.put(txn, node_key, rec); !st)
      return st.error();
    return rec;
  });
}

} // namespace

result<v1::NodeRecord> identify(storage::environment& env, const std::string& name) {
  return open_record(env, name, false);
}

result<v1::NodeRecord> boot(storage::environment& env, const std::string& name) {
  return open_record(env, name, true);
}

result<v1::NodeRecord> load(const storage::environment& env) {
  return env.read([&](storage::read_txn& txn) -> result<v1::NodeRecord> {
    auto stored = local_node_table.get(txn, node_key);
    if (!stored)
      return stored.error();
    if (!*stored)
      return error{"data dir " + env.dir().string() + " has no node record (table local, key node)"};
    return std::move(**stored);
  });
}

} // namespace troupe::node
