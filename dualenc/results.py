"""The sweep's results table: tidy rows, intervals over seeds, tables and figures.

Everything reads the results table (`study.write_results`: one row per run) and recomputes nothing.
Two kinds of interval, both 95%:

- a *level* (one setting's mean over its seeds) gets a percentile bootstrap interval over seeds
  (`metrics.bootstrap_ci`: 10 000 resamples from a fixed RNG seed, so it is the same on every
  build). It never leaves the range of the values, so an accuracy's interval stays inside [0, 1].
- a *difference* of two settings is taken seed by seed (a seed is one data draw, shared by both
  arms) and gets a Student-t interval over those paired differences (`metrics.mean_ci`): the t
  interval is the better-calibrated choice for 5 to 10 seeds, and a difference may be negative.

The decisions made from these intervals (supported, contradicted, inconclusive, uninformative)
live in `dualenc.verdicts`.
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
from .metrics import bootstrap_ci, mean_ci, summarise_seeds
from .sweep import CAPTION_VARIANTS as SWEEP_CAPTION_VARIANTS

CHANCE = 0.5
PREFIXES = ("", "zs_class_", "zs_pooled_")   # headline prompts, "horse" / "camel", the four captions
CAPTION_VARIANTS = tuple(SWEEP_CAPTION_VARIANTS)   # the pairwise loss's caption variants (see `variant_of`)
_PALETTE = sns.color_palette("colorblind")
VARIANTS = {  # variant -> (label, colour)
    "undescriptive": ('"horse" / "camel"', _PALETTE[0]),
    "descriptive": ("descriptive", _PALETTE[1]),
    "descriptive_share_0.5": ("descriptive, share 0.5", _PALETTE[2]),
    "background": ("background only", _PALETTE[3]),
    "descriptive_templates_4": ("descriptive, 4 templates", _PALETTE[4]),
    "image_only": ("image-only baseline", "0.45"),
}
LOSS_MARKERS = {"pairwise": "o", "clip": "s", "siglip": "^", "image_only": "D"}
GROUP_METRICS = [f"acc_{group_name(*g)}" for g in MAJORITY_GROUPS + MINORITY_GROUPS]
METRICS = (*[f"{p}{m}" for p in PREFIXES for m in ("worst_group_acc", "average_acc", "gap", "majority_acc",
                                                    "minority_acc", *GROUP_METRICS)],
           *[f"probe_{k}_acc{s}" for k in ("animal", "background") for s in ("", "_pixels", "_random")],
           *[f"silhouette_{k}_{e}" for e in ("image", "text") for k in ("animal", "background", "group")])
LABELS = {
    "worst_group_acc": "worst-group accuracy", "average_acc": "average accuracy", "gap": "majority − minority",
    "majority_acc": "majority-group accuracy", "minority_acc": "minority-group accuracy",
    "acc_horse_desert": "accuracy on horse in desert",
    "zs_class_worst_group_acc": 'worst-group accuracy, prompts "horse" / "camel"',
    "zs_pooled_worst_group_acc": "worst-group accuracy, the four descriptive captions",
    "zs_class_majority_acc": 'majority-group accuracy, prompts "horse" / "camel"',
    "zs_pooled_majority_acc": "majority-group accuracy, the four descriptive captions",
    "probe_animal_acc": "probe accuracy: animal", "probe_background_acc": "probe accuracy: background",
    "probe_animal_acc_pixels": "probe accuracy: animal, raw pixels",
    "probe_animal_acc_random": "probe accuracy: animal, random-init encoder",
    "probe_background_acc_pixels": "probe accuracy: background, raw pixels",
    "probe_background_acc_random": "probe accuracy: background, random-init encoder",
    **{f"silhouette_{k}_{e}": f"silhouette by {k}, {e}" for e in ("image", "text")
       for k in ("animal", "background", "group")}}
# A setting is (loss, variant, bias, n_train_per_group); its rows are its seeds.
SETTING = ("loss", "variant", "bias", "n_train_per_group")


def bias_key(bias: float) -> str:
    """Glue-name fragment of a bias level: 0.75 -> "b075"."""
    return f"b{round(bias * 100):03d}"


def variant_of(loss: str, captions: str, share: float, templates: int) -> str:
    """The caption variant of a run: "undescriptive", "descriptive", "descriptive_share_0.5",
    "descriptive_templates_4", "background" (captions naming only the background) or "image_only"."""
    if loss == "image_only":
        return "image_only"
    if captions != "descriptive":
        return captions
    return ("descriptive" + (f"_share_{share:g}" if share < 1 else "")
            + (f"_templates_{int(templates)}" if templates > 1 else ""))


def bounds(metric: str) -> tuple:
    """The range a metric can take: gaps, silhouettes [-1, 1]; accuracies [0, 1]."""
    return (-1.0, 1.0) if metric.endswith("gap") or "silhouette" in metric else (0.0, 1.0)


def tidy(table: pd.DataFrame, configs: Optional[Iterable] = None) -> pd.DataFrame:
    """The results table with a `variant` column and majority / minority accuracy for every prompt
    set it has (`majority_acc`, `zs_class_majority_acc`, ...); one row per run. With `configs` (a
    grid), only the grid's runs, and every one of them must be there (else ValueError)."""
    df = table.drop_duplicates("run").copy() if "run" in table else table.copy()
    if configs is not None:
        wanted = {config_hash(c) for c in configs}
        missing = sorted(wanted - set(df["run"]))
        if missing:
            raise ValueError(f"{len(missing)} of the grid's {len(wanted)} runs are not in the results "
                             f"table (e.g. {missing[:3]}): run the sweep into this run store first")
        df = df[df["run"].isin(wanted)]
    df["variant"] = [variant_of(*r) for r in
                     df[["loss", "captions", "descriptive_share", "caption_templates"]].itertuples(index=False)]
    for prefix in PREFIXES:
        for role, groups in (("majority", MAJORITY_GROUPS), ("minority", MINORITY_GROUPS)):
            columns = [f"{prefix}acc_{group_name(*g)}" for g in groups]
            if set(columns) <= set(df.columns):
                df[f"{prefix}{role}_acc"] = df[columns].mean(axis=1)
    return df.reset_index(drop=True)


