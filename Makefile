# The two commands of the README:
#   make book   install into .venv, then execute every chapter and build the HTML (_build/html)
#   make test   install into .venv, then run the unit tests and validate every notebook (nbval)
# Helpers: make install | headers | check-headers | exercises | clean

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

.PHONY: book test install headers check-headers exercises clean

book: $(STAMP)
	$(VENV)/bin/jupyter-book build .

# pytest's own exit status is kept: 5 (no tests collected) fails the target like any error.
test: $(STAMP) $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests $(NOTEBOOKS) \
	    --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg \
	    --nbval-cell-timeout=$(CELL_TIMEOUT) \
	    $(PYTEST_ARGS)

install: $(STAMP)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "tests/test_browser.py needs Chromium at $(CHROMIUM): install it, or set CHROMIUM=/path/to/chromium" >&2; exit 1; }
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-liberation

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[book,test]" "$(TORCH)"
	touch $(STAMP)

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
