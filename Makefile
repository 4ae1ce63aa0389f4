# Set-up and everyday commands. Each target creates the virtual environment from the project's
# own files first, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= demo-output

.PHONY: env demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/vipml demo --out $(OUT)

test: $(STAMP)
	$(BIN)/ruff check .
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check vipml tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format vipml tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_tables.py
	$(BIN)/python benchmarks/bench_features.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache build *.egg-info
