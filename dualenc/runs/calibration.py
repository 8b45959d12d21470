"""Choosing the training budget and the model size on the balanced validation set at bias 0 only.

For each candidate (a model size, stem or schedule) and method (loss, caption mode) at bias 0,
several seeds are trained together at each step budget (each budget a full schedule), and zero-shot
accuracy is measured on the *validation* split — never on the test split, never at bias > 0. A
method has converged at a budget when its mean validation average accuracy reaches `AVERAGE_BAR` and
its worst-group accuracy `WORST_BAR`, and no larger budget raises the average by more than
`tolerance` (a plateau); the study uses the cheapest candidate whose every method has converged, at
the smallest such budget (`choose`). Calibration seeds are their own data draws, apart from the
study's seeds.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..config import ExperimentConfig
from ..data.datasets import build_dataset
from ..design import ARMS
from .evaluate import RunOutputs
from .metric_registry import compute_metrics
from ..model.train import train_group

CALIBRATION_SEEDS = (1000, 1001, 1002)       # data draws apart from the study's seeds 0, 1, 2, ...
BUDGETS = (500, 1000, 2000)
METHODS = {name: arm.changes for name, arm in ARMS.items() if arm.calibrated}   # the arms it checks, at bias 0
TOLERANCE = 0.01                              # a larger budget gaining less than this: a plateau
AVERAGE_BAR = 0.95                            # converged: mean validation average accuracy at least this
WORST_BAR = 0.90                              # ... and mean validation worst-group accuracy at least this
OLD_PROTOCOL = "patch embedding, cosine, lr 0.002 (before)"
CANDIDATES = {                                # name -> changes (patch 8, width 64, depth 2 for all)
    OLD_PROTOCOL: {"model.vision.stem": "patch", "schedule": "cosine", "lr": 2e-3},
    "conv stem, cosine, lr 0.002": {"model.vision.stem": "conv", "schedule": "cosine", "lr": 2e-3},
    "conv stem, warmup-stable-decay, lr 0.002": {"model.vision.stem": "conv", "schedule": "wsd", "lr": 2e-3},
    "conv stem, cosine, lr 0.0015": {"model.vision.stem": "conv", "schedule": "cosine", "lr": 1.5e-3},
    "conv stem, warmup-stable-decay, lr 0.0015": {"model.vision.stem": "conv", "schedule": "wsd", "lr": 1.5e-3},
}
# budgets of a candidate, when not BUDGETS: the first conv-stem trials stopped at 1000 steps (some
# CLIP runs with descriptive captions stayed at chance there: the lr 0.0015 candidates followed)
CANDIDATE_BUDGETS = {"conv stem, cosine, lr 0.002": (250, 500, 1000),
                     "conv stem, warmup-stable-decay, lr 0.002": (250, 500, 1000)}


def validation_accuracy(config: ExperimentConfig, dataset, result) -> dict:
    """Zero-shot (or classifier) accuracy on the validation split with the headline prompts,
    average and worst group: the registry's calibration metrics (`metric_registry`)."""
    return compute_metrics(RunOutputs.of(config, dataset, result), stored_in="calibration")


def run_calibration(base: Optional[ExperimentConfig] = None, candidates: dict = CANDIDATES,
                    methods: dict = METHODS, budgets: Optional[Iterable[int]] = None,
                    seeds: Iterable[int] = CALIBRATION_SEEDS, progress: bool = True) -> pd.DataFrame:
    """One row per (candidate, method, budget, seed): validation accuracy and training seconds.
    `budgets` None: each candidate's CANDIDATE_BUDGETS, or BUDGETS."""
    base = (base or ExperimentConfig()).replace(bias=0.0)
    seeds = list(seeds)
    rows = []
    combos = [(item, method, steps) for item in candidates.items() for method in methods.items()
              for steps in (budgets if budgets is not None else CANDIDATE_BUDGETS.get(item[0], BUDGETS))]
    for (cand, model_changes), (method, changes), steps in tqdm(combos, desc="calibration", disable=not progress):
        configs = [base.replace(**model_changes, **changes, steps=int(steps), seed=s) for s in seeds]
        datasets = [build_dataset(c.resolved_data()) for c in configs]
        start = time.perf_counter()
        results = train_group(configs, datasets, progress=False)
        seconds = time.perf_counter() - start
        for config, dataset, result in zip(configs, datasets, results):
            rows.append({"candidate": cand, "method": method, "steps": int(steps), "seed": config.train.seed,
                         "bias": config.data.bias,
                         "epochs": result.epochs, "group_seconds": seconds,
                         "final_loss": result.history[-1]["loss"],
                         **validation_accuracy(config, dataset, result)})
    return pd.DataFrame(rows)


