# Chorus developer and CI entry points. `make help` lists them.
#
# Everything runs from the repository's own virtualenv (.venv, Python 3.11), created and
# (re)installed on demand: the install is redone only when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
INSTALL_STAMP := $(VENV)/.install.stamp

# The pytest marker expression for the PostgreSQL + Redis + worker run. The default is the
# whole suite except the browser tests, which exercise pages, not the database, and the
# permission matrices (marker `matrix`: every role against every route, database-agnostic,
# about a third of the run). If the suite outgrows the CI budget, narrow it further:
# PG_MARKEXPR="postgres or celery_worker or integration".
PG_MARKEXPR ?= not browser and not matrix and not faults
# Extra arguments for both pytest runs, e.g. make test PYTEST_ARGS="-x -k agreement".
PYTEST_ARGS ?=

DEMO_ADDR := 127.0.0.1:8000

# No hub downloads at run time, reproducible hashing, headless plotting, unbuffered logs.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg
export DJANGO_SETTINGS_MODULE := config.settings
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The app packages are imported from the checkout even if they appeared after the venv
# was installed (an editable install only maps packages that existed at install time).
export PYTHONPATH := $(CURDIR)

# The embedded runtime: SQLite in the checkout, tasks in process.
EMBEDDED_ENV := env -u DATABASE_URL -u CHORUS_TEST_DB_NAME -u CELERY_BROKER_URL \
	-u CELERY_RESULT_BACKEND -u CHORUS_CELERY_WORKER
# pytest exits 5 when it collects no test; for a filtered run that is not a failure.
PYTEST := $(PY) -m pytest
define run_pytest
$(PYTEST) $(1) || { status=$$?; [ $$status -eq 5 ] && echo "pytest: no tests collected, accepted" || exit $$status; }
endef

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

# Exactly the versions CI tested, each checked against its recorded sha256. `make lock`
# re-resolves pyproject.toml's ranges into them: dev.lock.txt (the project with its dev
# tools, for .venv) and base.lock.txt (runtime only, for the Docker image).
LOCK := requirements/dev.lock.txt
BASE_LOCK := requirements/base.lock.txt
PIP_COMPILE_FLAGS := --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
PIP_TOOLS := pip-tools==7.6.2

$(INSTALL_STAMP): pyproject.toml $(LOCK) | $(PY)
	@# torch must come from the pinned CPU wheel, or pip pulls the newest CUDA build.
	if grep -Eq '^\s*"torch\b' pyproject.toml; then $(PY) -m pip install "torch==2.13.0"; fi
	$(PY) -m pip install --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --no-deps -e .
	$(PY) -m pip check
	touch $@

.PHONY: install
install: $(INSTALL_STAMP) ## Create .venv and install the locked dependency set with dev tools

.PHONY: lock
lock: | $(PY) ## Re-resolve pyproject.toml into requirements/*.lock.txt (pinned, with hashes)
	$(PY) -m pip install -q "$(PIP_TOOLS)"
	$(BIN)/pip-compile $(PIP_COMPILE_FLAGS) --extra dev -o $(LOCK) pyproject.toml
	$(BIN)/pip-compile $(PIP_COMPILE_FLAGS) -o $(BASE_LOCK) pyproject.toml

.PHONY: sysdeps
sysdeps: ## Install missing system packages (redis-server, postgresql, chromium)
	bash scripts/ensure-system-deps.sh

.PHONY: demo
demo: $(INSTALL_STAMP) ## Run the demo on embedded SQLite at http://127.0.0.1:8000/
	$(EMBEDDED_ENV) $(PY) manage.py migrate --noinput
	$(EMBEDDED_ENV) $(PY) manage.py create_demo --reset
	@echo "Chorus demo: http://$(DEMO_ADDR)/ (logins above; Ctrl-C stops it)"
	$(EMBEDDED_ENV) $(PY) manage.py runserver $(DEMO_ADDR)

