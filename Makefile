# CTPL Hub — two commands: `make run` (a demo on SQLite) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VEHICLES ?= 20000
export CTPLHUB_HOME ?= ./var
export CTPLHUB_DATABASE_URL ?= sqlite:///./var/ctplhub.db

.PHONY: install run test lint typecheck layers pytest bench faults clean \
	deploy-local deploy-down deploy-check deploy-clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

## Initialise ./var (SQLite + keys), load the demo fleet, serve on http://127.0.0.1:8000
run: install
	$(BIN)/ctplhub demo --vehicles $(VEHICLES)

## Lint, types, layers, then every test (PostgreSQL too when reachable; required with CI=true)
test: install lint typecheck layers pytest

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy src

layers: install
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest -n 2 --dist loadfile -q

## The deployment on loopback (docs/deploy.md): nginx :8080, two API processes, the worker,
## PostgreSQL primary :5440 and streaming replica :5441 behind PgBouncer :6432, Redis :6380;
## every file and generated secret under var/deploy. Never part of `make test`.
deploy-local: install
	CTPLHUB=$(abspath $(BIN))/ctplhub deploy/up.sh

deploy-down:
	deploy/down.sh

## Brings the deployment up, then checks it through nginx: /readyz's parts, a signed
## write and the read right after it, both API processes answering.
deploy-check: deploy-local
	$(BIN)/python deploy/check.py

deploy-clean: deploy-down
	rm -rf var/deploy

bench: install
	$(BIN)/python bench/run_all.py

## Fault scripts (bench/faults/README.md): kill -9, disk full, PostgreSQL restart, replica
## promotion, Redis down (the last two on a throwaway deployment of their own); root only
faults: install
	$(BIN)/python bench/faults/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
