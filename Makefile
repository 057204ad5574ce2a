# The front door: `make demo` and `make test` each install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
VIDEO ?=
STYLE ?= starry-night
RANKS ?= 2

.PHONY: help demo test lint format typecheck system deps clean
.DEFAULT_GOAL := help

help:
	@echo "make demo [VIDEO=path.mp4] [STYLE=name] [RANKS=n]   style a video end to end through Airflow"
	@echo "make test                                          the whole suite"
	@echo "make lint | format | typecheck"

# ffmpeg/ffprobe from Debian when absent (the MPI runtime comes from the mpich wheel).
system:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  echo "installing ffmpeg"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg; }

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: system $(BIN)/.installed node_modules/.installed

test: deps
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(BIN)/.installed
	$(BIN)/mypy plugins dags

demo: deps
	$(BIN)/python scripts/demo.py --style "$(STYLE)" --ranks "$(RANKS)" $(if $(VIDEO),--video "$(VIDEO)")

clean:
	rm -rf .demo .airflow .pytest_cache .ruff_cache .mypy_cache
