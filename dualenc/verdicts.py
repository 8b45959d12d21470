"""The original's four claims and the answer to the study's question, from the results table.

Every decision comes from `comparisons.outcome` (supported, contradicted, inconclusive or
uninformative; see `dualenc.comparisons`), never from a point estimate. `verdict` gathers every
number, outcome and sentence the sweep page and the book glue. The comparison functions are
re-exported here, so that `verdicts` is the one module a notebook needs.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from .comparisons import (BACKGROUND_MEASURES, CAPTION_MEASURES, COMPARISON_COLUMNS, FLOOR_MARGIN, NOT_RUN,
                          OUTCOMES, PAIRWISE, PAIRWISE_DESCRIPTIVE, PAIRWISE_UNDESCRIPTIVE, WORST_GROUP, Measure,
                          not_run, agreement, at_floor_or_ceiling, caption_comparison, compare, compare_effects,
                          comparison_display, data_size_comparison, data_size_display, direction, levels_of, outcome,
                          probe_references, scale_summary, sizes_of)
from .metrics import N_RESAMPLES
from .results import CAPTION_VARIANTS, CHANCE, MissingSetting, base_size, interval, interval_text
from .study import ORIGINAL_BIAS, ORIGINAL_EXPERIMENTS  # the original's "25% bias": 12 of 48 minority images kept
from .sweep import STRONG_BIAS  # the second level the verdict looks at, beside ORIGINAL_BIAS


# ---------------------------------------------------------------- the original's four claims

CLAIMS = dict(enumerate(zip(ORIGINAL_EXPERIMENTS, (  # claim -> (the experiment that made it, the claim)
    'Without bias and with "horse" / "camel" captions, the model separates horses from camels, with some '
    "confusion on the minority groups.",
    "With descriptive captions the embeddings also cluster by context (the background).",
    "Bias sharpens the majority groups, at the minority groups' expense.",
    "Under bias, descriptive captions help the minority group horse in desert.",
), strict=True), start=1))


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


# ---------------------------------------------------------------- the verdict


def bias_roles(df: pd.DataFrame) -> dict:
    """The levels the verdict reads, by role: unbiased (0), orig (the original's 0.75) and strong
    (0.9, or the nearest level the grid has between the original's and 1)."""
    levels = levels_of(df, **PAIRWISE_UNDESCRIPTIVE) or sorted(float(b) for b in df["bias"].unique())
    above = [b for b in levels if ORIGINAL_BIAS < b < 1.0]
    strong = STRONG_BIAS if any(np.isclose(levels, STRONG_BIAS)) else (
        min(above, key=lambda b: abs(b - STRONG_BIAS)) if above else ORIGINAL_BIAS)
    return {"unbiased": 0.0, "orig": ORIGINAL_BIAS, "strong": float(strong)}


def answer(table: pd.DataFrame, levels: Sequence[float]) -> str:
    """The answer to the study's question from a `caption_comparison` table (descriptive minus "horse"
    / "camel", pairwise) at the strong-bias `levels`, on the three worst-group measures:

    - "not run": none of them is in the table;
    - "uninformative": every one that was run is at a floor or ceiling;
    - "mixed": some are supported and some contradicted;
    - "no": some contradicted, none supported;
    - "yes": none contradicted, and at one level both the headline and a same-prompt measure are
      supported; "partly": some supported otherwise;
    - "inconclusive": the rest (every informative interval spans 0).
    """
    rows = table[table["key"].isin(WORST_GROUP) & table["bias"].apply(lambda b: bool(np.isclose(b, levels).any()))]
    outcomes = set(rows["outcome"])
    if not outcomes - {NOT_RUN}:
        return NOT_RUN
    if not outcomes & {"supported", "contradicted", "inconclusive"}:
        return "uninformative"
    if {"supported", "contradicted"} <= outcomes:
        return "mixed"
    if "contradicted" in outcomes:
        return "no"
    if "supported" not in outcomes:
        return "inconclusive"
    for _, part in rows.groupby("bias"):
        won = set(part.loc[part["outcome"] == "supported", "key"])
        if "wga" in won and won & {"wga_class", "wga_pooled"}:
            return "yes"
    return "partly"


ANSWER_WORDS = {  # answer -> how the result stands to Xue et al.'s prediction that rich captions help
    "yes": "agrees with", "partly": "partly agrees with", "mixed": "neither clearly agrees nor disagrees with",
    "no": "runs against", "inconclusive": "can neither confirm nor refute",
    "uninformative": "cannot speak to", NOT_RUN: "cannot yet speak to"}


def plain(values: dict) -> dict:
    """The dict with numpy scalars turned into Python ones: myst-nb glues a value's repr, and
    `{glue:text}` formats only a repr that parses as a number ("0.5", not "np.float64(0.5)")."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}


def _put(out: dict, key: str, r: dict) -> None:
    out.update({key: r["mean"], f"{key}_low": r["low"], f"{key}_high": r["high"], f"{key}_outcome": r["outcome"]})


def _put_rows(out: dict, prefix: str, table: pd.DataFrame, roles: dict, measures: dict) -> None:
    """prefix_<role>_<measure key> (+ _low, _high, _outcome, and _a, _b: the arms' means) for every
    role and measure; a level or measure the table lacks gives NaN and "not run"."""
    for role, bias in roles.items():
        rows = table[np.isclose(table["bias"], bias)].set_index("key") if len(table) else table
        for m in measures.values():
            if m.key in getattr(rows, "index", []):
                r = rows.loc[m.key]
                row = {"mean": r["estimate"], "low": r["low"], "high": r["high"], "outcome": r["outcome"],
                       "mean_a": r["mean_a"], "mean_b": r["mean_b"]}
            else:
                row = not_run()
            _put(out, f"{prefix}_{role}_{m.key}", row)
            out[f"{prefix}_{role}_{m.key}_a"], out[f"{prefix}_{role}_{m.key}_b"] = row["mean_a"], row["mean_b"]


def verdict(df: pd.DataFrame) -> dict:
    """Every number, outcome and sentence the sweep page's prose uses (glue them with a prefix).

    Keys are named by role, not by level, so that every grid gives every key: roles unbiased,
    orig, strong (`bias_roles`); a setting the grid lacks gives NaN and "not run". A difference
    key comes with _low, _high (95% interval) and _outcome. Groups:

    - n_runs, n_seeds, seeds_text, bias_levels, orig_bias, strong_bias, floor_margin, n_resamples,
      base_n; wga_<variant>_<role> (a level, with _low and _high);
    - cap_<role>_<measure>: descriptive minus "horse" / "camel" (`CAPTION_MEASURES` keys: wga,
      wga_class, wga_pooled, majority, probe; also _a and _b, the arms' means), cap_<role>_agreement
      and _sentence, cap_n_<outcome> and cap_n_rows (counts over every level and measure);
    - bg_<role>_<measure>: background only minus "horse" / "camel" (`BACKGROUND_MEASURES`);
    - probe_<variant>_<role>_<pixels|random>: the trained animal probe minus the reference's;
    - ds_<small|large|scale>_<orig|strong>, ds_sizes, ds_small_n, ds_large_n, ds_changes, ds_sentence;
    - <clip|siglip>_<orig|strong>_<wga|wga_class|wga_pooled> and _sentence;
    - bias_<variant> (strong minus unbiased, claimed lower), io_<role>_wga, io_<role>_avg_minus_wga,
      vs_io_<pairwise_desc|clip_desc|clip_und>_<role>; templates_<unbiased|orig>;
    - answer (`answer`), answer_sentence, xue_phrase, wang_phrase.
    """
    roles = bias_roles(df)
    seeds = df.groupby(["loss", "variant", "bias"] + (["n_train_per_group"] if "n_train_per_group" in df else []))[
        "seed"].nunique()
    out: dict = {"n_runs": len(df), "n_seeds": int(seeds.min()), "n_seeds_max": int(seeds.max()),
                 "seeds_text": f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()} to {seeds.max()}",
                 "bias_levels": ", ".join(f"{b:g}" for b in sorted(df["bias"].unique())),
                 "orig_bias": roles["orig"], "strong_bias": roles["strong"], "floor_margin": FLOOR_MARGIN,
                 "n_resamples": N_RESAMPLES, "base_n": base_size(df) or math.nan}

    for role, bias in roles.items():          # levels: worst-group accuracy of each variant
        for variant in (*CAPTION_VARIANTS, "image_only"):
            where = {"loss": "image_only" if variant == "image_only" else "pairwise", "variant": variant, "bias": bias}
            try:
                r = interval(df, "worst_group_acc", **where)
            except MissingSetting:
                r = not_run()
            key = f"wga_{variant.replace('.', '')}_{role}"
            out.update({key: r["mean"], f"{key}_low": r["low"], f"{key}_high": r["high"]})

    cap = caption_comparison(df)
    _put_rows(out, "cap", cap, roles, CAPTION_MEASURES)
    for role, bias in roles.items():
        out[f"cap_{role}_agreement"], out[f"cap_{role}_sentence"] = agreement(cap, bias)
    counts = cap["outcome"].value_counts()
    for word in OUTCOMES:
        out[f"cap_n_{word}"] = int(counts.get(word, 0))
    out["cap_n_rows"] = len(cap)

    bg = caption_comparison(df, variant="background", measures=BACKGROUND_MEASURES)
    _put_rows(out, "bg", bg, roles, BACKGROUND_MEASURES)
    for role, bias in roles.items():
        out[f"bg_{role}_agreement"], out[f"bg_{role}_sentence"] = agreement(bg, bias, a="background-only captions")

    refs = probe_references(df, levels=list(roles.values()))
    for r in refs.itertuples():
        role = next(k for k, v in roles.items() if np.isclose(v, r.bias))
        _put(out, f"probe_{r.variant}_{role}_{r.reference}",
             {"mean": r.estimate, "low": r.low, "high": r.high, "outcome": r.outcome})

    ds = data_size_comparison(df)
    sizes = sizes_of(df)
    out["ds_sizes"] = ", ".join(str(n) for n in sizes) if len(sizes) > 1 else NOT_RUN
    out["ds_small_n"], out["ds_large_n"] = (sizes[0], sizes[-1]) if len(sizes) > 1 else (math.nan, math.nan)
    for role in ("orig", "strong"):
        for name, n in (("small", out["ds_small_n"]), ("large", out["ds_large_n"]),
                        ("scale", f"{out['ds_large_n']} - {out['ds_small_n']}")):
            hit = ds[(ds["n_train_per_group"] == str(n)) & np.isclose(ds["bias"], roles[role])] if len(ds) else ds
            _put(out, f"ds_{name}_{role}", {"mean": hit["estimate"].iloc[0], "low": hit["low"].iloc[0],
                                            "high": hit["high"].iloc[0], "outcome": hit["outcome"].iloc[0]}
                 if len(hit) else not_run())
    out["ds_changes"], out["ds_sentence"] = scale_summary(ds)

    shared = {k: v for k, v in CAPTION_MEASURES.items() if v.key in WORST_GROUP}
    for loss in ("clip", "siglip"):
        table = caption_comparison(df, loss=loss, measures=shared)
        _put_rows(out, loss, table, {"orig": roles["orig"], "strong": roles["strong"]}, shared)
        for role in ("orig", "strong"):
            out[f"{loss}_{role}_sentence"] = agreement(table, roles[role], a=f"descriptive captions ({loss})",
                                                       b=f'"horse" / "camel" captions ({loss})')[1]

    io = {"loss": "image_only", "variant": "image_only"}
    wga = "worst_group_acc"
    for variant, where in (("undescriptive", PAIRWISE_UNDESCRIPTIVE), ("descriptive", PAIRWISE_DESCRIPTIVE),
                           ("image_only", io)):
        _put(out, f"bias_{variant}", compare(df, wga, {**where, "bias": roles["strong"]}, {**where, "bias": 0.0},
                                             expected=-1))
    for role in ("orig", "strong"):
        _put(out, f"io_{role}_wga", compare(df, wga, {**io, "bias": roles[role]}, threshold=CHANCE))
        _put(out, f"io_{role}_avg_minus_wga", compare(df, "average_acc", {**io, "bias": roles[role]},
                                                      {**io, "bias": roles[role]}, metric_b=wga))
        for name, where in (("pairwise_desc", PAIRWISE_DESCRIPTIVE),
                            ("clip_desc", {"loss": "clip", "variant": "descriptive"}),
                            ("clip_und", {"loss": "clip", "variant": "undescriptive"})):
            _put(out, f"vs_io_{name}_{role}", compare(df, wga, {**where, "bias": roles[role]},
                                                      {**io, "bias": roles[role]}))
    templates = {**PAIRWISE, "variant": "descriptive_templates_4"}
    for role in ("unbiased", "orig"):
        _put(out, f"templates_{role}", compare(df, wga, {**templates, "bias": roles[role]},
                                               {**PAIRWISE_DESCRIPTIVE, "bias": roles[role]}, expected=-1))

    strong_levels = [roles["orig"], roles["strong"]]
    out["answer"] = answer(cap, strong_levels)
    out["answer_sentence"] = " ".join(out[f"cap_{role}_sentence"] for role in ("orig", "strong")
                                      if role == "orig" or roles["strong"] != roles["orig"])
    out["xue_phrase"] = ANSWER_WORDS[out["answer"]]
    wang = out["vs_io_clip_und_orig_outcome"]
    out["wang_phrase"] = {"supported": "runs against", "contradicted": "agrees with",
                          "inconclusive": "is consistent with", "uninformative": "cannot speak to",
                          NOT_RUN: "cannot speak to"}[wang]
    return plain(out)


__all__ = [  # this module's own names, and the comparisons it re-exports for the notebooks
    "STRONG_BIAS", "CLAIMS", "TESTS", "Test", "claim_outcome", "claims", "claim_values", "claims_display",
    "bias_roles", "answer", "ANSWER_WORDS", "plain", "verdict",
    "OUTCOMES", "NOT_RUN", "FLOOR_MARGIN", "not_run", "PAIRWISE", "PAIRWISE_UNDESCRIPTIVE", "PAIRWISE_DESCRIPTIVE",
    "Measure", "CAPTION_MEASURES",
    "BACKGROUND_MEASURES", "WORST_GROUP", "COMPARISON_COLUMNS", "outcome", "at_floor_or_ceiling", "compare",
    "compare_effects", "direction", "levels_of", "caption_comparison", "agreement", "comparison_display",
    "probe_references", "sizes_of", "data_size_comparison", "data_size_display", "scale_summary"]
