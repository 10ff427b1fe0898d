#!/usr/bin/env bash
# The developer entry point behind the README's two commands.
#   tools/dev.sh serve [leadflow serve flags]  install what is missing, build, start the service
#   tools/dev.sh test  [ctest flags]           install what is missing, build, run every test
#   tools/dev.sh build                         install what is missing, build
#   tools/dev.sh bench [suite_bench flags]     the benchmark suite (docs/benchmarks.md), e.g.
#                                              --leads 1000000 --json b.json --markdown b.md
#   tools/dev.sh fuzz [seconds]                the libFuzzer targets (clang, ASan, UBSan), each
#                                              for [seconds] (default 20) from the seed corpus
#   tools/dev.sh sanitize [ctest flags]        the whole suite built with ASan and UBSan
# `test` runs the suite, then the fuzzers for 20 s each (LEADFLOW_SKIP_FUZZ=1 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${LEADFLOW_BUILD_DIR:-build}
# ccache keeps its cache under $HOME; without a HOME (a bare CI environment) keep it in the tree.
if [ -z "${HOME:-}" ] && [ -z "${CCACHE_DIR:-}" ]; then
  export CCACHE_DIR="$PWD/.cache/ccache"
fi
JOBS=${LEADFLOW_JOBS:-$(nproc)}

deps() { bash tools/install_deps.sh; }

build() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  echo "dev.sh: building in $BUILD_DIR with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# The fuzz targets in their own build directory (clang, -fsanitize=fuzzer,address,undefined).
fuzz() {
  local seconds=${1:-20}
  local dir=${BUILD_DIR}-fuzz
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_COMPILER=clang++ -DLEADFLOW_FUZZ=ON
  fi
  cmake -S . -B "$dir" -DLEADFLOW_FUZZ_SECONDS="$seconds" >/dev/null
  echo "dev.sh: building the fuzz targets in $dir"
  cmake --build "$dir" --target fuzzers -j "$JOBS"
  ctest --test-dir "$dir" --output-on-failure -L fuzz
}

verb=${1:-}
shift || true
case "$verb" in
  serve)
    deps
    build
    echo "dev.sh: starting leadflow (data in ./leadflow-data, gRPC on 127.0.0.1:50051)."
    echo "dev.sh: in another terminal try: $BUILD_DIR/bin/leadctl --help"
    exec "$BUILD_DIR/bin/leadflow" serve "$@"
    ;;
  test)
    deps
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
    if [ "${LEADFLOW_SKIP_FUZZ:-0}" != 1 ]; then fuzz 20; fi
    ;;
  fuzz)
    deps
    fuzz "${1:-20}"
    ;;
  sanitize)
    deps
    dir=${BUILD_DIR}-asan
    if [ ! -f "$dir/build.ninja" ]; then
      cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEADFLOW_SANITIZE=ON
    fi
    cmake --build "$dir" -j "$JOBS"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      exec ctest --test-dir "$dir" --output-on-failure -j "$JOBS" "$@"
    ;;
  bench)
    deps
    build
    exec "$BUILD_DIR/bin/suite_bench" "$@"
    ;;
  build)
    deps
    build
    ;;
  *)
    echo "usage: tools/dev.sh serve|test|build|bench|fuzz|sanitize [args]" >&2
    exit 2
    ;;
esac
