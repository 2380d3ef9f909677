#!/usr/bin/env bash
# Builds the npm package in pkg/: the crate compiled to wasm32 (burn's Flex CPU backend
# with simd128), JS bindings by wasm-bindgen, optimised by wasm-opt.
#
# Two binaries share one JS glue: localrec_wasm_bg.wasm (simd128) and
# localrec_wasm_relaxed_bg.wasm, the same code with relaxed SIMD enabled for our crate
# only (its dense kernel then uses fused multiply-add). In both, scripts/dense-kernel.mjs
# puts a hand-scheduled kernel loop in after linking. The worker loads the relaxed one
# where the engine validates relaxed SIMD. Only our crate is compiled twice: the flag
# goes to `cargo rustc`, so dependencies are shared.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh wasm
target_dir=${CARGO_TARGET_DIR:-target}
export CARGO_PROFILE_RELEASE_LTO=thin
wasm_args=(--lib --release --target wasm32-unknown-unknown --no-default-features)
built="$target_dir/wasm32-unknown-unknown/release/localrec.wasm"
opt_flags=(-O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The CPU builds: simd128, then the same with relaxed SIMD for our crate only.
cargo build "${wasm_args[@]}"
wasm-bindgen --target web --no-typescript --out-dir "$tmp/plain" --out-name localrec_wasm "$built"
cargo rustc "${wasm_args[@]}" -- -C target-feature=+relaxed-simd
wasm-bindgen --target web --no-typescript --out-dir "$tmp/relaxed" --out-name localrec_wasm "$built"
# Comments may differ (wasm-bindgen notes internal shim numbers in them); code may not.
code_only() { grep -v '^[[:space:]]*//' "$1"; }
if ! cmp -s <(code_only "$tmp/plain/localrec_wasm.js") <(code_only "$tmp/relaxed/localrec_wasm.js"); then
  echo "build-pkg: the two cpu wasm builds need different JS glue; they must share one" >&2
  exit 1
fi
# The WebGPU build (burn-wgpu on the browser's WebGPU, Flex too): about 6x the size of
# the CPU build, so it is a separate module that the worker imports only when WebGPU is
# asked for or timed. wasm-opt takes many minutes on it for little gain: names are
# stripped instead.
cargo build "${wasm_args[@]}" --features webgpu
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-dir "$tmp/webgpu" --out-name localrec_webgpu "$built"

mkdir -p pkg/wasm
rm -f pkg/wasm/*
cp "$tmp/plain/localrec_wasm.js" "$tmp/webgpu/localrec_webgpu.js" "$tmp/webgpu/localrec_webgpu_bg.wasm" pkg/wasm/
node_modules/.bin/wasm-opt "${opt_flags[@]}" "$tmp/plain/localrec_wasm_bg.wasm" -o pkg/wasm/localrec_wasm_bg.wasm
node_modules/.bin/wasm-opt "${opt_flags[@]}" --enable-relaxed-simd "$tmp/relaxed/localrec_wasm_bg.wasm" \
  -o pkg/wasm/localrec_wasm_relaxed_bg.wasm
# The dense layers' tile kernel: a hand-scheduled body in both CPU builds (the reason is in
# the script); the export that let the script find it is dropped from all three.
node scripts/dense-kernel.mjs pkg/wasm/localrec_wasm_relaxed_bg.wasm relaxed
node scripts/dense-kernel.mjs pkg/wasm/localrec_wasm_bg.wasm plain
node scripts/dense-kernel.mjs pkg/wasm/localrec_webgpu_bg.wasm strip
node scripts/wasm-digests.mjs pkg/wasm
for f in pkg/wasm/*.wasm; do
  printf '%s: %d bytes\n' "$f" "$(stat -c %s "$f")"
done
