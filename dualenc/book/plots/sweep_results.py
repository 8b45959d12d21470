"""Figures of the tables the sweeps write: the bias sweep's results (`results.summarise`: a mean
and 95% interval over seeds per setting) and the step-budget calibration (`calibration`).

Bias levels are evenly spaced on the x axis (they bunch up near 1); only the base training-set
size is drawn except in `plot_data_size`.
"""
from __future__ import annotations

import math
import textwrap
from typing import Iterable, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ...design import ARMS, QUESTION, arm_tables
from ...runs.metric_registry import chance_of, label_of
from ...analysis.results import arm_label, at_size, bounds
from .style import PAGE_WIDTH, STYLE

# probe-metric suffix -> (label, colour, line style) of the reference probes drawn beside a probe
PROBE_REFERENCES = {"_pixels": ("raw pixels", "0.2", ":"), "_random": ("random-init encoder", "0.55", "-.")}


def _series(summary: pd.DataFrame, arm: str, metric: str, levels: list) -> tuple:
    """x (index of each row's bias in `levels`), mean, and the interval (inside the metric's range)."""
    part = summary[summary["arm"] == arm].sort_values("bias")
    part = part[np.array([bool(np.isclose(b, levels).any()) for b in part["bias"]], dtype=bool)]
    x = np.array([int(np.argmin(np.abs(np.asarray(levels) - b))) for b in part["bias"]])
    lo, hi = bounds(metric)
    return (x, part[f"{metric}_mean"].to_numpy(float), part[f"{metric}_low"].clip(lo, hi).to_numpy(float),
            part[f"{metric}_high"].clip(lo, hi).to_numpy(float))


def _finish_panel(ax, metric: str) -> None:
    """Title, chance line (a measure with a chance level: fixed axis over its range) or zero line."""
    chance = chance_of(metric)
    if chance is not None:
        ax.axhline(chance, color="0.35", ls="--", lw=1.1, zorder=0.5, label="chance")
        lo, hi = bounds(metric)
        ax.set_ylim(lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo))
    else:
        ax.axhline(0.0, color="0.35", ls=":", lw=1.1, zorder=0.5)
    ax.set_title(textwrap.fill(label_of(metric), 30), fontsize=11)


def _legend_chance_last(ax) -> tuple:
    """The panel's legend entries with the chance line last."""
    return tuple(zip(*sorted(zip(*ax.get_legend_handles_labels()), key=lambda hl: hl[1] == "chance")))


