# Every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: help install install-dev run test lint bench bench-quick bench-tools clean

# `make` alone lists the targets (the first target is the default).
help:
	@echo "make install       create .venv/ with the gateway command in .venv/bin/"
	@echo "make run           serve on http://127.0.0.1:8080 (PORT=8081 to change it,"
	@echo "                   ARGS='--workers 2 --config my.toml' for any serve option)"
	@echo "make test          install the dev dependencies and run the whole suite"
	@echo "make lint          ruff and mypy --strict"
	@echo "make bench-quick   the benchmarks in under 3 minutes (make bench: the full run)"
	@echo "make clean         remove .venv/ and data/"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $@

PORT ?=
ARGS ?=
run: install
	$(VENV)/bin/gateway serve $(if $(PORT),--port $(PORT)) $(ARGS)

test: install-dev nginx chromium
	$(PY) -m pytest -q

lint: install-dev
	$(VENV)/bin/ruff check gateway routers adapters tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

$(VENV)/.installed-bench: $(VENV)/.installed-dev pyproject.toml
	$(PIP) install -q -e '.[dev,bench]'
	touch $@

# wrk and nginx come from the system's packages (the bench runs as root here).
bench-tools:
	@command -v wrk >/dev/null && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } \
		|| { apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null; }

# The peer, pinned, in its own virtualenv (1.100.5 installs here; never 1.107.0, reported
# compromised).
LITELLM := bench/.venv-litellm/bin/litellm
$(LITELLM):
	test -x bench/.venv-litellm/bin/python || $(PYTHON) -m venv bench/.venv-litellm
	bench/.venv-litellm/bin/pip install -q 'litellm[proxy]==1.100.5'

bench: $(VENV)/.installed-bench bench-tools $(LITELLM)
	$(PY) -m bench.run --full

bench-quick: $(VENV)/.installed-bench bench-tools $(LITELLM)
	$(PY) -m bench.run --quick

clean:
	rm -rf $(VENV) data

# nginx for the scale-out test (tests/test_scaleout.py); the test skips if it cannot be installed.
.PHONY: nginx
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null 2>&1) || \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null 2>&1) || \
	  echo "nginx could not be installed: the nginx test will be skipped"

# Headless Chromium for the dashboard's browser test (tests/test_dashboard.py), from Debian's
# packages: Playwright drives it by path, so `playwright install` (a download) is never needed.
.PHONY: chromium
chromium:
	@test -x /usr/bin/chromium || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) || \
	  echo "chromium could not be installed: the dashboard's browser test will be skipped"
