"""How close a rerun comes to the committed results, and the cross-machine spread that says so.

Same code digest and kernel fingerprint (`provenance`): a rerun is bitwise equal. Other kernels
(another CPU) round differently, training follows another path, and a run lands elsewhere within
a spread that `measure` records in `results/replication.csv`: the book's four experiment settings
(5 seeds each) as committed in `results/default.csv` and as trained again here under each of
KERNEL_VARIANTS.

    python -m dualenc.runs.replication measure        # trains 2 x 20 runs (about 25 min on 2 cores)

A rerun is *consistent* when every run lies within the per-run tolerance of its committed
counterpart and the seed mean of the differences within the seed-mean tolerance (`tolerances`).
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..config import config_hash
from .metrics import mean_ci
from .provenance import UNRECORDED, code_digest, kernel_fingerprint, same_making

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_TABLE = ROOT / "results" / "default.csv"
SPREAD_TABLE = ROOT / "results" / "replication.csv"
# What a rerun is compared on: the headline accuracies, the probes, the geometry and the loss.
METRICS = ("average_acc", "worst_group_acc", "gap", "probe_animal_acc", "probe_background_acc",
           "silhouette_background_image", "final_loss")
SEEDS = 5
# Kernel choices of this machine (environment variables of one process): its own, and torch's
# vector kernels as on a CPU with AVX2 only. oneDNN's matrix products change with
# ONEDNN_MAX_CPU_ISA too, but their bf16 path then trains 1.7x (AVX512_CORE) to 8x (AVX2) slower
# here, so the measurement leaves them to the test suite (README: ATEN_CPU_CAPABILITY=avx2
# ONEDNN_MAX_CPU_ISA=AVX2 make test).
KERNEL_VARIANTS = {"native": {}, "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"}}
COMMITTED = "committed"
# Tolerance rule: TOLERANCE_SDS root-mean-square differences of the measured pairs (per run; over
# sqrt(seeds) for a seed mean), and never below TOLERANCE_MARGIN times the largest one measured.
# Generous because the differences are heavy-tailed: a run that lands on another solution moves
# much further than the rest, and other CPUs than the ones measured may round differently again.
TOLERANCE_SDS = 5.0
TOLERANCE_MARGIN = 1.5


def settings() -> dict:
    """The measured settings: the book's experiments (exp1..exp4), SEEDS seeds each."""
    from ..design import ORIGINAL_EXPERIMENTS
    from .study import get_experiment
    return {name: [get_experiment(name).replace(seed=s) for s in range(SEEDS)] for name in ORIGINAL_EXPERIMENTS}


# --------------------------------------------------------------------------- comparing a rerun


@dataclass
class Replication:
    """A rerun against the committed rows of the same runs, paired by seed."""

    differences: pd.DataFrame   # a row per run: run, seed and rerun - committed for each metric
    summary: pd.DataFrame       # a row per metric: committed, rerun, difference [low, high], max_abs,
                                # per_run_tol, mean_tol, outcome
    bitwise_expected: bool      # same code digest, kernels and batch as the committed rows

    @property
    def outcome(self) -> str:
        """'bitwise equal', 'consistent', 'outside the measured spread' or 'not bitwise (expected)'."""
        outcomes = set(self.summary["outcome"])
        for word in ("not bitwise (expected)", "outside the measured spread", "consistent"):
            if word in outcomes:
                return word
        return "bitwise equal"


