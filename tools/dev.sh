#!/usr/bin/env bash
# The developer entry point behind the README's two commands.
#   tools/dev.sh serve [leadflow serve flags]  install what is missing, build, start the service
#   tools/dev.sh test  [ctest flags]           install what is missing, build, run every test
#   tools/dev.sh build                         install what is missing, build
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
    exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
    ;;
  build)
    deps
    build
    ;;
  *)
    echo "usage: tools/dev.sh serve|test|build [args]" >&2
    exit 2
    ;;
esac
