# Every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install install-dev run test lint bench bench-quick clean

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

run: install
	$(VENV)/bin/gateway serve

test: install-dev nginx
	$(PY) -m pytest -q

lint: install-dev
	$(VENV)/bin/ruff check gateway routers adapters tests bench
	$(VENV)/bin/mypy

bench: install-dev
	$(PY) -m bench.run --full

bench-quick: install-dev
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
