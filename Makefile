# localrec entry points. `make demo` and `make test` install what they need first.
#
#   make demo    build the wasm package and the ml-latest-small catalog, serve the movie
#                recommender demo on http://127.0.0.1:8080/ (PORT overrides the port;
#                DEMO=87k serves the 87k-title catalog instead)
#   make test    every test: Rust unit, integration and parity tests, browser tests
#   make pkg     build the npm package's wasm in pkg/wasm (wasm-bindgen + wasm-opt + the dense
#                kernel splice); each step after cargo runs only when its inputs changed
#                (stamps in .cache/wasm-build), so an unchanged tree takes seconds
#   make bench-wasm  the benchmarks' wasm build (cargo feature `bench`: WasmScorerBench,
#                benchDense) in .cache/bench-wasm, incremental like pkg; never in the package
#   make catalog build the ml-latest-small catalog into .cache/catalogs/ml-latest-small
#                (demo, browser tests, benchmarks); rebuilt only when it no longer verifies
#   make domain-catalogs  ml-latest-small's two genre halves (`localrec domains`), each built
#                into its own catalog (.cache/catalogs/ml-latest-small-a, -b) with a short
#                tuner budget, for the cross-catalog browser test; kept while they verify
#   make spark-catalog  the same catalog through the reference Spark job (examples/spark) in
#                local mode (local[2]): MLlib ALS, texts encoded on the executors through
#                `localrec embed --items`, one `localrec build --spark-als --embeddings` at the
#                end, into .cache/catalogs/ml-latest-small-spark (timings in .cache/spark-work);
#                kept while it verifies
#   make catalog-87k  build the 87,585-title catalog (data/ml-32m-movies) into
#                .cache/catalogs/ml-32m-movies, on the CPU (10+ minutes on 2 cores); kept while
#                it verifies; the build's summary goes to .cache/catalogs/ml-32m-movies.build.json
#   make fuzz    long runs of every fuzz target (shard, manifest, scorer_params,
#                recommend_request, model_config, weights, tokenizer; cargo-fuzz on nightly,
#                both installed if missing) for FUZZ_SECONDS each (default 60); a crash stops
#                it with the input in fuzz/artifacts/ (keep it in tests/fixtures/fuzz-regressions/).
#                `make test` already fuzzes each target on stable for LOCALREC_FUZZ_SECONDS
#                (default 20; tests/integration/fuzz_bounded.rs)
#   make bench   the encoder and catalog benchmarks below
#   make bench-native   native CPU and wgpu: table + bench-results/encoder-native.json
#   make bench-catalog-native  catalog builds (cpu, wgpu), bytes per item, shards, native
#                parse+verify, for ml-latest-small and the 87k catalog: table +
#                bench-results/catalog-native.json (BENCH_CATALOG_ARGS: --wgpu-items N, --no-wgpu)
#   make bench-catalog-browser  catalog loading in headless Chromium from localhost (ml-latest-small
#                and the 87k catalog): open -> first shard / full, cold and warm, parse+verify
#                MB/s: table + bench-results/catalog-browser.json
#   make bench-browser  in headless Chromium beside transformers.js (needs the peers folder
#                ../shared/bench/peers, or BENCH_ARGS=--no-peers): bench-results/encoder-browser.json
#   make bench-scorer-native  recommend() on synthetic 10k/100k/1M-item catalogs, fold-in per
#                event, bytes per item, beside a brute-force top-k: bench-results/scorer-native.jsonl
#   make bench-scorer-browser  the same in headless Chromium (CPU backend), beside a JS
#                brute-force top-k, on the bench-wasm build: bench-results/scorer-browser.json
#   make bench-recommender  the Recommender in headless Chromium: open to first
#                recommendations (before and after the encoder), cold and warm, worker
#                memory, package size: bench-results/recommender-browser.json
#   make eval    quality on ML-1M's fixed splits (PROTOCOL.md; ML1M=path, default
#                ../shared/datasets/ml-1m) and on ml-latest-small's (bench/quality/split.py):
#                popularity, collaborative, semantic, item-item, EASE, hybrid, ablation, cold
#                items, the tuner's choices and validation curve
#   make eval-baselines  EASE, iALS and popularity in Python (numpy, implicit) on both splits
#   make eval-resplits  ml-latest-small's eval on the protocol's split and four re-drawn ones
#                (split.py --seed 1..4), and the hybrid's margins over EASE per split and
#                over all 500 test users (bench/quality/margins.py)

