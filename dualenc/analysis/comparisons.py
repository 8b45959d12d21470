"""Comparisons on the results table, each ending in one of four outcomes.

A comparison states a direction in advance ("descriptive captions score higher than "horse" /
"camel" captions on this measure", "bias lowers minority-group accuracy") and is decided by
`outcome`, in this order:

1. **uninformative**: both arms' means lie within 0.02 of the bottom of the measure's range, or
   both within 0.02 of its top (a floor or a ceiling: there is no room for the difference to show);
2. **supported**: the 95% interval lies wholly on the expected side of 0 (or of the threshold);
3. **contradicted**: it lies wholly on the other side;
4. **inconclusive**: the interval spans 0, or there is only one seed (no interval).

Differences are paired by seed with a Student-t interval (`results.paired_difference`); a level
compared with a fixed threshold (e.g. chance) uses its bootstrap interval (`results.interval`) and
has no second arm, so the floor rule does not apply to it. A direction word ("higher", "lower")
appears in the book only for a supported or contradicted outcome over at least two seeds. A setting
the grid did not run gives "not run" instead of an outcome.

This file holds the rule and the comparison tables (captions measure by measure, the
background-only control, probe references, data size); `verdicts` holds the original's claims
and the answer to the study's question.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from ..runs.metric_registry import label_of
from ..runs.metrics import mean_ci
from ..design import ARMS, QUESTION
from .results import MissingSetting, bounds, by_seed, interval, interval_text, paired_difference, select

OUTCOMES = ("supported", "contradicted", "inconclusive", "uninformative")
NOT_RUN = "not run"
FLOOR_MARGIN = 0.02


def at_floor_or_ceiling(arms: Sequence[float], limits: tuple = (0.0, 1.0), margin: float = FLOOR_MARGIN) -> bool:
    """True when there are at least two arms and all their means lie within `margin` of the bottom of
    the measure's range, or all within `margin` of its top."""
    arms = [float(a) for a in arms if not math.isnan(float(a))]
    if len(arms) < 2:
        return False
    tol = margin + 1e-9
    return all(abs(a - limits[0]) <= tol for a in arms) or all(abs(a - limits[1]) <= tol for a in arms)


def outcome(low: float, high: float, expected: int = 1, *, threshold: float = 0.0, arms: Sequence[float] = (),
            limits: tuple = (0.0, 1.0), margin: float = FLOOR_MARGIN) -> str:
    """The outcome of a directional claim about a quantity whose 95% interval is [low, high].

    expected=+1: the claim is that the quantity lies above `threshold`; -1: below it. `arms` are
    the compared arms' means (for a - b: mean of a and mean of b), `limits` the range of the measure
    they are on. The floor/ceiling rule comes first (see the module docstring); an interval that
    is undefined (one seed) or touches the threshold is inconclusive.
    """
    if expected not in (1, -1):
        raise ValueError(f"expected={expected!r} is not allowed: expected +1 (above) or -1 (below)")
    if at_floor_or_ceiling(arms, limits, margin):
        return "uninformative"
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if low > threshold:
        return "supported" if expected > 0 else "contradicted"
    if high < threshold:
        return "contradicted" if expected > 0 else "supported"
    return "inconclusive"


def not_run() -> dict:
    """The result of a comparison whose setting is not in the table: NaNs and "not run"."""
    nan = math.nan
    return {"mean": nan, "low": nan, "high": nan, "n": 0, "mean_a": nan, "mean_b": nan, "outcome": NOT_RUN}


def decide(r: dict, metric: str, expected: int = 1) -> dict:
    """A paired difference (`results.paired`) with its outcome: the claim is a - b above 0 (expected
    +1) or below it (-1); the floor rule reads both arms' means on `metric`'s range."""
    r["outcome"] = outcome(r["low"], r["high"], expected, arms=(r["mean_a"], r["mean_b"]), limits=bounds(metric))
    return r


