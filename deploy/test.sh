#!/usr/bin/env bash
# Installs every dependency, builds Troupe with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs every test through ctest.
#   BUILD_DIR   build directory (default build/asan)
#   BUILD_TYPE  CMake build type (default Asan; Debug, Release also work)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

deploy/setup.sh

build=${BUILD_DIR:-build/asan}
type=${BUILD_TYPE:-Asan}
jobs=$(nproc)
start=$(date +%s)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$type"
cmake --build "$build" -j"$jobs"
built=$(date +%s)
echo "test.sh: build ($type) took $((built - start))s"

cd "$build"
ctest -j"$jobs" --output-on-failure --timeout 300
echo "test.sh: tests took $(($(date +%s) - built))s"
