"""The tables, numbers and phrases the notebooks show, computed from configs and runs (RunRecords).

Every difference is decided by an interval over seeds, never by one run's number.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..config import (GROUP_LABELS, GROUP_NAMES, GROUPS, MAJORITY_GROUPS, MINORITY_GROUPS, DataConfig,
                     ExperimentConfig, group_name)
from ..design import BIAS_LEVELS, ORIGINAL, ORIGINAL_BIAS, QUESTION
from ..runs.metric_registry import label_of, labels_of
from ..runs.metrics import accuracy_summary

# ---------------------------------------------------------------- the data


def group_counts_table(config: ExperimentConfig, metrics: dict) -> pd.DataFrame:
    """Training / validation / test images per group for this run."""
    d = config.data
    rows = []
    for animal, background in GROUPS:
        g = group_name(animal, background)
        minority = (animal, background) in MINORITY_GROUPS
        rows.append({"group": GROUP_LABELS[g], "role": "minority" if minority else "majority",
                     "training images": int(metrics[f"n_train_{g}"]),
                     "validation images": d.n_val_per_group if not d.data_dir else np.nan,
                     "test images": d.n_test_per_group if not d.data_dir else np.nan})
    return pd.DataFrame(rows).set_index("group")


def bias_table(levels=BIAS_LEVELS, n_per_group: Optional[int] = None) -> pd.DataFrame:
    """What each bias level keeps, from DataConfig: minority images kept and the majority share."""
    rows = []
    for b in levels:
        d = DataConfig(bias=float(b), **({"n_train_per_group": n_per_group} if n_per_group else {}))
        rows.append({"bias": b, "majority images per group": d.n_train_per_group,
                     "minority images kept per group": d.minority_kept(),
                     "training images": 2 * d.n_train_per_group + 2 * d.minority_kept(),
                     "majority share per animal": d.majority_share()})
    return pd.DataFrame(rows)


def caption_examples(modes: dict, n_per_group: int = 48, data_seed: int = 0) -> pd.DataFrame:
    """Training captions per group for each caption setting: distinct strings with their counts.

    `modes` maps a column title to DataConfig overrides, e.g. {"descriptive, share 0.5":
    {"captions": "descriptive", "descriptive_share": 0.5}}.
    """
    from ..data.captions import training_captions
    from ..data.datasets import image_seed

    animal = np.repeat([a for a, _ in GROUPS], n_per_group)
    background = np.repeat([b for _, b in GROUPS], n_per_group)
    table = {}
    for title, changes in modes.items():
        d = DataConfig(n_train_per_group=n_per_group, data_seed=data_seed, **changes)
        caps = np.array(training_captions(animal, background, d, image_seed(d.draw_seed, "train", "captions", "", 0)))
        column = {}
        for a, b in GROUPS:
            texts, counts = np.unique(caps[(animal == a) & (background == b)], return_counts=True)
            column[GROUP_LABELS[group_name(a, b)]] = "; ".join(
                f"\u201c{t}\u201d \u00d7{c}" for t, c in sorted(zip(texts, counts), key=lambda tc: -tc[1]))
        table[title] = column
    return pd.DataFrame(table)


# ---------------------------------------------------------------- the seeds of one setting

PROBE_FEATURES = {"pixels": "raw pixels", "random": "untrained encoder", "trained": "trained encoder"}


def probe_summary(records: list) -> pd.DataFrame:
    """Mean probe accuracy over the seeds' runs: rows pixels / random / trained, columns animal /
    background (probes fit on the validation split, scored on the test split)."""
    suffix = {"pixels": "_pixels", "random": "_random", "trained": ""}
    return pd.DataFrame({features: {label: float(np.mean([r.metrics[f"probe_{label}_acc{suffix[features]}"]
                                                         for r in records]))
                                    for label in ("animal", "background")}
                         for features in PROBE_FEATURES}).T


def probe_summary_table(probes: pd.DataFrame) -> pd.DataFrame:
    """`probe_summary` for reading: readable feature names and column titles, three decimals."""
    out = probes.rename(index=PROBE_FEATURES, columns={"animal": "probe: animal", "background": "probe: background"})
    out.index.name = "features"
    return out.round(3)


# metric -> label: the rows of the seed summary, in order
SEED_SUMMARY_METRICS = ("average_acc", "worst_group_acc", "gap", "majority_acc", "minority_acc",
                        *[f"acc_{group_name(*g)}" for g in MAJORITY_GROUPS + MINORITY_GROUPS],
                        "probe_animal_acc", "probe_background_acc", "probe_animal_acc_pixels",
                        "probe_animal_acc_random", "silhouette_animal_image", "silhouette_background_image")


def _with_group_means(metrics: dict) -> dict:
    summary = accuracy_summary({g: metrics[f"acc_{g}"] for g in GROUP_NAMES})
    return {**metrics, "majority_acc": summary["majority_acc"], "minority_acc": summary["minority_acc"]}


def seed_summary(records: list) -> pd.DataFrame:
    """Index: metric; columns mean, low, high (95% percentile-bootstrap interval over seeds, as
    every level in the book: it stays inside the values' range), min, max."""
    from ..runs.metrics import bootstrap_ci

    rows = {}
    table = [_with_group_means(r.metrics) for r in records]
    for key in SEED_SUMMARY_METRICS:
        values = [m[key] for m in table if key in m]
        if not values:
            continue
        mean, low, high = bootstrap_ci(values)
        rows[key] = {"mean": mean, "low": low, "high": high, "min": min(values), "max": max(values)}
    return pd.DataFrame(rows).T


def seed_summary_table(records: list) -> pd.DataFrame:
    """The seed summary for reading: readable metric names, "mean [low, high]" and the seeds' range."""
    summary = seed_summary(records)
    out = pd.DataFrame({
        f"mean [95% interval], {len(records)} seeds": [
            f"{r['mean']:.3f}" + ("" if np.isnan(r["low"]) else f" [{r['low']:.3f}, {r['high']:.3f}]")
            for _, r in summary.iterrows()],
        "range over seeds": [f"{r['min']:.3f} to {r['max']:.3f}" for _, r in summary.iterrows()]},
        index=[label_of(k) for k in summary.index])
    out.index.name = "metric"
    return out


def reading(records: list) -> dict:
    """Phrases for a notebook's reading of the seeds of one setting, decided by 95% Student-t
    intervals over the seeds, as every difference in the book (never from one run; with one seed
    nothing is claimed)."""
    from ..runs.metrics import mean_ci

    def sign(values) -> int:
        _, low, high = mean_ci(values)
        return 1 if low > 0 else -1 if high < 0 else 0   # NaN interval (one seed): 0

    gap = sign([r.metrics["gap"] for r in records])
    probes = sign([r.metrics["probe_background_acc"] - r.metrics["probe_animal_acc"] for r in records])
    return {
        "worst_group": GROUP_LABELS[records[0].metrics["worst_group"]],
        "easier_feature": {1: "the background is the more linearly readable of the two",
                           -1: "the animal is the more linearly readable of the two",
                           0: "neither is clearly the more readable over these seeds"}[probes],
        "gap_reading": {1: "the majority groups are classified better than the minority groups",
                        -1: "the minority groups are classified better than the majority groups",
                        0: "over these seeds the interval of the gap spans 0, so no difference between majority "
                           "and minority groups can be claimed"}[gap],
    }


# ---------------------------------------------------------------- several settings


COMPARISON_METRICS = ("average_acc", "worst_group_acc", "gap", "zs_class_worst_group_acc",
                      "zs_pooled_worst_group_acc", "probe_animal_acc", "probe_animal_acc_pixels",
                      "probe_animal_acc_random", "probe_background_acc", "silhouette_animal_image",
                      "silhouette_background_image", "silhouette_animal_text", "silhouette_background_text")


def comparison_means(records: dict) -> pd.DataFrame:
    """One row per experiment (keyed by name): settings, the number of seeds, the worst group the
    most seeds share, and the mean over seeds of each of COMPARISON_METRICS (columns named by
    metric; NaN where the runs lack one). A value of `records` is a RunRecord or a list of them."""
    rows = []
    for name, recs in records.items():
        recs = list(recs) if isinstance(recs, (list, tuple)) else [recs]
        d = recs[0].config.data
        worst = pd.Series([r.metrics["worst_group"] for r in recs]).mode().iloc[0]
        row = {"experiment": name, "bias": d.bias, "captions": d.captions, "seeds": len(recs),
               "worst group": GROUP_LABELS[worst]}
        row.update({m: float(np.mean([r.metrics.get(m, np.nan) for r in recs])) for m in COMPARISON_METRICS})
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


def comparison_table(records: dict) -> pd.DataFrame:
    """`comparison_means` for reading: metric columns titled by their registry labels."""
    return comparison_means(records).rename(columns=labels_of(COMPARISON_METRICS))


def _original(arm: str, bias: float) -> str:
    return next(e.name for e in ORIGINAL if e.arm == arm and e.bias == bias)


# effect -> (a, b, expected sign of a - b) among the original's four (`design.ORIGINAL`):
# descriptive captions are claimed to help, bias to hurt
_DESC, _UND = QUESTION
EFFECTS = {"captions_unbiased": (_original(_DESC, 0.0), _original(_UND, 0.0), 1),
           "captions_biased": (_original(_DESC, ORIGINAL_BIAS), _original(_UND, ORIGINAL_BIAS), 1),
           "bias_undescriptive": (_original(_UND, ORIGINAL_BIAS), _original(_UND, 0.0), -1),
           "bias_descriptive": (_original(_DESC, ORIGINAL_BIAS), _original(_DESC, 0.0), -1)}
ONE_SEED_WORDS = "one seed: no interval, so no direction"


def comparison_effects(records: dict, metric: str = "worst_group_acc") -> dict:
    """The four effects of the original's design on `metric`, a minus b, paired by seed:
    captions_unbiased = exp2 - exp1, captions_biased = exp4 - exp3 (claimed: higher),
    bias_undescriptive = exp3 - exp1, bias_descriptive = exp4 - exp2 (claimed: lower).

    `records` maps exp1..exp4 to a RunRecord or a list of them (the same seeds in each). Returns
    name -> {"mean", "low", "high", "n", "outcome", "words"}: the 95% Student-t interval of the
    seed-by-seed differences and the claim's outcome (`comparisons.outcome`, floors and ceilings
    first). "words" comes from `comparisons.direction`: "higher" / "lower" only for a supported or
    contradicted outcome. With one seed there is no interval: the outcome is inconclusive and
    "words" is ONE_SEED_WORDS."""
    from .comparisons import decide, direction
    from .results import paired

    runs = {name: pd.Series({r.config.train.seed: float(r.metrics[metric])
                             for r in (recs if isinstance(recs, (list, tuple)) else [recs])})
            for name, recs in records.items()}
    out = {}
    for name, (a, b, expected) in EFFECTS.items():
        r = decide(paired(runs[a].sort_index(), runs[b], metric, a, b), metric, expected)
        r["words"] = direction(r) if r["n"] > 1 else ONE_SEED_WORDS
        out[name] = r
    return out


# ---------------------------------------------------------------- calibration


def converged_table(converged: pd.DataFrame) -> pd.DataFrame:
    """calibration.converged_budget for reading: a row per (model, method)."""
    from .results import arm_label

    out = converged.assign(method=converged["method"].map(arm_label)).rename(columns={
        "candidate": "model", "converged_steps": "converged at (steps)",
        "val_average_acc_at_largest": "validation accuracy, largest budget"})
    return out.set_index(["model", "method"]).round(3)


# ---------------------------------------------------------------- a rerun against the committed table


def replication_table(replication) -> pd.DataFrame:
    """A `replication.Replication` as readers see it: per measure the committed and rerun seed
    means, the paired difference (rerun - committed) with its 95% interval and the outcome."""
    s = replication.summary
    interval = [f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in zip(s["difference"], s["low"], s["high"])]
    return pd.DataFrame({
        "committed": s["committed"].round(3), "this rerun": s["rerun"].round(3),
        "difference [95% CI]": interval, "outcome": s["outcome"],
    }, index=s.index).rename(index=label_of).rename_axis("measure")


def replication_sentence(replication, metric: str = "worst_group_acc") -> str:
    """One line: this rerun minus the committed results on `metric`, its interval and the outcome."""
    row = replication.summary.loc[metric]
    n = len(replication.differences)
    if row["outcome"] == "bitwise equal":
        how = ", same code, kernels and batch" if replication.bitwise_expected else ""
        return f"this rerun equals the committed results bit for bit ({n} seeds{how})"
    return (f"this rerun minus the committed results, {label_of(metric)}, paired by seed: "
            f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] over {n} seeds: {row['outcome']}")