def summarise(df: pd.DataFrame, metrics: Iterable[str] = METRICS) -> pd.DataFrame:
    """Mean and 95% bootstrap interval over seeds of each setting (loss, variant, bias and, where the
    table has it, n_train_per_group): <metric>_mean / _low / _high, n_seeds."""
    by = [c for c in SETTING if c in df.columns]
    return summarise_seeds(df, by, [m for m in metrics if m in df.columns])


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


def paired_difference(df: pd.DataFrame, metric: str, a: dict, b: dict, metric_b: Optional[str] = None) -> dict:
    """`metric` of setting a minus `metric_b` (default: the same metric) of setting b, seed by seed,
    with the 95% Student-t interval of the paired differences (clipped to the widest difference the
    range allows). Both settings must have the same seeds (else ValueError)."""
    x, y = by_seed(df, metric, a), by_seed(df, metric_b or metric, b)
    if set(x.index) != set(y.index):
        raise ValueError(f"cannot pair {a} (seeds {sorted(x.index)}) with {b} (seeds {sorted(y.index)})")
    low, high = bounds(metric)
    out = _result((x - y.loc[x.index]).to_numpy(), mean_ci, (low - high, high - low))
    out.update({"mean_a": float(x.mean()), "mean_b": float(y.mean())})
    return out


def interval_text(mean: float, low: float, high: float, digits: int = 3, signed: bool = False) -> str:
    """"mean [low, high]"; "mean" alone for one seed (no interval); "n/a" for no runs."""
    f = f"{'+' if signed else ''}.{digits}f"
    if math.isnan(mean) or math.isnan(low):
        return "n/a" if math.isnan(mean) else format(mean, f)
    return f"{format(mean, f)} [{format(low, f)}, {format(high, f)}]"


# ---------------------------------------------------------------- tables


def method_label(loss: str, variant: str) -> str:
    return VARIANTS[variant][0] if loss == "image_only" else f"{loss}, {VARIANTS[variant][0]}"


