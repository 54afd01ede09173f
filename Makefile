PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench serve clean format

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mailer demo

# pytest-xdist processes: one per core; `make test TEST_WORKERS=0` runs the suite in one.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

check: $(STAMP)
	$(BIN)/ruff format --check mailer consent tests benchmarks tools
	$(BIN)/ruff check mailer consent tests benchmarks tools
	$(BIN)/mypy mailer consent tools
	$(BIN)/lint-imports
	$(BIN)/python tools/import_cycles.py

format: $(STAMP)
	$(BIN)/ruff format mailer consent tests benchmarks tools
	$(BIN)/ruff check --fix mailer consent tests benchmarks tools

bench: $(STAMP)
	$(BIN)/python -m benchmarks

serve: $(STAMP)
	$(BIN)/mailer serve --dev

clean:
	rm -rf $(VENV) demo mailer.db *.egg-info
