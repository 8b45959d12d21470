"""Why the arms differ: their caption embeddings, and which caption a minority image is nearest to
(`dualenc.runs.mechanism`'s table)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...design import ARMS
from ...runs.mechanism import PROMPTS
from ...runs.metrics import bootstrap_ci
from ...analysis.results import arm_label
from .style import STYLE

PROMPT_LABELS = {"horse": '"horse"', "camel": '"camel"', "horse_grass": "h. grass", "horse_desert": "h. desert",
                 "camel_grass": "c. grass", "camel_desert": "c. desert"}


def similarity_matrix(rows: pd.DataFrame) -> np.ndarray:
    """The mean over `rows` (runs) of the prompts' cosine similarity matrix, PROMPTS order."""
    n = len(PROMPTS)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = rows[f"cos_{PROMPTS[i]}__{PROMPTS[j]}"].mean()
    return out


def plot_caption_similarity(mech: pd.DataFrame, arms: Sequence[str], bias: float) -> Figure:
    """One heatmap per arm: the cosine similarity of the text embeddings of "horse", "camel" and the
    four descriptive captions, mean over the seeds at `bias`."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(arms), figsize=(4.0 * len(arms), 4.2), layout="constrained", squeeze=False)
        for ax, arm in zip(axes[0], arms):
            rows = mech[(mech["arm"] == arm) & np.isclose(mech["bias"], bias)]
            if rows.empty:
                ax.set_axis_off()
                ax.set_title(f"{arm_label(arm)}: not run", fontsize=10)
                continue
            matrix = similarity_matrix(rows)
            image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
            for i in range(len(PROMPTS)):
                for j in range(len(PROMPTS)):
                    ax.text(j, i, f"{matrix[i, j]:.1f}", ha="center", va="center", fontsize=10,
                            color="white" if abs(matrix[i, j]) > 0.6 else "black")
            labels = [PROMPT_LABELS[p] for p in PROMPTS]
            ax.set_xticks(range(len(PROMPTS)), labels, rotation=45, ha="right", fontsize=10)
            ax.set_yticks(range(len(PROMPTS)), labels, fontsize=10)
            ax.grid(False)
            ax.set_title(f"{ARMS[arm].label} ({rows['seed'].nunique()} seeds)", fontsize=11)
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
    return fig


def plot_background_wins(mech: pd.DataFrame, arms: Sequence[str], n: int) -> Figure:
    """Share of the minority-group test images whose nearest descriptive caption names the other
    animal on the image's own background, against bias: mean over seeds and its percentile
    bootstrap interval, one line per arm (training-set size `n` per group)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        part = mech[mech["n_train_per_group"] == n]
        levels = sorted(part["bias"].unique())
        for arm in arms:
            rows = part[part["arm"] == arm]
            if rows.empty:
                continue
            own = sorted(rows["bias"].unique())
            stats = [bootstrap_ci(rows.loc[np.isclose(rows["bias"], b), "match_background"].to_numpy())
                     for b in own]
            x = np.array([levels.index(b) for b in own])
            mean, low, high = (np.array(v, dtype=float) for v in zip(*stats))
            declared = ARMS[arm]
            ax.plot(x, mean, marker=declared.marker, color=declared.colour, label=declared.label)
            ax.fill_between(x, low, high, color=declared.colour, alpha=0.2, lw=0)
        ax.set_xticks(range(len(levels)), [f"{b:g}" for b in levels])
        ax.set_ylim(0, 1)
        ax.set_xlabel("bias (share of minority images removed)")
        ax.set_ylabel("share of minority images")
        ax.set_title("Nearest caption: the other animal on the image's background", fontsize=11)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", fontsize=9)
    return fig


CUE_LABELS = {"acc_test": "as they are", "acc_greyscale": "in grey", "acc_coat_swap": "in the other animal's coat"}
CUE_COLOURS = {"acc_test": "0.45", "acc_greyscale": "#56b4e9", "acc_coat_swap": "#d55e00"}


def plot_cue_conflict(cues: pd.DataFrame, arms: Sequence[str], bias: float) -> Figure:
    """Accuracy of each arm's runs at `bias` (mean over seeds, percentile bootstrap interval) on the
    test images as they are, in grey, and with each animal in the other animal's coat; chance dashed."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 4.4), layout="constrained")
        width = 0.26
        shown = [a for a in arms if ((cues["arm"] == a) & np.isclose(cues["bias"], bias)).any()] if len(cues) else []
        for k, measure in enumerate(CUE_LABELS):
            stats = [bootstrap_ci(cues.loc[(cues["arm"] == a) & np.isclose(cues["bias"], bias), measure].to_numpy())
                     for a in shown]
            if not stats:
                continue
            mean, low, high = (np.array(v, dtype=float) for v in zip(*stats))
            x = np.arange(len(shown)) + (k - 1) * width
            ax.bar(x, mean, width, color=CUE_COLOURS[measure], label=f"test images {CUE_LABELS[measure]}")
            ax.errorbar(x, mean, yerr=np.nan_to_num([mean - low, high - mean]), ls="", color="black", capsize=3,
                        lw=1.1)
        ax.axhline(0.5, color="0.35", ls="--", lw=1.1, label="chance")
        ax.set_xticks(range(len(shown)), [ARMS[a].label.replace(" baseline", "").replace(" (control)", "\n(control)")
                                          for a in shown])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy (mean of the four groups)")
        ax.set_title(f"Shape or colour? Own words, bias {bias:g}", fontsize=11)
        ax.grid(axis="x", visible=False)
        fig.legend(loc="outside lower center", ncol=2, fontsize=9)
    return fig
