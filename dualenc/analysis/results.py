"""The sweep's results table: tidy rows, intervals over seeds, tables (its figures: `plots.sweep_results`).

Everything reads the results table (`study.write_results`: one row per run) and recomputes nothing.
Two kinds of interval, both 95%:

- a *level* (one setting's mean over its seeds) gets a percentile bootstrap interval over seeds
  (`metrics.bootstrap_ci`: 10 000 resamples from a fixed RNG seed, so it is the same on every
  build). It never leaves the range of the values, so an accuracy's interval stays inside [0, 1].
- a *difference* of two settings is taken seed by seed (a seed is one data draw, shared by both
  arms) and gets a Student-t interval over those paired differences (`metrics.mean_ci`): the t
  interval is the better-calibrated choice for 5 to 10 seeds, and a difference may be negative.

The decisions made from these intervals (supported, contradicted, inconclusive, uninformative)
live in `dualenc.analysis.comparisons`. A measure's range and chance level are its registry entry's
(`metric_registry.Metric`). CHANCE is re-exported here for the analysis.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from ..config import config_hash
from ..design import ARMS, arm_of
from ..runs.metric_registry import CHANCE, PROMPT_SECTIONS, model_measures, range_of
from ..config import GROUP_NAMES
from ..runs.metrics import accuracy_summary, bootstrap_ci, mean_ci, summarise_seeds

PREFIXES = tuple(prefix for prefix, _, _ in PROMPT_SECTIONS.values())   # "", "zs_class_", "zs_pooled_"
METRICS = tuple(model_measures())   # every number that measures a model, in registry order
# A setting is (arm, bias, n_train_per_group); its rows are its seeds.
SETTING = ("arm", "bias", "n_train_per_group")
ARM_COLUMNS = ("loss", "captions", "descriptive_share", "caption_templates")   # what names a row's arm


def _undeclared(loss, captions, share, templates) -> str:
    return f"undeclared: {loss}, {captions}, share {float(share):g}, {int(templates)} templates"


def arm_names(df: pd.DataFrame) -> list:
    """Each row's arm: its `arm` column (written by `dualenc collect`), else the declared arm with
    its settings (`design.arm_of`), else a name that says the setting is undeclared."""
    stored = df["arm"] if "arm" in df else pd.Series([None] * len(df), index=df.index)
    settings = list(df[list(ARM_COLUMNS)].itertuples(index=False)) if set(ARM_COLUMNS) <= set(df.columns) else \
        [None] * len(df)
    return [a if isinstance(a, str) else (arm_of(*s) or _undeclared(*s)) if s is not None else None
            for a, s in zip(stored, settings)]


def bounds(metric: str) -> tuple:
    """The range a metric can take, as its registry entry declares it (`Metric.range`)."""
    return range_of(metric)


def tidy(table: pd.DataFrame, configs: Optional[Iterable] = None) -> pd.DataFrame:
    """The results table with `arm` and `variant` (its caption setting) columns and majority / minority
    accuracy for every prompt set it has (`majority_acc`, `zs_class_majority_acc`, ...); one row per
    run. With `configs` (a grid), only the grid's runs, and every one of them must be there (else
    ValueError)."""
    df = table.drop_duplicates("run").copy() if "run" in table else table.copy()
    if configs is not None:
        wanted = {config_hash(c) for c in configs}
        missing = sorted(wanted - set(df["run"]))
        if missing:
            raise ValueError(f"{len(missing)} of the grid's {len(wanted)} runs are not in the results "
                             f"table (e.g. {missing[:3]}): run the sweep into this run store first")
        df = df[df["run"].isin(wanted)]
    if "arm" in df or set(ARM_COLUMNS) <= set(df.columns):
        df["arm"] = arm_names(df)
        df["variant"] = [ARMS[a].variant if a in ARMS else a for a in df["arm"]]
    for prefix in PREFIXES:
        columns = [f"{prefix}acc_{g}" for g in GROUP_NAMES]
        if set(columns) <= set(df.columns):
            summaries = [accuracy_summary(dict(zip(GROUP_NAMES, values))) for values in df[columns].to_numpy(float)]
            for role in ("majority_acc", "minority_acc"):
                df[f"{prefix}{role}"] = [s[role] for s in summaries]
    return df.reset_index(drop=True)


def summarise(df: pd.DataFrame, metrics: Iterable[str] = METRICS) -> pd.DataFrame:
    """Mean and 95% bootstrap interval over seeds of each setting (arm, bias and, where the table has
    it, n_train_per_group): <metric>_mean / _low / _high, n_seeds; with the arm's loss and variant."""
    by = [c for c in SETTING if c in df.columns]
    out = summarise_seeds(df, by, [m for m in metrics if m in df.columns])
    arms = df.drop_duplicates("arm").set_index("arm")
    for column in ("variant", "loss"):
        if column in arms:
            out.insert(1, column, out["arm"].map(arms[column]).to_numpy())
    return out


def base_size(table: pd.DataFrame) -> Optional[int]:
    """The training-set size per group of most settings (the bias sweep's, 48 by default); the
    data-size family adds larger ones. None for a table without the column."""
    if "n_train_per_group" not in table:
        return None
    return int(table["n_train_per_group"].value_counts().idxmax())


