// How troupectl prints: tables for people (sized to the content, colour only
// on a terminal), or one JSON / YAML document per command for scripts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace troupectl {

enum class format { table, json, yaml };

/// One document: protobuf's JSON mapping, or the same as YAML.
std::string render(const google::protobuf::Message& msg, format f);

/// One document holding the fields of both messages side by side (their
/// field names must differ): `service inspect` prints a ServiceSummary with
/// the AllocationList's `allocations` beside its counts.
std::string render_merged(const google::protobuf::Message& first, const google::protobuf::Message& second, format f);

/// Columns padded to their widest cell; `colour` styles cells through
/// `style` (a cell that starts with "running" is green, etc.).
class table {
public:
  explicit table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  /// Fitted to the terminal's width when stdout is one (terminal_width()).
  std::string str(bool colour) const;
  /// Each row at most `max_width` characters wide (0: no limit): the widest
  /// columns shrink first, their cut cells end in "…".
  std::string str(bool colour, std::size_t max_width) const;

private:
  std::vector<std::vector<std::string>> rows_;
};

/// "3d4h", "5m3s", "12s", "850ms".
std::string human_duration(uint64_t ms);

/// "512B", "3.2KiB", "64.0MiB", "1.5GiB" (binary units, as docker stats).
std::string human_bytes(uint64_t bytes);

/// "5s ago", "3m2s ago"; "-" for 0 (never).
std::string ago(int64_t at_ms);

/// The width a table must fit: stdout's terminal (TIOCGWINSZ, else
/// $COLUMNS); 0 (no limit) when stdout is not a terminal.
std::size_t terminal_width();

/// Characters on screen of UTF-8 text (one per code point).
std::size_t display_width(const std::string& s);

/// `s` cut to `width` characters, its last one "…" when cut.
std::string cut(const std::string& s, std::size_t width);

/// Column widths (between them 2 spaces) narrowed, widest first, until a row
/// fits `limit` (0: no limit) or every column is down to 3 characters.
std::vector<std::size_t> fit_columns(std::vector<std::size_t> width, std::size_t limit);

/// True when stdout is a terminal and NO_COLOR is unset.
bool use_colour();

} // namespace troupectl
