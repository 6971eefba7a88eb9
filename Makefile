# The shop's commands. `make run` and `make test` are all a new machine needs
# (Python 3.11 and PostgreSQL 15+ server binaries installed).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= small
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: backup pitr-drill run test test-pgbouncer stop seed docs services migrate install lint format bench plans er-diagram snapshots security install-security install-bench lock report

# requirements-dev.txt is the app's lock (requirements.txt, what the image
# installs) plus the test, lint and docs tools, at the same versions; every
# line has its hashes, so pip installs exactly what was locked (`make lock`).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3.x ...'"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

# The attack tools, into the same venv; `make test` does without them.
$(VENV)/.security-installed: $(VENV)/.installed requirements-security.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-security.txt
	@touch $@

install-security: $(VENV)/.security-installed

# Locust, for the HTTP benchmark (bench/http.py); `make test` does without it.
$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bench.txt
	@touch $@

install-bench: $(VENV)/.bench-installed

# The locks, from the requirements*.in files, with the hashes of every file
# PyPI has for each version (the image may build on another platform). Pins
# already in a lock are kept unless an .in file asks for another version.
# pip-tools runs from a throwaway virtualenv: it is not a dependency of the
# shop. Order matters: each later lock is bound by the ones before it. No
# index or find-links lines: a machine's own mirrors stay out of the locks,
# which the image installs from PyPI.
PIP_COMPILE = var/pip-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	@[ -x var/pip-tools/bin/pip-compile ] || { $(PYTHON) -m venv var/pip-tools && var/pip-tools/bin/pip install --quiet pip-tools==7.7.0; }
	for name in requirements requirements-dev requirements-bench requirements-security; do \
		CUSTOM_COMPILE_COMMAND="make lock" $(PIP_COMPILE) --output-file $$name.txt $$name.in || exit 1; \
	done

# The shards too (chapter 15): two small clusters, seconds to create once,
# so that the sharding lab and its tests run wherever the suite does.
services:
	@bash scripts/services.sh up
	@bash scripts/services.sh shards up

migrate: install services
	$(PY) manage.py migrate --database owner --noinput

seed: migrate
	$(PY) manage.py seed --scale $(SCALE)

run: migrate
	$(PY) manage.py seed --scale $(SCALE) --if-empty
	@[ -z "$$MONGO_URL" ] || $(PY) manage.py event_store_setup
	@bash scripts/services.sh workers
	@mkdir -p var/run
	@echo "serving http://$(HOST):$(PORT)/api/v1/  (Swagger UI: /api/docs/, ReDoc: /api/redoc/, admin: /admin/)"
	@echo "Ctrl-C stops the web server; make stop stops it all (workers, databases)"
	@echo $$$$ > var/run/web.pid; exec $(PY) manage.py runserver $(HOST):$(PORT)

# Migrates the development database too, so the labs the docs mention work
# right after `make test`; the suite itself uses its own test database.
test: migrate
	$(PY) -m pytest $(PYTEST_ARGS)

# The row-level security suite, the checkout's concurrency tests and the
# pgbouncer tests again, with `default` through pgbouncer in transaction mode
# (DATABASE_VIA_PGBOUNCER, shop/settings/base.py): a server connection
# changes hands after every transaction there, and what relies on a session
# would show. scripts/services.sh starts pgbouncer when it is installed.
PGBOUNCER_TESTS ?= tests/shop/test_rls.py tests/orders/test_concurrency.py tests/shop/test_pgbouncer.py
test-pgbouncer: migrate
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] \
		|| { echo "pgbouncer is not installed: apt-get install pgbouncer, then make test-pgbouncer"; exit 1; }
	DATABASE_VIA_PGBOUNCER=1 $(PY) -m pytest $(PGBOUNCER_TESTS) $(PYTEST_ARGS)

stop:
	@bash scripts/services.sh down

docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir var/site

# lint-imports keeps the layers of DESIGN.md: pyproject.toml's [tool.importlinter].
# The migration graph keeps them too, with no cycle between apps: the tests
# of test_migration_graph.py that read the migration files, not a database
# (seconds, and no service needs to be up).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests/shop/test_migration_graph.py -m "not django_db" -q

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

snapshots: migrate
	$(PY) manage.py docs_snapshots

# The benchmarks, each in a scratch database of its own: checkout, the app's
# way against one PL/pgSQL call; row-level security against the same reads
# without it; the whole stack over HTTP, gunicorn under Locust on the large
# seed, in several configurations (bench/http.py, about seven minutes).
# `make bench BENCH_ARGS=--write` also updates docs/benchmarks.md;
# bench/cache.py compares the catalog's reads without the cache, cold and warm.
# CHECKOUT_ARGS / RLS_ARGS / CACHE_ARGS / HTTP_ARGS reach one benchmark only (e.g.
# RLS_ARGS=--orders=20000, HTTP_ARGS="--users 4 --run-time 5").
bench: migrate install-bench
	$(PY) -m bench.checkout $(BENCH_ARGS) $(CHECKOUT_ARGS)
	$(PY) -m bench.rls $(BENCH_ARGS) $(RLS_ARGS)
	$(PY) -m bench.cache $(BENCH_ARGS) $(CACHE_ARGS)
	$(PY) -m bench.http $(BENCH_ARGS) $(HTTP_ARGS)

# A pgBackRest backup of the primary (chapter 24, scripts/pgbackrest.sh):
# BACKUP_TYPE=full, incr or diff (an incremental with no full one yet is
# taken full). Fails, and takes none, while the WAL archiver is failing.
BACKUP_TYPE ?= incr
backup:
	@bash scripts/services.sh backup $(BACKUP_TYPE)

# The point-in-time recovery drill (chapter 24, shop/pitr.py): on scratch
# clusters of its own, a pgBackRest backup, orders, a target time, a
# mistake, a restore to the target, the orders checked by id and total.
PITR_ARGS ?=
pitr-drill: migrate
	$(PY) manage.py pitr_drill $(PITR_ARGS)

# The hot requests' plans on the large seed, in a scratch database of their
# own (bench/plans.py): fails on a sequential scan of a table over 10,000
# rows, prints the timings, writes the plans to docs/snippets/plans/.
# PLANS_ARGS bounds it (--scale, --repeat, --deep-page, --max-seq-rows).
plans: install services
	$(PY) -m bench.plans $(PLANS_ARGS)

# pgBadger's report of a short load (bench/pgbadger_report.py, chapter 24):
# a scratch database, seeded small, that logs every statement; the HTTP
# benchmark's Locust scenario for REPORT_SECONDS with REPORT_USERS users; a
# lock wait, a temporary file and a checkpoint. Writes var/report/pgbadger.html,
# and a screenshot of its top queries when chromium is installed
# (REPORT_ARGS=--write also updates docs/chapters/img/). Needs pgbadger.
REPORT_USERS ?= 6
REPORT_SECONDS ?= 20
report: install-bench services
	$(PY) -m bench.pgbadger_report --users $(REPORT_USERS) --seconds $(REPORT_SECONDS) $(REPORT_ARGS)

# The attack pass: sqlmap and schemathesis against a server on a scratch
# database (scripts/security.sh; bounds: SECURITY_EXAMPLES, SECURITY_SEED,
# SQLMAP_LEVEL, SQLMAP_RISK, SQLMAP_TECHNIQUE). SKIP_SERVICES=1 uses services
# that are already running without `services.sh up`.
security: install-security $(if $(SKIP_SERVICES),,services)
	bash scripts/security.sh
