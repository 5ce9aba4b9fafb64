# One command per job; each sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CONVEYOR_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: demo test check lint types imports unit bench server postgres browser screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP) postgres browser lint types imports unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

types: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# Four test processes on two cores: much of the suite waits on subprocesses and the database
# (measured here: 5 min 37-42 s, against 6 min 1-50 s with three).
unit: $(STAMP) postgres
	$(BIN)/pytest -q -n 4

bench: $(STAMP) postgres
	$(BIN)/python bench/run.py

server: $(STAMP)
	$(BIN)/conveyor server

# Start the machine's PostgreSQL server when it is down; tests that need it skip otherwise.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
	  (command -v pg_ctlcluster >/dev/null && \
	   pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start) || \
	  echo "PostgreSQL is not available: its tests will be skipped"

# Debian's chromium for the console's browser tests (Playwright's own download cannot be
# reached from these machines). Installed with apt when missing and this is root; otherwise
# the browser tests are skipped and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$$CONVEYOR_CHROMIUM" ] || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)); } || \
	  echo "chromium is not available: the console's browser tests will be skipped"

# The console's pictures in docs/console, taken by its browser tests.
screenshots: $(STAMP) browser
	CONVEYOR_SCREENSHOTS=docs/console $(BIN)/pytest -q tests/console/test_browser.py -k photographed

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .conveyor
