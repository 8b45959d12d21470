"""The declared test (`design.PRIMARY`) and the three questions the verdict answers apart.

- **Is it bias that makes the difference?** The primary test: the caption effect (arm minus
  baseline, seed by seed) averaged over the strong-bias levels, minus the caption effect at no bias.
- **Do descriptive captions help? Do they hurt?** Secondary: the caption effect averaged over the
  strong-bias levels, read on each side of 0.
- **At which level?** Secondary: the caption effect at each bias level, a family of tests whose
  p-values carry Holm's correction (`level_family`).

Seeds are data draws and the unit of every interval (Student t over seeds).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import design
from ..design import PrimaryTest
from ..runs.metrics import mean_ci
from .comparisons import NOT_RUN, not_run, outcome
from .results import MissingSetting, bounds, by_seed

ALPHA = 0.05


def _effects(df: pd.DataFrame, test: PrimaryTest, levels: Sequence[float]) -> pd.DataFrame:
    """Per seed (rows) and level (columns): arm minus baseline on the test's metric. Raises
    MissingSetting when a level lacks an arm, ValueError when the seeds differ."""
    columns = {}
    for bias in levels:
        a = by_seed(df, test.metric, {"arm": test.arm, "bias": bias})
        b = by_seed(df, test.metric, {"arm": test.baseline, "bias": bias})
        if set(a.index) != set(b.index):
            raise ValueError(f"cannot pair {test.arm} with {test.baseline} at bias {bias:g}: their seeds differ")
        columns[float(bias)] = a - b.loc[a.index]
    table = pd.DataFrame(columns)
    if table.isna().any().any():
        raise ValueError(f"the seeds of {test.arm} and {test.baseline} differ between bias levels "
                         f"{[float(b) for b in levels]}")
    return table


def p_value(values: np.ndarray) -> float:
    """Two-sided p-value of a one-sample t test of mean 0 (NaN for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan
    if np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())):   # no spread: t is undefined
        return 0.0 if abs(values[0]) > 1e-12 else 1.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def _decided(per_seed: pd.Series, expected: int, arms: tuple, limits: tuple) -> dict:
    mean, low, high = mean_ci(per_seed.to_numpy())
    return {"mean": mean, "low": low, "high": high, "n": len(per_seed), "p": p_value(per_seed.to_numpy()),
            "mean_a": arms[0], "mean_b": arms[1], "outcome": outcome(low, high, expected, arms=arms, limits=limits),
            "per_seed": per_seed}


def _arm_means(df: pd.DataFrame, test: PrimaryTest, levels: Sequence[float]) -> tuple:
    def mean_of(arm):
        return float(np.mean([by_seed(df, test.metric, {"arm": arm, "bias": b}).mean() for b in levels]))
    return mean_of(test.arm), mean_of(test.baseline)


def averaged_effect(df: pd.DataFrame, test: PrimaryTest = None) -> dict:
    """The caption effect averaged over the test's levels, per seed: mean, low, high, n, p (two-sided),
    the arms' means over those levels (mean_a, mean_b), outcome (the claim: the arm scores higher) and
    per_seed; "not run" when a level or arm is missing."""
    test = test or design.PRIMARY
    try:
        effects = _effects(df, test, test.levels)
        arms = _arm_means(df, test, test.levels)
    except MissingSetting:
        return {**not_run(), "p": math.nan, "per_seed": pd.Series(dtype=float)}
    return _decided(effects.mean(axis=1), 1, arms, bounds(test.metric))


def interaction(df: pd.DataFrame, test: PrimaryTest = None) -> dict:
    """The primary test: the caption effect averaged over the strong-bias levels minus the caption
    effect at the reference level (no bias), per seed. Keys as `averaged_effect`; mean_a and mean_b
    are the caption effect under bias and at the reference, and the floor rule reads the four arms'
    means (arm and baseline, under bias and at the reference)."""
    test = test or design.PRIMARY
    try:
        effects = _effects(df, test, (*test.levels, test.reference))
        under_bias = _arm_means(df, test, test.levels)
        unbiased = _arm_means(df, test, (test.reference,))
    except MissingSetting:
        return {**not_run(), "p": math.nan, "per_seed": pd.Series(dtype=float)}
    per_seed = effects[list(map(float, test.levels))].mean(axis=1) - effects[float(test.reference)]
    r = _decided(per_seed, test.expected, (under_bias[0] - under_bias[1], unbiased[0] - unbiased[1]),
                 bounds(test.metric))
    r["outcome"] = outcome(r["low"], r["high"], test.expected, arms=(*under_bias, *unbiased),
                           limits=bounds(test.metric))
    return r


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaNs stay NaN and do not count in the family)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def level_family(df: pd.DataFrame, test: PrimaryTest = None) -> pd.DataFrame:
    """The caption effect at each bias level both arms ran (seed-paired, Student t), with its
    two-sided p-value and Holm's adjustment over the informative levels (a level at a floor or
    ceiling is set aside: "uninformative"). `holm_outcome` is supported / contradicted where the
    adjusted p is below 0.05 (by the sign of the estimate), else inconclusive."""
    test = test or design.PRIMARY
    rows = []
    levels = sorted(set(df.loc[df["arm"] == test.arm, "bias"]) & set(df.loc[df["arm"] == test.baseline, "bias"]))
    for bias in levels:
        effects = _effects(df, test, (bias,))[float(bias)]
        r = _decided(effects, 1, _arm_means(df, test, (bias,)), bounds(test.metric))
        rows.append({"bias": float(bias), "estimate": r["mean"], "low": r["low"], "high": r["high"],
                     "n_seeds": r["n"], "mean_a": r["mean_a"], "mean_b": r["mean_b"], "p": r["p"],
                     "outcome": r["outcome"]})
    table = pd.DataFrame(rows, columns=["bias", "estimate", "low", "high", "n_seeds", "mean_a", "mean_b", "p",
                                        "outcome"])
    informative = table["outcome"] != "uninformative"
    table["p_holm"] = math.nan
    table.loc[informative, "p_holm"] = holm(table.loc[informative, "p"].to_numpy())
    table["holm_outcome"] = [
        "uninformative" if o == "uninformative" else
        ("supported" if e > 0 else "contradicted") if ph < ALPHA else "inconclusive"
        for o, e, ph in zip(table["outcome"], table["estimate"], table["p_holm"])]
    return table


def answers(effect: dict, inter: dict) -> dict:
    """The three questions in words, from `averaged_effect` and `interaction`:
    help / hurt ("yes", "no", "not shown", "cannot tell" at a floor, "not run") and bias ("yes,
    widens the gap" / "yes, narrows it" ... "not shown")."""
    o = effect["outcome"]
    help_word = {"supported": "yes", "contradicted": "no", "inconclusive": "not shown"}.get(
        o, "cannot tell" if o == "uninformative" else NOT_RUN)
    hurt_word = {"supported": "no", "contradicted": "yes", "inconclusive": "not shown"}.get(
        o, "cannot tell" if o == "uninformative" else NOT_RUN)
    i = inter["outcome"]
    bias_word = {"supported": "yes: bias makes the caption effect more positive",
                 "contradicted": "yes: bias makes the caption effect more negative",
                 "inconclusive": "not shown"}.get(i, "cannot tell" if i == "uninformative" else NOT_RUN)
    return {"help": help_word, "hurt": hurt_word, "bias": bias_word}
