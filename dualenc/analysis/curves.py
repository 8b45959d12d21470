"""Captions or the clock: the caption effect against the training budget, and at matched convergence.

From the learning curves (`runs.curves`, results/curves.csv):

- `own_budgets`: each curve arm's own converged budget, read on the balanced validation set at
  bias 0 only (the calibration's rule, `calibration.converged_budget`: the first budget whose seed
  means reach the bars and stay within the tolerance of every larger budget's);
- `effect_by_budget`: arm minus baseline, paired by seed, at every (bias level, budget);
- `matched`: the caption effect (a) at the same budget, the study's, and (b) with each arm at its own
  converged budget, at each level; whether the two readings differ.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ..config import ExperimentConfig
from ..design import CURVE_ARMS, QUESTION, role_levels
from ..runs.calibration import TOLERANCE, converged_budget
from .comparisons import compare

CURVE_MEASURES = ("worst_group_acc", "probe_animal_acc")
CURVE_COLUMNS = ("run", "arm", "bias", "steps", "seed", "val_average_acc", "val_worst_group_acc",
                 *CURVE_MEASURES)


def _validated_at_zero(curves: pd.DataFrame) -> pd.DataFrame:
    """The bias-0 rows with their validation accuracy (the only rows budgets are chosen on)."""
    return curves[np.isclose(curves["bias"].astype(float), 0.0) & curves["val_average_acc"].notna()]


def validation_means(curves: pd.DataFrame) -> pd.DataFrame:
    """Bias-0 validation accuracy per arm and budget: mean over seeds, and the seeds counted."""
    at_zero = _validated_at_zero(curves)
    return (at_zero.groupby(["arm", "steps"])
            .agg(val_average_acc=("val_average_acc", "mean"), val_worst_group_acc=("val_worst_group_acc", "mean"),
                 seeds=("seed", "nunique")).reset_index())


def own_budgets(curves: pd.DataFrame, arms: Sequence[str] = CURVE_ARMS, tolerance: float = TOLERANCE) -> dict:
    """arm -> its first converged budget at bias 0 on validation (NaN where none of the budgets is)."""
    at_zero = _validated_at_zero(curves)
    if at_zero.empty:
        return {arm: math.nan for arm in arms}
    table = at_zero.assign(candidate="curves", method=at_zero["arm"])
    found = converged_budget(table, tolerance=tolerance).set_index("method")["converged_steps"]
    return {arm: (int(found[arm]) if arm in found and not math.isnan(found[arm]) else math.nan) for arm in arms}


def effect_by_budget(curves: pd.DataFrame, arm: str = QUESTION[0], baseline: str = QUESTION[1],
                     measures: Sequence[str] = CURVE_MEASURES) -> pd.DataFrame:
    """One row per (measure, bias, steps) where both arms were trained: arm minus baseline, paired by
    seed, with its 95% interval."""
    rows = []
    for metric in measures:
        for bias in role_levels().values():
            at = curves[np.isclose(curves["bias"].astype(float), bias)]
            both = set(at.loc[at["arm"] == arm, "steps"]) & set(at.loc[at["arm"] == baseline, "steps"])
            for steps in sorted(both):
                r = compare(curves, metric, {"arm": arm, "bias": bias, "steps": int(steps)},
                            {"arm": baseline, "bias": bias, "steps": int(steps)})
                rows.append({"measure": metric, "bias": float(bias), "steps": int(steps), "estimate": r["mean"],
                             "low": r["low"], "high": r["high"], "n": r.get("n", 0), "outcome": r["outcome"]})
    return pd.DataFrame(rows)


def matched(curves: pd.DataFrame, budgets: dict, arm: str = QUESTION[0], baseline: str = QUESTION[1],
            metric: str = "worst_group_acc") -> pd.DataFrame:
    """Per level: the caption effect (a) with both arms at the study's budget and (b) each at its own
    converged budget (`budgets`, from `own_budgets`); `differ` where the two outcomes differ."""
    study = ExperimentConfig().train.steps
    rows = []
    for role, bias in role_levels().items():
        same = compare(curves, metric, {"arm": arm, "bias": bias, "steps": study},
                       {"arm": baseline, "bias": bias, "steps": study})
        if math.isnan(budgets.get(arm, math.nan)) or math.isnan(budgets.get(baseline, math.nan)):
            own = {"mean": math.nan, "low": math.nan, "high": math.nan, "outcome": "not run"}
        else:
            own = compare(curves, metric, {"arm": arm, "bias": bias, "steps": budgets[arm]},
                          {"arm": baseline, "bias": bias, "steps": budgets[baseline]})
        rows.append({"role": role, "bias": float(bias),
                     "same_estimate": same["mean"], "same_low": same["low"], "same_high": same["high"],
                     "same_outcome": same["outcome"],
                     "own_estimate": own["mean"], "own_low": own["low"], "own_high": own["high"],
                     "own_outcome": own["outcome"], "differ": same["outcome"] != own["outcome"]})
    return pd.DataFrame(rows)


def interaction_at(curves: pd.DataFrame, budgets: dict) -> dict:
    """The declared test's interaction (`primary.interaction`) on the curve levels above 0, with each
    arm read at its budget in `budgets` (arm -> steps); "not run" where an arm has none."""
    from ..design import PRIMARY, PrimaryTest
    from .comparisons import not_run
    from .primary import interaction

    if any(math.isnan(budgets.get(arm, math.nan)) for arm in (PRIMARY.arm, PRIMARY.baseline)):
        return not_run()
    rows = curves[curves["steps"] == curves["arm"].map(budgets)]
    levels = tuple(b for b in role_levels().values() if b != PRIMARY.reference)
    return interaction(rows, PrimaryTest(PRIMARY.arm, PRIMARY.baseline, PRIMARY.metric, levels, PRIMARY.reference))


def read_curves(path="results/curves.csv") -> pd.DataFrame:
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no learning-curve table at {path}: run `dualenc curves --runs DIR --jobs 2` "
                                "(it trains the curve arms at every budget of design.CURVE_BUDGETS and writes it)")
    return pd.read_csv(path)


def extension_values(curves: pd.DataFrame, arms: Sequence[str] = CURVE_ARMS, tolerance: float = TOLERANCE) -> dict:
    """level_budgets: the budgets every arm was trained to at every level; extended: a sentence naming
    the arms trained on at bias 0 because their validation accuracy was still rising
    (`runs.curves.plateau_extensions`), or saying that none was."""
    from ..design import ARMS

    per_setting = curves.groupby(["arm", "bias"])["steps"].apply(set)
    common = sorted(set.intersection(*per_setting)) if len(per_setting) else []
    if not common:
        return {"level_budgets": "none", "extended": ""}
    at_zero = curves[np.isclose(curves["bias"].astype(float), 0.0)]
    longer = {arm: int(at_zero.loc[at_zero["arm"] == arm, "steps"].max()) for arm in arms
              if (at_zero["arm"] == arm).any() and at_zero.loc[at_zero["arm"] == arm, "steps"].max() > common[-1]}
    if not longer:
        sentence = (f"No arm's bias-0 validation accuracy moved by more than {tolerance:g} in its last doubling, "
                    f"so none was trained past {common[-1]} steps.")
    else:
        names = " and ".join(f"the {ARMS[arm].label} arm" for arm in longer)
        sentence = (f"On the bias-0 validation set {names} still gained more than {tolerance:g} from "
                    f"{common[-2] if len(common) > 1 else common[-1]} to {common[-1]} steps, so "
                    f"{'it was' if len(longer) == 1 else 'they were'} trained on there, to "
                    f"{max(longer.values())} steps.")
    words = [str(s) for s in common]
    return {"level_budgets": (", ".join(words[:-1]) + " and " if len(words) > 1 else "") + words[-1],
            "extended": sentence}


def matched_table(table: pd.DataFrame) -> pd.DataFrame:
    """`matched` for reading: per bias level, each reading as "estimate [low, high] outcome"."""
    def cell(row, kind: str) -> str:
        return (f"{row[f'{kind}_estimate']:+.3f} [{row[f'{kind}_low']:+.3f}, {row[f'{kind}_high']:+.3f}] "
                f"{row[f'{kind}_outcome']}")

    return pd.DataFrame({"bias": table["bias"], "same budget": [cell(r, "same") for _, r in table.iterrows()],
                         "each arm's own budget": [cell(r, "own") for _, r in table.iterrows()]}
                        ).sort_values("bias").set_index("bias")


def matched_reading(table: pd.DataFrame, budgets: dict, arms: Sequence[str] = QUESTION) -> str:
    """How the two readings of `matched` compare: "agree at every level", "differ at bias ...", or why
    they cannot be compared (an arm with no converged budget)."""
    from ..design import ARMS

    missing = [arm for arm in arms if math.isnan(budgets.get(arm, math.nan))]
    if missing or table.empty:
        names = " and ".join(f"the {ARMS[arm].label if arm in ARMS else arm} arm" for arm in missing) or "an arm"
        return f"cannot be set side by side: {names} reached no plateau on bias-0 validation"
    differing = table.loc[table["differ"], "bias"]
    if differing.empty:
        return "agree at every level"
    levels = [f"{b:g}" for b in sorted(differing)]
    return "differ at bias " + (", ".join(levels[:-1]) + " and " if len(levels) > 1 else "") + levels[-1]


def curve_values(curves: pd.DataFrame, arms: Sequence[str] = CURVE_ARMS) -> dict:
    """The learning curves' glue values (the book adds a prefix): each arm's own budget
    (own_<variant>: steps, or "not converged"), the budgets tried, the matched comparison per role
    (same_<role>, own_<role> with _low, _high, _outcome), `matched_reading` (`matched_reading`), and
    the caption effect at the largest budget of each role's level (largest_<role>, ..., largest_<role>_steps)."""
    from ..design import ARMS

    if curves is None or curves.empty:       # no curves for this grid: every value "not run" / NaN
        curves = pd.DataFrame(columns=CURVE_COLUMNS)
    budgets = own_budgets(curves, arms)
    steps = sorted(int(s) for s in curves["steps"].unique())
    out = {"budgets": ", ".join(map(str, steps)) or "none", "n_curve_seeds": int(curves["seed"].nunique()),
           **extension_values(curves, arms)}
    for arm, steps in budgets.items():
        out[f"own_{ARMS[arm].variant}"] = ("not run" if curves.empty else "not converged") if math.isnan(steps) \
            else str(int(steps))
    table = matched(curves, budgets)
    for row in table.itertuples():
        for kind in ("same", "own"):
            out.update({f"{kind}_{row.role}": getattr(row, f"{kind}_estimate"),
                        f"{kind}_{row.role}_low": getattr(row, f"{kind}_low"),
                        f"{kind}_{row.role}_high": getattr(row, f"{kind}_high"),
                        f"{kind}_{row.role}_outcome": getattr(row, f"{kind}_outcome")})
    out["matched_reading"] = matched_reading(table, budgets)
    for kind, steps in (("same", {arm: ExperimentConfig().train.steps for arm in budgets}), ("own", budgets)):
        r = interaction_at(curves, steps)
        out.update({f"interaction_{kind}": r["mean"], f"interaction_{kind}_low": r["low"],
                    f"interaction_{kind}_high": r["high"], f"interaction_{kind}_outcome": r["outcome"]})
    for role, bias in role_levels().items():
        at = curves[np.isclose(curves["bias"].astype(float), bias)]
        both = set(at.loc[at["arm"] == QUESTION[0], "steps"]) & set(at.loc[at["arm"] == QUESTION[1], "steps"])
        largest = int(max(both)) if both else -1
        r = compare(curves, "worst_group_acc", {"arm": QUESTION[0], "bias": bias, "steps": largest},
                    {"arm": QUESTION[1], "bias": bias, "steps": largest})
        out.update({f"largest_{role}_steps": str(largest) if largest > 0 else "not run", f"largest_{role}": r["mean"], f"largest_{role}_low": r["low"], f"largest_{role}_high": r["high"],
                    f"largest_{role}_outcome": r["outcome"]})
    return out
