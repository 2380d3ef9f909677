# localrec entry points. `make demo` and `make test` install what they need first.
#
#   make demo    build the wasm package and the web model, serve the demo on
#                http://127.0.0.1:8080/ (PORT overrides the port)
#   make test    every test: Rust unit, integration and parity tests, browser tests
#   make pkg     build the npm package in pkg/ (wasm-bindgen + wasm-opt)
#   make bench   both encoder benchmarks below
#   make bench-native   native CPU and wgpu: table + bench-results/encoder-native.json
#   make bench-browser  in headless Chromium beside transformers.js (needs the peers folder
#                ../shared/bench/peers, or BENCH_ARGS=--no-peers): bench-results/encoder-browser.json

SHELL := /bin/bash
CARGO ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
BIN := $(CARGO_TARGET_DIR)/release/localrec
MODEL := .cache/models/all-MiniLM-L6-v2
WEB_MODEL := .cache/web-model/all-MiniLM-L6-v2
WASM := $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/release/localrec.wasm

.PHONY: demo serve test test-rust test-browser pkg bench bench-native bench-browser cli web-model setup-demo setup-test clean

demo: setup-demo pkg web-model serve

serve:
	node www/serve.mjs --mount /pkg=pkg --mount /model=$(WEB_MODEL) www

setup-demo:
	./scripts/setup.sh demo

setup-test:
	./scripts/setup.sh test

test: setup-test test-rust pkg web-model test-browser

test-rust:
	$(CARGO) test --release --all-targets

test-browser:
	node --test --test-concurrency=1 tests/browser/

cli:
	$(CARGO) build --release

web-model: cli
	./scripts/fetch-model.sh
	@if [ ! -f $(WEB_MODEL)/manifest.json ] || [ $(MODEL)/model.safetensors -nt $(WEB_MODEL)/manifest.json ]; then \
	  $(BIN) export-web --model $(MODEL) --out $(WEB_MODEL) --name all-MiniLM-L6-v2; fi

pkg:
	./scripts/build-pkg.sh

bench: bench-native bench-browser

bench-native: cli
	./scripts/fetch-model.sh
	@mkdir -p bench-results
	$(BIN) bench --model $(MODEL) --json bench-results/encoder-native.json

# Measures the package as `make pkg` builds it and the f16 web model (plus the original f32
# model, fetched by web-model). BENCH_ARGS: --quick, --no-peers, --backends cpu,webgpu, ...
bench-browser: pkg web-model
	./scripts/setup.sh browser
	node bench/browser/run.mjs $(BENCH_ARGS)

clean:
	rm -rf pkg/wasm bench-results
	$(CARGO) clean
