"""Learning curves: the curve arms at the verdict's levels, each seed trained to every budget of its
level in `design.CURVE_BUDGETS` (each a whole schedule), measured on the test set; results/curves.csv.
An arm still rising on validation at bias 0 (its last doubling gained more than the calibration's
tolerance) is trained on there, a doubling at a time, up to `design.CURVE_MAX_STEPS`
(`plateau_extensions`), so that its own converged budget can be read.

A curve run is the study's config with another `steps`, so its budget-1000 runs are the grid's own
runs (the same config hash): those already in the committed results table are read from it, not
trained again, except at bias 0, where the curves also need the validation accuracy that picks an
arm's own converged budget (`analysis.curves`) and the results table does not hold. Every row has
the results table's columns; rows trained here add `val_average_acc` and `val_worst_group_acc`.

`dualenc curves --runs DIR --jobs 2` trains what is missing and writes the table.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from ..config import ExperimentConfig, config_hash
from ..design import ARMS, CURVE_ARMS, CURVE_BUDGETS, CURVE_MAX_STEPS, SEEDS
from .calibration import TOLERANCE
from .study import DONE, collect_row, is_done, load_model, load_run, run_dir, runs_root, write_table
from .sweep import run_sweep

CURVE_FAMILY = "captions"        # the grid block the curve arms' runs are named by


def curve_configs(base: Optional[ExperimentConfig] = None, budgets: Optional[dict] = None,
                  seeds: Iterable[int] = SEEDS) -> list:
    """Every curve config, in the order to train them: the study's budget at bias 0 (whose
    validation accuracy the grid's table lacks) first, then each larger budget at every level.
    `budgets`: bias level -> budgets (default `design.CURVE_BUDGETS`)."""
    base = base or ExperimentConfig()
    budgets = CURVE_BUDGETS if budgets is None else budgets
    order = sorted({(int(steps), float(bias)) for bias, steps_of in budgets.items() for steps in steps_of},
                   key=lambda pair: (pair[0], pair[1] != 0.0, pair[1]))
    return [_curve_config(base, arm, bias, seed, steps) for steps, bias in order for arm in CURVE_ARMS for seed in seeds]


def from_grid(configs: list, grid_table: Optional[pd.DataFrame], study_steps: int) -> set:
    """Run ids of `configs` read from the grid's table: at the grid's budget, bias above 0."""
    if grid_table is None or "run" not in grid_table:
        return set()
    stored = set(grid_table["run"])
    return {config_hash(c) for c in configs
            if c.train.steps == study_steps and c.data.bias > 0 and config_hash(c) in stored}


def validation_row(path: Path) -> dict:
    """Validation accuracy (headline prompts) of a stored run's model, from its weights (computed once
    per finished run in a process: the plateau rule and the table both ask for it)."""
    return dict(_validation_row(str(path), (Path(path) / DONE).stat().st_mtime_ns))


@functools.lru_cache(maxsize=None)
def _validation_row(path: str, finished_at: int) -> dict:
    from ..data.datasets import build_dataset
    from .evaluate import RunOutputs
    from .metric_registry import compute_metrics

    config = load_run(path).config
    model, tokenizer = load_model(path)
    outputs = RunOutputs(config, build_dataset(config.resolved_data()), model, tokenizer)
    return compute_metrics(outputs, stored_in="calibration")


def _curve_config(base: ExperimentConfig, arm: str, bias: float, seed: int, steps: int) -> ExperimentConfig:
    return base.replace(name=CURVE_FAMILY, **ARMS[arm].changes, bias=bias, seed=seed, steps=steps)


def plateau_extensions(root: Optional[str | Path], base: Optional[ExperimentConfig] = None,
                       budgets: Optional[dict] = None, seeds: Iterable[int] = SEEDS,
                       max_steps: int = CURVE_MAX_STEPS, tolerance: float = TOLERANCE) -> list:
    """The bias-0 configs past the design's budgets that the plateau rule asks for, trained or not: for
    each curve arm, every doubling (up to `max_steps`) whose previous doubling moved the arm's mean
    validation accuracy by more than `tolerance`. A budget counts once every seed has finished it."""
    base = base or ExperimentConfig()
    budgets = CURVE_BUDGETS if budgets is None else budgets
    seeds = tuple(seeds)
    designed = len(budgets[0.0])
    ladder = list(budgets[0.0])
    while ladder[-1] * 2 <= max_steps:
        ladder.append(ladder[-1] * 2)
    extensions = []
    for arm in CURVE_ARMS:
        means = []
        for index, steps in enumerate(ladder):
            configs = [_curve_config(base, arm, 0.0, seed, steps) for seed in seeds]
            if index >= designed:
                if len(means) < 2 or abs(means[-1] - means[-2]) <= tolerance:
                    break
                extensions += configs
            paths = [run_dir(c, root) for c in configs]
            if not all(is_done(p) for p in paths):
                break
            means.append(sum(validation_row(p)["val_average_acc"] for p in paths) / len(paths))
    return extensions


def collect_curves(root: Optional[str | Path], configs: list, grid_table: Optional[pd.DataFrame],
                   study_steps: int) -> pd.DataFrame:
    """The curve table: the store's runs of `configs` with their validation accuracy, and the
    grid table's rows for the rest (`from_grid`)."""
    wanted = {config_hash(c) for c in configs}
    read = from_grid(configs, grid_table, study_steps)
    rows = []
    for path in sorted(runs_root(root).glob("*")):
        if path.name in wanted and path.name not in read and is_done(path):
            rows.append({**collect_row(path), **validation_row(path)})
    table = pd.DataFrame(rows)
    taken = set(table["run"]) if len(table) else set()
    if grid_table is not None and "run" in grid_table:
        rest = grid_table[grid_table["run"].isin(wanted - taken)]
        table = pd.concat([table, rest], ignore_index=True) if len(rest) else table
    return table.sort_values(["arm", "bias", "steps", "seed"]).reset_index(drop=True)


def run_curves(root: Optional[str | Path] = None, out: str | Path = "results/curves.csv",
               grid_table: str | Path = "results/default.csv", jobs: int = 1, progress: bool = True,
               base: Optional[ExperimentConfig] = None, budgets: Optional[dict] = None,
               seeds: Iterable[int] = SEEDS, max_steps: int = CURVE_MAX_STEPS,
               tolerance: float = TOLERANCE) -> pd.DataFrame:
    """Train the curve runs missing from the store (and the grid's table), then the bias-0 extensions
    of the arms not yet on a plateau (`plateau_extensions`) until there are none, and write the table.
    The longest runs go first, so that two workers finish together."""
    base = base or ExperimentConfig()
    seeds = tuple(seeds)
    configs = curve_configs(base, budgets, seeds)
    grid = pd.read_csv(grid_table) if grid_table and Path(grid_table).is_file() else None
    read = from_grid(configs, grid, base.train.steps)
    extended: dict = {}
    while True:
        extended.update((config_hash(c), c) for c in plateau_extensions(root, base, budgets, seeds, max_steps, tolerance))
        todo = sorted(configs + list(extended.values()), key=lambda c: -c.train.steps)
        if run_sweep(todo, root=root, jobs=jobs, progress=progress, done=read).ran == 0:
            break
    table = collect_curves(root, configs + list(extended.values()), grid, base.train.steps)
    write_table(table, out)
    return table