def compare(df: pd.DataFrame, metric: str, a: dict, b: Optional[dict] = None, *, expected: int = 1,
            threshold: float = 0.0, metric_b: Optional[str] = None) -> dict:
    """One claim decided: with b, `metric` of a minus `metric_b` (default `metric`) of b, paired by
    seed, against 0; without b, the level of a against `threshold`. Returns mean, low, high, n,
    mean_a, mean_b and outcome ("not run", with NaNs, when a setting is not in the table)."""
    try:
        if b is not None:
            return decide(paired_difference(df, metric, a, b, metric_b), metric, expected)
        r = interval(df, metric, **a)
    except MissingSetting:
        return not_run()
    r.update(mean_a=r["mean"], mean_b=math.nan)
    r["outcome"] = outcome(r["low"], r["high"], expected, threshold=threshold, limits=bounds(metric))
    return r


def compare_effects(df: pd.DataFrame, metric: str, a1: dict, b1: dict, a2: dict, b2: dict, expected: int = 1) -> dict:
    """(a1 - b1) - (a2 - b2) of `metric`, paired by seed (every setting needs the same seeds), with its
    Student-t interval; the floor rule looks at all four arms."""
    try:
        series = [by_seed(df, metric, w) for w in (a1, b1, a2, b2)]
    except MissingSetting:
        return not_run()
    seeds = set(series[0].index)
    if any(set(s.index) != seeds for s in series):
        raise ValueError(f"cannot pair {a1}, {b1}, {a2}, {b2}: their seeds differ")
    idx = sorted(seeds)
    x = [s.loc[idx].to_numpy() for s in series]
    mean, low, high = mean_ci((x[0] - x[1]) - (x[2] - x[3]))
    arms = [float(v.mean()) for v in x]
    return {"mean": mean, "low": low, "high": high, "n": len(idx), "mean_a": arms[0] - arms[1],
            "mean_b": arms[2] - arms[3], "outcome": outcome(low, high, expected, arms=arms, limits=bounds(metric))}


def direction(result: dict, up: str = "higher", down: str = "lower") -> str:
    """A direction word for a decided difference: `up` / `down` for a supported or contradicted
    outcome (the interval excludes 0), else a phrase that claims no direction."""
    o = result["outcome"]
    if o in ("supported", "contradicted"):
        return up if result["mean"] > 0 else down
    return {"inconclusive": "not clearly different (the interval spans 0)",
            "uninformative": "not comparable (both arms at a floor or a ceiling)"}.get(o, NOT_RUN)


# Settings (`compare`'s column=value filters) of the question's two arms (`design.QUESTION`).
PAIRWISE_DESCRIPTIVE, PAIRWISE_UNDESCRIPTIVE = ({"arm": name} for name in QUESTION)


# ---------------------------------------------------------------- captions, measure by measure

class Measure(NamedTuple):
    key: str
    label: str         # for tables
    short: str         # for sentences
    kind: str          # "own words" (each arm asked in its training words) or "shared"


CAPTION_MEASURES = {
    "worst_group_acc": Measure("wga", "worst-group accuracy, each model in its own words (headline)",
                               "worst-group accuracy in each model's own words", "own words"),
    "zs_class_worst_group_acc": Measure("wga_class", label_of("zs_class_worst_group_acc"),
                                        'worst-group accuracy with the prompts "horse" / "camel"', "shared"),
    "zs_pooled_worst_group_acc": Measure("wga_pooled", label_of("zs_pooled_worst_group_acc"),
                                         "worst-group accuracy with the four descriptive captions", "shared"),
    "majority_acc": Measure("majority", "majority-group accuracy, each model in its own words",
                            "majority-group accuracy", "own words"),
    "probe_animal_acc": Measure("probe", "linear probe for the animal on the image embeddings",
                                "the animal probe", "shared"),
}
# The background-only control never sees an animal word: its zero-shot accuracies are at the floor by
# construction, so it is read on the probes only.
BACKGROUND_MEASURES = {
    "probe_animal_acc": CAPTION_MEASURES["probe_animal_acc"],
    "probe_background_acc": Measure("probe_background", "linear probe for the background on the image embeddings",
                                    "the background probe", "shared"),
}
WORST_GROUP = ("wga", "wga_class", "wga_pooled")
MEASURE_SETS = {"caption": CAPTION_MEASURES, "background": BACKGROUND_MEASURES,   # `design.ArmComparison.measures`
                "worst_group": {k: m for k, m in CAPTION_MEASURES.items() if m.key in WORST_GROUP}}
