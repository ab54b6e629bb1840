# mevbot: `make demo` runs the devnet + bot + terminal UI, `make test` runs the tests.
# Both depend on `make setup`, which is idempotent and fast when nothing changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed

.PHONY: setup demo test test-fast lint format contracts bench reliability redis clean

setup: $(STAMP_PY) $(STAMP_NPM) redis

$(STAMP_PY): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# `npm install` (not `npm ci`): it installs what the lock pins, and tolerates the platform
# packages of @foundry-rs/anvil for other systems that a registry mirror may not carry.
# .npmrc sets legacy-peer-deps: @uniswap/swap-router-contracts depends on hardhat-watcher, whose
# peer dependency (all of hardhat) the devnet never uses and npm would otherwise install.
$(STAMP_NPM): package.json package-lock.json .npmrc
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

# redis-server comes from Debian's package; tests start their own instances on free ports.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (Debian package)"; \
	    (apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null)) && \
	    echo "redis-server installed"; \
	  else \
	    echo "redis-server is missing: run 'sudo apt-get install redis-server' (Debian/Ubuntu)"; exit 1; \
	  fi; }

demo: setup
	$(BIN)/mevbot demo

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow and not faults"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

contracts: $(STAMP_PY) $(STAMP_NPM)
	$(BIN)/python -m anvil.build

bench: setup
	$(BIN)/python -m bench

# Fault injection, load and bad input; prints a table of what was injected and what survived.
reliability: setup
	PYTHONPATH=tests $(BIN)/pytest -m faults -p no:randomly -v -p reliability_report

clean:
	rm -rf $(VENV) node_modules .pytest_cache
