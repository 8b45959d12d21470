"""The learning curves' figures: the caption effect against the budget, and convergence at bias 0."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
import matplotlib.pyplot as plt

from ...design import ARMS
from ...runs.metric_registry import label_of
from .style import PAGE_WIDTH, STYLE

MEASURE_COLOURS = {"worst_group_acc": "#0173b2", "probe_animal_acc": "#de8f05"}


def _budget_axis(ax, budgets, study_budget: int) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
    ax.set_xlim(min(budgets) / 1.4, max(budgets) * 1.4)
    ax.minorticks_off()
    ax.axvline(study_budget, color="0.6", lw=1.0, ls=":", zorder=0)
    ax.set_xlabel("training steps")
    ax.grid(axis="x", visible=False)


def plot_effect_by_budget(effects: pd.DataFrame, study_budget: int) -> Figure:
    """One panel per bias level: arm minus baseline (paired by seed, 95% t interval) on each measure
    of `effects` (`analysis.curves.effect_by_budget`) against the training budget; the dotted line is
    the study's budget."""
    levels = sorted(effects["bias"].unique())
    budgets = sorted(effects["steps"].unique())
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(levels), figsize=(PAGE_WIDTH, 3.9), sharey=True,
                                 layout="constrained")
        axes = np.atleast_1d(axes)
        for ax, bias in zip(axes, levels):
            for offset, (metric, part) in zip((-0.04, 0.04), effects[effects["bias"] == bias].groupby(
                    "measure", sort=False)):
                part = part.sort_values("steps")
                x = part["steps"].to_numpy(float) * 2 ** offset
                est = part["estimate"].to_numpy(float)
                err = np.nan_to_num(np.vstack([est - part["low"].to_numpy(float), part["high"].to_numpy(float) - est]))
                ax.errorbar(x, est, yerr=err, marker="o", ms=5, capsize=3, lw=1.5,
                            color=MEASURE_COLOURS.get(metric, "0.3"), label=label_of(metric))
            ax.axhline(0.0, color="0.35", ls="--", lw=1.0, zorder=0.5)
            _budget_axis(ax, budgets, study_budget)
            ax.set_title(f"bias {bias:g}")
        axes[0].set_ylabel("descriptive minus\n\"horse\" / \"camel\"")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=10)
    return fig


def plot_convergence(means: pd.DataFrame, own: dict, study_budget: int) -> Figure:
    """Bias-0 validation average accuracy (seed means) of each curve arm against the budget, its own
    converged budget ringed (`analysis.curves.validation_means`, `own_budgets`)."""
    budgets = sorted(means["steps"].unique())
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 3.9), layout="constrained")
        for arm, part in means.groupby("arm", sort=False):
            part = part.sort_values("steps")
            spec = ARMS[arm]
            ax.plot(part["steps"], part["val_average_acc"], marker=spec.marker, ms=6, lw=1.6, color=spec.colour,
                    label=spec.label)
            chosen = part[part["steps"] == own.get(arm)]
            if len(chosen):
                ax.plot(chosen["steps"], chosen["val_average_acc"], ls="", marker="o", ms=14, mfc="none",
                        mec=spec.colour, mew=1.6)
        _budget_axis(ax, budgets, study_budget)
        ax.set_ylabel("validation accuracy, bias 0\n(average of the four groups)")
        ax.legend(loc="lower right", fontsize=10)
    return fig
