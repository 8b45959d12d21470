"""How far a rerun on other CPU kernels moves a run: the measured cross-machine spread
(`replication.pair_differences`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ...runs.metric_registry import label_of
from .style import STYLE

ACCURACIES = ("average_acc", "worst_group_acc", "probe_animal_acc", "probe_background_acc")


def plot_rerun_differences(pairs: pd.DataFrame, metrics=ACCURACIES) -> Figure:
    """Each run's difference between two kernel choices (a dot per run, a colour per pair of
    sources), one row per measure, on one shared axis."""
    long = pairs.melt(id_vars=["pair", "experiment", "run"], value_vars=list(metrics),
                      var_name="metric", value_name="difference")
    long["measure"] = long["metric"].map(label_of)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.75 * len(metrics)), layout="constrained")
        sns.stripplot(long, x="difference", y="measure", hue="pair", dodge=True, jitter=0.15, size=5,
                      alpha=0.8, palette="colorblind", ax=ax)
        ax.axvline(0.0, color="0.3", lw=1.0, zorder=0.5)
        ax.tick_params(labelsize=11)
        ax.set_ylabel("")
        pairs_drawn = long["pair"].unique()
        if len(pairs_drawn) == 1:
            ax.get_legend().remove()
            ax.set_xlabel(f"difference between two runs of one config ({pairs_drawn[0]})")
        else:
            ax.set_xlabel("difference between two runs of one config (b - a)")
            ax.legend(title="kernels: b - a", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10,
                      title_fontsize=10)
    return fig
