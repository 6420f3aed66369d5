# The two commands a newcomer needs: `make run` and `make test`. Both do all set-up.
CARGO ?= cargo
ORT_LIB := .ort/libonnxruntime.so.1.32.0
BIN := target/release/moodwire

.PHONY: setup build run test lint bench clean-ort

setup: $(ORT_LIB)

$(ORT_LIB): scripts/setup_ort.sh
	scripts/setup_ort.sh

build: setup
	$(CARGO) build --release --locked --bin moodwire

## Serve the API at http://127.0.0.1:8000 with embedded defaults (offline).
run: build
	$(BIN) serve

## The whole suite: formatting, lints, unit and integration tests.
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(CARGO) test --release --locked --workspace

## Classifier benchmarks, Rust and the Python baseline side by side (see BENCHMARKS.md).
bench: build
	scripts/bench.sh

clean-ort:
	rm -rf .ort
