# Everything a newcomer needs: `make run` and `make test` create the virtualenv themselves.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install system-deps run test lint format openapi bench lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## Create .venv and install the locked dependencies

run: install ## Serve on http://127.0.0.1:8000 (embedded PostgreSQL, migrations, demo data)
	$(BIN)/bank serve --demo

system-deps: ## Install Debian's chromium and softhsm2 for the tests (root or sudo), or say what to install
	bash scripts/test-system-deps.sh

test: system-deps install ## Run the whole test suite (BANK_TEST_DATABASE_URL or an embedded PostgreSQL)
	$(BIN)/pytest

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: install ## Regenerate openapi/openapi.json
	$(BIN)/bank openapi export

bench: install ## Run the benchmarks (quick mode), one JSON line each
	@for script in benchmarks/*.py; do \
		case $$script in */__init__.py|*/support.py) continue;; esac; \
		$(BIN)/python $$script --quick || exit 1; \
	done

lock: install ## Re-resolve requirements.lock from pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

clean: ## Remove the virtualenv and caches (keeps .bank-data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