class MissingSetting(ValueError):
    """No run in the table has the asked-for setting (a family or level the grid did not run)."""


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """Rows matching every `column=value` (bias compared with a tolerance); none is an error.

    Without `n_train_per_group`, only the base size's runs (`base_size`) are matched, so that a
    setting is the same whether or not the data-size family is in the table. No match raises
    MissingSetting."""
    if "n_train_per_group" in df and "n_train_per_group" not in where:
        where = {**where, "n_train_per_group": base_size(df)}
    mask = np.ones(len(df), dtype=bool)
    for column, value in where.items():
        mask &= np.isclose(df[column].astype(float), value) if column == "bias" else (df[column] == value).to_numpy()
    if not mask.any():
        raise MissingSetting(f"no runs with {where} in the results table")
    return df[mask]


def by_seed(df: pd.DataFrame, metric: str, where: dict) -> pd.Series:
    """`metric` of one setting, indexed by seed (several runs of one seed is an error)."""
    rows = select(df, **where)
    if rows["seed"].duplicated().any():
        raise ValueError(f"several runs per seed with {where}: narrow the selection")
    return rows.set_index("seed")[metric].astype(float)


def _result(values: np.ndarray, ci, clip: tuple) -> dict:
    mean, low, high = ci(values)
    if not math.isnan(low):
        low, high = max(low, clip[0]), min(high, clip[1])
    return {"mean": mean, "low": low, "high": high, "n": int(np.sum(~np.isnan(values)))}


def interval(df: pd.DataFrame, metric: str, **where) -> dict:
    """Mean, 95% percentile-bootstrap interval (low, high) and n of `metric` over the seeds of one
    setting: a level, inside the metric's range (`bounds`); one seed -> low = high = nan."""
    return _result(by_seed(df, metric, where).to_numpy(), bootstrap_ci, bounds(metric))


def paired(x: pd.Series, y: pd.Series, metric: str, a="a", b="b") -> dict:
    """x minus y seed by seed (both indexed by seed), with the 95% Student-t interval of the paired
    differences (clipped to the widest difference `metric`'s range allows) and each side's mean.
    Both must have the same seeds (else ValueError naming `a` and `b`)."""
    if set(x.index) != set(y.index):
        raise ValueError(f"cannot pair {a} (seeds {sorted(x.index)}) with {b} (seeds {sorted(y.index)})")
    low, high = bounds(metric)
    out = _result((x - y.loc[x.index]).to_numpy(float), mean_ci, (low - high, high - low))
    out.update({"mean_a": float(x.mean()), "mean_b": float(y.mean())})
    return out


def paired_difference(df: pd.DataFrame, metric: str, a: dict, b: dict, metric_b: Optional[str] = None) -> dict:
    """`metric` of setting a minus `metric_b` (default: the same metric) of setting b, seed by seed
    (`paired`). Both settings must have the same seeds (else ValueError)."""
    return paired(by_seed(df, metric, a), by_seed(df, metric_b or metric, b), metric, a, b)


def interval_text(mean: float, low: float, high: float, digits: int = 3, signed: bool = False) -> str:
    """"mean [low, high]"; "mean" alone for one seed (no interval); "n/a" for no runs."""
    f = f"{'+' if signed else ''}.{digits}f"
    if math.isnan(mean) or math.isnan(low):
        return "n/a" if math.isnan(mean) else format(mean, f)
    return f"{format(mean, f)} [{format(low, f)}, {format(high, f)}]"


# ---------------------------------------------------------------- tables


def at_size(summary: pd.DataFrame, n: Optional[int]) -> pd.DataFrame:
    """The summary's rows of one training-set size (the base size by default)."""
    if "n_train_per_group" not in summary:
        return summary
    n = base_size(summary) if n is None else n
    return summary[summary["n_train_per_group"] == n]


def wide_table(summary: pd.DataFrame, metric: str, arms: list, levels: Optional[Iterable] = None,
               digits: int = 2, n: Optional[int] = None) -> pd.DataFrame:
    """Rows: arms (`design.ARMS` names); columns: bias levels (by default those every arm present
    was run at); cells "mean [low, high]" or "not run". One training-set size (the base one)."""
    summary = at_size(summary, n)
    parts = [summary[summary["arm"] == arm] for arm in arms]
    if levels is None:
        present = [set(p["bias"]) for p in parts if len(p)]
        levels = sorted(set.intersection(*present)) if present else []
    rows = {}
    for arm, part in zip(arms, parts):
        cells = {}
        for b in levels:
            hit = part[np.isclose(part["bias"], b)][[f"{metric}_{s}" for s in ("mean", "low", "high")]]
            cells[f"bias {b:g}"] = interval_text(*hit.iloc[0], digits=digits) if len(hit) else "not run"
        rows[arm_label(arm)] = cells
    return pd.DataFrame(rows).T


def arm_label(arm: str) -> str:
    """An arm for readers, with its loss: 'clip, "horse" / "camel"' (image-only: its label)."""
    declared = ARMS.get(arm)
    if declared is None:
        return arm
    return declared.label if declared.loss == "image_only" else f"{declared.loss}, {declared.label}"
