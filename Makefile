# Agent Runner: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

# Find Python >= 3.12: python3.13, python3.12, pyenv's 3.13/3.12, then python3. Each candidate is RUN,
# because pyenv shims exist even when they refuse to run.
define FIND_PYTHON
ok() { "$$@" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }; \
for c in python3.13 python3.12; do if ok $$c; then command -v $$c; exit 0; fi; done; \
root="$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}")"; \
for p in $$(ls -d "$$root"/versions/3.13* "$$root"/versions/3.12* 2>/dev/null | sort -rV); do \
  if ok "$$p/bin/python3"; then echo "$$p/bin/python3"; exit 0; fi; done; \
if ok python3; then command -v python3; exit 0; fi; exit 1
endef
export FIND_PYTHON

.PHONY: help run test lint bench fuzz clean python

help:
	@echo "make run    set up .venv, migrate, ensure an admin user, start web + worker"
	@echo "make test   set up .venv with test extras, run ruff and the whole test suite"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make fuzz   schemathesis against a live server, many examples"

python:
	@bash -c "$$FIND_PYTHON" || { echo "Agent Runner needs Python 3.12 or newer, and found none: tried python3.13, python3.12, pyenv 3.13/3.12 and python3 ($$(python3 --version 2>&1 || echo missing)). Install Python 3.13 or 3.12 (e.g. apt-get install python3.13 python3.13-venv, or pyenv install 3.13) and re-run." >&2; exit 1; }

$(VENV)/bin/python:
	@PYTHON="$$(bash -c "$$FIND_PYTHON")" || { echo "Agent Runner needs Python 3.12 or newer, and found none: tried python3.13, python3.12, pyenv 3.13/3.12 and python3 ($$(python3 --version 2>&1 || echo missing)). Install Python 3.13 or 3.12 (e.g. apt-get install python3.13 python3.13-venv, or pyenv install 3.13) and re-run." >&2; exit 1; }; \
	echo "Using $$PYTHON ($$($$PYTHON --version))"; \
	"$$PYTHON" -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# REQUIRE_LLM_E2E=1 (CI) also installs the real-model test's packages and makes that test required.
E2E_STAMP := $(if $(filter 1,$(REQUIRE_LLM_E2E)),$(VENV)/.installed-e2e)
$(VENV)/.installed-e2e: pyproject.toml $(TEST_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,e2e]'
	@touch $@

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py serve

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .

test: $(TEST_STAMP) $(E2E_STAMP)
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run >/dev/null || { echo "Model changes without migrations: run manage.py makemigrations" >&2; exit 1; }
	$(VENV)/bin/pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "== The same suite on PostgreSQL ($$TEST_DATABASE_URL)"; \
	  DATABASE_URL="$$TEST_DATABASE_URL" $(VENV)/bin/pytest; \
	else \
	  echo "PostgreSQL suite skipped: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/agent_runner) to run it."; \
	fi

bench: $(TEST_STAMP)
	$(PY) bench/run.py

# schemathesis against a live server with many more examples than `make test` uses.
fuzz: $(TEST_STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(VENV)/bin/pytest -p no:cacheprovider tests/reliability/test_fuzz_api.py -s

clean:
	rm -rf $(VENV) var
