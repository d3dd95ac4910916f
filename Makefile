# The two Quickstart commands. Each installs what it needs first, so both work on a fresh machine.
# PYTHON picks the interpreter (e.g. a venv's python); setup installs into it.
PYTHON ?= python3
PYTEST_ARGS ?= -m "not slow"
export PYTHON

.PHONY: setup demo lint test test-all

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m recipes.cli demo

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: lint
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-all: lint
	$(PYTHON) -m pytest -q
