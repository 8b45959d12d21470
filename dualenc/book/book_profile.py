"""The book's quick profile: a smoke-test build (`DUALENC_BOOK_PROFILE=quick make book`).

`tools/build_book.py` exports the profile in $DUALENC_BOOK_PROFILE; in a quick build every page
trains at QUICK_SIZES with QUICK_SEEDS seeds and the sweep page reads the tiny "ci" grid. Outside a
quick build the functions below return what they are given.
"""
from __future__ import annotations

import os

BOOK_PROFILE_ENV = "DUALENC_BOOK_PROFILE"
QUICK_SIZES = {"steps": 30, "n_val_per_group": 12, "n_test_per_group": 24}
QUICK_SEEDS = 2
QUICK_GRID = "ci"


def in_book_build() -> bool:
    """Whether this kernel runs for a book build (any profile)."""
    return bool(os.environ.get(BOOK_PROFILE_ENV, ""))


def is_quick() -> bool:
    """Whether this kernel runs for a quick book build."""
    return os.environ.get(BOOK_PROFILE_ENV, "") == "quick"


def sizes(page_sizes: dict) -> dict:
    """A page's sizes (steps, n_*_per_group, ...) with QUICK_SIZES laid over them in a quick build."""
    return {**page_sizes, **QUICK_SIZES} if is_quick() else page_sizes


def seeds(page_seeds: int) -> int:
    """The number of seeds a page trains: its own, or QUICK_SEEDS in a quick build."""
    return QUICK_SEEDS if is_quick() else page_seeds


def grid(page_grid: str) -> str:
    """The sweep grid a page reads: its own, or QUICK_GRID in a quick build."""
    return QUICK_GRID if is_quick() else page_grid
