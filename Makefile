# Every target bootstraps .venv from pyproject.toml; nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= demo-out

.PHONY: demo test test-fast lint format bench clean

$(STAMP): pyproject.toml hatch_build.py $(wildcard protos/*.proto)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fedstats demo --out $(OUT)

# Every test (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest -q

# The inner loop: every test but those marked slow (simulations, processes, browser, demo).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/engine_bench.py

clean:
	rm -rf $(VENV) $(OUT) protos/*_pb2*.py protos/*_pb2.pyi
