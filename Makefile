# One Makefile for people, README and CI alike.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WEB_CONCURRENCY ?= 4
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/loyalty
DATABASE_URL ?=

.PHONY: install migrate run serve test fuzz lint format clean bench bench-scale bench-batches bank-test wrk profile

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

# Zero-setup demo on SQLite (unless DATABASE_URL says otherwise), with the webhook worker
# beside the web server (local receivers allowed); Ctrl-C stops both.
run: export DEBUG ?= 1
run: export WEBHOOK_ALLOW_PRIVATE_URLS ?= 1
run: migrate
	$(PY) manage.py seed_demo
	@echo
	@echo "Admin:     http://127.0.0.1:$(PORT)/admin/  (admin/admin, support/support, auditor/auditor)"
	@echo "Health:    http://127.0.0.1:$(PORT)/healthz"
	@echo "Worker:    manage.py run_worker delivers webhooks (admin: Webhook endpoints)"
	@echo
	@$(PY) manage.py run_worker & worker=$$!; \
		trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
		$(PY) manage.py runserver 127.0.0.1:$(PORT)

# Production-like: granian (loyalty/serve.py: WEB_CONCURRENCY workers of SERVER_THREADS
# threads), DEBUG off, JSON logs, psycopg's pool, no seeding. Plain HTTP on $(PORT) for tools
# and load balancers; set SECURE_SSL_REDIRECT=1 when TLS terminates in front of it.
serve: export DEBUG = 0
serve: export PORT := $(PORT)
serve: export WEB_CONCURRENCY := $(WEB_CONCURRENCY)
serve: export ALLOWED_HOSTS ?= localhost,127.0.0.1
serve: export SECURE_SSL_REDIRECT ?= 0
serve: export DATABASE_POOL ?= 1
serve: install
	$(PY) manage.py collectstatic --noinput -v0
	exec $(PY) -m loyalty.serve

# The whole suite on PostgreSQL (DATABASE_URL chooses the server; default the local one).
test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -m pytest $(PYTEST_ARGS)

# schemathesis against /api/schema/ for the staff and partner APIs, many more examples per
# operation than `make test` runs (FUZZ_EXAMPLES, default 12 there).
FUZZ_EXAMPLES ?= 100
fuzz: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(PY) -m pytest -q tests/api/test_schema.py::test_staff_api_conforms_to_its_schema \
		tests/partners/test_fuzz.py $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Load benchmark: granian + PostgreSQL + wrk on this machine; writes bench/RESULTS.md.
bench: install wrk
	$(PY) bench/load.py $(BENCH_ARGS)

# In-process profile of the partner endpoints (ms, CPU ms and statements per request;
# PROFILE_ARGS=--profile prints pyinstrument's tree).
profile: install
	$(PY) bench/profile.py $(PROFILE_ARGS)

# Scale benchmark: 1M balance updates + 1M point transactions; writes bench/RESULTS-scale.md.
# It collects the static files itself (production settings need their manifest) and fails
# when a page does not answer 200. Small, as CI runs it:
# SCALE_ARGS="--rows 10000 --repeats 1 --results /tmp/scale.md".
bench-scale: install
	$(PY) bench/scale.py $(SCALE_ARGS)

# Bulk corrections benchmark: preview and apply an N-row CSV (default 100,000); writes
# bench/RESULTS-batches.md. Small: BATCHES_ARGS="--rows 2000 --results /tmp/batches.md".
bench-batches: install
	$(PY) bench/batches.py $(BATCHES_ARGS)

# Bank test: random money moves under SIGKILLed workers and a PostgreSQL restart.
BANK_SECONDS ?= 60
bank-test: install
	BANK_SECONDS=$(BANK_SECONDS) $(PY) bench/bank.py $(BANK_ARGS)

wrk:
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq wrk >/dev/null)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
