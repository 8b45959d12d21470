"""Sweeps: named grids of configs, run in parallel worker processes or on a Dask cluster.

The configs of a grid that share the model and its optimisation (the seeds of a setting, and
other bias levels and captions: `train.group_key`) are trained together as one batch of
independent models (`train.train_group`), at most `max_models` per batch, in grid order; the
batches are spread over worker processes. Only configs not yet finished in the run store are
run. Each run is written atomically (see `study.save_run`), so a sweep that is killed and started
again loses no finished run, never counts a half-written one, and trains only what is missing.
"""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd
from tqdm.auto import tqdm

from ..config import ConfigError, ExperimentConfig, config_hash, from_dict
from .. import design
from ..design import LEVEL_SETS, ORIGINAL_BIAS, SEEDS, Block
from .study import clean_stale_staging, run_dir, run_status, runs_root, write_results

MAX_MODELS = 5                                     # models per batch: on the CPU K = 5 is as fast as 10 (benchmarks/README.md)


def block_configs(block: Block, base: ExperimentConfig, seeds: Iterable[int], levels: Iterable[float],
                  sizes: Iterable[Optional[int]] = (None,)) -> list:
    """A block's configs: each of its arms at each level (and size), each seed; named by the block."""
    return [base.replace(name=block.family, **design.ARMS[arm].changes, bias=float(bias), seed=seed,
                         **({} if n is None else {"n_train_per_group": n}))
            for arm in block.arms for bias in levels for n in sizes for seed in seeds]


def default_grid(base: Optional[ExperimentConfig] = None, seeds: Iterable[int] = SEEDS,
                 level_sets: Optional[dict] = None, data_sizes: Optional[Iterable[int]] = None) -> list:
    """The study's grid (`design.BLOCKS`, read when called): caption modes (with the background-only control) over
    bias, the image-only baseline, CLIP and SigLIP, caption variability, and a data-size axis, in
    the order a sweep runs it (`run_order`). `level_sets` and `data_sizes` replace the design's."""
    base = base or ExperimentConfig()
    level_sets = {**LEVEL_SETS, **(level_sets or {})}
    grid = []
    for block in design.BLOCKS:
        sizes = (tuple(data_sizes) if data_sizes is not None else block.sizes) if block.sizes else (None,)
        grid += block_configs(block, base, list(seeds), level_sets[block.levels], sizes)
    return sorted(grid, key=run_order)


# The order a sweep runs a grid in, so that a sweep stopped early holds whole comparisons: the core
# arms at the key levels first; then the early blocks (the data-size axis) at the original's bias;
# then the bias curve of the curve arms through the levels between; then everything else. Within
# one stage: by level tier and level (`design.LEVELS`, undeclared levels last), block priority,
# and the arms of a comparison next to each other.
def run_order(config: ExperimentConfig) -> tuple:
    block = next(b for b in design.BLOCKS if b.family == config.name)
    arm = next(design.ARMS[a] for a in block.arms if design.ARMS[a].matches(
        config.train.loss, config.data.captions, config.data.descriptive_share, config.data.caption_templates))
    declared = design.level(config.data.bias)
    tier = declared.tier if declared else len(design.LEVELS)
    index = design.LEVELS.index(declared) if declared else len(design.LEVELS)
    key_level = tier == 0
    if block.core and arm.core and key_level:
        stage = 0
    elif block.early and declared is not None and declared.bias == ORIGINAL_BIAS:
        stage = 1
    else:
        stage = 2 if block.core and arm.curve else 3
    return (stage, tier, index, config.data.bias, block.priority, config.train.loss, config.data.n_train_per_group,
            config.data.captions, config.data.descriptive_share, config.train.seed)


def ci_grid() -> list:
    """A tiny grid through the same code, for tests and CI: small images, few steps, 2 seeds."""
    base = ExperimentConfig().replace(**{
        "image_size": 32, "n_train_per_group": 12, "n_val_per_group": 6, "n_test_per_group": 8,
        "steps": 6, "batch_size": 16, "model.vision.width": 32, "model.vision.patch_size": 16,
        "model.text.width": 32, "model.embed_dim": 16})
    return default_grid(base, seeds=(0, 1), level_sets={"all": (0.0, ORIGINAL_BIAS, 0.95),
                                                        "few": (0.0, ORIGINAL_BIAS), "variability": (0.0,)},
                        data_sizes=(24,))


GRIDS = {"default": default_grid, "ci": ci_grid}


def get_grid(name: str) -> list:
    if name not in GRIDS:
        raise ConfigError(f"grid={name!r} is not known: expected one of {sorted(GRIDS)}")
    return GRIDS[name]()


def group_configs(configs: list, max_models: int = MAX_MODELS) -> list:
    """Batches of configs that can train together (the same model and optimisation; seeds, bias and
    captions may differ: `train.group_key`), at most `max_models` each, in grid order within a
    key; the batches in the order of their first config, so that a sweep runs the grid's order
    across keys too (the image-only baseline and CLIP between the pairwise loss's batches, not after
    them); user-image configs alone."""
    from ..model.train import group_key

    if not isinstance(max_models, int) or max_models < 1:
        raise ConfigError(f"max_models={max_models!r} is not allowed: expected an integer >= 1")
    settings: dict = {}
    for index, config in enumerate(configs):
        key = config_hash(config) if config.data.data_dir else group_key(config)
        settings.setdefault(key, []).append((index, config))
    batches = [members[i:i + max_models] for members in settings.values()
               for i in range(0, len(members), max_models)]
    return [[config for _, config in batch] for batch in sorted(batches, key=lambda batch: batch[0][0])]


def _run_group(config_dicts: list, root: str, threads: int) -> list:
    """Worker entry point (module-level so it pickles): train one batch of configs with `threads`
    threads; returns the run ids."""
    import torch

    from .study import run_group

    torch.set_num_threads(threads)
    configs = [from_dict(d) for d in config_dicts]
    run_group(configs, root=root, progress=False, accept_copies=False)  # the sweep asked for these
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
              done: Iterable[str] = (), retrain_stale: bool = False, accept_copies: bool = False) -> SweepReport:
    """Run every config not yet finished, the seeds of a setting batched together (at most
    `max_models` models per batch). jobs=1 runs in this process (all torch threads); jobs>1 uses
    that many worker processes with one torch thread each; `scheduler` (an address such as
    "tcp://host:8786", or a dask.distributed Client) sends the batches to a Dask cluster instead,
    whose workers must see the same run store. `done`: run ids to count as finished although the
    store lacks them (the rows of a stored results table: a sweep continued on another machine).
    Runs stored by other code (`study.run_status` "stale") are kept and counted, or trained again
    with `retrain_stale`; `dualenc collect` refuses to mix them with today's runs in one table.
    Runs copied without their weights from the book's results/book_runs/ ("copied") are trained
    again, so that a sweep's store holds every run's weights, unless `accept_copies`."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} is not allowed: expected an integer >= 1")
    root = str(runs_root(root))
    unique = {config_hash(c): c for c in configs}
    clean_stale_staging(root)
    done = set(done)
    status = {h: run_status(run_dir(c, root)) for h, c in unique.items() if h not in done}
    stale = [h for h, s in status.items() if s == "stale"]
    todo = [unique[h] for h, s in status.items() if s == "missing" or (s == "stale" and retrain_stale)
            or (s == "copied" and not accept_copies)]
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
