// The one main() of every doctest binary. CAF's test engine is linked in
// (without its main) so that caf/test/dsl.hpp fixtures work under doctest.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
