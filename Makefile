PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format check clean clean-all services-deps stack stack-down stack-status

# Create the venv and install pinned requirements; reinstalls only when requirements change.
$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@command -v java >/dev/null 2>&1 || $(PY) -m pip install --quiet -r requirements-jdk.txt
	@touch $(STAMP)

setup: $(STAMP)

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

# The real services' system packages (Debian bookworm: PostgreSQL 15 server, PostgreSQL JDBC driver 42.5),
# installed only when missing; PostgreSQL's package also creates the `postgres` user that runs it as root.
PG_BIN := /usr/lib/postgresql/15/bin
PG_JDBC_JAR := /usr/share/java/postgresql.jar
services-deps:
	@test -x $(PG_BIN)/initdb && test -f $(PG_JDBC_JAR) || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql-15 libpostgresql-jdbc-java; }

# A local stack of the real services (PostgreSQL, MLflow server, Spark standalone) under run/stack;
# its environment goes to run/stack.env: `set -a; . run/stack.env; set +a`.
stack: $(STAMP) services-deps
	$(PY) -m lib.stack up

stack-down: $(STAMP)
	$(PY) -m lib.stack down

stack-status: $(STAMP)
	$(PY) -m lib.stack status

# Generated state only; the venv stays (clean-all removes it too).
clean:
	-@test -x $(PY) && $(PY) -m lib.serving stop 2>/dev/null; true
	-@test -x $(PY) && $(PY) -m lib.stack down 2>/dev/null; true
	rm -rf lakehouse mlflow.db mlflow.db-* mlartifacts mlruns metrics.db metrics.db-* run reports spark-warehouse metastore_db derby.log
	find data -mindepth 1 -maxdepth 1 ! -name vendor -exec rm -rf {} +

clean-all: clean
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
