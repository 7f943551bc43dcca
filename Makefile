# PYTHON: the interpreter that creates the venv, by name or path (3.10, 3.11 or 3.12):
#   make PYTHON=python3.12 VENV=.venv-3.12 setup      make PYTHON=$(pyenv prefix 3.10)/bin/python setup
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip --disable-pip-version-check
# the Jupyter kernel `make setup` registers inside the venv (make lab opens notebooks on it)
KERNEL := bank-mlops
LAB_PORT ?= 8888
MLFLOW_PORT ?= 5000

.PHONY: setup airflow-venv airflow-lock airflow browser-deps bench-deps services-deps lab app mlflow-ui lock demo test test-fast test-unit pyversions-smoke lint format check clean clean-all stack stack-down stack-status

# The interpreter to build the venv with. A name that pyenv knows but has not activated
# (python3.12 while the global version is 3.11) is looked up with `pyenv prefix 3.12`.
PYTHON_EXE = $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null \
	|| { v=$$(echo '$(PYTHON)' | sed -n 's/^python\(3\.[0-9][0-9]*\)$$/\1/p'); \
	     test -n "$$v" && p=$$(pyenv prefix "$$v" 2>/dev/null) && echo "$$p/bin/python"; })

# Create the venv, install the locked dependency tree, the project itself (editable, so `import lib`
# works from any directory) and its Jupyter kernel, whose PATH starts with the venv so that `!python`
# in a cell is the venv's Python too; reruns only when the lock or the project changes.
$(STAMP): requirements.lock requirements-jdk.txt pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  exe='$(PYTHON_EXE)'; \
	  test -n "$$exe" || { echo "error: $(PYTHON) not found; install Python 3.10, 3.11 or 3.12 and run make PYTHON=<name or path> setup"; exit 1; }; \
	  "$$exe" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' \
	    || { echo "error: $$exe is Python $$("$$exe" -c 'import platform; print(platform.python_version())'); the project supports 3.10, 3.11 and 3.12"; exit 1; }; \
	  echo "$(VENV): $$("$$exe" -c 'import sys; print(sys.version.split()[0])') ($$exe)"; \
	  "$$exe" -m venv $(VENV); \
	elif [ "$(origin PYTHON)" = "command line" ] && [ -n '$(PYTHON_EXE)' ] \
	  && [ "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" != "$$('$(PYTHON_EXE)' -c 'import sys; print(sys.version_info[:2])')" ]; then \
	  echo "error: $(VENV) was made with another Python than $(PYTHON); pick another VENV=… or make VENV=$(VENV) clean-all first"; exit 1; \
	fi
	$(PIP) install --quiet -r requirements.lock
	@command -v java >/dev/null 2>&1 || $(PIP) install --quiet -r requirements-jdk.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Bank MLOps ($(VENV))" \
		--env VIRTUAL_ENV '$(abspath $(VENV))' --env PATH '$(abspath $(VENV))/bin:$${PATH}'
	@touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (tests/browser): Playwright drives it, never downloads a browser.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
browser-deps:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	@test -x $(CHROMIUM) || { echo "error: no $(CHROMIUM) after apt-get install chromium"; exit 1; }

# wrk (Debian package), the HTTP load generator benchmarks/bench_serving.py measures every server with.
bench-deps:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }

# Regenerate requirements.lock from requirements.txt for every supported Python and platform.
# Versions already in the lock are kept (deterministic); `make lock UPGRADE=1` moves them to the newest.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile requirements.txt --universal --python-version 3.10 --fork-strategy fewest \
		--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) --quiet -o requirements.lock

# Apache Airflow for dags/ in its own venv (Airflow never shares the project's venv; the DAG's tasks run
# the project's scripts with $(PY)). Made with uv from the fully pinned requirements-airflow.txt and
# synced again only when that file changes. Airflow 3.3 needs Python >= 3.11.
AIRFLOW_PYTHON ?= python3.11
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
$(AIRFLOW_STAMP): requirements-airflow.txt | $(STAMP)
	@if [ ! -x $(AIRFLOW_VENV)/bin/python ]; then \
	  exe=$$($(AIRFLOW_PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null); \
	  test -n "$$exe" || { echo "error: $(AIRFLOW_PYTHON) not found; install Python 3.11 or 3.12 and run make AIRFLOW_PYTHON=<name or path> airflow-venv"; exit 1; }; \
	  "$$exe" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
	    || { echo "error: $$exe is too old for Airflow 3.3 (needs 3.11+); run make AIRFLOW_PYTHON=python3.11 airflow-venv"; exit 1; }; \
	  "$$exe" -m venv --without-pip $(AIRFLOW_VENV); \
	fi
	$(VENV)/bin/uv pip sync --quiet --python $(AIRFLOW_VENV)/bin/python requirements-airflow.txt
	@touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

# Airflow's CLI on this project: home run/airflow (SQLite metadata DB, migrated on first use and after an
# Airflow upgrade), DAGs from dags/. The DAG's tasks run with this shell's environment (PROJECT_ROOT, ...):
#   make airflow ARGS="dags list-import-errors --local"      make airflow ARGS="dags test bank_marketing_mlops"
AIRFLOW_HOME_DIR := $(CURDIR)/run/airflow
AIRFLOW_RUN = AIRFLOW_HOME=$(AIRFLOW_HOME_DIR) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False $(AIRFLOW_VENV)/bin/airflow
$(AIRFLOW_HOME_DIR)/.migrated: $(AIRFLOW_STAMP)
	@mkdir -p $(AIRFLOW_HOME_DIR)
	$(AIRFLOW_RUN) db migrate
	@touch $@

airflow: $(AIRFLOW_HOME_DIR)/.migrated
	$(AIRFLOW_RUN) $(ARGS)

# Regenerate requirements-airflow.txt from requirements-airflow.in (versions in it are kept unless UPGRADE=1).
airflow-lock: $(STAMP)
	$(VENV)/bin/uv pip compile requirements-airflow.in --universal --python-version 3.11 --fork-strategy fewest \
		--custom-compile-command "make airflow-lock" $(if $(UPGRADE),--upgrade) --quiet -o requirements-airflow.txt

# JupyterLab on 127.0.0.1, rooted at the project, new notebooks on the project kernel; it prints
# its URL with the token (the next free port from LAB_PORT) and opens no browser. As root (a container)
# Jupyter refuses to start unless told to: --allow-root then.
lab: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --ServerApp.root_dir="$(CURDIR)" \
		--MappingKernelManager.default_kernel_name=$(KERNEL) $(if $(filter 0,$(shell id -u)),--allow-root)

# The lab's web application (Explain, Monitoring, Models, Jobs) on 127.0.0.1:APP_PORT (8850).
app: $(STAMP)
	$(PY) -m lib.app

# The MLflow UI on the configured store (PROJECT_ROOT / MLFLOW_TRACKING_URI), on 127.0.0.1.
mlflow-ui: $(STAMP)
	$(PY) -m lib.tracking ui --port $(MLFLOW_PORT)

demo: $(STAMP)
	$(PY) -m lib.demo

test: $(STAMP)
	$(PY) -m pytest

# Everything but the tests marked slow (under 2 minutes on an idle 2-core machine).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# No process, no database: seconds.
test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

# Python 3.10 and 3.12 (pyenv's): unit tests on each in .venv-3.10/.venv-3.12 (reused while the lock is
# unchanged) and a small real 00 -> 01 -> 03 -> 04 -> request run on each; .ci/run calls it.
pyversions-smoke:
	.ci/pyversions

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

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
	rm -rf $(VENV) $(AIRFLOW_VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