def plot_vs_bias(summary: pd.DataFrame, metrics: list, arms: Optional[Iterable[str]] = None,
                 baseline: bool = True, ncols: Optional[int] = None, title: str = "",
                 references: bool = False) -> Figure:
    """One panel per metric against bias: a line per arm (default: the caption arms and image-only,
    `design.arm_tables`) with its 95% interval over seeds as a band; the image-only baseline
    (`baseline`) dashed where it has the metric. references=True adds, for a probe, the same probe
    on raw pixels and on a randomly initialised encoder (read from the "horse" / "camel" runs)."""
    summary = at_size(summary, None)
    arms = [a for a in (arm_tables()["captions"] if arms is None else arms)
            if (summary["arm"] == a).any() and (baseline or ARMS[a].loss != "image_only")]
    levels = sorted(summary["bias"].unique())
    ncols = min(ncols or len(metrics), 2)
    nrows = math.ceil(len(metrics) / ncols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH if ncols > 1 else PAGE_WIDTH * 0.75,
                                                        3.2 * nrows + 0.9), layout="constrained",
                                 squeeze=False, sharex=True)
        for ax, metric in zip(axes.flat, metrics):
            for arm in arms:
                if f"{metric}_mean" not in summary:
                    continue
                x, mean, low, high = _series(summary, arm, metric, levels)
                if np.isnan(mean).all():
                    continue
                colour = ARMS[arm].colour
                dashed = ARMS[arm].loss == "image_only"
                ax.plot(x, mean, color=colour, lw=2, ls="--" if dashed else "-", marker=ARMS[arm].marker, ms=5,
                        label=ARMS[arm].label)
                ax.fill_between(x, low, high, color=colour, alpha=0.12 if dashed else 0.2, lw=0)
            for suffix, (label, colour, style) in PROBE_REFERENCES.items():
                if references and f"{metric}{suffix}_mean" in summary:
                    x, mean, _, _ = _series(summary, QUESTION[1], metric + suffix, levels)
                    if not np.isnan(mean).all():
                        ax.plot(x, mean, color=colour, lw=1.6, ls=style, label=label)
            _finish_panel(ax, metric)
            ax.set_xticks(range(len(levels)), [f"{b:g}" for b in levels])
            ax.tick_params(axis="x", labelrotation=45 if len(levels) > 7 else 0)
        for ax in axes[-1]:
            ax.set_xlabel("bias (share of minority images removed)", fontsize=10)
        for ax in list(axes.flat)[len(metrics):]:
            ax.remove()
        handles, labels = _legend_chance_last(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", fontsize=10, ncol=min(3, math.ceil(len(labels) / 2)))
        if title:
            fig.suptitle(textwrap.fill(title, 60), fontweight="bold")
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


def plot_intervals(summary: pd.DataFrame, metrics: list, arms: list, levels: Optional[Iterable] = None,
                   title: str = "") -> Figure:
    """Dodged points with 95% interval bars: a panel per metric, a group per bias level, a point
    per arm coloured by its caption setting and shaped by its loss (base size only)."""
    summary = at_size(summary, None)
    levels = sorted(summary["bias"].unique()) if levels is None else list(levels)
    width = 0.8 / len(arms)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(metrics), 1, figsize=(min(PAGE_WIDTH, max(4.6, 1.2 + 0.3 * len(arms) * len(levels))),
                                                           3.4 * len(metrics) + 1.2), layout="constrained", squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            for k, arm in enumerate(arms):
                x, mean, low, high = _series(summary, arm, metric, levels)
                ax.errorbar(x - 0.4 + (k + 0.5) * width, mean, yerr=[mean - low, high - mean], ls="",
                            marker=ARMS[arm].marker, ms=7, color=ARMS[arm].colour, capsize=3, lw=1.4,
                            label=arm_label(arm))
            _finish_panel(ax, metric)
            if not levels:  # this part of the grid has not been run: say so instead of an empty axis
                ax.text(0.5, 0.5, "not in the results table yet", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.set_xticks(range(len(levels)), [f"bias {b:g}" for b in levels])
            ax.set_xlim(-0.5, len(levels) - 0.5)
            ax.grid(axis="x", visible=False)
        handles, labels = _legend_chance_last(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=10)
        if title:
            fig.suptitle(textwrap.fill(title, 60), fontweight="bold")
    return fig


def plot_losses(summary: pd.DataFrame) -> Figure:
    summary = at_size(summary, None)
    table = arm_tables()["losses"]
    others = [a for a in table if ARMS[a].loss not in ("pairwise", "image_only")]
    levels = sorted(summary[summary["arm"].isin(others)]["bias"].unique())
    arms = [a for a in table if (summary["arm"] == a).any()]
    return plot_intervals(summary, ["worst_group_acc"], arms, levels,
                          title="Losses and the image-only baseline (mean and 95% interval over seeds)")


def plot_variability(summary: pd.DataFrame) -> Figure:
    summary = at_size(summary, None)
    arms = arm_tables()["variability"]
    levels = sorted(summary[summary["arm"].isin(arms[len(QUESTION):])]["bias"].unique())
    return plot_intervals(summary, ["worst_group_acc", "average_acc"], arms, levels,
                          title="One caption template or four")


def plot_data_size(summary: pd.DataFrame, metric: str = "worst_group_acc",
                   arms: tuple = QUESTION[::-1]) -> Figure:
    """A panel per bias level of the data-size family: `metric` against training images per group
    (evenly spaced), a line per arm with its 95% interval band."""
    pairwise = summary[summary["arm"].isin(arms)]
    sizes = sorted(pairwise["n_train_per_group"].unique())
    per_level = [b for b in sorted(pairwise["bias"].unique())
                 if all(((pairwise["arm"] == a) & np.isclose(pairwise["bias"], b)).sum() == len(sizes)
                        for a in arms)]
    lo, hi = bounds(metric)
    if len(sizes) < 2:
        per_level = []
    with plt.rc_context(STYLE):
        columns = min(2, max(1, len(per_level)))
        rows = math.ceil(max(1, len(per_level)) / columns)
        fig, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH, 2.9 * rows + 1.0),
                                 layout="constrained", squeeze=False, sharey=True)
        if not per_level:
            axes[0, 0].text(0.5, 0.5, "this grid has no data-size runs", ha="center", va="center")
            axes[0, 0].set_axis_off()
            return fig
        for ax, b in zip(axes.flat, per_level):
            for arm in arms:
                part = pairwise[(pairwise["arm"] == arm) & np.isclose(pairwise["bias"], b)].sort_values(
                    "n_train_per_group")
                x = [sizes.index(n) for n in part["n_train_per_group"]]
                colour = ARMS[arm].colour
                ax.plot(x, part[f"{metric}_mean"], color=colour, lw=2, marker="o", ms=5, label=ARMS[arm].label)
                ax.fill_between(x, part[f"{metric}_low"].clip(lo, hi), part[f"{metric}_high"].clip(lo, hi),
                                color=colour, alpha=0.2, lw=0)
            _finish_panel(ax, metric)
            ax.set_title(f"bias {b:g}", fontsize=12)
            ax.set_xticks(range(len(sizes)), [f"{n:d}" for n in sizes])
            ax.set_xlabel("training images per group", fontsize=10)
        for ax in list(axes.flat)[len(per_level):]:
            ax.remove()
        for row in axes:
            row[0].set_ylabel(textwrap.fill(label_of(metric), 20))
        handles, labels = _legend_chance_last(axes.flat[0])
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=10)
        fig.suptitle(textwrap.fill(f"{label_of(metric).capitalize()} against the training-set size", 60),
                     fontweight="bold")
    return fig


