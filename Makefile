# The two commands a newcomer needs: `make run` and `make test`. Both do all set-up.
CARGO ?= cargo
ORT_LIB := .ort/libonnxruntime.so.1.32.0
BIN := target/release/moodwire
BENCH_PY := .venv-bench/bin/python
BENCH_VENV := .venv-bench/installed

.PHONY: setup build run test fuzz bench bench-floor services clean-ort

setup: $(ORT_LIB)

$(ORT_LIB): scripts/setup_ort.sh
	scripts/setup_ort.sh

build: setup
	$(CARGO) build --release --locked --bin moodwire

## Serve the API at http://127.0.0.1:8000 with embedded defaults (offline).
run: build
	$(BIN) serve

## The whole suite: formatting, lints, unit and integration tests against real
## local services (PostgreSQL, Redis, a Kafka-wire broker; see scripts/services.sh).
test: setup services $(BENCH_VENV)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	scripts/check_deploy.sh
	set -a && . .services/env && set +a && MOODWIRE_TEST_PYTHON=$(CURDIR)/$(BENCH_PY) \
		$(CARGO) test --release --locked --workspace
	scripts/schemathesis.sh
	scripts/check_metrics.sh

## The property tests of every parser of untrusted input (request body, keyword,
## dump lines, Reddit listings), run longer than in `make test`: FUZZ_CASES cases each
## (default 100000, about 40 s in all on 2 cores). Failures are kept as regression seeds in
## each crate's proptest-regressions/ folder; commit them.
FUZZ_CASES ?= 100000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release --locked \
		-p moodwire-core -p moodwire-server -p moodwire-sources --test properties

## Install (when missing) and start the local services the tests use.
services:
	scripts/services.sh up

## Classifier benchmarks, Rust and the Python baseline side by side (see BENCHMARKS.md).
bench: build $(BENCH_VENV)
	scripts/bench.sh

## The floor under those numbers on this CPU: the model's matrix products alone,
## timed beside the whole model (scripts/cpu_floor.py; BENCHMARKS.md says what it shows).
bench-floor: $(BENCH_VENV)
	$(BENCH_PY) scripts/cpu_floor.py

$(BENCH_VENV): scripts/bench-requirements.txt
	python3 -m venv .venv-bench
	$(BENCH_PY) -m pip install --quiet -r scripts/bench-requirements.txt
	touch $@

clean-ort:
	rm -rf .ort