SHELL := /bin/bash
CARGO ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
BIN := $(CARGO_TARGET_DIR)/release/localrec
MODEL := .cache/models/all-MiniLM-L6-v2
WEB_MODEL := .cache/web-model/all-MiniLM-L6-v2
WASM := $(CARGO_TARGET_DIR)/wasm32-unknown-unknown/release/localrec.wasm
CATALOG := .cache/catalogs/ml-latest-small
DOMAIN_ITEMS := .cache/domains
DOMAIN_A := .cache/catalogs/ml-latest-small-a
DOMAIN_B := .cache/catalogs/ml-latest-small-b
CATALOG_87K := .cache/catalogs/ml-32m-movies
SPARK_CATALOG := .cache/catalogs/ml-latest-small-spark
SPARK_WORK := .cache/spark-work
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := shard manifest scorer_params recommend_request model_config weights tokenizer
# Our parsers are safe Rust, where AddressSanitizer finds nothing a panic would not;
# without it each input runs several times faster. FUZZ_SANITIZER=address turns it on.
FUZZ_SANITIZER ?= none

.PHONY: demo serve test test-rust test-types test-browser pkg catalog domain-catalogs spark-catalog catalog-87k fuzz bench bench-native bench-catalog-native bench-catalog-browser bench-browser bench-scorer-native bench-scorer-browser bench-recommender bench-wasm eval eval-baselines eval-resplits cli web-model setup-demo setup-test clean

# `make demo DEMO=87k` serves the 87k-title catalog (text only) instead of ml-latest-small.
DEMO_CATALOG = $(if $(filter 87k,$(DEMO)),$(CATALOG_87K),$(CATALOG))
demo: setup-demo pkg web-model $(if $(filter 87k,$(DEMO)),catalog-87k,catalog) serve

serve:
	node www/serve.mjs --mount /pkg=pkg --mount /model=$(WEB_MODEL) --mount /catalog=$(DEMO_CATALOG) www

setup-demo:
	./scripts/setup.sh demo

setup-test:
	./scripts/setup.sh test

test: setup-test test-rust test-types pkg web-model catalog spark-catalog domain-catalogs test-browser

test-rust:
	$(CARGO) test --release --all-targets

# pkg/index.d.ts checked against a file that uses every export.
test-types:
	node_modules/.bin/tsc -p tests/types

test-browser:
	LOCALREC_BIN=$(BIN) node --test --test-concurrency=1 tests/browser/

cli:
	$(CARGO) build --release

web-model: cli
	./scripts/fetch-model.sh
	@if [ ! -f $(WEB_MODEL)/manifest.json ] || [ $(MODEL)/model.safetensors -nt $(WEB_MODEL)/manifest.json ]; then \
	  $(BIN) export-web --model $(MODEL) --out $(WEB_MODEL) --name all-MiniLM-L6-v2; fi

pkg:
	./scripts/build-pkg.sh

# Not part of `make test` or the package: the scorer benchmark's WasmScorerBench.
bench-wasm:
	./scripts/build-pkg.sh --bench

# A catalog that still verifies with this CLI (and has its collaborative side, tuned, its
# weekday/weekend scenarios and its rating head) is kept: the build is deterministic
# when the tuner's budget covers its search (the summary's tuning.search.complete).
catalog: cli
	./scripts/fetch-model.sh
	@if ! ( $(BIN) inspect $(CATALOG) --json 2>/dev/null | grep '"rating":{' | grep '"ok":true' | grep -q '"scenarios":\["weekday","weekend"\]' \
	    && grep -q '"tuning": {' $(CATALOG)/manifest.json ); then \
	  $(BIN) build --items data/ml-latest-small/movies.csv --interactions data/ml-latest-small/ratings.csv.gz \
	    --scenario weekday-weekend --model $(MODEL) --out $(CATALOG) --name ml-latest-small; fi

# Two catalogs of one site for tests/browser/cross-catalog.test.mjs: the items split by
# genre into two halves (`localrec domains`), each half built with the whole rating log
# (ratings of the other half's items are skipped) and a 10-second tuner budget, so the
# builds stay lean. Kept while both verify (rerun: rm -r $(DOMAIN_A) $(DOMAIN_B)).
domain-catalogs: cli
	./scripts/fetch-model.sh
	@if ! ( $(BIN) inspect $(DOMAIN_A) >/dev/null 2>&1 && $(BIN) inspect $(DOMAIN_B) >/dev/null 2>&1 ); then \
	  $(BIN) domains --items data/ml-latest-small/movies.csv --out $(DOMAIN_ITEMS) && \
	  for half in a b; do \
	    $(BIN) build --items $(DOMAIN_ITEMS)/$$half.jsonl --interactions data/ml-latest-small/ratings.csv.gz \
	      --tune-budget 10 --model $(MODEL) --out .cache/catalogs/ml-latest-small-$$half --name ml-latest-small-$$half || exit 1; \
	  done; fi