def committed_rows(runs: list, table: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The committed table's rows of these run ids (in their order); empty if any is missing."""
    table = pd.read_csv(COMMITTED_TABLE) if table is None else table
    rows = table.set_index("run").reindex(runs)
    return rows if rows[list(METRICS)].notna().all().all() else rows.iloc[0:0]


def replicate(records: list, table: Optional[pd.DataFrame] = None, spread: Optional[pd.DataFrame] = None
              ) -> Optional[Replication]:
    """Compare freshly trained or loaded RunRecords with the committed rows of the same config
    hashes; None when the committed table lacks any of them."""
    from .study import stored_training

    runs = [r.path.name for r in records]
    committed = committed_rows(runs, table)
    if committed.empty:
        return None
    rerun = pd.DataFrame([r.metrics for r in records], index=runs)
    differences = rerun[list(METRICS)] - committed[list(METRICS)]
    trained = [stored_training(r.path) for r in records]
    bitwise = all(same_making(t, row) for t, (_, row) in zip(trained, committed.iterrows()))
    tol = tolerances(spread)
    rows = []
    for metric in METRICS:
        d = differences[metric].to_numpy(float)
        mean, low, high = mean_ci(d) if len(d) > 1 else (float(d[0]), math.nan, math.nan)
        max_abs = float(np.abs(d).max())
        per_run, per_mean = tol.loc[metric, "per_run"], tol.loc[metric, "seed_mean"] / math.sqrt(len(d))
        if max_abs == 0:
            outcome = "bitwise equal"
        elif bitwise:
            outcome = "not bitwise (expected)"
        elif max_abs <= per_run and abs(mean) <= per_mean:
            outcome = "consistent"
        else:
            outcome = "outside the measured spread"
        rows.append({"metric": metric, "committed": float(committed[metric].mean()),
                     "rerun": float(rerun[metric].mean()), "difference": mean, "low": low, "high": high,
                     "max_abs": max_abs, "per_run_tol": per_run, "mean_tol": per_mean, "outcome": outcome})
    differences.insert(0, "seed", [r.config.train.seed for r in records])
    return Replication(differences.rename_axis("run").reset_index(), pd.DataFrame(rows).set_index("metric"),
                       bitwise)


# --------------------------------------------------------------------------- the measured spread


def identical_sources(spread: pd.DataFrame) -> list:
    """Pairs of sources whose runs are bitwise equal on every metric: the same kernels (e.g. the
    committed table and a rerun on a machine like the one that made it)."""
    by_source = {s: g.set_index("run") for s, g in spread.groupby("source", sort=False)}
    return [(a, b) for a, b in itertools.combinations(by_source, 2)
            if by_source[a][list(METRICS)].equals(by_source[b].loc[by_source[a].index, list(METRICS)])]


def pair_differences(spread: pd.DataFrame) -> pd.DataFrame:
    """Every pair of sources in the spread table (committed, native, avx2, ...), run by run: a row
    per (pair, experiment, run) with b - a for each metric. Bitwise equal sources
    (`identical_sources`) count as one kernel choice: only the first of them is paired."""
    frames = []
    twins = {b for _, b in identical_sources(spread)}
    by_source = {s: g.set_index("run") for s, g in spread.groupby("source", sort=False) if s not in twins}
    for a, b in itertools.combinations(by_source, 2):
        common = by_source[a].index.intersection(by_source[b].index)
        d = by_source[b].loc[common, list(METRICS)] - by_source[a].loc[common, list(METRICS)]
        d.insert(0, "experiment", by_source[a].loc[common, "experiment"])
        d.insert(0, "pair", f"{b} - {a}")
        frames.append(d.rename_axis("run").reset_index())
    return pd.concat(frames, ignore_index=True)


def spread_summary(spread: pd.DataFrame) -> pd.DataFrame:
    """Per metric: the per-run differences' root mean square and largest absolute value, and the
    largest absolute difference of a setting's seed mean, over every measured pair."""
    pairs = pair_differences(spread)
    means = pairs.groupby(["pair", "experiment"])[list(METRICS)].mean()
    return pd.DataFrame({
        "rms_per_run": np.sqrt((pairs[list(METRICS)] ** 2).mean()),
        "max_per_run": pairs[list(METRICS)].abs().max(),
        "max_seed_mean": means.abs().max(),
        "n_runs": pairs[list(METRICS)].count(),
        "n_settings": means.count(),
    }).rename_axis("metric")


def read_spread(path: str | Path = SPREAD_TABLE) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `python -m dualenc.runs.replication measure` writes it")
    return pd.read_csv(path)


def tolerances(spread: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Per metric: `per_run`, the most one run may differ from its committed counterpart, and
    `seed_mean`, the most the mean of the differences may, times sqrt(seeds) (divide by the root of
    the number of seeds compared). Set from the measured spread by the TOLERANCE_* rule."""
    summary = spread_summary(read_spread() if spread is None else spread)
    per_run = np.maximum(TOLERANCE_SDS * summary["rms_per_run"], TOLERANCE_MARGIN * summary["max_per_run"])
    seed_mean = np.maximum(TOLERANCE_SDS * summary["rms_per_run"],
                           TOLERANCE_MARGIN * summary["max_seed_mean"] * math.sqrt(SEEDS))
    return pd.DataFrame({"per_run": per_run, "seed_mean": seed_mean})


# --------------------------------------------------------------------------- measuring it


def _train_here(root: str) -> None:
    """Train every measured setting into `root`, one torch thread, a setting's seeds together: the
    sweep's way (its workers train with one thread each)."""
    import torch

    from .study import run_group
    torch.set_num_threads(1)
    for configs in settings().values():
        run_group(configs, root=root, progress=False)


def _rows(source: str, root: Optional[Path], committed: pd.DataFrame) -> pd.DataFrame:
    from .study import load_run, run_dir, stored_training

    rows = []
    for experiment, configs in settings().items():
        for config in configs:
            path = run_dir(config, root) if root else None
            if path is None:
                row = committed.set_index("run").loc[config_hash(config)]
                metrics, made = row.to_dict(), {"code_digest": row.get("code_digest", UNRECORDED),
                                                "kernels": row.get("kernels", UNRECORDED)}
            else:
                metrics, training = load_run(path).metrics, stored_training(path)
                made = {"code_digest": training.get("code_digest", UNRECORDED), "kernels": kernel_fingerprint(training),
                        "cpu_model": training.get("cpu_model"), "cpu_capability": training.get("cpu_capability"),
                        "onednn_max_isa": training.get("onednn_max_isa"), "threads": training.get("threads")}
            rows.append({"source": source, "experiment": experiment, "seed": config.train.seed,
                         "run": config_hash(config), **made, **{m: metrics[m] for m in METRICS}})
    return pd.DataFrame(rows)


def measure(runs: Path, out: Path = SPREAD_TABLE, variants: Optional[dict] = None,
            train: Optional[list] = None) -> pd.DataFrame:
    """Train the measured settings under each kernel variant (or only those named in `train`; a
    process each, all at once, one thread each), then write the committed rows and every
    variant's runs to `out`."""
    variants = KERNEL_VARIANTS if variants is None else variants
    processes = []
    for name, env in variants.items():
        if train is not None and name not in train:
            continue
        command = [sys.executable, "-m", "dualenc.runs.replication", "train", str(runs / name)]
        processes.append(subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT))
    if any(p.wait() for p in processes):
        raise RuntimeError("a training process failed: see its output above")
    committed = pd.read_csv(COMMITTED_TABLE)
    table = pd.concat([_rows(COMMITTED, None, committed)] + [_rows(n, runs / n, committed) for n in variants],
                      ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    return table


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dualenc.runs.replication", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="train the book's settings under each kernel variant; write the spread table")
    m.add_argument("--runs", default="runs-replication", help="run store root (a folder per variant)")
    m.add_argument("--out", default=str(SPREAD_TABLE), help=f"the spread table (default {SPREAD_TABLE.relative_to(ROOT)})")
    m.add_argument("--train", action="append", choices=list(KERNEL_VARIANTS),
                   help="train only this variant (repeatable; the others' runs must be stored already)")
    t = sub.add_parser("train", help="(internal) train the measured settings into RUNS with this process's kernels")
    t.add_argument("runs")
    args = parser.parse_args(argv)
    if args.command == "train":
        _train_here(args.runs)
        return 0
    table = measure(Path(args.runs).resolve(), Path(args.out), train=args.train)
    print(spread_summary(table).round(4).to_string())
    print(f"code {code_digest()}: {len(table)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
