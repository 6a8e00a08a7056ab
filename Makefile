# Sensorhub: `make run` starts the whole system, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test probe lint typecheck format migrate browser clean load screenshots

help:
	@echo "make run     start web, worker, detect, beat and the simulator (SQLite and no servers unless DATABASE_URL/REDIS_URL are set; then the Redis consumers too)"
	@echo "make test    install the test dependencies (and Chromium) and run the whole suite"
	@echo "make probe   only the probe: schemathesis against a running daphne, four callers (PostgreSQL: DATABASE_URL)"
	@echo "make lint    ruff format --check, ruff check, lint-imports (the import contracts) and mypy (make typecheck alone)"
	@echo "make format  ruff format and ruff check --fix"
	@echo "make screenshots  the dashboard's pages at desktop and phone width into docs/screenshots/ (Chromium)"
	@echo "make load    the load benchmark (locust; needs DATABASE_URL=postgres://... and REDIS_URL; LOAD_ARGS=--duration 60)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/prod.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.base-installed

# The seed baselines new sensors' detectors start from are loaded right after (idempotent: unchanged seeds stay).
migrate: $(VENV)/.base-installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_baselines

# Rates are fetched first (demo rates when offline). The processes started are those the configuration can run (`manage.py list_processes`: the Redis consumers only
# with REDIS_URL, MQTT's only with MQTT_URL); README, "What runs where".
run: migrate
	@$(BIN)/python manage.py create_demo_admin --site http://127.0.0.1:$(PORT)
	@# Real rates when a provider answers; offline, demo rates labelled as not real (docs/rates.md, "Demo rates").
	@$(BIN)/python manage.py fetch_rates --demo-if-offline --verbosity 0
	@PROCESSES="$$($(BIN)/python manage.py list_processes)" && \
	echo "Sensorhub on http://127.0.0.1:$(PORT)/  (admin: /admin/, API docs: /api/docs/). Starting: $$PROCESSES. Ctrl-C stops everything." && \
	PATH="$(abspath $(BIN)):$$PATH" PORT=$(PORT) $(BIN)/honcho start --procfile Procfile --port $(PORT) $$PROCESSES

# Headless Chromium for the browser tests, from Debian's packages (never a browser download of its own).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: $(VENV)/.dev-installed browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The probe alone (docs/development.md, "Probing"); `make test` runs it too. More examples per operation:
# make probe PYTEST_ARGS="--probe-examples 100"
probe: $(VENV)/.dev-installed
	$(BIN)/pytest -m probe $(PYTEST_ARGS)

# The README's screenshots (dashboard/tests/test_screenshots.py, and test_browser_jobs.py for pages with running
# jobs, which needs a worker on PostgreSQL: DATABASE_URL=postgres://...): a test run writes them to test-artifacts/.
screenshots: $(VENV)/.dev-installed browser
	SCREENSHOTS=1 $(BIN)/pytest dashboard/tests/test_screenshots.py dashboard/tests/test_browser_jobs.py -p no:randomly $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory typecheck

# mypy with the Django and DRF plugins, settings from config.settings.test (pyproject.toml [tool.mypy]); the
# cache in .mypy_cache makes a second run take seconds.
typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy .

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Devices, dashboards and 50 live sockets against the production processes (docs/benchmarks.md, "Load").
load: $(VENV)/.dev-installed
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .import_linter_cache .mypy_cache
