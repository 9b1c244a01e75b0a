# parbench: `make demo` runs the benchmark on the local testbed (10 s of writes, 10 s of
# reads: a figure that means something, not a 0.2 s phase); `make test` runs every test.
PYTHON ?= python3
VENV := .venv
# Apache Otava (change points on `fab history --csv`): a venv of its own, its numpy and
# scipy pins clash with the controller's; tests/unit/test_otava.py runs its `otava`
OTAVA_VENV := .venv-otava
PY := $(VENV)/bin/python
FAB := $(VENV)/bin/fab
DATA := data/5mb.txt
DEMO_INVENTORY := .testbed/inventory.yaml

.PHONY: demo test lint unit setup up down status bench nightly clean-results

demo: setup $(VENV)/.installed $(DATA)
	$(PY) -m testbed up --nodes 3
	FABRIC_BENCH_INVENTORY=$(DEMO_INVENTORY) $(FAB) push write --duration 10s read --duration 10s verify report --html
	@echo "demo: results in results/latest/ (the page: results/latest/report.html); stop the testbed with 'make down'"

# every test: lint, unit, and integration on the real testbed (started and stopped by pytest)
test: setup $(VENV)/.installed $(OTAVA_VENV)/.installed $(DATA) lint
	$(PY) -m pytest -ra

unit: $(VENV)/.installed $(OTAVA_VENV)/.installed
	$(PY) -m pytest -ra tests/unit

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

setup:
	bash .ci/setup

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(OTAVA_VENV)/.installed: requirements-otava.txt
	$(PYTHON) -m venv $(OTAVA_VENV)
	$(OTAVA_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-otava.txt
	touch $@

$(DATA): get_data.sh
	./get_data.sh

up: setup $(VENV)/.installed $(DATA)
	$(PY) -m testbed up --nodes 3

down:
	$(PY) -m testbed down

status:
	$(PY) -m testbed status

# the nightly chain against the inventory in FABRIC_BENCH_INVENTORY (default inventory.yaml)
nightly: $(VENV)/.installed
	$(FAB) nightly

bench: setup $(VENV)/.installed $(DATA)
	$(PY) -m bench

clean-results:
	find results -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
