# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: run test lint install clean bench reliability

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "schoolsync needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/schoolsync run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# two test processes: most e2e time is waiting on real processes, so the suite takes about half
# as long; the heavy reliability scenarios share one group and run one after another
test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

# the reliability suite at the issue's full sizes (10,000 orders, 10 kills, 2 min outage): ~20 min
reliability: $(STAMP)
	SCHOOLSYNC_RELIABILITY_FULL=1 $(BIN)/pytest -m reliability --timeout 3600 -s

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
