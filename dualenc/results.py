"""The sweep's analysis: tidy results, confidence intervals over seeds, figures, the original's
claims tested, and the verdict on the study's question.

Everything reads the results table (`study.write_results`: one row per run) and recomputes nothing.
Intervals are 95% Student-t intervals over seeds (`metrics.mean_ci`); a difference of two settings
is taken seed by seed (paired). A decision or a phrase ("raised", "lowered", "did not measurably
change") follows only from whether an interval excludes the threshold, never from a point estimate.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from . import plots
from .config import MAJORITY_GROUPS, MINORITY_GROUPS, config_hash, group_name
from .metrics import mean_ci, summarise_seeds
from .study import ORIGINAL_BIAS  # the original's "25% bias" (12 of 48 minority images kept)
from .sweep import CAPTION_VARIANTS as SWEEP_CAPTION_VARIANTS

CHANCE = 0.5
STRONG_BIAS = (0.75, 0.95)            # where the verdict asks whether captions help
CAPTION_VARIANTS = tuple(SWEEP_CAPTION_VARIANTS)  # the sweep's caption variants, in its order
_PALETTE = sns.color_palette("colorblind")
VARIANTS = {  # variant -> (label, colour)
    "undescriptive": ('"horse" / "camel"', _PALETTE[0]),
    "descriptive": ("descriptive", _PALETTE[1]),
    "descriptive_share_0.5": ("descriptive, share 0.5", _PALETTE[2]),
    "descriptive_templates_4": ("descriptive, 4 templates", _PALETTE[4]),
    "image_only": ("image-only baseline", "0.45"),
}
LOSS_MARKERS = {"pairwise": "o", "clip": "s", "siglip": "^", "image_only": "D"}
METRICS = ("worst_group_acc", "average_acc", "gap", "majority_acc", "minority_acc",
           *[f"acc_{group_name(*g)}" for g in MAJORITY_GROUPS + MINORITY_GROUPS],
           "probe_animal_acc", "probe_background_acc",
           *[f"silhouette_{k}_{e}" for e in ("image", "text") for k in ("animal", "background", "group")])
LABELS = {"worst_group_acc": "worst-group accuracy", "average_acc": "average accuracy", "gap": "majority − minority",
          "majority_acc": "majority-group accuracy", "acc_horse_desert": "accuracy on horse in desert",
          "probe_animal_acc": "probe accuracy: animal", "probe_background_acc": "probe accuracy: background",
          **{f"silhouette_{k}_{e}": f"silhouette by {k}, {e}" for e in ("image", "text")
             for k in ("animal", "background", "group")}}


def bias_key(bias: float) -> str:
    """Glue-name fragment of a bias level: 0.75 -> "b075"."""
    return f"b{round(bias * 100):03d}"


def variant_of(loss: str, captions: str, share: float, templates: int) -> str:
    """The caption variant of a run: "undescriptive", "descriptive", "descriptive_share_0.5",
    "descriptive_templates_4", "background" or "image_only" (the names of `sweep.CAPTION_VARIANTS`)."""
    if loss == "image_only":
        return "image_only"
    if captions != "descriptive":
        return captions
    return ("descriptive" + (f"_share_{share:g}" if share < 1 else "")
            + (f"_templates_{int(templates)}" if templates > 1 else ""))


def tidy(table: pd.DataFrame, configs: Optional[Iterable] = None) -> pd.DataFrame:
    """The results table with a `variant` column and majority / minority accuracy; with `configs`
    (a grid), only the grid's runs, and every one of them must be there (else ValueError)."""
    df = table.copy()
    if configs is not None:
        wanted = {config_hash(c) for c in configs}
        missing = sorted(wanted - set(df["run"]))
        if missing:
            raise ValueError(f"{len(missing)} of the grid's {len(wanted)} runs are not in the results "
                             f"table (e.g. {missing[:3]}): run the sweep into this run store first")
        df = df[df["run"].isin(wanted)]
    df["variant"] = [variant_of(*r) for r in
                     df[["loss", "captions", "descriptive_share", "caption_templates"]].itertuples(index=False)]
    df["majority_acc"] = df[[f"acc_{group_name(*g)}" for g in MAJORITY_GROUPS]].mean(axis=1)
    df["minority_acc"] = df[[f"acc_{group_name(*g)}" for g in MINORITY_GROUPS]].mean(axis=1)
    return df.reset_index(drop=True)