COMPARISON_COLUMNS = ["bias", "measure", "key", "label", "short", "kind", "mean_a", "mean_b", "estimate", "low", "high",
                      "n_seeds", "outcome"]


def levels_of(df: pd.DataFrame, n: Optional[int] = None, **where) -> list:
    """The bias levels at which a setting (e.g. arm="pairwise_descriptive") was run."""
    try:
        rows = select(df, **where, **({} if n is None else {"n_train_per_group": n}))
    except MissingSetting:
        return []
    return sorted(float(b) for b in rows["bias"].unique())


def caption_comparison(df: pd.DataFrame, arm: str = QUESTION[0], baseline: str = QUESTION[1],
                       levels: Optional[Sequence[float]] = None, measures: Optional[dict] = None,
                       n: Optional[int] = None) -> pd.DataFrame:
    """Arm `arm` minus arm `baseline` (`design.ARMS` names; same size), paired by seed, at every
    bias level both were run at (or `levels`), on each measure (default CAPTION_MEASURES): the claim
    of every row is that `arm` scores higher (expected +1). Columns COMPARISON_COLUMNS."""
    measures = CAPTION_MEASURES if measures is None else measures
    size = {} if n is None else {"n_train_per_group": n}
    a, b = {"arm": arm, **size}, {"arm": baseline, **size}
    if levels is None:
        levels = sorted(set(levels_of(df, **a)) & set(levels_of(df, **b)))
    rows = []
    for bias in levels:
        for metric, m in measures.items():
            if metric not in df or df[metric].isna().all():
                continue
            r = compare(df, metric, {**a, "bias": bias}, {**b, "bias": bias})
            rows.append({"bias": float(bias), "measure": metric, "key": m.key, "label": m.label, "short": m.short,
                         "kind": m.kind,
                         "mean_a": r["mean_a"], "mean_b": r["mean_b"], "estimate": r["mean"], "low": r["low"],
                         "high": r["high"], "n_seeds": r["n"], "outcome": r["outcome"]})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _listing(items: list) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# the word a finding's sentence ends with, by outcome (the claim: the first arm scores higher)
FINDING_WORDS = {"supported": "higher", "contradicted": "lower", "inconclusive": "inconclusive",
                 "uninformative": "uninformative (both at a floor or a ceiling)"}


def agreement(table: pd.DataFrame, bias: float, a: str = "descriptive captions",
              b: str = '"horse" / "camel" captions') -> tuple:
    """(status, sentences) for one bias level of a `caption_comparison` table. status: "agree" (every
    informative measure supported, or every one contradicted), "disagree" (some higher, some lower),
    "partly agree" (one direction where the intervals are clear, inconclusive elsewhere),
    "inconclusive" (every informative interval spans 0), "uninformative" (every measure at a floor
    or ceiling) or "not run". The sentences are short: which arms at which level, then one finding
    per sentence, its interval in brackets and its outcome word last ("higher" and "lower" only for a
    supported or contradicted row), then what the measures say together."""
    rows = table[np.isclose(table["bias"], bias)]
    if rows.empty or (rows["outcome"] == NOT_RUN).all():
        return NOT_RUN, f"At bias {bias:g}, {a} were not compared with {b} (not run)."
    findings = [f"{r.short[0].upper()}{r.short[1:]}: {interval_text(r.estimate, r.low, r.high, 2, signed=True)}, "
                f"{FINDING_WORDS.get(r.outcome, r.outcome)}." for r in rows.itertuples() if r.outcome != NOT_RUN]
    informative = {o for o in rows["outcome"] if o in ("supported", "contradicted", "inconclusive")}
    if not informative:
        status = "uninformative"
    elif informative == {"inconclusive"}:
        status = "inconclusive"
    elif {"supported", "contradicted"} <= informative:
        status = "disagree"
    elif len(informative) == 1:
        status = "agree"
    else:
        status = "partly agree"
    together = {"agree": "The informative measures agree.", "disagree": "The measures disagree.",
                "partly agree": "The measures point one way where their intervals are clear.",
                "inconclusive": "No measure shows a clear difference.",
                "uninformative": "No measure can tell the arms apart."}[status]
    return status, " ".join([f"At bias {bias:g}, {a} minus {b}, paired by seed.", *findings, together])


