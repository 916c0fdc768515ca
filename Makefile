# The whole set-up is `make demo` and `make test`; both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo test lint ui bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the project and its development tools into $(VENV) ..."
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: setup
	@mkdir -p $(DAGSTER_HOME)
	@$(PY) -m orchestration.demo

test: setup
	@$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy

ui: setup
	@$(PY) -c 'from pathlib import Path; from orchestration.instance import ensure_local_config; ensure_local_config(Path("$(DAGSTER_HOME)"))'
	@$(VENV)/bin/dagster dev -w workspace.yaml

bench: setup
	@$(PY) benchmarks/run_all.py

clean:
	rm -rf .data .dagster_home dbt_project/target dbt_project/logs
