#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

#include <sstream>

#include "tools/troupectl/output.hpp"

using namespace troupectl;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

table wide_table() {
  table t{{"NAME", "IMAGE", "MESSAGE"}};
  t.add({"web", "registry.example.com/team/web:1", "waiting for 3 nodes with the label zone=a to join"});
  t.add({"db", "postgres:15", "-"});
  return t;
}

} // namespace

TEST_CASE("a table without a width limit keeps every cell whole") {
  auto text = wide_table().str(false, 0);
  CHECK(text ==
        "NAME  IMAGE                            MESSAGE\n"
        "web   registry.example.com/team/web:1  waiting for 3 nodes with the label zone=a to join\n"
        "db    postgres:15                      -\n");
}

TEST_CASE("a table wider than the terminal shrinks its widest column first and cuts its cells with an ellipsis") {
  // 89 wide: MESSAGE (50) gives up 19 characters, IMAGE (31) none.
  auto lines = lines_of(wide_table().str(false, 70));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "NAME  IMAGE                            MESSAGE");
  CHECK(lines[1] == "web   registry.example.com/team/web:1  waiting for 3 nodes with the l…");
  CHECK(lines[2] == "db    postgres:15                      -");
  CHECK(display_width(lines[1]) == 70);
}

TEST_CASE("once the widest columns are equal they shrink in turn") {
  // MESSAGE down to 31, then IMAGE and MESSAGE a character each in turn.
  auto lines = lines_of(wide_table().str(false, 40));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "NAME  IMAGE             MESSAGE");
  CHECK(lines[1] == "web   registry.exampl…  waiting for 3 n…");
  CHECK(lines[2] == "db    postgres:15       -");
  for (auto& line : lines)
    CHECK(display_width(line) <= 40);
}

TEST_CASE("a table that fits is not cut, and colour codes do not count as width") {
  table t{{"ACTOR", "STATE"}};
  t.add({"monitor", "running"});
  CHECK(t.str(false, 16) == "ACTOR    STATE\nmonitor  running\n");
  CHECK(t.str(true, 16) == "ACTOR    STATE\nmonitor  \033[32mrunning\033[0m\n");
}

TEST_CASE("no column narrows below three characters, even when the row stays too wide") {
  CHECK(fit_columns({10, 10, 10}, 5) == std::vector<std::size_t>{3, 3, 3});
  CHECK(fit_columns({10, 4}, 0) == std::vector<std::size_t>{10, 4});
  CHECK(fit_columns({10, 4}, 12) == std::vector<std::size_t>{6, 4});
}

TEST_CASE("cutting counts characters, not bytes, of UTF-8 text") {
  CHECK(display_width("zone=ä…") == 7);
  CHECK(cut("abcdef", 4) == "abc…");
  CHECK(cut("äöüßxy", 3) == "äö…");
  CHECK(cut("abc", 3) == "abc");
}

/// Stdout replaced by `fd` for the life of this object.
class stdout_as {
public:
  explicit stdout_as(int fd) : saved_(::dup(STDOUT_FILENO)) { ::dup2(fd, STDOUT_FILENO); }
  ~stdout_as() {
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
  }

private:
  int saved_;
};

TEST_CASE("the width is the terminal's (TIOCGWINSZ, else COLUMNS) only when stdout is one") {
  ::setenv("COLUMNS", "33", 1);
  SUBCASE("not a terminal: no limit, whatever COLUMNS says") {
    int null = ::open("/dev/null", O_WRONLY);
    REQUIRE(null >= 0);
    {
      stdout_as redirected{null};
      CHECK(terminal_width() == 0);
      CHECK(wide_table().str(false) == wide_table().str(false, 0));
    }
    ::close(null);
  }
  SUBCASE("a terminal") {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    int pty = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
    REQUIRE(pty >= 0);
    winsize ws{};
    ws.ws_col = 50;
    ::ioctl(pty, TIOCSWINSZ, &ws);
    {
      stdout_as redirected{pty};
      CHECK(terminal_width() == 50);
      ws.ws_col = 0;  // a terminal that does not know its size
      ::ioctl(pty, TIOCSWINSZ, &ws);
      CHECK(terminal_width() == 33);
    }
    ::close(pty);
    ::close(master);
  }
  ::unsetenv("COLUMNS");
}