def probe_references(df: pd.DataFrame, arms: Sequence[str] = QUESTION[::-1],
                     levels: Optional[Sequence[float]] = None, probe: str = "probe_animal_acc") -> pd.DataFrame:
    """The trained image encoder's probe minus the same probe on raw pixels and on a randomly
    initialised encoder (same runs, paired by seed); the claim: training makes the animal more
    readable (expected +1). Columns: variant (the arm's caption setting), bias, reference, estimate,
    low, high, mean_a, mean_b, n_seeds, outcome."""
    rows = []
    for arm in arms:
        variant, where = ARMS[arm].variant, {"arm": arm}
        for bias in (levels_of(df, **where) if levels is None else levels):
            for ref in ("pixels", "random"):
                other = f"{probe}_{ref}"
                r = compare(df, probe, {**where, "bias": bias}, {**where, "bias": bias}, metric_b=other) \
                    if other in df else not_run()
                rows.append({"variant": variant, "bias": float(bias), "reference": ref, "estimate": r["mean"],
                             "low": r["low"], "high": r["high"], "mean_a": r["mean_a"], "mean_b": r["mean_b"],
                             "n_seeds": r["n"], "outcome": r["outcome"]})
    return pd.DataFrame(rows, columns=["variant", "bias", "reference", "estimate", "low", "high", "mean_a",
                                       "mean_b", "n_seeds", "outcome"])


# ---------------------------------------------------------------- data size


def sizes_of(df: pd.DataFrame) -> list:
    """Training images per group at which both arms of the question (`design.QUESTION`) were run."""
    if "n_train_per_group" not in df:
        return []
    pw = df[df["arm"].isin(QUESTION)]
    both = pw.groupby("n_train_per_group")["arm"].nunique()
    return sorted(int(n) for n in both[both == 2].index)


def data_size_comparison(df: pd.DataFrame, metric: str = "worst_group_acc") -> pd.DataFrame:
    """Descriptive minus "horse" / "camel" captions (pairwise loss) on `metric` at each training-set
    size and each bias level run at every size (expected +1); then, per level, the change of that
    difference from the smallest to the largest size (`compare_effects`, expected +1: descriptive
    captions pay more with more data). Columns: n_train_per_group ("largest - smallest" for the
    change), bias, mean_a, mean_b, estimate, low, high, n_seeds, outcome."""
    sizes = sizes_of(df)
    columns = ["n_train_per_group", "bias", "mean_a", "mean_b", "estimate", "low", "high", "n_seeds", "outcome"]
    if len(sizes) < 2:
        return pd.DataFrame([], columns=columns)
    arms = (PAIRWISE_DESCRIPTIVE, PAIRWISE_UNDESCRIPTIVE)
    common = sorted(set.intersection(*[set(levels_of(df, n=n, **arm)) for n in sizes for arm in arms]))
    rows = []
    for n in sizes:
        for bias in common:
            r = compare(df, metric, {**PAIRWISE_DESCRIPTIVE, "bias": bias, "n_train_per_group": n},
                        {**PAIRWISE_UNDESCRIPTIVE, "bias": bias, "n_train_per_group": n})
            rows.append({"n_train_per_group": str(n), "bias": bias, "mean_a": r["mean_a"], "mean_b": r["mean_b"],
                         "estimate": r["mean"], "low": r["low"], "high": r["high"], "n_seeds": r["n"],
                         "outcome": r["outcome"]})
    small, large = sizes[0], sizes[-1]
    for bias in common:
        at = [{**arm, "bias": bias, "n_train_per_group": n} for n in (large, small) for arm in arms]
        r = compare_effects(df, metric, *at)
        rows.append({"n_train_per_group": f"{large} - {small}", "bias": bias, "mean_a": r["mean_a"],
                     "mean_b": r["mean_b"], "estimate": r["mean"], "low": r["low"], "high": r["high"],
                     "n_seeds": r["n"], "outcome": r["outcome"]})
    return pd.DataFrame(rows, columns=columns)