def summarise(df: pd.DataFrame, metrics: Iterable[str] = METRICS) -> pd.DataFrame:
    """Mean and 95% CI over seeds of each (loss, variant, bias): <metric>_mean / _low / _high, n_seeds."""
    return summarise_seeds(df, ["loss", "variant", "bias"], [m for m in metrics if m in df.columns])


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """Rows matching every `column=value` (bias compared with a tolerance); none is an error."""
    mask = np.ones(len(df), dtype=bool)
    for column, value in where.items():
        mask &= np.isclose(df[column].astype(float), value) if column == "bias" else (df[column] == value).to_numpy()
    if not mask.any():
        raise ValueError(f"no runs with {where} in the results table")
    return df[mask]


def _by_seed(df: pd.DataFrame, metric: str, where: dict) -> pd.Series:
    rows = select(df, **where)
    if rows["seed"].duplicated().any():
        raise ValueError(f"several runs per seed with {where}: narrow the selection")
    return rows.set_index("seed")[metric].astype(float)


def _ci(values: np.ndarray) -> dict:
    mean, low, high = mean_ci(values)
    return {"mean": mean, "low": low, "high": high, "n": len(values)}


def interval(df: pd.DataFrame, metric: str, **where) -> dict:
    """Mean, 95% CI (low, high) and n of `metric` over the seeds of one setting."""
    return _ci(_by_seed(df, metric, where).to_numpy())


def paired_difference(df: pd.DataFrame, metric: str, a: dict, b: dict) -> dict:
    """`metric` of setting a minus setting b, seed by seed, with its 95% CI (the seeds must match)."""
    x, y = _by_seed(df, metric, a), _by_seed(df, metric, b)
    if set(x.index) != set(y.index):
        raise ValueError(f"cannot pair {a} (seeds {sorted(x.index)}) with {b} (seeds {sorted(y.index)})")
    return _ci((x - y.loc[x.index]).to_numpy())


def change_phrase(low: float, high: float, up: str = "raised", down: str = "lowered",
                  none: str = "did not measurably change") -> str:
    """`up` if the interval lies above 0, `down` if below, else `none` (also for an undefined one)."""
    return up if low > 0 else down if high < 0 else none


def interval_text(mean: float, low: float, high: float, digits: int = 3) -> str:
    if math.isnan(mean) or math.isnan(low):   # no runs, or one seed (no interval)
        return "n/a" if math.isnan(mean) else f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


# ---------------------------------------------------------------- the original's claims

PW = {"loss": "pairwise"}
UND, DESC = {**PW, "variant": "undescriptive"}, {**PW, "variant": "descriptive"}
CLAIMS = {
    1: ("exp1", 'Without bias and with "horse" / "camel" captions, the model separates horses from '
                "camels, with some confusion on the minority groups."),
    2: ("exp2", "With descriptive captions the embeddings also cluster by context (the background)."),
    3: ("exp3", "Bias sharpens the majority groups, at the minority groups' expense."),
    4: ("exp4", "Under bias, descriptive captions help the minority group horse in desert."),
}
# (claim, test, metric, a, b or None, threshold): confirmed when the CI of a (or a - b) is above it
TESTS = [
    (1, "1a", "average_acc", {**UND, "bias": 0.0}, None, CHANCE),
    (1, "1b", "silhouette_animal_image", {**UND, "bias": 0.0}, None, 0.0),
    (1, "1c", "gap", {**UND, "bias": 0.0}, None, 0.0),
    (2, "2a", "silhouette_background_text", {**DESC, "bias": 0.0}, {**UND, "bias": 0.0}, 0.0),
    (2, "2b", "silhouette_background_image", {**DESC, "bias": 0.0}, {**UND, "bias": 0.0}, 0.0),
    (3, "3a", "majority_acc", {**UND, "bias": ORIGINAL_BIAS}, {**UND, "bias": 0.0}, 0.0),
    (3, "3b", "gap", {**UND, "bias": ORIGINAL_BIAS}, {**UND, "bias": 0.0}, 0.0),
    (4, "4a", "acc_horse_desert", {**DESC, "bias": ORIGINAL_BIAS}, {**UND, "bias": ORIGINAL_BIAS}, 0.0),
]


def _setting(a: dict, b: Optional[dict] = None) -> str:
    """Words for a setting, or for the difference a minus b (naming only what differs)."""
    name = VARIANTS[a["variant"]][0]
    if b is not None and a["variant"] == b["variant"]:
        return f"{name}: bias {a['bias']:g} minus bias {b['bias']:g}"
    return f"{name}{'' if b is None else ' minus ' + VARIANTS[b['variant']][0]}, bias {a['bias']:g}"


