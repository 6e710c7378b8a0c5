# certmgr: `make run` installs and starts everything on embedded defaults; `make test` runs
# every test. Both create the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-postgres bench lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	@echo
	@echo "certmgr back office: http://$(HOST):$(PORT)/  (log in with one of the logins above)"
	@echo
	PY=$(PY) HOST=$(HOST) PORT=$(PORT) scripts/run

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The whole suite again on a throwaway PostgreSQL server (needs Debian's postgresql).
test-postgres: install
	scripts/with-postgres $(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/scale.py
	$(PY) bench/edge.py
	$(PY) bench/expiry.py
	scripts/with-postgres $(PY) bench/expiry.py
	$(PY) bench/issuance.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
