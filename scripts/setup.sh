#!/usr/bin/env bash
# Installs what the project needs, idempotently and quickly when it is all present.
#
#   scripts/setup.sh native   Rust tests: Vulkan CPU driver (lavapipe) for wgpu, the model
#   scripts/setup.sh wasm     wasm32 target, wasm-bindgen-cli at the Cargo.lock version, wasm-opt (npm binaryen)
#   scripts/setup.sh browser  + Debian chromium and chromedriver, npm packages for browser tests
#   scripts/setup.sh spark    the reference Spark job (examples/spark): a Debian JDK, pyspark and
#                             numpy from PyPI in the venv .cache/spark-venv
#   scripts/setup.sh demo     what `make demo` needs (wasm + the model)
#   scripts/setup.sh test     what `make test` needs (everything above)
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-test}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root to run: $*" >&2; exit 1; fi
}

apt_updated=
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_native() {
  apt_install mesa-vulkan-drivers libvulkan1
  ./scripts/fetch-model.sh
}

setup_wasm() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown
  setup_npm
  # wasm-bindgen-cli must match the wasm-bindgen crate version exactly.
  [ -f Cargo.lock ] || cargo generate-lockfile
  local version
  version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "setup: installing wasm-bindgen-cli $version (a few minutes, once)"
    cargo install --quiet wasm-bindgen-cli --version "$version"
  fi
}

# npm packages: binaryen (wasm-opt; Debian's is too old for the wasm Rust emits now),
# playwright-core (drives Debian's chromium; it never downloads a browser), vite, webpack,
# rollup (with @rollup/plugin-node-resolve and @web/rollup-plugin-import-meta-assets) and
# esbuild (the bundler tests build an app with each) and typescript (`make test` checks
# index.d.ts).
setup_npm() {
  if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] || [ ! -x node_modules/.bin/vite ] || [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/.bin/tsc ] \
     || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

# pyspark's version is pinned: the fixture tests/fixtures/spark-als was made with it.
PYSPARK_VERSION=4.3.0
SPARK_VENV=.cache/spark-venv
setup_spark() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  if ! "$SPARK_VENV/bin/python" -c "import pyspark, numpy, sys; sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; then
    echo "setup: installing pyspark $PYSPARK_VERSION into $SPARK_VENV (once)"
    python3 -m venv "$SPARK_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$SPARK_VENV"; }
    "$SPARK_VENV/bin/pip" install --quiet --disable-pip-version-check "pyspark==$PYSPARK_VERSION" numpy
  fi
}

setup_browser() {
  apt_install chromium chromium-driver fonts-liberation
  setup_npm
}

case "$want" in
  native) setup_native ;;
  wasm) setup_wasm ;;
  browser) setup_browser ;;
  spark) setup_spark ;;
  demo) setup_wasm; ./scripts/fetch-model.sh ;;
  test) setup_native; setup_wasm; setup_browser; setup_spark ;;
  *) echo "usage: $0 native|wasm|browser|spark|demo|test" >&2; exit 2 ;;
esac
