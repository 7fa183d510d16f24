# One target per habit. `make run` and `make test` install whatever is missing first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The ccusage parity test (tests/e2e/test_ai_import.py) runs the real ccusage from npm. 18.0.11 is
# its last release in plain JavaScript: later ones need a per-platform native package.
CCUSAGE_VERSION := 18.0.11
CCUSAGE := $(VENV)/node/node_modules/.bin/ccusage

.PHONY: install services run test test-fast test-unit lint fmt bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) services

# What the tests start on their own (Debian packages): redis-server, and chromium for the browser
# tests (driven by Playwright through its executable path: never `playwright install`). Without
# them those tests are skipped locally and fail under CI.
services:
	@command -v redis-server >/dev/null || { command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; } \
	  || echo "redis-server is missing (apt-get install redis-server): Redis tests will be skipped"
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
	  || echo "chromium is missing (apt-get install chromium): browser tests will be skipped"
	@test -x $(CCUSAGE) || { command -v npm >/dev/null \
	  && npm install -s --no-audit --no-fund --prefix $(VENV)/node ccusage@$(CCUSAGE_VERSION); } \
	  || echo "npm is missing (apt-get install npm): the ccusage parity test will be skipped"

run: install
	$(BIN)/codetrackr serve --host 127.0.0.1 --port 8000 --data-dir ./data

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole suite: everything but the browser on both cores (pytest-xdist, a module at a time, so
# its server or broker starts once), then the browser tests in one process of their own
# (Playwright's sync API keeps an event loop running that no asyncio test may follow). The ten
# slowest tests are printed at the end so a slow newcomer is seen.
test: install lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=10 --ignore=tests/browser
	$(BIN)/python -m pytest tests/browser --durations=5

# The edit-test loop: unit and contract tests only, on two workers (70 to 90 s on two cores).
test-fast: install
	$(BIN)/python -m pytest -n 2 tests/unit tests/contract --durations=5

test-unit: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