def converged_budget(table: pd.DataFrame, metric: str = "val_average_acc", tolerance: float = TOLERANCE,
                     average_bar: float = AVERAGE_BAR, worst_bar: float = WORST_BAR) -> pd.DataFrame:
    """Per (candidate, method): the smallest budget whose seed means reach the bars (average and
    worst-group validation accuracy) and whose mean `metric` is within `tolerance` of every larger
    budget's, above or below (a plateau: a larger budget that falls further is no plateau either;
    NaN where none is: the largest budget tried cannot show one), and the means at the largest
    budget."""
    means = table.groupby(["candidate", "method", "steps"])[[metric, "val_worst_group_acc"]].mean().reset_index()
    rows = []
    for (cand, method), part in means.groupby(["candidate", "method"]):
        part = part.sort_values("steps")
        values, worst, steps = part[metric].to_numpy(), part["val_worst_group_acc"].to_numpy(), part["steps"].to_numpy()
        chosen = next((s for i, s in enumerate(steps[:-1])
                       if values[i] >= average_bar and worst[i] >= worst_bar
                       and (np.abs(values[i + 1:] - values[i]) <= tolerance).all()), np.nan)
        rows.append({"candidate": cand, "method": method, "converged_steps": chosen,
                     f"{metric}_at_largest": values[-1], "val_worst_group_acc_at_largest": worst[-1]})
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, metric: str = "val_average_acc", tolerance: float = TOLERANCE) -> dict:
    """The cheapest candidate (least training time at its budget) on which every method of the table
    was tried and converged, and the budget: the largest of its methods' converged budgets;
    `converged` True.

    When no candidate converged within the budgets tried, the choice falls back to the largest
    budget tried, on the candidate whose weakest method scores highest there, with `converged`
    False and `still_rising` (the largest last-doubling gain of its methods) to say by how much
    the curves were still rising — the book reports that instead of calling it converged."""
    conv = converged_budget(table, metric, tolerance)
    every_method = set(table["method"])
    best = None
    for cand, part in conv.groupby("candidate"):
        if part["converged_steps"].isna().any() or set(part["method"]) != every_method:
            continue     # a method not converged, or not tried on this candidate
        steps = int(part["converged_steps"].max())
        cost = table[(table["candidate"] == cand) & (table["steps"] == steps)]["group_seconds"].mean()
        if best is None or cost < best["seconds"]:
            best = {"candidate": cand, "steps": steps, "seconds": float(cost), "converged": True,
                    "still_rising": 0.0}
    if best is not None:
        return best
    means = table.groupby(["candidate", "method", "steps"])[metric].mean().reset_index()
    largest = int(means["steps"].max())
    at_largest = means[means["steps"] == largest]
    if at_largest.empty:
        raise ValueError(f"no calibration runs in the table: {sorted(table.columns)}")
    cand = at_largest.groupby("candidate")[metric].min().idxmax()
    gains = [last_gain(part.sort_values("steps")[metric].to_numpy())
             for _, part in means[means["candidate"] == cand].groupby("method")]
    cost = table[(table["candidate"] == cand) & (table["steps"] == largest)]["group_seconds"].mean()
    return {"candidate": cand, "steps": largest, "seconds": float(cost), "converged": False,
            "still_rising": float(max(gains))}


def choice_sentence(chosen: dict) -> str:
    """The choice in words, for the book."""
    if chosen["converged"]:
        return (f"Every method converged on {chosen['candidate']}, the cheapest such candidate, by "
                f"{chosen['steps']} steps: the study trains every run for {chosen['steps']} steps.")
    return (f"No candidate had every method on a plateau within the budgets tried: on {chosen['candidate']}, "
            f"the candidate whose weakest method scored highest, the last doubling of the budget still raised "
            f"a method's validation accuracy by {chosen['still_rising']:.3f}. The study trains every run for "
            f"{chosen['steps']} steps, the largest budget tried and the most the study's grid could afford on "
            f"a 2-core CPU: its models are close to, but not shown at, convergence, and the results are read "
            f"with that in mind.")


def last_gain(values) -> float:
    """Gain of the last budget over the one before (NaN with fewer than two budgets)."""
    return float(values[-1] - values[-2]) if len(values) >= 2 else float("nan")


def matches_default(chosen: dict) -> bool:
    """Whether ExperimentConfig()'s step budget and model are the chosen ones."""
    default = ExperimentConfig()
    return (default.train.steps == chosen["steps"]
            and default.replace(**CANDIDATES[chosen["candidate"]]) == default)


def read_calibration(path: str | Path = "results/calibration.csv") -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no calibration table at {path}: run `python -m dualenc.runs.calibration` "
                                "(it trains every candidate at bias 0 and writes it)")
    return pd.read_csv(path)


def write_calibration(path: str | Path = "results/calibration.csv", **kwargs) -> pd.DataFrame:
    table = run_calibration(**kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def main(argv: Optional[list] = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dualenc.runs.calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/calibration.csv", help="the table to write")
    parser.add_argument("--candidate", action="append", choices=sorted(CANDIDATES),
                        help="calibrate only this candidate (repeatable; default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    chosen = {name: CANDIDATES[name] for name in args.candidate} if args.candidate else CANDIDATES
    write_calibration(args.out, candidates=chosen)


if __name__ == "__main__":
    main()
