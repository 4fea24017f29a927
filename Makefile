# The two commands of the README (`make demo`, `make test`) work on a fresh machine
# with Python 3.11+: uv is bootstrapped when missing and the locked environment synced.
UV := $(shell sh scripts/bootstrap-uv)
SYNC := $(UV) sync --locked --all-extras
ARGS ?=

.PHONY: help setup demo test lint format bench clean

help:  ## List the targets.
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## Install the locked environment into .venv.
	$(SYNC)

demo: setup  ## Run the guided tour on a fresh embedded home.
	$(UV) run steward demo $(ARGS)

test: setup  ## Run the test suite (PostgreSQL/S3 tests skip if the service is down, fail in CI).
	$(UV) run pytest $(ARGS)

lint: setup  ## Lint, format check, type check and layer contracts.
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks
	$(UV) run mypy
	$(UV) run lint-imports

format: setup  ## Apply ruff's fixes and formatting.
	$(UV) run ruff check --fix src tests benchmarks
	$(UV) run ruff format src tests benchmarks

bench: setup  ## Run the benchmarks (ARGS="audit --quick" to choose), print a table, write JSON.
	$(UV) run python -m benchmarks.run $(ARGS)

clean:  ## Remove caches and the local home.
	rm -rf .steward .pytest_cache .mypy_cache .ruff_cache .hypothesis