def claims(df: pd.DataFrame) -> pd.DataFrame:
    """One row per test of the original's claims: the measured quantity, estimate, 95% CI, n, the
    criterion and the decision ("confirmed" when the interval lies above the threshold)."""
    rows = []
    for claim, test, metric, a, b, threshold in TESTS:
        r = interval(df, metric, **a) if b is None else paired_difference(df, metric, a, b)
        what = f"{LABELS.get(metric, metric)} ({_setting(a, b)})"
        rows.append({"claim": claim, "experiment": CLAIMS[claim][0], "test": test, "quantity": what,
                     "estimate": r["mean"], "low": r["low"], "high": r["high"], "n_seeds": r["n"],
                     "criterion": f"CI above {threshold:g}",
                     "decision": "confirmed" if r["low"] > threshold else "not confirmed"})
    return pd.DataFrame(rows)


def claim_values(table: pd.DataFrame) -> dict:
    """Values to glue: test_<id> (the estimate), _low, _high, _decision; claim_<n>: "confirmed"
    when every one of the claim's tests is, else "not confirmed"."""
    out = {}
    for r in table.itertuples():
        out.update({f"test_{r.test}": r.estimate, f"test_{r.test}_low": r.low, f"test_{r.test}_high": r.high,
                    f"test_{r.test}_decision": r.decision})
    for claim, part in table.groupby("claim"):
        out[f"claim_{claim}"] = "confirmed" if (part["decision"] == "confirmed").all() else "not confirmed"
    return out


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    """The claims table for reading: the claim's words once, the estimate with its interval."""
    out = table.assign(claim=[f"{CLAIMS[c][0]}: {CLAIMS[c][1]}" for c in table["claim"]],
                       estimate=[interval_text(*v) for v in table[["estimate", "low", "high"]].to_numpy()])
    out.loc[out["claim"].duplicated(), "claim"] = ""
    out = out.rename(columns={"estimate": "estimate [95% CI]"})
    return out[["test", "claim", "quantity", "estimate [95% CI]", "criterion", "decision"]].set_index("test")


# ---------------------------------------------------------------- tables and verdict


def method_label(loss: str, variant: str) -> str:
    return VARIANTS[variant][0] if loss == "image_only" else f"{loss}, {VARIANTS[variant][0]}"


LOSS_METHODS = [(loss, v) for loss in ("pairwise", "clip", "siglip") for v in ("undescriptive", "descriptive")] + [
    ("image_only", "image_only")]
VARIABILITY_METHODS = [("pairwise", "undescriptive"), ("pairwise", "descriptive"),
                       ("pairwise", "descriptive_templates_4")]


def wide_table(summary: pd.DataFrame, metric: str, methods: list, levels: Optional[Iterable] = None,
               digits: int = 2) -> pd.DataFrame:
    """Rows: (loss, variant) methods; columns: bias levels (by default those every method was run
    at); cells "mean [low, high]" or "not run"."""
    parts = [summary[(summary["loss"] == loss) & (summary["variant"] == v)] for loss, v in methods]
    if levels is None:
        levels = sorted(set.intersection(*[set(p["bias"]) for p in parts]))
    rows = {}
    for (loss, variant), part in zip(methods, parts):
        cells = {}
        for b in levels:
            hit = part[np.isclose(part["bias"], b)][[f"{metric}_{s}" for s in ("mean", "low", "high")]]
            cells[f"bias {b:g}"] = interval_text(*hit.iloc[0], digits=digits) if len(hit) else "not run"
        rows[method_label(loss, variant)] = cells
    return pd.DataFrame(rows).T


def _put(out: dict, key: str, r: dict, words: Optional[dict] = None) -> None:
    """key, key_low, key_high; with `words` (change_phrase's, {} for its defaults) also key_phrase."""
    out.update({key: r["mean"], f"{key}_low": r["low"], f"{key}_high": r["high"]})
    if words is not None:
        out[f"{key}_phrase"] = change_phrase(r["low"], r["high"], **words)


