"""The experiment pages' runs, committed without their weights in results/book_runs/, so that a
fresh clone's `make book` reads them instead of training 20 models (most of a fresh build's time).

They are the grid's own runs: the pages' settings are the grid's "captions" block at bias 0 and
0.75, every measure equals results/default.csv's row of the same config hash, and their code digest
trains like today's (tests/test_committed_results.py). A committed run made by other code is
"stale" in the run store and trained again, as any stale run is; `python tools/build_book.py
--commit-runs` then writes the new ones here."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Optional

from ..config import ExperimentConfig, config_hash
from ..runs.study import COPIED, MODEL, is_done, run_status, runs_root

FOLDER = Path("results") / "book_runs"
SKIPPED = (MODEL, COPIED)  # the weights (the pages do not read them; 570 kB a run) and the copy marker


def seed_store(configs: Iterable[ExperimentConfig], root: Optional[str | Path], committed: Path) -> int:
    """Copy into the run store every run of `configs` in `committed` (the project's FOLDER) that the
    store has not finished; returns how many. A run is copied whole into a staging folder, then
    renamed into place."""
    if not committed.is_dir():
        return 0
    store = runs_root(root)
    seeded = 0
    for run in sorted({config_hash(c) for c in configs}):
        source, target = committed / run, store / run
        if not is_done(source) or is_done(target):
            continue
        store.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=store, prefix=f".{run}.tmp-{os.getpid()}-"))
        try:
            for file in source.iterdir():
                shutil.copy2(file, staging / file.name)
            (staging / COPIED).write_text(f"{FOLDER.as_posix()}/{run}\n")
            if target.exists():  # an unfinished leftover
                shutil.rmtree(target)
            os.replace(staging, target)
            seeded += 1
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return seeded


def commit_runs(configs: Iterable[ExperimentConfig], root: Optional[str | Path], committed: Path) -> int:
    """Write the finished runs of `configs` from the run store to `committed` (without their
    weights), replacing what was there; returns how many. Every run must be finished by code that
    trains like today's (`study.run_status` "done", or "copied" from here)."""
    store = runs_root(root)
    runs = sorted({config_hash(c) for c in configs})
    unfinished = [run for run in runs if run_status(store / run) not in ("done", "copied")]
    if unfinished:
        raise FileNotFoundError(f"{len(unfinished)} of the {len(runs)} runs are not finished by today's "
                                f"code in {store}: {', '.join(unfinished)}; build the book first")
    committed.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=committed.parent, prefix=f".{committed.name}.tmp-"))
    try:
        for run in runs:
            (staging / run).mkdir()
            for file in sorted((store / run).iterdir()):
                if file.name not in SKIPPED and file.is_file():
                    shutil.copy2(file, staging / run / file.name)
        if committed.exists():
            shutil.rmtree(committed)
        os.replace(staging, committed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(runs)


def was_copied(path: str | Path) -> bool:
    """Whether the run at `path` was copied from results/book_runs/ rather than trained in its store."""
    return (Path(path) / COPIED).is_file()


def copied_sentence(records: list) -> Optional[str]:
    """What a page says about its runs' agreement with the committed table when they are the
    committed runs themselves (None when they were trained or loaded as trained)."""
    copied = sum(was_copied(r.path) for r in records)
    if not copied:
        return None
    which = "The runs above are" if copied == len(records) else f"{copied} of the {len(records)} runs above are"
    return (f"{which} the committed runs themselves, copied from {FOLDER.as_posix()}/ rather than trained "
            "again, so they agree with the table by construction. The tests train a committed setting "
            "again and compare it bit for bit (tests/test_committed_results.py).")