LOSS_METHODS = [(loss, v) for loss in ("pairwise", "clip", "siglip") for v in ("undescriptive", "descriptive")] + [
    ("image_only", "image_only")]
VARIABILITY_METHODS = [("pairwise", "undescriptive"), ("pairwise", "descriptive"),
                       ("pairwise", "descriptive_templates_4")]


def _at_size(summary: pd.DataFrame, n: Optional[int]) -> pd.DataFrame:
    """The summary's rows of one training-set size (the base size by default)."""
    if "n_train_per_group" not in summary:
        return summary
    n = base_size(summary) if n is None else n
    return summary[summary["n_train_per_group"] == n]


def wide_table(summary: pd.DataFrame, metric: str, methods: list, levels: Optional[Iterable] = None,
               digits: int = 2, n: Optional[int] = None) -> pd.DataFrame:
    """Rows: (loss, variant) methods; columns: bias levels (by default those every method present
    was run at); cells "mean [low, high]" or "not run". One training-set size (the base one)."""
    summary = _at_size(summary, n)
    parts = [summary[(summary["loss"] == loss) & (summary["variant"] == v)] for loss, v in methods]
    if levels is None:
        present = [set(p["bias"]) for p in parts if len(p)]
        levels = sorted(set.intersection(*present)) if present else []
    rows = {}
    for (loss, variant), part in zip(methods, parts):
        cells = {}
        for b in levels:
            hit = part[np.isclose(part["bias"], b)][[f"{metric}_{s}" for s in ("mean", "low", "high")]]
            cells[f"bias {b:g}"] = interval_text(*hit.iloc[0], digits=digits) if len(hit) else "not run"
        rows[method_label(loss, variant)] = cells
    return pd.DataFrame(rows).T


# ---------------------------------------------------------------- figures


def _series(summary: pd.DataFrame, loss: str, variant: str, metric: str, levels: list) -> tuple:
    """x (index of each row's bias in `levels`), mean, and the interval (inside the metric's range)."""
    part = summary[(summary["loss"] == loss) & (summary["variant"] == variant)].sort_values("bias")
    part = part[np.array([bool(np.isclose(b, levels).any()) for b in part["bias"]], dtype=bool)]
    x = np.array([int(np.argmin(np.abs(np.asarray(levels) - b))) for b in part["bias"]])
    lo, hi = bounds(metric)
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


REFERENCES = {"_pixels": ("raw pixels", "0.2", ":"), "_random": ("random-init encoder", "0.55", "-.")}


def plot_vs_bias(summary: pd.DataFrame, metrics: list, variants: Iterable[str] = CAPTION_VARIANTS,
                 baseline: bool = True, ncols: Optional[int] = None, title: str = "",
                 references: bool = False) -> Figure:
    """One panel per metric against bias: a line per caption variant (pairwise loss) with its 95%
    interval over seeds as a band, and the image-only baseline dashed where it has the metric.
    references=True adds, for a probe, the same probe on raw pixels and on a randomly initialised
    encoder (read from the undescriptive runs). Bias levels are evenly spaced on the x axis (they
    bunch up near 1). Only the base training-set size is drawn."""
    summary = _at_size(summary, None)
    variants = [v for v in variants if (summary["variant"] == v).any()]
    methods = [("pairwise", v) for v in variants] + ([("image_only", "image_only")] if baseline else [])
    levels = sorted(summary["bias"].unique())
    ncols = ncols or len(metrics)
    nrows = math.ceil(len(metrics) / ncols)
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols, 3.3 * nrows + 0.6), layout="constrained",
                                 squeeze=False, sharex=True)
        for ax, metric in zip(axes.flat, metrics):
            for loss, variant in methods:
                if f"{metric}_mean" not in summary:
                    continue
                x, mean, low, high = _series(summary, loss, variant, metric, levels)
                if np.isnan(mean).all():
                    continue
                label, colour = VARIANTS[variant]
                dashed = variant == "image_only"
                ax.plot(x, mean, color=colour, lw=2, ls="--" if dashed else "-", marker=LOSS_MARKERS[loss], ms=5,
                        label=label)
                ax.fill_between(x, low, high, color=colour, alpha=0.12 if dashed else 0.2, lw=0)
            for suffix, (label, colour, style) in REFERENCES.items():
                if references and f"{metric}{suffix}_mean" in summary:
                    x, mean, _, _ = _series(summary, "pairwise", "undescriptive", metric + suffix, levels)
                    if not np.isnan(mean).all():
                        ax.plot(x, mean, color=colour, lw=1.6, ls=style, label=label)
            _finish(ax, metric)
            ax.set_xticks(range(len(levels)), [f"{b:g}" for b in levels])
            ax.tick_params(axis="x", labelrotation=45 if len(levels) > 7 else 0)
        for ax in axes[-1]:
            ax.set_xlabel("bias (share of minority images removed)", fontsize=10)
        for ax in list(axes.flat)[len(metrics):]:
            ax.remove()
        handles, labels = _legend(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", fontsize=10,
                   ncol=min(len(labels), 4) if ncols > 2 else math.ceil(len(labels) / 2))
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig


