# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch, only for the parity tests and the training extra.
TORCH_SPEC ?= torch==2.13.0
PACKAGES := -e . -e integrations/chroma -e integrations/lancedb -e integrations/langchain

.PHONY: install install-dev demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# matryo and its three adapters, nothing else (what `make demo` needs).
install: $(BIN)/python
	$(BIN)/python -m pip install -q $(PACKAGES)

# Everything the test suite and the benchmarks need, torch first so nothing pulls a CUDA build.
install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q $(PACKAGES) -r requirements-dev.txt

demo: install
	$(BIN)/matryo demo

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check src integrations tests benchmarks examples
	$(BIN)/ruff format --check src integrations tests benchmarks examples
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/bench_encode.py
