# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch, only for the parity tests and the training extra. PyPI's Linux torch wheels are CUDA
# builds (GBs), so PyTorch's CPU index is added when it is reachable (torch==X then resolves to X+cpu there);
# machines without it (e.g. a PyPI mirror with a local CPU wheel in pip's find-links) use what pip finds.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX_ARG = $(shell $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_INDEX)/torch/', timeout=5)" \
	>/dev/null 2>&1 && echo --extra-index-url $(TORCH_INDEX))
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
	$(BIN)/python -m pip install -q $(TORCH_INDEX_ARG) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q $(PACKAGES) -r requirements-dev.txt

demo: install
	$(BIN)/matryo demo

# Two to four worker processes (pytest-xdist): a third faster than one on 2 cores.
test: install-dev
	$(BIN)/python -m pytest -n auto --maxprocesses 4

lint: install-dev
	$(BIN)/ruff check src integrations tests benchmarks examples
	$(BIN)/ruff format --check src integrations tests benchmarks examples
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/bench_encode.py
