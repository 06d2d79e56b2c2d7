# The README's two commands: `make dev` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test fuzz lint format bench install clean console-shots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/happ dev $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Schemathesis over every integration's OpenAPI document, longer than `make test` and with random seeds.
fuzz: $(STAMP)
	HAPP_FUZZ_SEED=random HAPP_FUZZ_EXAMPLES=$${HAPP_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The ratios, then the webhook load test, which appends its figures to bench/results.md.
# A missed target (exit 1) still lets the load test add its figures; either failing fails the whole.
bench: $(STAMP)
	status=0; $(BIN)/python -m bench || status=$$?; \
	HAPP_BENCH_RESULTS=bench/results.md $(BIN)/python -m pytest -q tests/e2e/test_webhook_load.py || status=$$?; \
	exit $$status

# A screenshot of each console page (docs/console/*.png, linked from the README), from a stack
# playing a campaign in the simulator; Chromium comes from Debian's packages (installed when missing).
console-shots: $(STAMP)
	$(BIN)/python -m tests.console.shots

clean:
	rm -rf $(VENV) .happ .pytest_cache .mypy_cache .ruff_cache
