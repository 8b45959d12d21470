"""Sweeps: named grids of configs, run in parallel worker processes or on a Dask cluster.

The configs of a grid that share the model and its optimisation (the seeds of a setting, and
other bias levels and captions: `train.group_key`) are trained together as one batch of
independent models (`train.train_group`), at most `max_models` per batch, in grid order; the
batches are spread over worker processes. Only configs not yet finished in the run store are
run. Each run is written atomically (see `study.save_run`), so a sweep that is killed and started
again loses no finished run, never counts a half-written one, and trains only what is missing.
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
from .study import ORIGINAL_BIAS, clean_stale_staging, run_dir, run_status, runs_root, write_results

STRONG_BIAS = 0.9  # the strong level the verdicts read beside the original's ORIGINAL_BIAS
# Dense where worst-group accuracy falls (between 0.5 and 1).
BIAS_LEVELS = (0.0, 0.25, 0.5, 0.6, 0.7, ORIGINAL_BIAS, 0.8, 0.85, STRONG_BIAS, 0.95, 1.0)
FEW_BIAS_LEVELS = (0.0, 0.5, ORIGINAL_BIAS, STRONG_BIAS, 1.0)  # the axes that cannot afford every level
LOSS_BIAS_LEVELS = FEW_BIAS_LEVELS                 # CLIP and SigLIP
SIZE_BIAS_LEVELS = FEW_BIAS_LEVELS                 # the data-size axis
DATA_SIZES = (192, 768)                            # training images per group beside the original's 48
VARIABILITY_BIAS_LEVELS = (0.0, ORIGINAL_BIAS)
SEEDS = tuple(range(5))
MAX_MODELS = 5                                     # models per batch: on the CPU K = 5 is as fast as 10 (benchmarks/README.md)
# caption variant name -> config changes
CAPTION_VARIANT_CHANGES = {
    "undescriptive": {"captions": "undescriptive"},
    "descriptive": {"captions": "descriptive"},
    "descriptive_share_0.5": {"captions": "descriptive", "descriptive_share": 0.5},
    "background": {"captions": "background"},
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
                 bias_levels: Iterable[float] = BIAS_LEVELS, loss_levels: Iterable[float] = LOSS_BIAS_LEVELS,
                 size_levels: Iterable[float] = SIZE_BIAS_LEVELS, data_sizes: Iterable[int] = DATA_SIZES,
                 variability_levels: Iterable[float] = VARIABILITY_BIAS_LEVELS) -> list:
    """The study's grid: caption modes (with the background-only control) over bias, the image-only
    baseline, CLIP and SigLIP, caption variability, and a data-size axis."""
    base = base or ExperimentConfig()
    seeds = list(seeds)
    grid = _configs("captions", base, bias=list(bias_levels), captions=list(CAPTION_VARIANT_CHANGES.values()),
                    seed=seeds)
    grid += _configs("image_only", base, loss=["image_only"], bias=list(bias_levels), seed=seeds)
    grid += _configs("losses", base, loss=["clip", "siglip"], bias=list(loss_levels),
                     captions=["undescriptive", "descriptive"], seed=seeds)
    grid += _configs("variability", base, captions=[{"captions": "descriptive", "caption_templates": 4}],
                     bias=list(variability_levels), seed=seeds)
    grid += _configs("data_size", base, n_train_per_group=list(data_sizes), bias=list(size_levels),
                     captions=["undescriptive", "descriptive"], seed=seeds)
    return sorted(grid, key=_priority)


# The order a sweep runs a grid in, so that a sweep stopped early holds whole comparisons: the core
# arms (the two caption modes, the background-only control, the image-only baseline) at the key
# bias levels first; then the data-size axis at the original's bias; then the bias curve of the
# question's arms (two caption modes, image-only) through the levels between; then everything else.
KEY_LEVELS = (ORIGINAL_BIAS, 0.0, STRONG_BIAS)
NEXT_LEVELS = (0.5, 1.0)
LEVEL_PRIORITY = (*KEY_LEVELS, *NEXT_LEVELS, 0.95, 0.85, 0.8, 0.7, 0.6, 0.25)


FAMILY_PRIORITY = ("losses", "data_size", "captions", "variability")   # after the core arms


def _stage(config: ExperimentConfig, level: int) -> int:
    full_captions = config.name in ("captions", "image_only") and config.data.descriptive_share == 1.0
    curve_arm = config.name == "image_only" or (full_captions and config.data.captions != "background")
    if full_captions and level < len(KEY_LEVELS):
        return 0
    if config.name == "data_size" and level == 0:
        return 1
    return 2 if curve_arm else 3


def _priority(config: ExperimentConfig) -> tuple:
    bias = config.data.bias
    level = min(range(len(LEVEL_PRIORITY)), key=lambda i: abs(LEVEL_PRIORITY[i] - bias))
    tier = 0 if level < len(KEY_LEVELS) else 1 if level < len(KEY_LEVELS) + len(NEXT_LEVELS) else 2
    family = FAMILY_PRIORITY.index(config.name) if config.name in FAMILY_PRIORITY else len(FAMILY_PRIORITY)
    # the two arms of a comparison (same loss and data size, both caption modes) next to each other
    return (_stage(config, level), tier, level, family, config.train.loss, config.data.n_train_per_group,
            config.data.captions, config.data.descriptive_share, config.train.seed)


def ci_grid() -> list:
    """A tiny grid through the same code, for tests and CI: small images, few steps, 2 seeds."""
    base = ExperimentConfig().replace(**{
        "image_size": 32, "n_train_per_group": 12, "n_val_per_group": 6, "n_test_per_group": 8,
        "steps": 6, "batch_size": 16, "model.vision.width": 32, "model.vision.patch_size": 16,
        "model.text.width": 32, "model.embed_dim": 16})
    return default_grid(base, seeds=(0, 1), bias_levels=(0.0, ORIGINAL_BIAS, 0.95), loss_levels=(0.0, ORIGINAL_BIAS),
                        size_levels=(0.0, ORIGINAL_BIAS), data_sizes=(24,), variability_levels=(0.0,))


GRIDS = {"default": default_grid, "ci": ci_grid}


def get_grid(name: str) -> list:
    if name not in GRIDS:
        raise ConfigError(f"grid={name!r} is not known: expected one of {sorted(GRIDS)}")
    return GRIDS[name]()


def group_configs(configs: list, max_models: int = MAX_MODELS) -> list:
    """Batches of configs that can train together (the same model and optimisation; seeds, bias and
    captions may differ: `train.group_key`), at most `max_models` each, in grid order within a
    key, keys in the order they first appear; user-image configs alone."""
    from .train import group_key

    if not isinstance(max_models, int) or max_models < 1:
        raise ConfigError(f"max_models={max_models!r} is not allowed: expected an integer >= 1")
    settings: dict = {}
    for config in configs:
        key = config_hash(config) if config.data.data_dir else group_key(config)
        settings.setdefault(key, []).append(config)
    return [members[i:i + max_models] for members in settings.values()
            for i in range(0, len(members), max_models)]


def _run_group(config_dicts: list, root: str, threads: int) -> list:
    """Worker entry point (module-level so it pickles): train one batch of configs with `threads`
    threads; returns the run ids."""
    import torch

    from .study import run_group

    torch.set_num_threads(threads)
    configs = [from_dict(d) for d in config_dicts]
    run_group(configs, root=root, progress=False)
    return [config_hash(c) for c in configs]


@dataclass
class SweepReport:
    total: int       # distinct configs in the grid
    skipped: int     # already finished before this sweep
    ran: int         # finished by this sweep
    seconds: float
    missing: int = 0  # configs of the grid with no result (a stored table read as it is)
    stale: int = 0    # finished by other code (another code digest) and kept as they are


def run_sweep(configs: list, root: Optional[str | Path] = None, jobs: int = 1,
              scheduler=None, progress: bool = True, max_models: int = MAX_MODELS,
              done: Iterable[str] = (), retrain_stale: bool = False) -> SweepReport:
    """Run every config not yet finished, the seeds of a setting batched together (at most
    `max_models` models per batch). jobs=1 runs in this process (all torch threads); jobs>1 uses
    that many worker processes with one torch thread each; `scheduler` (an address such as
    "tcp://host:8786", or a dask.distributed Client) sends the batches to a Dask cluster instead,
    whose workers must see the same run store. `done`: run ids to count as finished although the
    store lacks them (the rows of a stored results table: a sweep continued on another machine).
    Runs stored by other code (`study.run_status` "stale") are kept and counted, or trained again
    with `retrain_stale`; `dualenc collect` refuses to mix them with today's runs in one table."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} is not allowed: expected an integer >= 1")
    root = str(runs_root(root))
    unique = {config_hash(c): c for c in configs}
    clean_stale_staging(root)
    done = set(done)
    status = {h: run_status(run_dir(c, root)) for h, c in unique.items() if h not in done}
    stale = [h for h, s in status.items() if s == "stale"]
    todo = [unique[h] for h, s in status.items() if s == "missing" or (s == "stale" and retrain_stale)]
    groups = group_configs(todo, max_models)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress)
    try:
        if scheduler is not None:
            _run_dask(groups, root, scheduler, bar)
        elif jobs == 1:
            import torch
            for group in groups:
                _run_group([c.to_dict() for c in group], root, torch.get_num_threads())
                bar.update(len(group))
        else:
            _run_processes(groups, root, jobs, bar)
    finally:
        bar.close()
    return SweepReport(len(unique), len(unique) - len(todo), len(todo), time.perf_counter() - start,
                       stale=0 if retrain_stale else len(stale))


