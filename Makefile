# Two entry points for a fresh machine: `make book` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test venv book lab clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"  # the test extra includes book and sweep
	touch $(STAMP)

# the tests in TEST_WORKERS processes, a test file to each (module fixtures such as the quick book build run once)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

book: $(STAMP)
	$(BIN)/python tools/build_book.py

# The live explorer in JupyterLab, on a scratch copy (_build/lab/explorer.ipynb) so autosave never
# changes the committed notebook. `make lab LAB_ARGS=--no-browser` on a server (prints the URL);
# LAB_ARGS="--fresh" starts again from the committed notebook. --allow-root is added as root.
LAB_ARGS ?=
lab: $(STAMP)
	$(BIN)/pip install --quiet -e ".[explore]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dualenc)"
	$(BIN)/python tools/lab.py $(LAB_ARGS)

clean:
	rm -rf _build runs results data/generated
