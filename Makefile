# Set-up and everyday commands. Each target creates the virtual environment from the project's
# own files first, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= demo-output

.PHONY: env browser postgres java demo test lint format bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,uplift-check,postgres,excel,spark]'
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/vipml demo --out $(OUT)

# The report tests open pages in the distribution's Chromium with a Korean font (fonts-nanum);
# installed once, as root or through sudo.
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi nanum; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	    echo "make browser: needs root to install chromium and fonts-nanum; report browser tests will skip"; exit 0; fi; \
	  echo "make browser: installing chromium and fonts-nanum"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-nanum >/dev/null; \
	fi

# The database tests start a throwaway PostgreSQL server of their own (initdb into a temporary
# folder, as the postgres user when run as root); this installs the server programs once.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	    echo "make postgres: needs root to install postgresql; database tests will skip"; exit 0; fi; \
	  echo "make postgres: installing postgresql"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# The Spark tests run pyspark in local[2], which needs a Java runtime (17 or later); this installs
# the distribution's headless JRE once.
java:
	@if command -v java >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	    echo "make java: needs root to install openjdk-17-jre-headless; Spark tests will skip"; exit 0; fi; \
	  echo "make java: installing openjdk-17-jre-headless"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	fi

test: $(STAMP) browser postgres java
	$(BIN)/ruff check .
	MLFLOW_DISABLE_TELEMETRY=true PYSPARK_PYTHON=$(abspath $(BIN))/python $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check vipml tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format vipml tests benchmarks

bench: $(STAMP) postgres java
	$(BIN)/python -m pip install --quiet -e '.[bench,postgres,spark]'
	$(BIN)/python benchmarks/bench_tables.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_dataset.py
	$(BIN)/python benchmarks/bench_database.py
	PYSPARK_PYTHON=$(abspath $(BIN))/python $(BIN)/python benchmarks/bench_spark.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache build *.egg-info
