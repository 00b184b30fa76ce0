#include "runtime/logging.hpp"

#include <mutex>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace troupe::logging {

namespace {

struct shared_sinks {
  std::mutex mtx;
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_sink_mt>()};
  spdlog::level::level_enum level = spdlog::level::info;
};

shared_sinks& state() {
  static shared_sinks s;
  return s;
}

constexpr const char* pattern = "%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%n] %v";

} // namespace

status init(const std::string& level, const std::filesystem::path& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return error{"log level '" + level + "' is not one of trace debug info warn error critical off"};
  auto& s = state();
  std::lock_guard<std::mutex> guard{s.mtx};
  s.level = lvl;
  s.sinks.resize(1);
  if (!file.empty()) {
    try {
      s.sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string()));
    } catch (const spdlog::spdlog_ex& e) {
      return error{"log file " + file.string() + ": " + e.what()};
    }
  }
  for (auto& sink : s.sinks)
    sink->set_pattern(pattern);
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = s.sinks;
    l->set_level(lvl);
    l->flush_on(spdlog::level::info);
  });
  return {};
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  auto& s = state();
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto existing = spdlog::get(name))
    return existing;
  auto l = std::make_shared<spdlog::logger>(name, s.sinks.begin(), s.sinks.end());
  for (auto& sink : l->sinks())
    sink->set_pattern(pattern);
  l->set_level(s.level);
  l->flush_on(spdlog::level::info);
  spdlog::register_logger(l);
  return l;
}

} // namespace troupe::logging