.PHONY: lint
lint: $(INSTALL_STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: fmt
fmt: $(INSTALL_STAMP) ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: typecheck
typecheck: $(INSTALL_STAMP) ## mypy with the Django and DRF plugins
	$(EMBEDDED_ENV) $(BIN)/mypy .

.PHONY: importlint
importlint: $(INSTALL_STAMP) ## import-linter contracts (layers, pure cores)
	$(BIN)/lint-imports

.PHONY: migrations-check
migrations-check: $(INSTALL_STAMP) ## Fail when models changed without a migration
	$(EMBEDDED_ENV) $(PY) manage.py makemigrations --check --dry-run

.PHONY: test-sqlite
test-sqlite: $(INSTALL_STAMP) ## The whole suite on SQLite, tasks in process
	mkdir -p artifacts
	$(EMBEDDED_ENV) $(call run_pytest,--junitxml=artifacts/junit-sqlite.xml $(PYTEST_ARGS))

.PHONY: test-postgres
test-postgres: $(INSTALL_STAMP) sysdeps ## The suite on throwaway PostgreSQL + Redis + a Celery worker
	mkdir -p artifacts
	bash scripts/test-services.sh env CHORUS_CELERY_WORKER=1 \
		bash -c '$(call run_pytest,-m "$(PG_MARKEXPR)" --junitxml=artifacts/junit-postgres.xml $(PYTEST_ARGS))'

.PHONY: test-faults
test-faults: $(INSTALL_STAMP) sysdeps ## The fault suite: services and workers killed and restarted under load
	mkdir -p artifacts/faults
	rm -f artifacts/faults/figures.txt
	bash scripts/test-services.sh env CHORUS_FAULTS=1 \
		bash -c '$(call run_pytest,-m faults tests/faults --junitxml=artifacts/junit-faults.xml $(PYTEST_ARGS))'
	@echo "fault suite figures (artifacts/faults/figures.txt):"
	@cat artifacts/faults/figures.txt 2>/dev/null || true

.PHONY: test
test: sysdeps lint typecheck importlint migrations-check test-sqlite test-postgres test-faults ## Everything CI runs

.PHONY: worker
worker: $(INSTALL_STAMP) ## A local Celery worker on queues default and gpu (needs CELERY_BROKER_URL)
	@test -n "$${CELERY_BROKER_URL:-}" || { echo "set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)"; exit 1; }
	$(PY) -m celery -A config worker -Q default,gpu --loglevel INFO

.PHONY: bench
bench: $(INSTALL_STAMP) ## Run the assignment benchmark (on a throwaway PostgreSQL unless DATABASE_URL names one)
	@case "$${CHORUS_BENCH_DATABASE_URL:-}$${DATABASE_URL:-}" in \
		postgres*) $(PY) bench/assignment.py $(BENCH_ARGS) ;; \
		*) bash scripts/test-services.sh env -u CELERY_BROKER_URL -u CELERY_RESULT_BACKEND \
			$(PY) bench/assignment.py $(BENCH_ARGS) ;; \
	esac

.PHONY: bench-export
bench-export: $(INSTALL_STAMP) ## Build a Parquet version of 1M items x 5 labels (throwaway PostgreSQL unless DATABASE_URL names one)
	@case "$${CHORUS_BENCH_DATABASE_URL:-}$${DATABASE_URL:-}" in \
		postgres*) $(PY) bench/export.py $(BENCH_ARGS) ;; \
		*) bash scripts/test-services.sh env -u CELERY_BROKER_URL -u CELERY_RESULT_BACKEND \
			$(PY) bench/export.py $(BENCH_ARGS) ;; \
	esac

.PHONY: bench-agreement
bench-agreement: $(INSTALL_STAMP) ## Agreement core vs krippendorff / crowd-kit (200k items x 5 labels)
	$(PY) bench/agreement.py $(BENCH_ARGS)

.PHONY: bench-ml
bench-ml: $(INSTALL_STAMP) ## ML engine: MiniLM encoding vs raw sentence-transformers, cache, text-head epochs (no database)
	$(EMBEDDED_ENV) $(PY) bench/ml.py $(BENCH_ARGS)

.PHONY: services-up
services-up: ## docker compose: start postgres and redis only
	docker compose up -d postgres redis

.PHONY: services-down
services-down: ## docker compose: stop the stack
	docker compose down

.PHONY: clean
clean: ## Remove caches and test artifacts (keeps .venv, db.sqlite3, media)
	rm -rf .pytest_cache .mypy_cache .ruff_cache artifacts staticfiles build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## Also remove .venv, the demo database and media
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm media
