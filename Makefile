# thumbfarm — the two commands are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
PHOTOS ?= ../shared/corpus/seed

.PHONY: help deps services run test lint fmt bench build

help:
	@echo "make run    - install what is missing, start thumbfarm on this machine, ingest sample photos"
	@echo "make test   - install what is missing, start RabbitMQ + an S3 server, run the whole suite"
	@echo "make bench  - criterion benches and the comparison harness (docs/benchmarks.md)"

deps:
	@scripts/deps.sh

services: deps
	@scripts/services.sh

build: deps
	cargo build --release --bins

run: deps
	@PHOTOS="$(PHOTOS)" scripts/run.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: services
	cargo fmt --all -- --check
	cargo test --workspace --no-fail-fast
	scripts/validate-deploy.sh
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

bench: services
	@scripts/bench.sh