# The Spark job in local mode on 2 executor threads. Eight ALS iterations and no item-item
# model (EASE's n x n solve on the driver is the part that does not scale, and the longest
# of the final build here) keep it to a few minutes. Kept while it verifies and has its
# Spark check file (rerun: rm -r $(SPARK_CATALOG)).
spark-catalog: cli
	./scripts/setup.sh spark
	./scripts/fetch-model.sh
	@if ! $(BIN) inspect $(SPARK_CATALOG) >/dev/null 2>&1 || [ ! -f $(SPARK_WORK)/spark-check.json ]; then \
	  .cache/spark-venv/bin/python examples/spark/localrec_job.py --master 'local[2]' \
	    --items data/ml-latest-small/movies.csv --interactions data/ml-latest-small/ratings.csv.gz \
	    --work $(SPARK_WORK) --out $(SPARK_CATALOG) --localrec $(BIN) --model $(MODEL) \
	    --rank 64 --max-iter 8 -- --scenario weekday-weekend --item-rank 0 --name ml-latest-small-spark; fi

# Built once and kept while it verifies (the build is deterministic).
catalog-87k: cli
	./scripts/fetch-model.sh
	@if ! $(BIN) inspect $(CATALOG_87K) >/dev/null 2>&1; then \
	  mkdir -p $(dir $(CATALOG_87K)) && \
	  $(BIN) build --items data/ml-32m-movies/movies.csv.gz --model $(MODEL) --out $(CATALOG_87K) \
	    --name ml-32m-movies --json > $(CATALOG_87K).build.json.partial && \
	  mv $(CATALOG_87K).build.json.partial $(CATALOG_87K).build.json; fi

# Seeds: every target's seed corpus, written by a test (shards and manifests by the real
# writers from ml-latest-small's movies, scorer params and requests for tiny catalogs, the
# MiniLM config, tiny weights and tokenizer files), the ml-latest-small catalog's manifest
# when it is built, and per target a libFuzzer dictionary of the seeds' keys
# (fuzz/seeds/<target>.dict). New inputs go to fuzz/corpus/; the regression inputs are read
# as seeds too. cargo-fuzz builds with overflow checks, so a size that wraps panics there.
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	LOCALREC_FUZZ_SEEDS=$(CURDIR)/fuzz/seeds $(CARGO) test --release --test integration \
	  fuzz_regressions::seed_inputs_are_accepted_by_the_fuzz_targets_and_written_on_request
	@if [ -f $(CATALOG)/manifest.json ]; then cp $(CATALOG)/manifest.json fuzz/seeds/manifest/ml-latest-small.json; fi
	cargo +nightly fuzz build --sanitizer $(FUZZ_SANITIZER)
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$target && \
	  echo "fuzzing $$target for $(FUZZ_SECONDS) s" && \
	  cargo +nightly fuzz run --sanitizer $(FUZZ_SANITIZER) $$target \
	    fuzz/corpus/$$target fuzz/seeds/$$target tests/fixtures/fuzz-regressions/$$target -- \
	    -dict=fuzz/seeds/$$target.dict \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 || exit 1; \
	done

bench: bench-native bench-catalog-native bench-catalog-browser bench-browser bench-scorer-native bench-scorer-browser bench-recommender

# The Recommender in headless Chromium: open to first recommendations (before and after the
# encoder), cold and warm, worker memory, package size; ml-latest-small and the 87k catalog.
bench-recommender: pkg catalog catalog-87k
	./scripts/setup.sh browser
	node bench/recommender/browser.mjs

# recommend() in headless Chromium on synthetic catalogs, beside a JS brute-force top-k.
bench-scorer-browser: bench-wasm
	./scripts/setup.sh browser
	node bench/scorer/browser.mjs $(BENCH_SCORER_ARGS)

