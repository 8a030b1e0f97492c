# immunotox — the two commands of the quick start.
# Both create .venv if missing and install the project with its test extras.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The demo is a French centre: EU product information (IMMUNOTOX_JURISDICTION=EU; see
# docs/pathway.md). Override with `make demo JURISDICTION=US`.
JURISDICTION ?= EU
# The port to listen on (`make demo PORT=8017` when 8000 is taken).
PORT ?= 8000

demo: $(STAMP)
	IMMUNOTOX_JURISDICTION=$(JURISDICTION) $(BIN)/immunotox serve --demo --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
