# The whole set-up is `make demo` and `make test`; both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCK := requirements.lock
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup java demo test test-spark test-e2e lint format lock ui serve bench clean

setup: $(STAMP)

# The virtual environment holds exactly the locked versions (hashes checked), then the project
# itself in editable mode. `uv` is pinned in the lock, so a sync keeps it.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the locked dependencies and the project into $(VENV) ..."
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check "$$(grep -m1 -E '^uv==' $(LOCK) | cut -d' ' -f1)"
	@$(UV) pip sync --quiet --python $(PY) --require-hashes $(LOCK)
	@$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: setup
	@$(UV) pip compile --quiet pyproject.toml --all-extras --universal --python-version 3.11 \
		--generate-hashes --output-file $(LOCK)
	@echo "wrote $(LOCK); run make setup to install it"

demo: setup
	@mkdir -p $(DAGSTER_HOME)
	@$(PY) -m orchestration.demo

# The Spark tests (marker `spark`) and the end-to-end test through `dagster dev` and a browser
# (marker `e2e`, about five minutes) are their own targets: `make test` leaves them out so it
# stays under fifteen minutes, and .ci/run runs all three.
test: setup
	@$(PY) -m pytest -q -p no:cacheprovider -m "not spark and not e2e"

test-e2e: setup
	@$(PY) -m pytest -q -p no:cacheprovider -m e2e

test-spark: setup java
	@$(PY) -m pytest -q -p no:cacheprovider -m spark

# METRICS_TARGET=spark runs Spark in a JVM: Java 17 from Debian when no java is on the PATH, and
# PostgreSQL's JDBC driver (Debian's libpostgresql-jdbc-java) for a metastore that several
# processes share (METRICS_SPARK_METASTORE_URL: Dagster, its dbt runs, the Spark tests).
java:
	@command -v java >/dev/null || { echo "installing Java 17 for Spark ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }
	@test -f /usr/share/java/postgresql.jar || { echo "installing PostgreSQL's JDBC driver for Spark ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpostgresql-jdbc-java; }

# sqlfluff renders the models with dbt on the PostgreSQL target (the PG* variables; default the
# local server), the dialect its parser reads best.
lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@PGHOST=$${PGHOST:-127.0.0.1} PGUSER=$${PGUSER:-postgres} PGDATABASE=$${PGDATABASE:-postgres} \
		$(VENV)/bin/sqlfluff lint --nocolor dbt_project/models

format: setup
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

ui: setup
	@$(PY) -c 'from pathlib import Path; from orchestration.instance import ensure_local_config; ensure_local_config(Path("$(DAGSTER_HOME)"))'
	@$(VENV)/bin/dagster dev -w workspace.yaml

# The HTTP API and dashboard page on 127.0.0.1:8000 (docs/http_api.md).
serve: setup
	@$(VENV)/bin/metrics serve

bench: setup
	@$(PY) benchmarks/run_all.py

clean:
	rm -rf .data .dagster_home dbt_project/target dbt_project/logs
