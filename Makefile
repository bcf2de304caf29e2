# One entry point for people and CI. Everything installs into .venv and ~/.cache/warmpool.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup control-plane test unit lint simulate clean

$(STAMP): pyproject.toml dev/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e dev/
	touch $(STAMP)

setup: $(STAMP)

## Build kube-apiserver, etcd, kubectl, kwok and helm from Go modules (cached; a no-op when built).
control-plane:
	bash hack/build-control-plane.sh >/dev/null

## The main job on a machine without a cluster: replay churn through the ipamd model, compare strategies.
simulate: setup
	$(BIN)/warmpool simulate

lint: setup
	$(BIN)/ruff check operator dev tests benchmarks
	$(BIN)/ruff format --check operator dev tests benchmarks
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit -q

## All tests: unit, then integration against a real kube-apiserver + etcd and a moto EC2 server.
test: setup control-plane
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
