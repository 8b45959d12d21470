"""The original study's four claims, each turned into tests on the results table.

Every test is a `comparisons.compare` (supported, contradicted, inconclusive or uninformative); a
claim's outcome comes from its tests' (`claim_outcome`). The experiments that made the claims are
`design.ORIGINAL`.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from .comparisons import NOT_RUN, PAIRWISE_DESCRIPTIVE, PAIRWISE_UNDESCRIPTIVE, compare
from ..design import ORIGINAL, ORIGINAL_BIAS
from .results import CHANCE, interval_text


def plain(values: dict) -> dict:
    """The dict with numpy scalars turned into Python ones: myst-nb glues a value's repr, and
    `{glue:text}` formats only a repr that parses as a number ("0.5", not "np.float64(0.5)")."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}


# claim number -> (the experiment that made it, the claim): the original's four (`design.ORIGINAL`)
CLAIMS = {n: (e.name, e.claim) for n, e in enumerate(ORIGINAL, start=1)}


class Test(NamedTuple):
    test: str
    claim: int
    quantity: str
    metric: str
    a: dict
    b: Optional[dict] = None
    expected: int = 1
    threshold: float = 0.0
    metric_b: Optional[str] = None


def _undescriptive(bias: float) -> dict:
    """The pairwise loss with "horse" / "camel" captions at `bias` (a setting of `compare`)."""
    return {**PAIRWISE_UNDESCRIPTIVE, "bias": bias}


def _descriptive(bias: float) -> dict:
    """The pairwise loss with descriptive captions at `bias`."""
    return {**PAIRWISE_DESCRIPTIVE, "bias": bias}


TESTS = [
    Test("1a", 1, 'average accuracy ("horse" / "camel", bias 0)', "average_acc", _undescriptive(0.0),
         threshold=CHANCE),
    Test("1b", 1, 'image silhouette by animal ("horse" / "camel", bias 0)', "silhouette_animal_image",
         _undescriptive(0.0)),
    Test("1c", 1, 'majority minus minority accuracy ("horse" / "camel", bias 0)', "majority_acc",
         _undescriptive(0.0), _undescriptive(0.0), metric_b="minority_acc"),
    Test("2a", 2, 'text silhouette by background, descriptive minus "horse" / "camel" (bias 0)',
         "silhouette_background_text", _descriptive(0.0), _undescriptive(0.0)),
    Test("2b", 2, 'image silhouette by background, descriptive minus "horse" / "camel" (bias 0)',
         "silhouette_background_image", _descriptive(0.0), _undescriptive(0.0)),
    Test("3a", 3, f'majority-group accuracy, bias {ORIGINAL_BIAS:g} minus bias 0 ("horse" / "camel")',
         "majority_acc", _undescriptive(ORIGINAL_BIAS), _undescriptive(0.0)),
    Test("3b", 3, f'minority-group accuracy, bias {ORIGINAL_BIAS:g} minus bias 0 ("horse" / "camel")',
         "minority_acc", _undescriptive(ORIGINAL_BIAS), _undescriptive(0.0), expected=-1),
    Test("4a", 4, f'accuracy on horse in desert, descriptive minus "horse" / "camel" (bias {ORIGINAL_BIAS:g})',
         "acc_horse_desert", _descriptive(ORIGINAL_BIAS), _undescriptive(ORIGINAL_BIAS)),
]


def _criterion(t: Test) -> str:
    side = "above" if t.expected > 0 else "below"
    return f"interval {side} {t.threshold:g}" if t.b is None else f"interval {side} 0"


def claim_outcome(outcomes: Sequence[str]) -> str:
    """A claim's outcome from its tests' outcomes: uninformative tests are set aside (the table shows
    them); of the rest, any contradicted -> contradicted, else any inconclusive -> inconclusive,
    else supported; all uninformative (or not run) -> uninformative (not run)."""
    outcomes = list(outcomes)
    if outcomes and all(o == NOT_RUN for o in outcomes):
        return NOT_RUN
    informative = [o for o in outcomes if o in ("supported", "contradicted", "inconclusive")]
    if not informative:
        return "uninformative"
    for word in ("contradicted", "inconclusive"):
        if word in informative:
            return word
    return "supported"


def claims(df: pd.DataFrame) -> pd.DataFrame:
    """One row per test of the original's claims: quantity, estimate, 95% interval, n, the arms'
    means, the criterion and the outcome."""
    rows = []
    for t in TESTS:
        r = compare(df, t.metric, t.a, t.b, expected=t.expected, threshold=t.threshold, metric_b=t.metric_b)
        rows.append({"claim": t.claim, "experiment": CLAIMS[t.claim][0], "test": t.test, "quantity": t.quantity,
                     "estimate": r["mean"], "low": r["low"], "high": r["high"], "n_seeds": r["n"],
                     "mean_a": r["mean_a"], "mean_b": r["mean_b"], "criterion": _criterion(t),
                     "outcome": r["outcome"]})
    return pd.DataFrame(rows)


def claim_values(table: pd.DataFrame) -> dict:
    """Values to glue: test_<id> (the estimate), _low, _high, _outcome; claim_<n> (`claim_outcome`
    of its tests) and claim_<n>_set_aside (the ids of its uninformative tests, or "none")."""
    out = {}
    for r in table.itertuples():
        out.update({f"test_{r.test}": r.estimate, f"test_{r.test}_low": r.low, f"test_{r.test}_high": r.high,
                    f"test_{r.test}_outcome": r.outcome})
    for claim, part in table.groupby("claim"):
        out[f"claim_{claim}"] = claim_outcome(part["outcome"])
        aside = part.loc[part["outcome"] == "uninformative", "test"].tolist()
        out[f"claim_{claim}_set_aside"] = ", ".join(aside) if aside else "none"
    return plain(out)


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table for reading: the claim's words and outcome once, each test's estimate with
    its interval and its outcome."""
    outcomes = {c: claim_outcome(p["outcome"]) for c, p in table.groupby("claim")}
    signed = [t.b is not None for t in TESTS if t.test in set(table["test"])]
    out = table.assign(
        claim=[f"{CLAIMS[c][0]} ({outcomes[c]}): {CLAIMS[c][1]}" for c in table["claim"]],
        estimate=[interval_text(*v, signed=s) for v, s in zip(table[["estimate", "low", "high"]].to_numpy(), signed)])
    out.loc[out["claim"].duplicated(), "claim"] = ""
    out = out.rename(columns={"estimate": "estimate [95% CI]", "outcome": "test outcome"})
    return out[["test", "claim", "quantity", "estimate [95% CI]", "criterion", "test outcome"]].set_index("test")
