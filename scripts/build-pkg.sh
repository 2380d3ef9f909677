#!/usr/bin/env bash
# Builds the npm package's wasm in pkg/wasm: the crate compiled to wasm32 (burn's Flex CPU
# backend with simd128), JS bindings by wasm-bindgen, optimised by wasm-opt.
#
#   scripts/build-pkg.sh           the package (pkg/wasm)
#   scripts/build-pkg.sh --bench   the benchmarks' build (.cache/bench-wasm): the CPU and the
#                                  WebGPU module with cargo feature `bench`, whose extra
#                                  exports (WasmScorerBench, benchDense) never ship
#
# Two binaries share one JS glue: localrec_wasm_bg.wasm (simd128) and
# localrec_wasm_relaxed_bg.wasm, the same code with relaxed SIMD enabled for our crate
# only (its dense kernel then uses fused multiply-add). In both, scripts/dense-kernel.mjs
# puts a hand-scheduled kernel loop in after linking. The worker loads the relaxed one
# where the engine validates relaxed SIMD. Only our crate is compiled twice: the flag
# goes to `cargo rustc`, so dependencies are shared.
#
# Incremental: cargo decides what to recompile, each build against its own last one
# (cargo_variant); every step after it (wasm-bindgen, wasm-opt, the kernel splice) runs
# only when its inputs changed. Each module's steps
# write into .cache/wasm-build/NAME/ with a stamp: the SHA-256 of the cargo-built module,
# of the tools' versions and of this script and the node scripts it runs (which hold
# every flag). An unchanged stamp whose outputs still hash as recorded skips the steps;
# pkg/wasm gets only the files that differ. .cache/wasm-build/{plain,relaxed}/opt.wasm
# (optimised, Rust kernel body, layout section kept) is what
# tests/browser/dense-kernel.test.mjs compares the spliced kernel with.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=pkg
case "${1:-}" in
  '') ;;
  --bench) mode=bench ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac
./scripts/setup.sh wasm
target_dir=${CARGO_TARGET_DIR:-target}
export CARGO_PROFILE_RELEASE_LTO=thin
wasm_args=(--lib --release --target wasm32-unknown-unknown --no-default-features)
built="$target_dir/wasm32-unknown-unknown/release/localrec.wasm"
opt_flags=(-O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue)
cache=.cache/wasm-build
wasm_opt=node_modules/.bin/wasm-opt
release_dir=$target_dir/wasm32-unknown-unknown/release
# One build at a time per target folder: the builds below take turns on one output file.
mkdir -p "$release_dir"
exec 9> "$release_dir/.localrec-build-pkg.lock"
flock 9
# Everything besides the module that decides a step's output.
tools_key=$({
  wasm-bindgen --version
  "$wasm_opt" --version
  node --version
  sha256sum scripts/build-pkg.sh scripts/dense-kernel.mjs node_modules/binaryen/package.json
} | sha256sum | cut -d' ' -f1)

