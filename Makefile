# berth: two commands matter: `make run` (the whole suite locally) and `make test`.
# Everything installs itself into .venv on first use; Python 3.11+ and a reachable package index
# (PyPI or a mirror) are needed.

PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help venv venv-run run test test-unit test-integration test-e2e test-security test-faults test-browser lint format contracts contracts-check chart bench bench-paced bench-scale clean

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is compiled at install, ours included: every process berth up starts (and starts
# again after a crash) would otherwise compile its imports from source, 4 to 6 s of CPU per
# service, where PYTHONDONTWRITEBYTECODE keeps Python from caching what it compiled.
SOURCES := contracts/src shared/src cli/src $(wildcard services/*/src)

venv: $(UV)  ## Create .venv with every package and the development tools (locked versions)
	$(UV) sync --all-packages --frozen --compile-bytecode --python $(PYTHON)
	$(BIN)/python -m compileall -q $(SOURCES) >/dev/null

venv-run: $(UV)  ## Create .venv with only what running berth needs (no test or lint tools)
	$(UV) sync --all-packages --frozen --no-dev --inexact --compile-bytecode --python $(PYTHON)
	$(BIN)/python -m compileall -q $(SOURCES) >/dev/null

run: venv-run  ## Run NATS, PostgreSQL, the six services, a simulated cluster, the API and console (Ctrl-C stops)
	$(BIN)/berth up

test: venv  ## The whole test suite: unit, contract, integration, end-to-end and faults
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv  ## Only the tests that need no server
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-integration: venv  ## Only the tests against a real nats-server and PostgreSQL
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

test-e2e: venv  ## Only the tests that run the whole suite as separate processes
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

test-security: venv  ## Only the tests of NATS authentication and permissions (real nats-server)
	$(BIN)/pytest -m security $(PYTEST_ARGS)

test-faults: venv  ## Only the fault tests: the whole suite under kill -9, a NATS restart, a PostgreSQL outage
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

test-browser: venv  ## Only the web console in headless Chromium (apt-get install chromium chromium-driver)
	$(BIN)/pytest -m browser $(PYTEST_ARGS)

lint: venv  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts/src shared/src cli/src services/*/src

format: venv  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

contracts: venv  ## Regenerate the JSON Schemas, AsyncAPI and OpenAPI documents in contracts/
	$(BIN)/python -m berth.contracts.export
	$(BIN)/python contracts/scripts/asyncapi.py
	$(BIN)/python contracts/scripts/openapi.py

contracts-check: venv  ## Fail if the generated contracts are out of date
	$(BIN)/python -m berth.contracts.export --check
	$(BIN)/python contracts/scripts/asyncapi.py --check
	$(BIN)/python contracts/scripts/openapi.py --check

chart: venv  ## Regenerate the Helm charts' templates and their rendered manifests (deploy/helm, deploy/rendered)
	$(BIN)/python deploy/helm/generate.py

bench: venv  ## Whole suite vs bare nats-py pipelines; latency paced at 200/s; policy evaluation; the simulated cluster; CLI start-up CPU; scale
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.paced $(PACED_ARGS)
	$(BIN)/python -m bench.policy_bench
	$(BIN)/python -m bench.simulator_bench
	$(BIN)/python -m bench.cli_startup
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

bench-paced: venv  ## Only the paced stage: p50/p99 submit -> approved and -> Running at 200/s (PACED_ARGS="--rate 100")
	$(BIN)/python -m bench.paced $(PACED_ARGS)

bench-scale: venv  ## Only the scale stage: 100,000 stored workloads, 5,000 live (SCALE_ARGS="--stored 20000 --live 1000" for less)
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

clean:  ## Remove the virtualenvs and local state
	rm -rf $(VENV) $(TOOLS) .berth .pytest_cache .mypy_cache .ruff_cache
