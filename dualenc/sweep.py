"""Sweeps: named grids of configs, run in parallel worker processes or on a Dask cluster.

Only configs not yet finished in the run store are run. Each run is written atomically (see
`study.save_run`), so a sweep that is killed and started again loses no finished run and never
counts a half-written one.
"""
from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd
from tqdm.auto import tqdm

from .config import ConfigError, ExperimentConfig, config_hash, from_dict
from .study import clean_stale_staging, is_done, run_dir, runs_root, write_results

BIAS_LEVELS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
SEEDS = tuple(range(5))
# caption variant name -> config changes
CAPTION_VARIANTS = {
    "undescriptive": {"captions": "undescriptive"},
    "descriptive": {"captions": "descriptive"},
    "descriptive_share_0.5": {"captions": "descriptive", "descriptive_share": 0.5},
}


def _configs(family: str, base: ExperimentConfig, **axes) -> list:
    """Cartesian product of the axes (name -> list of change dicts or values) applied to base."""
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        changes = {}
        for name, value in zip(names, combo):
            changes.update(value if isinstance(value, dict) else {name: value})
        out.append(base.replace(name=family, **changes))
    return out


def default_grid(base: Optional[ExperimentConfig] = None, seeds: Iterable[int] = SEEDS,
                 bias_levels: Iterable[float] = BIAS_LEVELS) -> list:
    """The study's grid: caption modes over bias, other losses, the image-only baseline, variability."""
    base = base or ExperimentConfig()
    seeds, bias_levels = list(seeds), list(bias_levels)
    some_bias = [b for b in (0.0, 0.75, 0.95) if b in bias_levels] or bias_levels[:1]
    ends = [b for b in (0.0, 0.95) if b in bias_levels] or bias_levels[:1]
    grid = _configs("captions", base, bias=bias_levels, captions=list(CAPTION_VARIANTS.values()), seed=seeds)
    grid += _configs("losses", base, loss=["clip", "siglip"], bias=some_bias,
                     captions=["undescriptive", "descriptive"], seed=seeds)
    grid += _configs("image_only", base, loss=["image_only"], bias=bias_levels, seed=seeds)
    grid += _configs("variability", base, captions=[{"captions": "descriptive", "caption_templates": 4}],
                     bias=ends, seed=seeds)
    return grid


def ci_grid() -> list:
    """A tiny grid through the same code, for tests and CI: small images, few epochs, 2 seeds."""
    base = ExperimentConfig().replace(**{
        "image_size": 32, "n_train_per_group": 12, "n_val_per_group": 6, "n_test_per_group": 8,
        "epochs": 3, "batch_size": 16, "model.vision.width": 32, "model.text.width": 32,
        "model.embed_dim": 16})
    return default_grid(base, seeds=(0, 1), bias_levels=(0.0, 0.75, 0.95))


GRIDS = {"default": default_grid, "ci": ci_grid}


def get_grid(name: str) -> list:
    if name not in GRIDS:
        raise ConfigError(f"grid={name!r} is not known: expected one of {sorted(GRIDS)}")
    return GRIDS[name]()


def _run_one(config_dict: dict, root: str, threads: int) -> str:
    """Worker entry point (module-level so it pickles): train one config with `threads` threads."""
    import torch

    from .study import run_experiment

    torch.set_num_threads(threads)
    config = from_dict(config_dict)
    run_experiment(config, root=root, progress=False)
    return config_hash(config)


@dataclass
class SweepReport:
    total: int       # distinct configs in the grid
    skipped: int     # already finished before this sweep
    ran: int         # finished by this sweep
    seconds: float


def run_sweep(configs: list, root: Optional[str | Path] = None, jobs: int = 1,
              scheduler=None, progress: bool = True) -> SweepReport:
    """Run every config not yet finished. jobs=1 runs in this process (all torch threads); jobs>1
    uses that many worker processes with one torch thread each; `scheduler` (an address such as
    "tcp://host:8786", or a dask.distributed Client) sends the runs to a Dask cluster instead,
    whose workers must see the same run store."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} is not allowed: expected an integer >= 1")
    root = str(runs_root(root))
    unique = {config_hash(c): c for c in configs}
    clean_stale_staging(root)
    todo = [c for h, c in unique.items() if not is_done(run_dir(c, root))]
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress)
    try:
        if scheduler is not None:
            _run_dask(todo, root, scheduler, bar)
        elif jobs == 1:
            import torch
            for config in todo:
                _run_one(config.to_dict(), root, torch.get_num_threads())
                bar.update()
        else:
            _run_processes(todo, root, jobs, bar)
    finally:
        bar.close()
    return SweepReport(len(unique), len(unique) - len(todo), len(todo), time.perf_counter() - start)


def grid_results(configs: list, table_path: str | Path, root: Optional[str | Path] = None,
                 jobs: int = 1, progress: bool = False) -> tuple:
    """The grid's results table and a SweepReport.

    If `table_path` already holds a row for every config of the grid (a stored table, e.g. the
    committed results of the full grid), it is read and nothing is trained. Otherwise the runs
    missing from the run store are run, and the grid's rows are collected into `table_path`
    (CSV, plus Parquet beside it).
    """
    wanted = {config_hash(c) for c in configs}
    table_path = Path(table_path)
    if table_path.is_file():
        stored = pd.read_csv(table_path)
        if "run" in stored and wanted <= set(stored["run"]):
            return stored[stored["run"].isin(wanted)].reset_index(drop=True), \
                SweepReport(len(wanted), len(wanted), 0, 0.0)
    report = run_sweep(configs, root=root, jobs=jobs, progress=progress)
    table, _ = write_results(root, table_path, runs=wanted)
    return table, report


def _run_processes(todo: list, root: str, jobs: int, bar) -> None:
    # spawn, not fork: forking a process that already started torch's thread pool can deadlock
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_one, c.to_dict(), root, 1) for c in todo]
        for future in as_completed(futures):
            future.result()
            bar.update()


def _run_dask(todo: list, root: str, scheduler, bar) -> None:
    from distributed import Client, as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(_run_one, [c.to_dict() for c in todo], root=root, threads=1, pure=False)
        for future in dask_completed(futures):
            future.result()
            bar.update()
    finally:
        if client is not scheduler:
            client.close()
