import importlib.util

import pytest
import torch

from dualenc.config import ExperimentConfig

torch.set_num_threads(1)

# What the tests import beyond the core dependencies (module -> pip requirement), all installed by
# `pip install -e '.[test]'`. A missing one stops the run with its name instead of skipping tests;
# tests/test_packaging.py checks that the `test` extra provides every one.
TEST_MODULES = {
    "nbformat": "nbformat", "papermill": "papermill", "ipykernel": "ipykernel", "myst_nb": "myst-nb",
    "ipywidgets": "ipywidgets", "jupyter_book": "jupyter-book", "yaml": "pyyaml",
    "distributed": "dask[distributed]", "pyarrow": "pyarrow", "xdist": "pytest-xdist",
}


def pytest_configure(config):
    missing = [pip for module, pip in TEST_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise pytest.UsageError(f"the tests need {', '.join(missing)}, not installed here: "
                                "pip install -e '.[test]' (what `make test` does)")


def tiny_config(**changes) -> ExperimentConfig:
    """A debug-size experiment (DomainBed-style tiny dataset) that trains in a second or two. It keeps
    the patch stem, which learns in 240 steps at 32 px; tests of the default convolutional stem ask
    for it (tests/test_determinism.py, tests/test_step.py)."""
    base = ExperimentConfig(name="tiny").replace(**{
        "image_size": 32, "n_train_per_group": 48, "n_val_per_group": 12, "n_test_per_group": 16,
        "steps": 240, "batch_size": 32, "model.vision.patch_size": 8, "model.vision.width": 32,
        "model.vision.stem": "patch", "model.text.width": 32, "model.embed_dim": 16,
        "compile": False,  # compiled: tests/test_step.py
    })
    return base.replace(**changes) if changes else base


@pytest.fixture
def tiny():
    return tiny_config


# The two longest test files first: with `make test`'s --no-loadscope-reorder, pytest-xdist hands out
# files in this order, so its two workers start on one each, and the replication test's 7 minutes
# overlap every other file (by default it would hand out the files with the most tests first).
LONG_FILES = ("test_committed_results.py", "test_book_offline.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)
    items.sort(key=rank)
