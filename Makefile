.DEFAULT_GOAL := help
SHELL := /bin/bash
UV ?= uv
# coverage of `make test`, worker/API/CLI subprocesses included (settings: [tool.coverage] in
# pyproject.toml); `make test COV=` runs the suite without it
COV ?= --cov --cov-report=json:var/coverage/coverage.json

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

setup: ## Install system packages (redis-server, prometheus) where missing and the Python env (uv sync)
	@bash scripts/setup.sh

lint: ## ruff + mypy
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

test: setup ## Set everything up and run the whole suite with coverage per package (what CI runs)
	$(UV) run pytest -q $(COV)

test-unit: ## Unit tests only (no network)
	$(UV) run pytest -q tests/unit

demo: setup ## Embedded demo: Tansu, redis, worker, store sink, API, officer view (URL printed); DEMO_ARGS="--rate 500"
	$(UV) run credit-scorer stream demo --view $(DEMO_ARGS)

bench: ## Run the benchmarks (results in bench/results/)
	$(UV) run python -m bench

.PHONY: help setup lint test test-unit bench demo
