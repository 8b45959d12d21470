"""Figures of one run, or of a few runs side by side: training curve and per-group accuracy.

Every function draws into a given Axes (or makes its own figure) and returns it; none calls plt.show.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ...config import GROUP_NAMES
from ...runs.metric_registry import CHANCE
from .style import GROUP_COLOURS, GROUP_LABELS, PAGE_WIDTH, STYLE, new_axes


def _log_label(value: float, _pos=None) -> str:
    """Plain tick labels on a log axis, only at 1, 2 and 5 times a power of ten."""
    if value <= 0:
        return ""
    leading = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:.2g}" if round(leading, 6) in (1.0, 2.0, 5.0) else ""


def plot_training_curve(history: list[dict], ax: Axes | None = None) -> Axes:
    """Loss per epoch on a log scale (every key containing "loss"); the learning rate, when the
    rows have "lr", on a second axis. Returns the loss Axes."""
    if not history:
        raise ValueError("history is empty: expected rows with 'epoch' and 'loss'")
    missing = [k for k in ("epoch", "loss") if any(k not in row for row in history)]
    if missing:
        raise ValueError(f"every history row needs {missing}: got keys {sorted(history[0])}")
    epoch = np.array([row["epoch"] for row in history], dtype=float)
    loss_keys = ["loss"] + sorted({k for row in history for k in row if "loss" in k and k != "loss"})
    with plt.rc_context(STYLE):
        ax = new_axes(ax, figsize=(5.5, 3.6))
        palette = sns.color_palette("deep")
        lowest, highest = math.inf, -math.inf
        for i, key in enumerate(loss_keys):
            y = np.array([row.get(key, np.nan) for row in history], dtype=float)
            lowest, highest = min(lowest, np.nanmin(y)), max(highest, np.nanmax(y))
            ax.plot(epoch, y, color=palette[i], lw=1.8, label=key.replace("_", " "))
        if lowest > 0:
            ax.set_yscale("log")
            few = highest < 5 * lowest      # a narrow range: label every tick
            label = mticker.FuncFormatter(lambda v, _: f"{v:.2g}" if few else _log_label(v))
            ax.yaxis.set_major_formatter(label)
            ax.yaxis.set_minor_formatter(label)
            ax.grid(True, which="minor", axis="y", linewidth=0.5, color="0.92")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title("Training curve")
        handles, labels = ax.get_legend_handles_labels()
        if all("lr" in row for row in history):
            ax_lr = ax.twinx()
            ax_lr.plot(epoch, [row["lr"] for row in history], color="0.5", ls="--", lw=1.2, label="learning rate")
            ax_lr.set_ylabel("learning rate", color="0.4")
            ax_lr.grid(False)
            ax_lr.yaxis.set_major_locator(mticker.MaxNLocator(nbins=4))
            ax_lr.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:.2g}"))
            h2, l2 = ax_lr.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, loc="center right", fontsize=9)
    return ax


def plot_group_accuracy(group_acc: dict, ax: Axes | None = None, title: str = "") -> Axes:
    """Accuracy bar per group in the original's colours, chance (0.5) dashed, worst group marked."""
    unknown = sorted(set(group_acc) - set(GROUP_NAMES))
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}: allowed are {list(GROUP_NAMES)}")
    names = [g for g in GROUP_NAMES if g in group_acc]
    if not names:
        raise ValueError(f"no group accuracies to plot: expected keys from {list(GROUP_NAMES)}")
    values = np.array([float(group_acc[g]) for g in names])
    worst = int(np.nanargmin(values)) if not np.all(np.isnan(values)) else -1
    with plt.rc_context(STYLE):
        ax = new_axes(ax, figsize=(5.5, 3.8))
        x = np.arange(len(names))
        bars = ax.bar(x, values, width=0.65, color=[GROUP_COLOURS[g] for g in names], alpha=0.8,
                      edgecolor="0.2", linewidth=0.6)
        ax.axhline(CHANCE, color="0.35", ls="--", lw=1.2, label="chance", zorder=0.5)
        for i, (bar, v) in enumerate(zip(bars, values)):
            text = "n/a" if np.isnan(v) else f"{v:.2f}"
            if i == worst:
                bar.set_edgecolor("black")
                bar.set_linewidth(2.2)
                bar.set_hatch("//")
                text += "\nworst"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, 0 if np.isnan(v) else v),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=10, fontweight="bold" if i == worst else "normal",
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9})
        ax.set_xticks(x, [GROUP_LABELS[g].replace(" ", "\n", 1) for g in names], fontsize=9)
        ax.set_ylim(0, 1.18)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("accuracy")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper right", fontsize=9)
        if title:
            ax.set_title(title)
    return ax


def plot_zero_shot(metrics: dict, headline: str = "") -> Figure:
    """Per-group accuracy bars of one run's metrics: one panel per prompt set (the headline set
    first), or the image-only classifier's."""
    sets = [(p, t) for p, t in (("class", 'prompts "horse" / "camel"'), ("pooled", "descriptive captions pooled"))
            if f"zs_{p}_acc_horse_grass" in metrics]
    sets.sort(key=lambda pt: pt[0] != metrics.get("headline_prompts"))
    if not sets:
        sets = [("", "image-only classifier")]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(sets), figsize=(PAGE_WIDTH * (1 if len(sets) > 1 else 0.6), 3.9),
                                 layout="constrained", squeeze=False)
        for ax, (prefix, title) in zip(axes.flat, sets):
            key = f"zs_{prefix}_acc_" if prefix else "acc_"
            mark = " (headline)" if prefix == metrics.get("headline_prompts") and len(sets) > 1 else ""
            plot_group_accuracy({g: metrics[key + g] for g in GROUP_NAMES}, ax=ax, title=title + mark)
        if headline:
            fig.suptitle(headline, fontweight="bold")
    return fig


def plot_group_accuracy_comparison(records: dict) -> Figure:
    """Grouped bars: per-group accuracy of each run (name -> RunRecord) in the original's colours;
    each run's worst group hatched, its value in bold."""
    names = list(records)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.8), layout="constrained")
        width = 0.8 / len(GROUP_NAMES)
        x = np.arange(len(names))
        for k, g in enumerate(GROUP_NAMES):
            values = [records[n].metrics[f"acc_{g}"] for n in names]
            bars = ax.bar(x - 0.4 + (k + 0.5) * width, values, width, color=GROUP_COLOURS[g], alpha=0.8,
                          edgecolor="0.2", linewidth=0.6)
            labels = ax.bar_label(bars, fmt="%.2f", fontsize=8.5, padding=2, rotation=90)
            for bar, label, n in zip(bars, labels, names):
                if records[n].metrics["worst_group"] == g:
                    bar.set_hatch("//")
                    bar.set_edgecolor("black")
                    label.set_fontweight("bold")
        ax.axhline(CHANCE, color="0.35", ls="--", lw=1.2, zorder=0.5)
        ax.set_xticks(x, [f"{n}\nbias {records[n].config.data.bias:g}\n{records[n].config.data.captions}"
                          for n in names])
        ax.set_ylim(0, 1.2)
        ax.set_ylabel("zero-shot accuracy (test)")
        ax.grid(axis="x", visible=False)
        ax.set_title("Per-group accuracy of each experiment")
        handles = [Patch(facecolor=GROUP_COLOURS[g], alpha=0.8, edgecolor="0.2", label=GROUP_LABELS[g])
                   for g in GROUP_NAMES]
        handles += [Patch(facecolor="white", edgecolor="black", hatch="//", label="worst group"),
                    plt.Line2D([], [], color="0.35", ls="--", label="chance")]
        fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=9)
    return fig
