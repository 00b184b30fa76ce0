// Golden output of troupectl against a live cluster (a server and a client
// agent, a service of two replicas): tables and JSON of the everyday
// commands and the help texts, compared with tests/golden/*.txt after what
// changes from run to run (ids, ports, times, sizes, counters, paths) is
// replaced by placeholders. TROUPE_UPDATE_GOLDEN=1 rewrites the files; a
// missing file is written and fails the test, so that it is looked at.
#include <cstdlib>
#include <regex>
#include <sstream>

#include "tests/integration/service_fixture.hpp"

using namespace troupe;
using namespace troupe::testing;

namespace {

/// Placeholders for what varies; runs of spaces (table padding, which
/// follows the widths of what varies) become two; for a table, its rows
/// (the lines after a block's first, in an order that follows random ids)
/// are sorted.
std::string normalize(const std::string& text, bool table) {
  static const std::vector<std::pair<std::regex, std::string>> rules{
    {std::regex{R"(Usage: \S*troupectl)"}, "Usage: troupectl"},
    {std::regex{R"(/tmp/troupe-it-[A-Za-z0-9]+)"}, "<DIR>"},
    {std::regex{R"(127\.0\.0\.1:[0-9]+)"}, "127.0.0.1:<PORT>"},
    {std::regex{R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)"}, "<TIME>"},
    {std::regex{R"(\b[0-9a-f]{12,64}\b)"}, "<ID>"},
    {std::regex{R"(\b\d+(\.\d+)?(ms|s|m|h|d|B|KiB|MiB|GiB)?(\d+(ms|s|m|h))?\b)"}, "<N>"},
    {std::regex{R"( {2,})"}, "  "},
    {std::regex{R"( +\n)"}, "\n"},
  };
  std::string out = text;
  for (const auto& [re, with] : rules)
    out = std::regex_replace(out, re, with);
  if (!table)
    return out;
  std::istringstream in{out};
  std::string sorted, line;
  std::vector<std::string> rows;
  bool first = true;
  auto flush = [&] {
    std::sort(rows.begin(), rows.end());
    for (auto& r : rows)
      sorted += r + "\n";
    rows.clear();
  };
  while (std::getline(in, line)) {
    if (line.empty()) {
      flush();
      sorted += "\n";
      first = true;
    } else if (first) {
      sorted += line + "\n";
      first = false;
    } else {
      rows.push_back(line);
    }
  }
  flush();
  return sorted;
}

/// `name` ending in .json, .yaml or starting with help is a document kept in
/// its order; any other a table.
void check_golden(const std::string& name, const run_result& r) {
  CAPTURE(name);
  REQUIRE_MESSAGE(r.code == 0, r.output);
  auto file = fs::path{TROUPE_SOURCE_DIR} / "tests/golden" / (name + ".txt");
  bool document = name.rfind("help", 0) == 0 || name.find(".json") != std::string::npos ||
                  name.find(".yaml") != std::string::npos;
  auto got = normalize(r.output, !document);
  const char* update = std::getenv("TROUPE_UPDATE_GOLDEN");
  if (!fs::exists(file) || (update && *update == '1')) {
    std::ofstream{file} << got;
    FAIL_CHECK("wrote " << file << ": review it and run again");
    return;
  }
  auto want = read_file(file);
  CHECK_MESSAGE(got == want, "troupectl output differs from " << file << " (TROUPE_UPDATE_GOLDEN=1 rewrites it)\n"
                                                               << "--- got:\n" << got << "--- want:\n" << want);
}

} // namespace

TEST_CASE("troupectl prints what the golden files hold, as tables, JSON, YAML and help") {
  agents set;
  auto& s1 = set.add_server();
  set.add_client("c1");
  auto spec = spec_file(s1, "web.yaml", R"(name: web
image: busybox:1
command: [sleep, "1000"]
replicas: 2
resources: {cpu: 100m, memory: 32Mi}
labels: {tier: front}
)");
  REQUIRE(s1.ctl({"deploy", "-f", spec}).code == 0);
  REQUIRE_MESSAGE(eventually(20s, [&] {
    auto s = only_service(s1);
    return s && s->running() == 2;
  }), s1.ctl({"ps", "--all"}).output);
  REQUIRE(s1.ctl({"token", "create", "reader", "--scope", "read"}).code == 0);

  check_golden("services", s1.ctl({"services"}));
  check_golden("services.json", s1.ctl({"-o", "json", "services"}));
  check_golden("service-inspect", s1.ctl({"service", "inspect", "web"}));
  check_golden("ps-web", s1.ctl({"ps", "web"}));
  check_golden("token-whoami.yaml", s1.ctl({"-o", "yaml", "token", "whoami"}));
  check_golden("token-list", s1.ctl({"token", "list"}));
  check_golden("token-whoami.json", s1.ctl({"-o", "json", "token", "whoami"}));
  check_golden("help", s1.ctl({"--help"}));
  check_golden("help-token-create", s1.ctl({"token", "create", "--help"}));
  check_golden("help-deploy", s1.ctl({"deploy", "--help"}));
}