def plot_differences(table: pd.DataFrame, title: str = "") -> Figure:
    """Paired differences (mean and 95% t interval over seeds) against bias, a series per measure:
    a table from `verdicts.caption_comparison` (columns measure, label, bias, estimate, low, high,
    outcome). An uninformative comparison (both arms at a floor or a ceiling) is drawn hollow."""
    levels = sorted(table["bias"].unique())
    measures = list(dict.fromkeys(table["measure"]))
    width = 0.8 / max(1, len(measures))
    colours = sns.color_palette("dark", len(measures))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 5.2), layout="constrained")
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
        fig.legend(loc="outside lower center", ncol=1, fontsize=9)
        if title:
            fig.suptitle(textwrap.fill(title, 60), fontweight="bold")
    return fig


def plot_calibration(table, metric: str = "val_average_acc", chosen: dict | None = None,
                     bar: float | None = None) -> Figure:
    """Validation accuracy at bias 0 against the step budget (`calibration.read_calibration`): a
    panel per candidate protocol, a line per method (mean over the calibration seeds, the seeds'
    range as a band); the chosen budget of the chosen candidate and the convergence `bar` marked."""
    candidates = list(dict.fromkeys(table["candidate"]))
    methods = list(dict.fromkeys(table["method"]))
    colours = dict(zip(methods, sns.color_palette("colorblind", len(methods))))
    with plt.rc_context(STYLE):
        columns = min(2, len(candidates))   # 7.2 inches wide: shown at about its own size in the book
        rows = -(-len(candidates) // columns)
        spare = rows * columns > len(candidates)   # an empty slot holds the legend
        fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.7 * rows + (0 if spare else 1.1)),
                                 sharey=True, squeeze=False, layout="constrained")
        for ax in axes.flat[len(candidates):]:
            ax.set_axis_off()
        for ax, candidate in zip(axes.flat, candidates):
            part = table[table["candidate"] == candidate]
            for method in methods:
                stats = part[part["method"] == method].groupby("steps")[metric].agg(["mean", "min", "max"])
                if stats.empty:
                    continue
                ax.plot(stats.index, stats["mean"], marker="o", ms=4, color=colours[method], label=arm_label(method))
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[method], alpha=0.15, lw=0)
            if chosen and chosen["candidate"] == candidate:
                ax.axvline(chosen["steps"], color="0.3", ls="--", lw=1.2, label="chosen budget")
            if bar is not None:
                ax.axhline(bar, color="0.5", ls=":", lw=1.2, label="convergence bar")
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(part["steps"].unique()), [str(s) for s in sorted(part["steps"].unique())])
            ax.tick_params(labelsize=9)
            ax.set_xlabel("optimizer steps", fontsize=9)
            ax.set_title(candidate, fontsize=9.5)
        for row in axes:
            row[0].set_ylabel(label_of(metric).replace("validation accuracy, ", "") + "\n(validation, bias 0)",
                              fontsize=9)
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in list(axes.flat)[1:len(candidates)]:
            for h, l in zip(*ax.get_legend_handles_labels()):
                if l not in labels:
                    handles.append(h)
                    labels.append(l)
        if spare:
            axes.flat[-1].legend(handles, labels, loc="center", fontsize=9, frameon=False)
        else:
            fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=9)
    return fig