# recommend() latency on synthetic 10k, 100k and 1M-item catalogs, fold-in per event,
# bytes per item, beside a brute-force top-k (native CPU).
bench-scorer-native: cli
	@mkdir -p bench-results
	$(BIN) bench-scorer --json | tee bench-results/scorer-native.jsonl

# Quality on the ML-1M protocol (ML-1M is read by path, never copied into the repo).
ML1M ?= ../shared/datasets/ml-1m
MLS_SPLITS ?= .cache/splits/ml-latest-small
QUALITY_PY := .cache/venv-quality/bin/python
# ml-latest-small's eval on a split folder, and its split (PROTOCOL.md's procedure, 100 + 100 users).
EVAL_MLS = $(BIN) eval --items data/ml-latest-small/movies.csv --model $(MODEL) --json --splits
SPLIT_MLS = $(QUALITY_PY) bench/quality/split.py --ratings data/ml-latest-small/ratings.csv.gz --users 100
eval: cli $(MLS_SPLITS)/train.csv
	./scripts/fetch-model.sh
	@mkdir -p bench-results
	$(BIN) eval --items $(ML1M)/movies.dat --splits $(ML1M)/splits --model $(MODEL) --json | tee bench-results/eval-ml1m.json
	$(EVAL_MLS) $(MLS_SPLITS) | tee bench-results/eval-ml-latest-small.json

# ml-latest-small split with PROTOCOL.md's procedure and seeds (100 validation, 100 test users).
$(QUALITY_PY):
	python3 -m venv .cache/venv-quality
	$(QUALITY_PY) -m pip install -q numpy==2.4.6 scipy==1.17.1 implicit==0.7.3 threadpoolctl==3.8.0
$(MLS_SPLITS)/train.csv: bench/quality/split.py | $(QUALITY_PY)
	$(SPLIT_MLS) --out $(MLS_SPLITS)

# A margin measured on 100 test users moves by a few percent with the draw of the users:
# the same eval on re-drawn splits of ml-latest-small (seeds 1-4 beside the protocol's).
RESPLIT_SEEDS := 1 2 3 4
$(MLS_SPLITS)-seed%/train.csv: bench/quality/split.py | $(QUALITY_PY)
	$(SPLIT_MLS) --seed $* --out $(MLS_SPLITS)-seed$*
eval-resplits: cli $(MLS_SPLITS)/train.csv $(foreach s,$(RESPLIT_SEEDS),$(MLS_SPLITS)-seed$(s)/train.csv)
	./scripts/fetch-model.sh
	@mkdir -p bench-results
	$(EVAL_MLS) $(MLS_SPLITS) > bench-results/eval-ml-latest-small.json
	for s in $(RESPLIT_SEEDS); do \
	  $(EVAL_MLS) $(MLS_SPLITS)-seed$$s > bench-results/eval-ml-latest-small-seed$$s.json || exit 1; \
	done
	python3 bench/quality/margins.py bench-results/eval-ml-latest-small.json $(foreach s,$(RESPLIT_SEEDS),bench-results/eval-ml-latest-small-seed$(s).json)

# The Python reference baselines (EASE, iALS, popularity) on both splits.
eval-baselines: $(MLS_SPLITS)/train.csv | $(QUALITY_PY)
	@mkdir -p bench-results
	$(QUALITY_PY) bench/quality/baselines.py --splits $(ML1M)/splits --json bench-results/baselines-ml1m.json
	$(QUALITY_PY) bench/quality/baselines.py --splits $(MLS_SPLITS) --json bench-results/baselines-ml-latest-small.json

bench-native: cli
	./scripts/fetch-model.sh
	@mkdir -p bench-results
	$(BIN) bench --model $(MODEL) --json bench-results/encoder-native.json

# Builds ml-latest-small afresh each run (timed); the 87k catalog is make catalog-87k's.
bench-catalog-native: cli catalog-87k
	@mkdir -p bench-results
	node bench/catalog/native.mjs --bin $(BIN) --model $(MODEL) $(BENCH_CATALOG_ARGS)

# Measures the package as `make pkg` builds it and the f16 web model (plus the original f32
# model, fetched by web-model). BENCH_ARGS: --quick, --no-peers, --backends cpu,webgpu, ...
bench-catalog-browser: pkg catalog catalog-87k
	./scripts/setup.sh browser
	node bench/catalog/browser.mjs

bench-browser: pkg web-model
	./scripts/setup.sh browser
	node bench/browser/run.mjs $(BENCH_ARGS)

clean:
	rm -rf pkg/wasm bench-results
	$(CARGO) clean