def verdict(df: pd.DataFrame) -> dict:
    """Every number and phrase the verdict's prose uses (glue them with a prefix): paired caption
    effects on worst-group accuracy, the bias effect, the baseline, the losses and variability."""
    out: dict = {"n_runs": len(df), "n_seeds": int(df["seed"].nunique()),
                 "bias_levels": ", ".join(f"{b:g}" for b in sorted(df["bias"].unique()))}
    wga = "worst_group_acc"
    for bias in (0.0, *STRONG_BIAS):
        k = bias_key(bias)
        for variant in (*CAPTION_VARIANTS, "image_only"):
            loss = "image_only" if variant == "image_only" else "pairwise"
            _put(out, f"wga_{variant.replace('.', '')}_{k}", interval(df, wga, loss=loss, variant=variant, bias=bias))
        _put(out, f"desc_wga_{k}", paired_difference(df, wga, {**DESC, "bias": bias}, {**UND, "bias": bias}), {})
        share = {**PW, "variant": "descriptive_share_0.5", "bias": bias}
        _put(out, f"share_wga_{k}", paired_difference(df, wga, share, {**UND, "bias": bias}), {})
    top = max(STRONG_BIAS)
    for variant, loss in (("undescriptive", "pairwise"), ("descriptive", "pairwise"), ("image_only", "image_only")):
        where = {"loss": loss, "variant": variant}
        _put(out, f"bias_wga_{variant}", paired_difference(df, wga, {**where, "bias": top}, {**where, "bias": 0.0}),
             {"up": "rose", "down": "fell"})
    io = {"loss": "image_only", "variant": "image_only", "bias": top}
    _put(out, f"image_only_avg_{bias_key(top)}", interval(df, "average_acc", **io))
    spread = interval(df.assign(spread=df["average_acc"] - df[wga]), "spread", **io)
    _put(out, f"image_only_avg_minus_wga_{bias_key(top)}", spread,
         {"up": "clearly above", "none": "not measurably above"})
    _put(out, f"desc_vs_image_only_{bias_key(top)}", paired_difference(df, wga, {**DESC, "bias": top}, io),
         {"up": "above", "down": "below", "none": "not measurably different from"})
    for loss in ("clip", "siglip"):
        d = paired_difference(df, wga, {"loss": loss, "variant": "descriptive", "bias": top},
                              {"loss": loss, "variant": "undescriptive", "bias": top})
        _put(out, f"{loss}_desc_wga_{bias_key(top)}", d, {})
    for bias in sorted(select(df, variant="descriptive_templates_4")["bias"].unique()):
        _put(out, f"templates_wga_{bias_key(bias)}", paired_difference(
            df, wga, {**PW, "variant": "descriptive_templates_4", "bias": bias}, {**DESC, "bias": bias}), {})
    phrases = [out[f"desc_wga_{bias_key(b)}_phrase"] for b in STRONG_BIAS]
    out["answer"] = ("yes" if all(p == "raised" for p in phrases) else
                     "partly" if "raised" in phrases else "no" if "lowered" in phrases else "not measurably")
    out["xue_phrase"] = {"yes": "agrees with", "partly": "partly agrees with", "no": "runs against",
                         "not measurably": "neither supports nor contradicts"}[out["answer"]]
    return out


# ---------------------------------------------------------------- figures

def _bounds(metric: str) -> tuple:
    """The range a metric can take (bands are clipped to it): accuracies [0, 1], others [-1, 1]."""
    return (-1.0, 1.0) if metric.endswith("gap") or "silhouette" in metric else (0.0, 1.0)


def _series(summary: pd.DataFrame, loss: str, variant: str, metric: str, levels: list) -> tuple:
    """x (index of each row's bias in `levels`), mean, and the CI clipped to the metric's range."""
    part = summary[(summary["loss"] == loss) & (summary["variant"] == variant)].sort_values("bias")
    part = part[[bool(np.isclose(b, levels).any()) for b in part["bias"]]]
    x = np.array([int(np.argmin(np.abs(np.asarray(levels) - b))) for b in part["bias"]])
    lo, hi = _bounds(metric)
    return (x, part[f"{metric}_mean"].to_numpy(float), part[f"{metric}_low"].clip(lo, hi).to_numpy(float),
            part[f"{metric}_high"].clip(lo, hi).to_numpy(float))


def _finish(ax, metric: str) -> None:
    """Title, chance line (accuracies, fixed 0..1 axis) or zero line (the rest)."""
    if "acc" in metric:
        ax.axhline(CHANCE, color="0.35", ls="--", lw=1.1, zorder=0.5, label="chance")
        ax.set_ylim(-0.02, 1.04)
    else:
        ax.axhline(0.0, color="0.35", ls=":", lw=1.1, zorder=0.5)
    ax.set_title(LABELS.get(metric, metric), fontsize=12)


def _legend(ax) -> tuple:
    """The panel's legend entries with the chance line last."""
    return tuple(zip(*sorted(zip(*ax.get_legend_handles_labels()), key=lambda hl: hl[1] == "chance")))


