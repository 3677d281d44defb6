# imagedl: `make run` starts everything; `make test` runs every test.
# Both install what is missing first (Debian packages, the virtualenv, the Cassandra
# runtime from Maven Central), so they work on a fresh machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
APT_PACKAGES := chromium chromium-driver openjdk-17-jre-headless maven postgresql redis-server prometheus nodejs npm
AXE := tests/axe/node_modules/axe-core/axe.min.js
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test screenshots api-schema deps axe system-deps browser-user stop-system-engines venv cassandra cassandra-stop cluster cluster-stop setup lint format bench clean

# The local node is stopped on exit only if this command started it.
run: deps
	@was_up=$$($(PY) -m devtools.cassandra_node status 2>/dev/null | grep -c answering); \
	$(MAKE) --no-print-directory setup && \
	exec $(PY) -m devtools.run_all --port $(PORT) $$([ "$$was_up" = 0 ] && echo --stop-node)

# The suite starts a Cassandra node of its own (tests/suite_node.py), not this one.
test: deps lint
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m pytest $(PYTEST_ARGS)

# A test run keeps its screenshots under var/screenshots/; this refreshes the README's and docs'
# docs/screenshots/ on purpose, from the browser tests marked `screenshots`.
screenshots: deps
	$(PY) manage.py collectstatic --noinput -v0
	IMAGEDL_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest -m screenshots $(PYTEST_ARGS)

# The API's OpenAPI document, kept in docs/openapi.json (a test fails while they differ).
API_SCHEMA_ARGS := --api jobs.api.v1.api --indent 2 --sorted --skip-checks
api-schema: venv
	$(PY) manage.py export_openapi_schema $(API_SCHEMA_ARGS) --output docs/openapi.json

deps: system-deps browser-user venv axe
	$(PY) -m devtools.cassandra_node fetch >/dev/null
	$(PY) -m devtools.s3proxy fetch >/dev/null

# axe-core for the accessibility tests, pinned by tests/axe/package-lock.json (the PyPI
# wrappers bundle an older axe without the WCAG 2.2 rules); npm ci when it is missing.
axe: $(AXE)

$(AXE): tests/axe/package-lock.json
	cd tests/axe && npm ci --no-audit --no-fund --silent
	touch $@

# Installs only the Debian packages that are missing (one apt-get update, if any).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	  $(MAKE) --no-print-directory stop-system-engines; \
	fi; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq; DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; }

# A worker running as root runs Chromium as this unprivileged system user, with Chromium's
# sandbox on (docs/deployment.md, "The browser's user"). Not root: the browser runs as you.
BROWSER_USER ?= $(or $(IMAGEDL_BROWSER_USER),imagedl-browser)
browser-user:
	@[ "$$(id -u)" != 0 ] || getent passwd $(BROWSER_USER) >/dev/null || \
	  { echo "creating the browser's system user $(BROWSER_USER)"; \
	    useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin $(BROWSER_USER); }

# The postgresql, redis-server and prometheus packages may start a system-wide server
# (Debian's "main" cluster on 5432, Redis on 6379, Prometheus on 9090): the project runs
# instances of its own (devtools/postgres.py, devtools/redis_server.py; the tests' own
# Prometheus, and promtool), so those are stopped, not used.
stop-system-engines:
	@command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | awk '$$4 == "online" {print $$1, $$2}' | \
	  while read ver name; do echo "stopping the system PostgreSQL cluster $$ver/$$name"; $(SUDO) pg_ctlcluster $$ver $$name stop || true; done; \
	pid=$$(cat /run/redis/redis-server.pid 2>/dev/null) && [ -n "$$pid" ] && kill -0 $$pid 2>/dev/null && \
	  { echo "stopping the system redis-server"; $(SUDO) service redis-server stop >/dev/null 2>&1 || $(SUDO) kill $$pid; }; \
	pid=$$(pgrep -u prometheus -x prometheus 2>/dev/null | head -1) && [ -n "$$pid" ] && \
	  { echo "stopping the system prometheus"; $(SUDO) service prometheus stop >/dev/null 2>&1 || $(SUDO) kill $$pid; }; true

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

cassandra: deps
	@if [ -z "$$CASSANDRA_HOSTS" ]; then $(PY) -m devtools.cassandra_node start; \
	else echo "CASSANDRA_HOSTS is set: no local node started"; fi

# Stops this clone's node and the test suite's (kept with IMAGEDL_TEST_KEEP_NODE=1).
cassandra-stop:
	$(PY) -m devtools.cassandra_node stop
	IMAGEDL_CASSANDRA_DATA=var/test-cassandra $(PY) -m devtools.cassandra_node stop

# Several machines' worth on this one, in the background (docs/operations.md, "A cluster
# on one machine"): three Cassandra nodes, PostgreSQL, Redis, s3proxy, two workers, two webs.
cluster: deps
	$(PY) -m devtools.cluster up

cluster-stop:
	$(PY) -m devtools.cluster down

setup: deps cassandra
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py sync_cassandra -v0
	$(PY) manage.py ensure_storage -v0
	$(PY) manage.py collectstatic --noinput -v0

# Benchmarks print figures (docs/benchmarks.md). Installs wrk and img2dataset (its own venv).
IMG2DATASET := bench/.venv-img2dataset/bin/img2dataset
IMG2DATASET_VERSION := 1.47.0
bench: deps cassandra
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq; DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	@[ -x $(IMG2DATASET) ] || { $(PYTHON) -m venv bench/.venv-img2dataset && bench/.venv-img2dataset/bin/pip install -q img2dataset==$(IMG2DATASET_VERSION); }
	$(PY) -m bench.bench_download
	$(PY) -m bench.bench_job
	$(PY) -m bench.bench_web
	$(PY) -m bench.bench_chaos
	$(PY) -m bench.bench_scale
	$(PY) -m bench.capacity
	$(PY) -m bench.bench_queues

# ruff, and the direction of imports (the import-linter contracts in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: cassandra-stop
	rm -rf var
