"""The numbers of the sweep page's "why" section: what each caption arm's embeddings encode.

From the mechanism table (`dualenc.runs.mechanism`: caption similarities, the nearest caption of each
minority image) and the results table (silhouettes, probes), for the question's two arms
(`design.QUESTION`) at no bias and at the original's bias. Levels get a percentile bootstrap
interval over seeds; the one difference (descriptive minus "horse" / "camel" on how often the
background wins) is paired by seed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import design
from ..runs.metrics import bootstrap_ci
from .comparisons import compare, not_run
from .results import MissingSetting, interval

MECHANISM_MEASURES = ("cos_same_animal", "cos_same_background", "match_background")
RESULT_MEASURES = ("silhouette_background_image", "silhouette_animal_image", "probe_animal_acc",
                   "probe_background_acc")


def _level(table: pd.DataFrame, metric: str, arm: str, bias: float) -> dict:
    rows = table[(table["arm"] == arm) & np.isclose(table["bias"], bias)]
    if "n_train_per_group" in rows and len(rows):
        rows = rows[rows["n_train_per_group"] == rows["n_train_per_group"].min()]
    if rows.empty:
        return not_run()
    mean, low, high = bootstrap_ci(rows[metric].to_numpy(float))
    return {"mean": mean, "low": low, "high": high}


def why_values(mech: pd.DataFrame, df: pd.DataFrame) -> dict:
    """why_<variant>_<role>_<measure> (with _low and _high) for the question's arms at roles
    unbiased and orig, and why_background_wins_orig (descriptive minus "horse" / "camel", paired by
    seed, with _low, _high and _outcome: the claim that descriptive captions make the background win
    more often)."""
    roles = design.role_levels()
    out = {}
    for arm in design.QUESTION:
        variant = design.ARMS[arm].variant
        for role in ("unbiased", "orig"):
            for metric in MECHANISM_MEASURES:
                r = _level(mech, metric, arm, roles[role]) if len(mech) else not_run()
                out.update(_named(f"why_{variant}_{role}_{metric}", r))
            for metric in RESULT_MEASURES:
                try:
                    r = interval(df, metric, arm=arm, bias=roles[role])
                except MissingSetting:
                    r = not_run()
                out.update(_named(f"why_{variant}_{role}_{metric}", r))
    base = {"n_train_per_group": int(mech["n_train_per_group"].min())} if len(mech) else {}
    r = compare(mech, "match_background", {"arm": design.QUESTION[0], "bias": roles["orig"], **base},
                {"arm": design.QUESTION[1], "bias": roles["orig"], **base}) if len(mech) else not_run()
    out.update(_named("why_background_wins_orig", r))
    out["why_background_wins_orig_outcome"] = r["outcome"]
    return out


def _named(key: str, r: dict) -> dict:
    return {key: r["mean"], f"{key}_low": r["low"], f"{key}_high": r["high"]}


CUE_MEASURES = ("acc_test", "acc_coat_swap", "acc_greyscale")


def cue_values(cues: pd.DataFrame, arms: tuple) -> dict:
    """cue_<variant>_<role>_<measure> (with _low and _high) for `arms` at every role, and
    cue_coat_orig (descriptive minus "horse" / "camel" on the coat-swapped images at the original's
    bias, paired by seed, with _low, _high and _outcome)."""
    roles = design.role_levels()
    out = {}
    for arm in arms:
        for role, bias in roles.items():
            for metric in CUE_MEASURES:
                r = _level(cues, metric, arm, bias) if len(cues) else not_run()
                out.update(_named(f"cue_{design.ARMS[arm].variant}_{role}_{metric}", r))
    base = {"n_train_per_group": int(cues["n_train_per_group"].min())} if len(cues) else {}
    r = compare(cues, "acc_coat_swap", {"arm": design.QUESTION[0], "bias": roles["orig"], **base},
                {"arm": design.QUESTION[1], "bias": roles["orig"], **base}) if len(cues) else not_run()
    out.update(_named("cue_coat_orig", r))
    out["cue_coat_orig_outcome"] = r["outcome"]
    return out