# cargo_variant NAME CARGO-ARGS...: cargo keeps one fingerprint and one set of outputs per
# package in a target folder whatever the features or flags (a cdylib's file names carry no
# hash), so the builds below (simd128, relaxed SIMD, WebGPU; bench) would each find the
# one before and recompile our crate, 1-2 minutes each, on every run. Each build's
# fingerprint and outputs are set aside after it and put back before it, mtimes kept, so
# cargo finds its own last build and judges it as usual (a changed source, flag or
# dependency still recompiles).
cargo_variant() {
  local name=$1 saved=$release_dir/.localrec-variants/$1 f
  shift
  if [[ -f $saved/complete ]]; then
    rm -rf "$release_dir"/.fingerprint/localrec-*
    cp -pr "$saved"/fingerprint/. "$release_dir/.fingerprint/"
    cp -p "$saved"/deps/* "$release_dir/deps/"
  fi
  cargo "$@"
  rm -rf "$saved"
  mkdir -p "$saved/fingerprint" "$saved/deps"
  cp -pr "$release_dir"/.fingerprint/localrec-* "$saved/fingerprint/"
  for f in liblocalrec.rlib localrec.d localrec.wasm; do cp -p "$release_dir/deps/$f" "$saved/deps/"; done
  touch "$saved/complete"
  # The module the steps below read must be this build's.
  cmp -s "$built" "$release_dir/deps/localrec.wasm" || { echo "build-pkg: $built is not the $name build" >&2; exit 1; }
}

# chain NAME: runs build_NAME on the module cargo just built, into $cache/NAME, unless
# that folder's stamp says it already holds the outputs of these exact inputs.
chain() {
  local name=$1 dir=$cache/$1 key
  key=$(printf '%s %s %s\n' "$name" "$tools_key" "$(sha256sum < "$built" | cut -d' ' -f1)" | sha256sum | cut -d' ' -f1)
  if [[ -f $dir/stamp && $(< "$dir/stamp") == "$key" ]] && (cd "$dir" && sha256sum --status -c outputs.sha256 2> /dev/null); then
    echo "build-pkg: $name: up to date"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  "build_$name" "$dir"
  (cd "$dir" && find . -type f ! -name stamp ! -name outputs.sha256 -print0 | sort -z | xargs -0 sha256sum > outputs.sha256)
  echo "$key" > "$dir/stamp"
}

# CPU module: bindings, wasm-opt into opt.wasm (the Rust kernel body), then the spliced
# kernel ($1: plain or relaxed) into OUT.
cpu_steps() {
  local dir=$1 kernel=$2 out=$3
  shift 3
  wasm-bindgen --target web --no-typescript --out-dir "$dir" --out-name localrec_wasm "$built"
  "$wasm_opt" "${opt_flags[@]}" "$@" "$dir/localrec_wasm_bg.wasm" -o "$dir/opt.wasm"
  rm "$dir/localrec_wasm_bg.wasm"
  node scripts/dense-kernel.mjs "$dir/opt.wasm" "$kernel" "$dir/$out"
}
# The WebGPU module (burn-wgpu on the browser's WebGPU, Flex too): about 6x the size of
# the CPU build, so it is a separate module that the worker imports only when WebGPU is
# asked for or timed. wasm-opt takes many minutes on it for little gain: names are
# stripped instead. It never runs the dense kernel: only the export and section go.
webgpu_steps() {
  local dir=$1
  wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$dir" --out-name localrec_webgpu "$built"
  mv "$dir/localrec_webgpu_bg.wasm" "$dir/raw.wasm"
  node scripts/dense-kernel.mjs "$dir/raw.wasm" strip "$dir/localrec_webgpu_bg.wasm"
  rm "$dir/raw.wasm"
}
build_plain() { cpu_steps "$1" plain localrec_wasm_bg.wasm; }
build_relaxed() { cpu_steps "$1" relaxed localrec_wasm_relaxed_bg.wasm --enable-relaxed-simd; }
build_webgpu() { webgpu_steps "$1"; }
build_bench_cpu() { cpu_steps "$1" plain localrec_wasm_bg.wasm; }
build_bench_webgpu() { webgpu_steps "$1"; }

# install DEST SRC...: DEST holds exactly these files, each replaced only if it differs
# (renamed into place, so a reader never sees half a file).
install_files() {
  local dest=$1 f
  shift
  mkdir -p "$dest"
  for f in "$dest"/*; do
    [[ -e $f ]] || continue
    local keep=0 src
    for src in "$@"; do [[ $(basename "$src") == $(basename "$f") ]] && keep=1; done
    [[ $keep == 1 || $(basename "$f") == digests.js ]] || rm -rf "$f"
  done
  for src in "$@"; do
    if ! cmp -s "$src" "$dest/$(basename "$src")"; then
      cp "$src" "$dest/.$(basename "$src").tmp"
      mv "$dest/.$(basename "$src").tmp" "$dest/$(basename "$src")"
    fi
  done
  node scripts/wasm-digests.mjs "$dest"
  for f in "$dest"/*.wasm; do
    printf '%s: %d bytes\n' "$f" "$(stat -c %s "$f")"
  done
}

if [[ $mode == bench ]]; then
  cargo_variant bench_cpu build "${wasm_args[@]}" --features bench
  chain bench_cpu
  cargo_variant bench_webgpu build "${wasm_args[@]}" --features webgpu,bench
  chain bench_webgpu
  install_files .cache/bench-wasm "$cache"/bench_cpu/localrec_wasm{.js,_bg.wasm} \
    "$cache"/bench_webgpu/localrec_webgpu{.js,_bg.wasm}
  exit 0
fi

# The CPU builds: simd128, then the same with relaxed SIMD for our crate only.
cargo_variant plain build "${wasm_args[@]}"
chain plain
cargo_variant relaxed rustc "${wasm_args[@]}" -- -C target-feature=+relaxed-simd
chain relaxed
# Comments may differ (wasm-bindgen notes internal shim numbers in them); code may not.
code_only() { grep -v '^[[:space:]]*//' "$1"; }
if ! cmp -s <(code_only "$cache/plain/localrec_wasm.js") <(code_only "$cache/relaxed/localrec_wasm.js"); then
  echo "build-pkg: the two cpu wasm builds need different JS glue; they must share one" >&2
  exit 1
fi
cargo_variant webgpu build "${wasm_args[@]}" --features webgpu
chain webgpu

install_files pkg/wasm "$cache"/plain/localrec_wasm{.js,_bg.wasm} "$cache/relaxed/localrec_wasm_relaxed_bg.wasm" \
  "$cache"/webgpu/localrec_webgpu{.js,_bg.wasm}
