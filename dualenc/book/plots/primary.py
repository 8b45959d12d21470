"""The declared test's figure: the caption effect at each bias level, and the test built on it."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
import matplotlib.pyplot as plt

from ...design import PrimaryTest
from ...runs.metric_registry import label_of
from .style import PAGE_WIDTH, STYLE

HOLM_COLOURS = {"supported": "#029e73", "contradicted": "#d55e00", "inconclusive": "0.35", "uninformative": "0.35"}


def _interval(ax, x: float, r: dict, colour: str, label: str) -> None:
    low, high = r["low"], r["high"]
    err = np.nan_to_num([[r["mean"] - low], [high - r["mean"]]])
    ax.errorbar([x], [r["mean"]], yerr=err, marker="o", ms=7, capsize=4, lw=1.6, color=colour, label=label)


def plot_primary(family: pd.DataFrame, effect: dict, interaction: dict, test: PrimaryTest) -> Figure:
    """Left: the caption effect (arm minus baseline, paired by seed, 95% t interval) at each bias
    level of `family` (`primary.level_family`), coloured by its outcome after Holm's correction,
    with the strong-bias levels shaded. Right: the declared test: the effect at the reference level,
    the effect averaged over the strong-bias levels (`primary.averaged_effect`), and their
    difference (`primary.interaction`)."""
    levels = family["bias"].tolist()
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 4.4), width_ratios=(1.9, 1), layout="constrained")
        strong = [i for i, b in enumerate(levels) if any(np.isclose(b, test.levels))]
        if strong:
            left.axvspan(min(strong) - 0.5, max(strong) + 0.5, color="0.92", zorder=0)
            left.text(np.mean(strong), 0.98, "strong bias", transform=left.get_xaxis_transform(), ha="center",
                      va="top", fontsize=9, color="0.3")
        for outcome, colour in HOLM_COLOURS.items():
            part = family[family["holm_outcome"] == outcome]
            if part.empty:
                continue
            x = np.array([levels.index(b) for b in part["bias"]])
            est = part["estimate"].to_numpy(float)
            err = np.nan_to_num(np.vstack([est - part["low"].to_numpy(float), part["high"].to_numpy(float) - est]))
            hollow = outcome == "uninformative"
            left.errorbar(x, est, yerr=err, ls="", marker="o", ms=6, capsize=3, lw=1.3, color=colour,
                          markerfacecolor="white" if hollow else colour,
                          label=f"{outcome} after Holm" if not hollow else "uninformative (floor)")
        left.axhline(0.0, color="0.35", ls="--", lw=1.0, zorder=0.5)
        left.set_xticks(range(len(levels)), [f"{b:g}" for b in levels], rotation=45)
        left.set_xlabel("bias (share of minority images removed)")
        left.set_ylabel(f"{label_of(test.metric)}, difference")
        left.set_title("Caption effect at each level")
        left.grid(axis="x", visible=False)
        left.legend(loc="lower left", fontsize=9)

        reference = {"mean": interaction["mean_b"], "low": np.nan, "high": np.nan}
        at_reference = family[np.isclose(family["bias"], test.reference)]
        if len(at_reference):
            reference = {"mean": at_reference["estimate"].iloc[0], "low": at_reference["low"].iloc[0],
                         "high": at_reference["high"].iloc[0]}
        _interval(right, 0, reference, "0.35", f"bias {test.reference:g}")
        _interval(right, 1, effect, "0.35", "strong bias")
        _interval(right, 2, interaction, "#0173b2", "difference")
        right.axhline(0.0, color="0.35", ls="--", lw=1.0, zorder=0.5)
        right.set_xticks([0, 1, 2], [f"bias\n{test.reference:g}", "strong\nbias", "the\ntest"])
        right.set_xlim(-0.6, 2.6)
        right.set_title("The declared test")
        right.grid(axis="x", visible=False)
    return fig
