# The two Quickstart commands. Each installs what it needs first, so both work on a fresh machine.
PYTHON ?= python3
PYTEST_ARGS ?= -m "not slow"

.PHONY: setup demo test test-all

setup:
	bash scripts/setup.sh

demo: setup
	musicprod demo

test: setup
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-all: setup
	$(PYTHON) -m pytest -q
