# The two entry points are `make demo` and `make test`; every other target is a step of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
COLLECTION := collections/ansible_collections/fpt/sec
PRIME := ../shared/tools/prime-ansible-test
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup system-packages venv demo test unit integration lint sanity molecule build test-install clean bench

setup: system-packages venv

system-packages:
	@scripts/install-system-packages

$(BIN)/sec: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "sec needs Python 3.11+" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/sec

demo: setup
	@PATH=$(CURDIR)/$(BIN):$$PATH scripts/demo

test: setup
	@PATH=$(CURDIR)/$(BIN):$$PATH scripts/run-tests

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv
	$(BIN)/pytest -q tests/integration

lint: venv
	$(BIN)/ruff check .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint -q playbooks molecule

sanity: venv
	@PATH=$(CURDIR)/$(BIN):$$PATH scripts/sanity

molecule: venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule test

build: venv
	$(BIN)/python -m build --outdir build .
	$(BIN)/ansible-galaxy collection build --force --output-path build $(COLLECTION)

test-install: venv
	@PATH=$(CURDIR)/$(BIN):$$PATH scripts/test-install

bench: venv
	@echo "benchmarks: $(BIN)/python bench/<name>.py (see bench/README.md)"

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache $(COLLECTION)/tests/output