def grid_results(configs: list, table_path: str | Path, root: Optional[str | Path] = None,
                 jobs: int = 1, progress: bool = False, train_missing: bool = True) -> tuple:
    """The grid's results table and a SweepReport.

    If `table_path` already holds a row for every config of the grid (a stored table, e.g. the
    committed results of the full grid), it is read and nothing is trained; with
    `train_missing=False` a stored table that covers only part of the grid is read as it is too
    (the report counts the missing configs). Otherwise the runs missing from the run store are
    run, and the grid's rows are collected into `table_path` (CSV, plus Parquet beside it).
    """
    wanted = {config_hash(c) for c in configs}
    table_path = Path(table_path)
    if table_path.is_file():
        stored = pd.read_csv(table_path)
        found = wanted & set(stored["run"]) if "run" in stored else set()
        if found == wanted or (found and not train_missing):
            return stored[stored["run"].isin(wanted)].reset_index(drop=True), \
                SweepReport(len(wanted), len(found), 0, 0.0, missing=len(wanted - found))
    # the table it writes is one code's: stale runs of the grid are trained again
    report = run_sweep(configs, root=root, jobs=jobs, progress=progress, retrain_stale=True)
    table, _ = write_results(root, table_path, runs=wanted)
    return table, report


def _run_processes(groups: list, root: str, jobs: int, bar) -> None:
    # spawn, not fork: forking a process that already started torch's thread pool can deadlock
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_group, [c.to_dict() for c in g], root, 1) for g in groups]
        for future in as_completed(futures):
            bar.update(len(future.result()))


def _run_dask(groups: list, root: str, scheduler, bar) -> None:
    from distributed import Client, as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(_run_group, [[c.to_dict() for c in g] for g in groups], root=root, threads=1,
                             pure=False)
        for future in dask_completed(futures):
            bar.update(len(future.result()))
    finally:
        if client is not scheduler:
            client.close()
