#!/usr/bin/env bash
# Installs the Debian bookworm packages leadflow needs to build, test and run.
# Idempotent: packages already present are skipped, so this is cheap on a warm machine.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libabsl-dev
  libprotobuf-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc
  librdkafka-dev kcat
  librocksdb-dev libsnappy-dev liblz4-dev libzstd-dev libbz2-dev zlib1g-dev
  libssl-dev libjwt-dev libsodium-dev
  libphonenumber-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev
  libgoogle-perftools-dev
  libyaml-cpp-dev prometheus-cpp-dev libspdlog-dev nlohmann-json3-dev
  postgresql libpq-dev
  docker-compose curl nodejs npm
  python3
  clang libclang-rt-14-dev clang-tidy clang-format
)

# Node.js may come from elsewhere than Debian (a newer one is fine): only install it if absent;
# not at all for an image build (LEADFLOW_SKIP_NPM=1), which runs no tests.
if [ "${LEADFLOW_SKIP_NPM:-0}" = 1 ] || { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
  kept=()
  for p in "${PACKAGES[@]}"; do
    if [ "$p" != nodejs ] && [ "$p" != npm ]; then kept+=("$p"); fi
  done
  PACKAGES=("${kept[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done


# The offline Kubernetes manifest check (tests/deploy) uses kubernetes-models from the npm
# registry, pinned by tools/deploy-check/package-lock.json.
install_npm() {
  [ "${LEADFLOW_SKIP_NPM:-0}" = 1 ] && return 0
  local dir
  dir="$(cd "$(dirname "$0")" && pwd)/deploy-check"
  if [ ! -d "$dir/node_modules/kubernetes-models" ]; then
    echo "install_deps: npm ci in tools/deploy-check"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
  install_npm
  exit 0
fi

echo "install_deps: installing ${#missing[@]} missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_npm
