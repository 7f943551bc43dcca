PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup browser-deps demo test lint format check clean clean-all

# Create the venv and install pinned requirements; reinstalls only when requirements change.
$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@command -v java >/dev/null 2>&1 || $(PY) -m pip install --quiet -r requirements-jdk.txt
	@touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (tests/browser): Playwright drives it, never downloads a browser.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser-deps:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	@test -x $(CHROMIUM) || { echo "error: no $(CHROMIUM) after apt-get install chromium"; exit 1; }

demo: $(STAMP)
	$(PY) -m lib.demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check lib tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format lib tests benchmarks

check: lint test

# Generated state only; the venv stays (clean-all removes it too).
clean:
	-@test -x $(PY) && $(PY) -m lib.serving stop 2>/dev/null; true
	rm -rf lakehouse mlflow.db mlflow.db-* mlartifacts mlruns metrics.db metrics.db-* run reports spark-warehouse metastore_db derby.log
	find data -mindepth 1 -maxdepth 1 ! -name vendor -exec rm -rf {} +

clean-all: clean
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