def data_size_display(table: pd.DataFrame) -> pd.DataFrame:
    """A `data_size_comparison` table for reading: the difference with its interval and the outcome,
    by (images per group, bias)."""
    out = pd.DataFrame({
        "images per group": table["n_train_per_group"], "bias": [f"{b:g}" for b in table["bias"]],
        'descriptive − "horse" / "camel" [95% CI]': [interval_text(*v, signed=True) for v in
                                                      table[["estimate", "low", "high"]].to_numpy()],
        "outcome": table["outcome"]})
    return out.set_index(["images per group", "bias"])


def scale_summary(table: pd.DataFrame) -> tuple:
    """(status, sentence): whether the caption effect (descriptive minus "horse" / "camel"
    worst-group accuracy) changes with the training-set size, decided by the interval of the change
    itself (largest minus smallest size, paired by seed), never by comparing the sizes' outcome words
    (a supported effect at one size and an inconclusive one at another need not differ).
    status: "changes" (some level's change interval excludes 0), "is not shown to change
    (inconclusive)" (every interval spans 0), "uninformative" or "not run"."""
    per_size = table[~table["n_train_per_group"].str.contains("-")] if len(table) else table
    change = table[table["n_train_per_group"].str.contains("-")] if len(table) else table
    if per_size.empty or change.empty:
        return NOT_RUN, "The data-size comparison was not run."
    parts = []
    for bias, part in per_size.groupby("bias", sort=True):
        parts.append(f"at bias {bias:g}: " + ", ".join(
            f"{interval_text(e, lo, hi, signed=True, digits=2)} ({o}) with {n}"
            for n, e, lo, hi, o in part[["n_train_per_group", "estimate", "low", "high", "outcome"]].to_numpy()))
    decided = change[change["outcome"].isin(["supported", "contradicted"])]
    if len(decided):
        status = "changes"
    elif (change["outcome"] == "uninformative").all():
        status = "uninformative"
    else:
        status = "is not shown to change (inconclusive)"
    moves = "; ".join(f"at bias {b:g}, {interval_text(e, lo, hi, signed=True, digits=2)} ({o})"
                      for b, e, lo, hi, o in change[["bias", "estimate", "low", "high", "outcome"]].to_numpy())
    return status, ("Descriptive minus \"horse\" / \"camel\" worst-group accuracy, by training images per "
                    "group, " + "; ".join(parts) + f". The change from the smallest to the largest size is "
                    f"{moves}: the caption effect {status} with the training-set size.")


def comparison_display(table: pd.DataFrame, levels: Optional[Sequence[float]] = None) -> pd.DataFrame:
    """A `caption_comparison` table for reading: a row per (bias, measure) with both arms' means, the
    paired difference with its interval, and the outcome (optionally only at `levels`)."""
    if levels is not None:
        table = table[np.array([bool(np.isclose(b, levels).any()) for b in table["bias"]], dtype=bool)]
    out = pd.DataFrame({
        "bias": [f"{b:g}" for b in table["bias"]], "measure": table["label"],
        "arm a": table["mean_a"].map(lambda v: f"{v:.3f}"), "arm b": table["mean_b"].map(lambda v: f"{v:.3f}"),
        "a − b [95% CI]": [interval_text(*v, signed=True) for v in table[["estimate", "low", "high"]].to_numpy()],
        "outcome": table["outcome"]})
    return out.set_index(["bias", "measure"])
