"""The answer to the study's question, from the results table.

Every decision comes from `comparisons.outcome` (supported, contradicted, inconclusive or
uninformative; see `dualenc.analysis.comparisons`), never from a point estimate. `verdict` gathers
every number, outcome and sentence the sweep page's prose uses into a `Verdict`; its `glue_values`
is the one place that names them for the book. The original's four claims are in `claims`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .comparisons import (MEASURE_SETS, NOT_RUN, OUTCOMES, FLOOR_MARGIN, PAIRWISE_DESCRIPTIVE, PAIRWISE_UNDESCRIPTIVE,
                          WORST_GROUP, agreement, caption_comparison, compare, data_size_comparison, levels_of,
                          not_run, probe_references, scale_summary, sizes_of)
from .. import design
from . import primary
from .claims import plain
from ..runs.metrics import N_RESAMPLES
from .results import CHANCE, MissingSetting, base_size, interval


# ---------------------------------------------------------------- the verdict


def bias_roles(df: pd.DataFrame) -> dict:
    """The levels the verdict reads, by role: unbiased (0), orig (the original's 0.75) and strong
    (0.9, or the nearest level the grid has between the original's and 1)."""
    declared = design.role_levels()        # `design.LEVELS` with a role
    orig, strong = declared["orig"], declared["strong"]
    levels = levels_of(df, **PAIRWISE_UNDESCRIPTIVE) or sorted(float(b) for b in df["bias"].unique())
    above = [b for b in levels if orig < b < 1.0]
    found = strong if any(np.isclose(levels, strong)) else (
        min(above, key=lambda b: abs(b - strong)) if above else orig)
    return {"unbiased": declared["unbiased"], "orig": orig, "strong": float(found)}


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
WANG_WORDS = {  # image-only minus CLIP worst-group outcome -> how the result stands to Wang et al.
    "supported": "runs against", "contradicted": "agrees with", "inconclusive": "is consistent with",
    "uninformative": "cannot speak to", NOT_RUN: "cannot speak to"}


@dataclass(frozen=True)
class Estimate:
    """A level (no outcome) or a decided comparison: the mean over seeds and its 95% interval."""
    mean: float
    low: float
    high: float
    outcome: Optional[str] = None          # a comparison's; None for a level
    mean_a: Optional[float] = None         # the arms' means, where the book shows them
    mean_b: Optional[float] = None

    @classmethod
    def of(cls, r: dict, arms: bool = False) -> "Estimate":
        return cls(r["mean"], r["low"], r["high"], r.get("outcome"),
                   *((r["mean_a"], r["mean_b"]) if arms else (None, None)))

    def glue_values(self, key: str) -> dict:
        out = {key: self.mean, f"{key}_low": self.low, f"{key}_high": self.high}
        if self.outcome is not None:
            out[f"{key}_outcome"] = self.outcome
        if self.mean_a is not None:
            out[f"{key}_a"], out[f"{key}_b"] = self.mean_a, self.mean_b
        return out


@dataclass(frozen=True)
class Verdict:
    """What the sweep page says, typed: facts about the table, levels, decided comparisons, the
    phrases built from them, and the answer. `glue_values` names them for the book."""
    facts: dict                                   # n_runs, n_seeds, seeds_text, bias_levels, orig_bias, ...
    levels: dict = field(default_factory=dict)    # wga_<variant>_<role> -> Estimate
    comparisons: dict = field(default_factory=dict)   # glue key -> Estimate (see `verdict`)
    phrases: dict = field(default_factory=dict)   # glue key -> a status word, a sentence or a count
    answer: str = NOT_RUN

    def glue_values(self) -> dict:
        """Every glue name of the sweep page (the book adds the prefix "sw_") and its value."""
        out = dict(self.facts)
        for key, estimate in {**self.levels, **self.comparisons}.items():
            out.update(estimate.glue_values(key))
        out.update(self.phrases)
        out["answer"] = self.answer
        return plain(out)


def _comparison_rows(table: pd.DataFrame, prefix: str, roles: dict, measures: dict) -> dict:
    """prefix_<role>_<measure key> -> Estimate (with the arms' means) for every role and measure; a
    level or measure the table lacks gives NaN and "not run"."""
    out = {}
    for role, bias in roles.items():
        rows = table[np.isclose(table["bias"], bias)].set_index("key") if len(table) else table
        for m in measures.values():
            if m.key in getattr(rows, "index", []):
                r = rows.loc[m.key]
                row = {"mean": r["estimate"], "low": r["low"], "high": r["high"], "outcome": r["outcome"],
                       "mean_a": r["mean_a"], "mean_b": r["mean_b"]}
            else:
                row = not_run()
            out[f"{prefix}_{role}_{m.key}"] = Estimate.of(row, arms=True)
    return out


def _facts(df: pd.DataFrame, roles: dict) -> dict:
    seeds = df.groupby(["arm", "bias"] + (["n_train_per_group"] if "n_train_per_group" in df else []))[
        "seed"].nunique()
    return {"n_runs": len(df), "n_seeds": int(seeds.min()), "n_seeds_max": int(seeds.max()),
            "seeds_text": f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()} to {seeds.max()}",
            "bias_levels": ", ".join(f"{b:g}" for b in sorted(df["bias"].unique())),
            "orig_bias": roles["orig"], "strong_bias": roles["strong"], "floor_margin": FLOOR_MARGIN,
            "n_resamples": N_RESAMPLES, "base_n": base_size(df) or math.nan}


def _levels(df: pd.DataFrame, roles: dict) -> dict:
    """Worst-group accuracy of every arm of the core blocks (the caption modes and image-only)."""
    arms = design.arm_tables()["captions"]
    out = {}
    for role, bias in roles.items():
        for name in arms:
            try:
                r = interval(df, "worst_group_acc", arm=name, bias=bias)
            except MissingSetting:
                r = not_run()
            out[f"wga_{design.ARMS[name].variant.replace('.', '')}_{role}"] = Estimate(r["mean"], r["low"], r["high"])
    return out


def _arm_comparisons(df: pd.DataFrame, roles: dict) -> tuple:
    """The declared arm comparisons (`design.COMPARISONS`): estimates, phrases and the question's table."""
    estimates, phrases, tables = {}, {}, {}
    for c in design.COMPARISONS:
        measures = MEASURE_SETS[c.measures]
        table = caption_comparison(df, c.arm, c.baseline, measures=measures)
        at = {role: roles[role] for role in c.roles}
        estimates.update(_comparison_rows(table, c.key, at, measures))
        for role, bias in at.items():
            phrases[f"{c.key}_{role}_agreement"], phrases[f"{c.key}_{role}_sentence"] = agreement(
                table, bias, a=c.arm_words, b=c.baseline_words)
        counts = table["outcome"].value_counts()
        phrases.update({f"{c.key}_n_{word}": int(counts.get(word, 0)) for word in OUTCOMES})
        phrases[f"{c.key}_n_rows"] = len(table)
        tables[c.key] = table
    return estimates, phrases, tables


def _data_size(df: pd.DataFrame, roles: dict) -> tuple:
    ds = data_size_comparison(df)
    sizes = sizes_of(df)
    phrases = {"ds_sizes": ", ".join(str(n) for n in sizes) if len(sizes) > 1 else NOT_RUN}
    small, large = (sizes[0], sizes[-1]) if len(sizes) > 1 else (math.nan, math.nan)
    phrases["ds_small_n"], phrases["ds_large_n"] = small, large
    estimates = {}
    for role in ("orig", "strong"):
        for name, n in (("small", small), ("large", large), ("scale", f"{large} - {small}")):
            hit = ds[(ds["n_train_per_group"] == str(n)) & np.isclose(ds["bias"], roles[role])] if len(ds) else ds
            r = {"mean": hit["estimate"].iloc[0], "low": hit["low"].iloc[0], "high": hit["high"].iloc[0],
                 "outcome": hit["outcome"].iloc[0]} if len(hit) else not_run()
            estimates[f"ds_{name}_{role}"] = Estimate.of(r)
    phrases["ds_changes"], phrases["ds_sentence"] = scale_summary(ds)
    return estimates, phrases


def _baselines(df: pd.DataFrame, roles: dict) -> dict:
    """Bias against no bias for the question's arms and image-only; image-only against chance and
    against the caption arms; four templates against one."""
    io, wga = {"arm": "image_only"}, "worst_group_acc"
    out = {}
    for name, where in (("undescriptive", PAIRWISE_UNDESCRIPTIVE), ("descriptive", PAIRWISE_DESCRIPTIVE),
                        ("image_only", io)):
        out[f"bias_{name}"] = compare(df, wga, {**where, "bias": roles["strong"]}, {**where, "bias": 0.0},
                                      expected=-1)
    for role in ("orig", "strong"):
        at = {"bias": roles[role]}
        out[f"io_{role}_wga"] = compare(df, wga, {**io, **at}, threshold=CHANCE)
        out[f"io_{role}_avg_minus_wga"] = compare(df, "average_acc", {**io, **at}, {**io, **at}, metric_b=wga)
        for name, arm in (("pairwise_desc", "pairwise_descriptive"), ("clip_desc", "clip_descriptive"),
                          ("clip_und", "clip_undescriptive")):
            out[f"vs_io_{name}_{role}"] = compare(df, wga, {"arm": arm, **at}, {**io, **at})
    templates = {"arm": "pairwise_descriptive_templates_4"}
    for role in ("unbiased", "orig"):
        out[f"templates_{role}"] = compare(df, wga, {**templates, "bias": roles[role]},
                                           {**PAIRWISE_DESCRIPTIVE, "bias": roles[role]}, expected=-1)
    return {key: Estimate.of(r) for key, r in out.items()}


def _declared_test(df: pd.DataFrame) -> tuple:
    """The primary test (`design.PRIMARY`, the bias x caption interaction), the averaged caption
    effect under strong bias it is built on, the three answers, and the Holm-corrected per-level
    family (`dualenc.analysis.primary`)."""
    effect, inter = primary.averaged_effect(df), primary.interaction(df)
    family = primary.level_family(df)
    informative = family[family["outcome"] != "uninformative"]
    held = informative[informative["holm_outcome"] != "inconclusive"]
    words = primary.answers(effect, inter)
    phrases = {"help_answer": words["help"], "hurt_answer": words["hurt"], "bias_answer": words["bias"],
               "primary_p": inter["p"], "strong_effect_p": effect["p"],
               "strong_levels": ", ".join(f"{b:g}" for b in design.PRIMARY.levels),
               "family_n": len(informative), "family_n_held": len(held),
               "family_min_p_holm": float(informative["p_holm"].min()) if len(informative) else math.nan,
               "family_n_uncorrected": int((informative["p"] < primary.ALPHA).sum()),
               "family_floor_levels": ", ".join(f"{b:g}" for b in family.loc[family["outcome"] == "uninformative",
                                                                              "bias"]) or "none"}
    top = informative.iloc[-1] if len(informative) else None     # the highest level off the floor
    phrases.update({"family_top_bias": math.nan if top is None else float(top["bias"]),
                    "family_top_a": math.nan if top is None else float(top["mean_a"]),
                    "family_top_b": math.nan if top is None else float(top["mean_b"])})
    return {"primary": Estimate.of(inter, arms=True), "strong_effect": Estimate.of(effect, arms=True)}, phrases


def verdict(df: pd.DataFrame) -> Verdict:
    """Every number, outcome and sentence the sweep page's prose uses (`Verdict.glue_values`).

    Keys are named by role, not by level, so that every grid gives every key: roles unbiased,
    orig, strong (`bias_roles`); a setting the grid lacks gives NaN and "not run". A comparison
    comes with _low, _high (95% interval) and _outcome. Groups:

    - facts: n_runs, n_seeds, seeds_text, bias_levels, orig_bias, strong_bias, floor_margin,
      n_resamples, base_n; levels: wga_<variant>_<role> (with _low and _high);
    - the declared comparisons (`design.COMPARISONS`): <key>_<role>_<measure> (also _a and _b, the
      arms' means), <key>_<role>_agreement and _sentence, <key>_n_<outcome> and <key>_n_rows: cap
      (descriptive minus "horse" / "camel", `CAPTION_MEASURES` keys wga, wga_class, wga_pooled,
      majority, probe), bg (background only minus "horse" / "camel"), clip and siglip;
    - probe_<variant>_<role>_<pixels|random>: the trained animal probe minus the reference's;
    - ds_<small|large|scale>_<orig|strong>, ds_sizes, ds_small_n, ds_large_n, ds_changes, ds_sentence;
    - bias_<variant> (strong minus unbiased, claimed lower), io_<role>_wga, io_<role>_avg_minus_wga,
      vs_io_<pairwise_desc|clip_desc|clip_und>_<role>; templates_<unbiased|orig>;
    - the declared test (`primary`): primary (the interaction; _a and _b the caption effect under
      strong bias and at bias 0), strong_effect (the caption effect averaged over the strong-bias
      levels), primary_p, strong_effect_p, help_answer, hurt_answer, bias_answer, strong_levels,
      family_n, family_n_held (per-level tests that stay decided after Holm's correction),
      family_n_uncorrected, family_min_p_holm, family_floor_levels (both arms at the floor), and
      family_top_bias with the arms' worst-group accuracy there (family_top_a, family_top_b): the
      highest level off the floor;
    - answer (`answer`), answer_sentence, xue_phrase, wang_phrase.
    """
    roles = bias_roles(df)
    comparisons, phrases, tables = _arm_comparisons(df, roles)
    refs = probe_references(df, levels=list(roles.values()))
    for r in refs.itertuples():
        role = next(k for k, v in roles.items() if np.isclose(v, r.bias))
        comparisons[f"probe_{r.variant}_{role}_{r.reference}"] = Estimate(r.estimate, r.low, r.high, r.outcome)
    sizes, size_phrases = _data_size(df, roles)
    comparisons.update(sizes)
    phrases.update(size_phrases)
    comparisons.update(_baselines(df, roles))
    the_answer = answer(tables["cap"], [roles["orig"], roles["strong"]])
    phrases["answer_sentence"] = " ".join(phrases[f"cap_{role}_sentence"] for role in ("orig", "strong")
                                          if role == "orig" or roles["strong"] != roles["orig"])
    comparisons_, declared = _declared_test(df)
    comparisons.update(comparisons_)
    phrases.update(declared)
    phrases["xue_phrase"] = ANSWER_WORDS[the_answer]
    phrases["wang_phrase"] = WANG_WORDS[comparisons["vs_io_clip_und_orig"].outcome]
    return Verdict(_facts(df, roles), _levels(df, roles), comparisons, phrases, the_answer)