def plot_vs_bias(summary: pd.DataFrame, metrics: list, variants: Iterable[str] = CAPTION_VARIANTS,
                 baseline: bool = True, ncols: Optional[int] = None, title: str = "") -> Figure:
    """One panel per metric against bias: a line per caption variant (pairwise loss) with its 95%
    CI over seeds as a band, and the image-only baseline dashed where it has the metric. Bias
    levels are evenly spaced on the x axis (they bunch up near 1)."""
    methods = [("pairwise", v) for v in variants] + ([("image_only", "image_only")] if baseline else [])
    levels = sorted(summary["bias"].unique())
    ncols = ncols or len(metrics)
    nrows = math.ceil(len(metrics) / ncols)
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.3 * nrows + 0.6), layout="constrained",
                                 squeeze=False, sharex=True)
        for ax, metric in zip(axes.flat, metrics):
            for loss, variant in methods:
                x, mean, low, high = _series(summary, loss, variant, metric, levels)
                if np.isnan(mean).all():
                    continue
                label, colour = VARIANTS[variant]
                dashed = variant == "image_only"
                ax.plot(x, mean, color=colour, lw=2, ls="--" if dashed else "-", marker=LOSS_MARKERS[loss], ms=5,
                        label=label)
                ax.fill_between(x, low, high, color=colour, alpha=0.12 if dashed else 0.2, lw=0)
            _finish(ax, metric)
            ax.set_xticks(range(len(levels)), [f"{b:g}" for b in levels])
        for ax in axes[-1]:
            ax.set_xlabel("bias (share of minority images removed)", fontsize=10)
        for ax in list(axes.flat)[len(metrics):]:
            ax.remove()
        handles, labels = _legend(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", fontsize=10,
                   ncol=len(labels) if ncols > 2 else math.ceil(len(labels) / 2))
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig


def plot_headline(summary: pd.DataFrame) -> Figure:
    return plot_vs_bias(summary, ["worst_group_acc", "average_acc", "gap"],
                        title="Zero-shot accuracy on the balanced test set (mean and 95% CI over seeds)")


def plot_probes(summary: pd.DataFrame) -> Figure:
    return plot_vs_bias(summary, ["probe_background_acc", "probe_animal_acc"],
                        title="Linear probes on the frozen image embeddings")


def plot_silhouettes(summary: pd.DataFrame) -> Figure:
    return plot_vs_bias(summary, ["silhouette_background_image", "silhouette_background_text",
                                  "silhouette_animal_image", "silhouette_animal_text"], ncols=2,
                        title="How the embeddings cluster (silhouette, cosine distance)")


def plot_intervals(summary: pd.DataFrame, metrics: list, methods: list, levels: Optional[Iterable] = None,
                   title: str = "") -> Figure:
    """Dodged points with 95% CI error bars: a panel per metric, a group per bias level, a point
    per (loss, variant) method coloured by caption variant and shaped by loss."""
    levels = sorted(summary["bias"].unique()) if levels is None else list(levels)
    width = 0.8 / len(methods)
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.6, 1.2 + 0.3 * len(methods) * len(levels))
                                                          * len(metrics), 4.2), layout="constrained", squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            for k, (loss, variant) in enumerate(methods):
                x, mean, low, high = _series(summary, loss, variant, metric, levels)
                ax.errorbar(x - 0.4 + (k + 0.5) * width, mean, yerr=[mean - low, high - mean], ls="",
                            marker=LOSS_MARKERS[loss], ms=7, color=VARIANTS[variant][1], capsize=3, lw=1.4,
                            label=method_label(loss, variant))
            _finish(ax, metric)
            ax.set_xticks(range(len(levels)), [f"bias {b:g}" for b in levels])
            ax.set_xlim(-0.5, len(levels) - 0.5)
            ax.grid(axis="x", visible=False)
        handles, labels = _legend(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=10)
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig


def plot_losses(summary: pd.DataFrame) -> Figure:
    levels = sorted(summary[summary["loss"].isin(["clip", "siglip"])]["bias"].unique())
    return plot_intervals(summary, ["worst_group_acc"], LOSS_METHODS, levels,
                          title="Losses and the image-only baseline (mean and 95% CI over seeds)")


def plot_variability(summary: pd.DataFrame) -> Figure:
    levels = sorted(summary[summary["variant"] == "descriptive_templates_4"]["bias"].unique())
    return plot_intervals(summary, ["worst_group_acc", "average_acc"], VARIABILITY_METHODS, levels,
                          title="One caption template or four")
