"""Figures of the data: a grid of images, a sample of each group's training images, the bias levels."""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...config import GROUPS, MINORITY_GROUPS, DataConfig, group_name
from .style import GROUP_LABELS, PAGE_WIDTH, STYLE


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8) -> Figure:
    """Images (N, H, W, 3) uint8 (or float in [0, 1]) in a grid, pixels as squares, no axes."""
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or len(imgs) == 0:
        raise ValueError(f"images must be a non-empty (N, H, W, 3) array, got shape {imgs.shape}")
    if imgs.dtype != np.uint8 and not (imgs.dtype.kind == "f" and imgs.min() >= 0 and imgs.max() <= 1):
        raise ValueError(f"images must be uint8 or floats in [0, 1], got dtype {imgs.dtype}")
    if titles is not None and len(titles) not in (0, len(imgs)):
        raise ValueError(f"got {len(titles)} titles for {len(imgs)} images")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols={ncols!r} is not allowed: expected an integer >= 1")
    n = len(imgs)
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    with plt.rc_context(STYLE):
        shrink = min(1.0, PAGE_WIDTH / (1.25 * cols))
        fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols * shrink, 1.4 * rows * shrink), squeeze=False,
                                 layout="constrained")
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.remove()
                continue
            ax.imshow(imgs[i], interpolation="nearest")
            ax.set_axis_off()
            if titles:
                ax.set_title(str(titles[i]), fontsize=9.5, fontweight="normal", pad=3)
    return fig


def sample_training_images(data: DataConfig, per_group: int = 6) -> tuple[np.ndarray, list]:
    """The first `per_group` training images of each group that this bias keeps, a row per group
    (padded with blank tiles where the bias keeps fewer), and titles naming each row's group: the
    input of `image_grid(images, titles, ncols=per_group)`.

    The images are the run's own training split (`data.build_dataset`, after `data.apply_bias`).
    """
    from ...data.datasets import build_dataset

    train = build_dataset(data).train
    counts = train.group_counts()
    images, titles = [], []
    for animal, background in GROUPS:
        g = group_name(animal, background)
        picked = list(train.images[np.flatnonzero(train.group == g)[:per_group]])
        label = GROUP_LABELS[g]
        if not data.data_dir and (animal, background) in MINORITY_GROUPS:
            label += f" ({counts[g]} of {data.n_train_per_group} kept)"
        titles += [label] + [""] * (per_group - 1)
        blank = np.full((data.image_size, data.image_size, 3), 255, dtype=np.uint8)
        images += picked + [blank] * (per_group - len(picked))
    return np.stack(images), titles


def plot_bias_levels(table: pd.DataFrame) -> Figure:
    """Bars: images per group kept at each bias level; line: majority share per animal
    (`tables.bias_table`)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.0), layout="constrained")
        x = np.arange(len(table))
        ax.bar(x - 0.2, table["majority images per group"], 0.4, color="0.55", label="each majority group")
        bars = ax.bar(x + 0.2, table["minority images kept per group"], 0.4, color="tab:blue",
                      label="each minority group")
        ax.bar_label(bars, fontsize=9, padding=2)
        ax.set_xticks(x, [f"{b:g}" for b in table["bias"]])
        ax.set_xlabel("bias (share of minority training images removed)")
        ax.set_ylabel("training images")
        ax.set_ylim(0, table["majority images per group"].max() * 1.12)
        ax2 = ax.twinx()
        ax2.plot(x, table["majority share per animal"], "o-", color="tab:red", label="majority share per animal")
        ax2.set_ylim(0.45, 1.05)
        ax2.set_ylabel("majority share per animal", color="tab:red")
        ax2.grid(False)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncol=3, fontsize=9)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_title("What each bias level keeps")
    return fig
