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
	$(BIN)/pip install --quiet -e ".[test,book,sweep]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

book: $(STAMP)
	$(BIN)/python tools/build_book.py

lab: $(STAMP)
	$(BIN)/pip install --quiet "jupyterlab>=4"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dualenc)"
	$(BIN)/jupyter lab notebooks/explorer.ipynb

clean:
	rm -rf _build runs results data/generated
