"""Time to a converged model: wall seconds until the slowest arm reaches the convergence bar on the
balanced validation set at bias 0, the old protocol against the new, in one run.

The bar is the calibration's (`dualenc.runs.calibration`): mean validation average accuracy over the
calibration seeds >= AVERAGE_BAR and mean worst-group accuracy >= WORST_BAR. Each protocol's slowest
arm is read from `results/calibration.csv` (the method with the largest converged budget, or the
lowest accuracy at the largest budget where none converged). Its seeds train as one group on the
study's path (`train_group`), at each budget of the protocol's ladder in turn until one reaches the
bar; the time is that budget's training wall time, cold compile included. The old protocol's ladder
is 2000, 4000, 8000 steps: when 8000 does not reach the bar, its time is a lower bound and so is the
ratio `time_to_target_speedup` (old seconds / new seconds).
"""
from __future__ import annotations

import time

import pandas as pd

from dualenc.runs.calibration import (AVERAGE_BAR, CALIBRATION_SEEDS, METHODS, OLD_PROTOCOL, WORST_BAR,
                                 choose, converged_budget, validation_accuracy)
from dualenc.config import ExperimentConfig
from dualenc.data.datasets import build_dataset
from dualenc.model.train import train_group

OLD_LADDER = (2000, 4000, 8000)
# the study's training before this protocol: a linear patch embedding, cosine schedule, eager bf16
OLD_SETTINGS = {"model.vision.stem": "patch", "model.vision.patch_size": 8, "schedule": "cosine", "lr": 2e-3,
                "warmup_frac": 0.1, "precision": "bf16", "compile": False}


def slowest_method(table: pd.DataFrame, candidate: str) -> str:
    """The candidate's method with the largest converged budget; where some did not converge, the
    one of those with the lowest mean validation average accuracy at the largest budget."""
    conv = converged_budget(table[table["candidate"] == candidate])
    if conv["converged_steps"].isna().any():
        return conv[conv["converged_steps"].isna()].sort_values("val_average_acc_at_largest")["method"].iloc[0]
    return conv.sort_values(["converged_steps", "val_average_acc_at_largest"], ascending=[False, True])["method"].iloc[0]


def reach(base: ExperimentConfig, method: str, ladder: tuple, seeds=CALIBRATION_SEEDS) -> dict:
    """Train `method`'s seeds at each budget of `ladder` until the mean reaches the bar."""
    tried = []
    for steps in ladder:
        configs = [base.replace(**METHODS[method], bias=0.0, steps=int(steps), seed=s) for s in seeds]
        datasets = [build_dataset(c.resolved_data()) for c in configs]
        start = time.perf_counter()
        results = train_group(configs, datasets, progress=False)
        seconds = time.perf_counter() - start
        scores = [validation_accuracy(c, d, r) for c, d, r in zip(configs, datasets, results)]
        average = sum(s["val_average_acc"] for s in scores) / len(scores)
        worst = sum(s["val_worst_group_acc"] for s in scores) / len(scores)
        reached = average >= AVERAGE_BAR and worst >= WORST_BAR
        tried.append({"steps": int(steps), "seconds": seconds, "val_average_acc": average,
                      "val_worst_group_acc": worst, "reached": reached, "compiled": results[0].compiled})
        print(f"    {steps:>5} steps: {seconds:7.1f} s, validation average {average:.3f}, worst group "
              f"{worst:.3f}: {'reached' if reached else 'not reached'}", flush=True)
        if reached:
            break
    last = tried[-1]
    return {"method": method, "seeds": list(seeds), "tried": tried, "reached": last["reached"],
            "steps": last["steps"], "seconds": last["seconds"]}


def time_to_target(calibration_table: pd.DataFrame) -> dict:
    """Both protocols' slowest arms to the bar, and the ratio of their times."""
    new = ExperimentConfig()
    chosen = choose(calibration_table)
    old = new.replace(**OLD_SETTINGS)
    out = {"bar": {"val_average_acc": AVERAGE_BAR, "val_worst_group_acc": WORST_BAR}}
    for name, base, candidate, ladder in (
            ("old", old, OLD_PROTOCOL, OLD_LADDER),
            ("new", new, chosen["candidate"], (chosen["steps"] // 2, chosen["steps"], chosen["steps"] * 2))):
        method = slowest_method(calibration_table, candidate)
        print(f"  {name} protocol ({candidate}), slowest arm {method!r}, {len(CALIBRATION_SEEDS)} seeds:", flush=True)
        out[name] = {"candidate": candidate, **reach(base, method, ladder)}
    out["time_to_target_speedup"] = out["old"]["seconds"] / out["new"]["seconds"]
    out["speedup_is_lower_bound"] = not out["old"]["reached"]
    return out


def print_time_to_target(result: dict) -> None:
    old, new = result["old"], result["new"]
    bound = "at least " if result["speedup_is_lower_bound"] else ""
    old_text = (f"{old['seconds']:.0f} s ({old['steps']} steps)" if old["reached"]
                else f"not reached by {old['steps']} steps ({old['seconds']:.0f} s there)")
    print(f"  time to the bar: old {old_text}; new {new['seconds']:.0f} s ({new['steps']} steps"
          f"{'' if new['reached'] else ', NOT reached'}): time_to_target_speedup {bound}"
          f"{result['time_to_target_speedup']:.1f}x")