def plot_headline(summary: pd.DataFrame) -> Figure:
    return plot_vs_bias(summary, ["worst_group_acc", "majority_acc", "average_acc"],
                        title="Zero-shot accuracy on the balanced test set (mean and 95% interval over seeds)")


def plot_prompt_sets(summary: pd.DataFrame) -> Figure:
    """Worst-group accuracy with the same prompts for every caption variant: "horse" / "camel", and
    the four descriptive captions."""
    return plot_vs_bias(summary, ["zs_class_worst_group_acc", "zs_pooled_worst_group_acc"], baseline=False,
                        title="Worst-group accuracy, every model asked with the same prompts")


def plot_probes(summary: pd.DataFrame) -> Figure:
    return plot_vs_bias(summary, ["probe_animal_acc", "probe_background_acc"], references=True,
                        title="Linear probes on the frozen image embeddings, beside raw pixels and a random encoder")


def plot_silhouettes(summary: pd.DataFrame) -> Figure:
    return plot_vs_bias(summary, ["silhouette_background_image", "silhouette_background_text",
                                  "silhouette_animal_image", "silhouette_animal_text"], ncols=2,
                        title="How the embeddings cluster (silhouette, cosine distance)")


def plot_intervals(summary: pd.DataFrame, metrics: list, methods: list, levels: Optional[Iterable] = None,
                   title: str = "") -> Figure:
    """Dodged points with 95% interval bars: a panel per metric, a group per bias level, a point
    per (loss, variant) method coloured by caption variant and shaped by loss (base size only)."""
    summary = _at_size(summary, None)
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
            if not levels:  # this part of the grid has not been run: say so instead of an empty axis
                ax.text(0.5, 0.5, "not in the results table yet", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.set_xticks(range(len(levels)), [f"bias {b:g}" for b in levels])
            ax.set_xlim(-0.5, len(levels) - 0.5)
            ax.grid(axis="x", visible=False)
        handles, labels = _legend(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=10)
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig


def plot_losses(summary: pd.DataFrame) -> Figure:
    summary = _at_size(summary, None)
    levels = sorted(summary[summary["loss"].isin(["clip", "siglip"])]["bias"].unique())
    methods = [m for m in LOSS_METHODS if ((summary["loss"] == m[0]) & (summary["variant"] == m[1])).any()]
    return plot_intervals(summary, ["worst_group_acc"], methods, levels,
                          title="Losses and the image-only baseline (mean and 95% interval over seeds)")


def plot_variability(summary: pd.DataFrame) -> Figure:
    summary = _at_size(summary, None)
    levels = sorted(summary[summary["variant"] == "descriptive_templates_4"]["bias"].unique())
    return plot_intervals(summary, ["worst_group_acc", "average_acc"], VARIABILITY_METHODS, levels,
                          title="One caption template or four")


def plot_data_size(summary: pd.DataFrame, metric: str = "worst_group_acc",
                   variants: tuple = ("undescriptive", "descriptive")) -> Figure:
    """A panel per bias level of the data-size family: `metric` against training images per group
    (evenly spaced), a line per caption variant (pairwise loss) with its 95% interval band."""
    pw = summary[summary["loss"] == "pairwise"]
    sizes = sorted(pw["n_train_per_group"].unique())
    per_level = [b for b in sorted(pw["bias"].unique())
                 if all(((pw["variant"] == v) & np.isclose(pw["bias"], b)).sum() == len(sizes) for v in variants)]
    lo, hi = bounds(metric)
    if len(sizes) < 2:
        per_level = []
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(1, max(1, len(per_level)), figsize=(3.0 * max(1, len(per_level)) + 0.6, 3.6),
                                 layout="constrained", squeeze=False, sharey=True)
        if not per_level:
            axes[0, 0].text(0.5, 0.5, "this grid has no data-size runs", ha="center", va="center")
            axes[0, 0].set_axis_off()
            return fig
        for ax, b in zip(axes.flat, per_level):
            for v in variants:
                part = pw[(pw["variant"] == v) & np.isclose(pw["bias"], b)].sort_values("n_train_per_group")
                x = [sizes.index(n) for n in part["n_train_per_group"]]
                label, colour = VARIANTS[v]
                ax.plot(x, part[f"{metric}_mean"], color=colour, lw=2, marker="o", ms=5, label=label)
                ax.fill_between(x, part[f"{metric}_low"].clip(lo, hi), part[f"{metric}_high"].clip(lo, hi),
                                color=colour, alpha=0.2, lw=0)
            _finish(ax, metric)
            ax.set_title(f"bias {b:g}", fontsize=12)
            ax.set_xticks(range(len(sizes)), [f"{n:d}" for n in sizes])
            ax.set_xlabel("training images per group", fontsize=10)
        axes.flat[0].set_ylabel(LABELS.get(metric, metric))
        handles, labels = _legend(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=10)
        fig.suptitle(f"{LABELS.get(metric, metric).capitalize()} against the training-set size", fontweight="bold")
    return fig


def plot_differences(table: pd.DataFrame, title: str = "") -> Figure:
    """Paired differences (mean and 95% t interval over seeds) against bias, a series per measure:
    a table from `verdicts.caption_comparison` (columns measure, label, bias, estimate, low, high,
    outcome). An uninformative comparison (both arms at a floor or a ceiling) is drawn hollow."""
    levels = sorted(table["bias"].unique())
    measures = list(dict.fromkeys(table["measure"]))
    width = 0.8 / max(1, len(measures))
    colours = sns.color_palette("dark", len(measures))
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(levels) + 2.5), 4.4), layout="constrained")
        for k, (measure, colour) in enumerate(zip(measures, colours)):
            part = table[table["measure"] == measure]
            x = np.array([levels.index(b) for b in part["bias"]]) - 0.4 + (k + 0.5) * width
            est = part["estimate"].to_numpy(float)
            low, high = part["low"].to_numpy(float), part["high"].to_numpy(float)
            err = np.nan_to_num(np.vstack([est - low, high - est]))
            ax.errorbar(x, est, yerr=err, ls="", marker="none", capsize=2.5, lw=1.3, color=colour)
            hollow = (part["outcome"] == "uninformative").to_numpy()
            ax.plot(x[~hollow], est[~hollow], ls="", marker="o", ms=5.5, color=colour, label=part["label"].iloc[0])
            ax.plot(x[hollow], est[hollow], ls="", marker="o", ms=5.5, markerfacecolor="white", color=colour)
        ax.plot([], [], ls="", marker="o", ms=5.5, markerfacecolor="white", color="0.3",
                label="hollow: uninformative (both arms at a floor or a ceiling)")
        ax.axhline(0.0, color="0.35", ls="--", lw=1.1, zorder=0.5)
        ax.set_xticks(range(len(levels)), [f"{b:g}" for b in levels])
        ax.set_xlabel("bias (share of minority images removed)", fontsize=10)
        ax.set_ylabel("difference, paired by seed")
        ax.grid(axis="x", visible=False)
        fig.legend(loc="outside lower center", ncol=2, fontsize=9)
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig
