// caf/test/dsl.hpp under doctest: CAF's check macros routed to doctest
// (see ../shared/notes/caf-0.17.md §8). Include last, in test files only.
// Exactly one file per test binary also defines the CAF test engine with
//   #define CAF_TEST_NO_MAIN
//   #include <caf/test/unit_test_impl.hpp>
#pragma once
#include <cstdlib>
#include <sstream>
#include <doctest/doctest.h>
#include <caf/test/unit_test.hpp>
#undef CAF_MESSAGE
#undef CAF_CHECK
#undef CAF_CHECK_EQUAL
#undef CAF_CHECK_FUNC
#undef CAF_CHECK_FAIL
#undef CAF_FAIL
#undef CAF_REQUIRE
#undef CAF_REQUIRE_FUNC
#define CAF_MESSAGE(msg) do { } while (false)
#define CAF_CHECK(...) CHECK(static_cast<bool>(__VA_ARGS__))
#define CAF_CHECK_EQUAL(x, y) CHECK_EQ(x, y)
#define CAF_CHECK_FUNC(func, x, y) CHECK(func{}(x, y))
#define CAF_CHECK_FAIL(...) CHECK_FALSE(static_cast<bool>(__VA_ARGS__))
// expect() checks run in a noexcept destructor: record the failure and abort.
#define CAF_FAIL(msg)                                                      \
  do { std::ostringstream os_; os_ << msg; FAIL_CHECK(os_.str()); std::abort(); } while (0)
#undef FAIL
#define FAIL(msg) CAF_FAIL(msg)
#define CAF_REQUIRE(...)                                                   \
  do { if (!static_cast<bool>(__VA_ARGS__)) CAF_FAIL(#__VA_ARGS__); } while (0)
#define CAF_REQUIRE_FUNC(func, x, y)                                       \
  do { if (!func{}(x, y)) CAF_FAIL(#func "(" #x ", " #y ")"); } while (0)
#include <caf/test/dsl.hpp>
