#!/usr/bin/env bash
# Builds the npm package in pkg/: the crate compiled to wasm32 (burn's Flex CPU backend
# with simd128), JS bindings by wasm-bindgen, optimised by wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh wasm
target_dir=${CARGO_TARGET_DIR:-target}
CARGO_PROFILE_RELEASE_LTO=thin cargo build --lib --release --target wasm32-unknown-unknown --no-default-features
mkdir -p pkg/wasm
wasm-bindgen --target web --no-typescript --out-dir pkg/wasm --out-name localrec_wasm \
  "$target_dir/wasm32-unknown-unknown/release/localrec.wasm"
node_modules/.bin/wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  pkg/wasm/localrec_wasm_bg.wasm -o pkg/wasm/localrec_wasm_bg.wasm
ls -l pkg/wasm/localrec_wasm_bg.wasm | awk '{printf "pkg/wasm/localrec_wasm_bg.wasm: %d bytes\n", $5}'
