# segmint: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP  := $(VENV)/.installed-stamp

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false

.PHONY: install demo test lint format ui bench lock clean

## install: virtual environment with the exact pinned dependencies (requirements.lock)
install: $(STAMP)

# Bytecode is compiled once here: uv installs sources only, and where Python may not write
# its cache (PYTHONDONTWRITEBYTECODE, read-only folders) every process - each dbt step,
# Dagster run worker and test worker - compiled dagster, dbt and GX again (code location
# load 4.8 s -> 2.2 s, bench/results/code_location.md). Up-to-date files are skipped.
$(STAMP): requirements.lock pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --require-hashes -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') segmint orchestration ml
	@touch $(STAMP)

## demo: install, generate sample data, load it, run the whole pipeline on DuckDB, summarize
demo: install
	$(BIN)/segmint demo

## test: lint plus the whole test suite (includes a real dbt build on a throw-away DuckDB file)
# One worker per core, at most four, each taking whole test files (their module fixtures,
# a built warehouse or a pipeline run, are built once per file): 27 min -> 12 min on 2 cores.
TEST_WORKERS ?= auto
test: install lint
	@bash tests/ensure_chromium.sh
	$(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses=4 --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SEGMINT_DUCKDB_PATH=:memory: $(BIN)/sqlfluff lint models

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	SEGMINT_DUCKDB_PATH=:memory: $(BIN)/sqlfluff fix models

## ui: the Dagster UI on http://127.0.0.1:3000
ui: install
	$(BIN)/segmint ui --port 3000

## bench: wall time and peak memory of every stage at several scales (not a test)
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## lock: re-resolve requirements.lock after changing dependencies in pyproject.toml
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra bench --generate-hashes --python-version 3.11 \
		--no-header --quiet -o requirements.lock

clean:
	rm -rf target logs warehouse .dagster_home bench/work exports
