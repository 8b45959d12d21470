"""The figures: PCA views of the embeddings, training curves, group accuracies, image grids.

Every function draws into a given Axes (or makes its own figure) and returns it; none calls
plt.show. Colours follow the original study: red camel-desert, blue horse-desert, cyan camel-grass,
green horse-grass. The style (seaborn whitegrid, book-page sizes) is applied inside each function
only; `use_style()` applies it globally, e.g. at the top of a notebook.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .config import GROUP_NAMES, ANIMALS, BACKGROUNDS, GROUPS, group_name

GROUP_COLOURS = {"camel_desert": "red", "horse_desert": "blue", "camel_grass": "cyan", "horse_grass": "green"}
GROUP_LABELS = {"horse_grass": "horse on grass", "camel_desert": "camel in desert",
                "horse_desert": "horse in desert", "camel_grass": "camel on grass"}
ANIMAL_COLOURS = {"horse": "tab:purple", "camel": "tab:orange"}
BACKGROUND_COLOURS = {"grass": "tab:green", "desert": "goldenrod"}
COLOUR_BY = ("group", "animal", "background")
_CLASSES = {"group": (GROUP_NAMES, GROUP_COLOURS, GROUP_LABELS),      # colour_by -> order, colours, labels
            "animal": (ANIMALS, ANIMAL_COLOURS, {a: a for a in ANIMALS}),
            "background": (BACKGROUNDS, BACKGROUND_COLOURS, {b: b for b in BACKGROUNDS})}

STYLE = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.3),
         "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "legend.frameon": True,
         "legend.framealpha": 0.9, "axes.titleweight": "bold"}
SINGLE_SIZE = (5.5, 4.2)   # inches: one panel, about half to two thirds of a book page
PAIR_SIZE = (10.0, 4.6)    # two panels side by side, a full page width
_BASE_MARKER = 22.0        # scatter marker area (pt^2) of a single point
_MAX_NOTES = 12            # at most this many "xN" count labels per panel
_OFFSET = 0.035            # share of the spread by which classes at one position are set apart


def use_style() -> None:
    """Apply the project's figure style globally (the functions below apply it to themselves)."""
    plt.rcParams.update(STYLE)


def _new_axes(ax: Axes | None, figsize=SINGLE_SIZE) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def pca_2d(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of emb onto their first two principal components.

    Returns coords (N, 2) and the explained-variance ratio of each (2,). Deterministic sign: the
    largest-magnitude loading of each component is positive. A component with (numerically) no
    variance is set to 0, so identical points land exactly on top of each other.
    """
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"embeddings must be a non-empty (N, D) array, got shape {x.shape}")
    x = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(2, len(s))
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    coords = np.zeros((len(x), 2))
    coords[:, :k] = u[:, :k] * s[:k] * signs
    var = s ** 2
    ratio = np.zeros(2)
    if var.sum() > 0:
        ratio[:k] = var[:k] / var.sum()
    coords[:, ratio < 1e-9] = 0.0
    return coords, ratio


def _classes(labels, n: int, colour_by: str) -> tuple[np.ndarray, list[str]]:
    """Per-point class keys (group name, animal or background) and the classes present, in order."""
    if colour_by not in COLOUR_BY:
        raise ValueError(f"colour_by={colour_by!r} is not allowed: expected one of {list(COLOUR_BY)}")
    try:
        animal, background = np.asarray(labels["animal"]), np.asarray(labels["background"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ValueError("labels need the columns 'animal' and 'background'") from err
    if len(animal) != n or len(background) != n:
        raise ValueError(f"labels have {len(animal)} rows but the embeddings have {n}")
    keys = {"group": np.array([group_name(a, b) for a, b in zip(animal, background)], dtype=object),
            "animal": animal.astype(object), "background": background.astype(object)}[colour_by]
    order = _CLASSES[colour_by][0]
    unknown = sorted(set(keys) - set(order))
    if unknown:
        raise ValueError(f"unknown {colour_by} label(s) {unknown}: allowed are {list(order)}")
    return keys, [c for c in order if c in set(keys)]


def _stack_duplicates(coords: np.ndarray, keys: np.ndarray, present: list[str]) -> dict:
    """Per class: unique positions (equal up to 1e-6 of the spread) and how many points sit at each.

    Where several classes share one position (e.g. "horse" captions of horses on grass and in the
    desert), each class's marker is moved by a small fixed offset around it, so none hides another.
    """
    scale = max(float(np.ptp(coords, axis=0).max()), 1e-12)
    grid = np.round(coords / scale * 1e6).astype(np.int64)
    out, owners = {}, {}
    for cls in present:
        mask = keys == cls
        uniq, first, counts = np.unique(grid[mask], axis=0, return_index=True, return_counts=True)
        order = np.argsort(first)                   # keep the points' original order
        cells = [tuple(c) for c in uniq[order]]
        out[cls] = (coords[mask][first[order]].copy(), counts[order], cells)
        for cell in cells:
            owners.setdefault(cell, []).append(cls)
    for cls, (pos, _, cells) in out.items():
        for i, cell in enumerate(cells):
            sharing = owners[cell]
            if len(sharing) > 1:
                angle = math.pi / 2 - 2 * math.pi * sharing.index(cls) / len(sharing)
                pos[i] += _OFFSET * scale * np.array([math.cos(angle), math.sin(angle)])
    return {cls: v[:2] for cls, v in out.items()}


def _balance_limits(ax: Axes, min_ratio: float = 0.4) -> None:
    """Widen an axis whose span is tiny next to the other (e.g. PC2 with no variance)."""
    ax.autoscale_view()
    spans = [np.diff(ax.get_xlim())[0], np.diff(ax.get_ylim())[0]]
    for i, setter in enumerate((ax.set_xlim, ax.set_ylim)):
        other = spans[1 - i]
        if spans[i] < min_ratio * other:
            centre = np.mean(ax.get_xlim() if i == 0 else ax.get_ylim())
            setter(centre - min_ratio * other / 2, centre + min_ratio * other / 2)


def plot_pca(emb: np.ndarray, labels, ax: Axes | None = None, title: str = "",
             colour_by: str = "group", legend: bool = True) -> Axes:
    """2-D PCA scatter of embeddings coloured by group, animal or background.

    `labels` is a DataFrame or dict with columns `animal` and `background`. Identical points (e.g.
    the text embeddings of one caption) are drawn once per class with a marker whose area grows
    with the count, labelled "xN", so a reader sees how many there are; classes sharing a position
    are set slightly apart. Each class is one collection holding its unique positions, with the
    counts in its `counts` attribute.
    """
    coords, ratio = pca_2d(emb)
    keys, present = _classes(labels, len(coords), colour_by)
    _, colours, names = _CLASSES[colour_by]
    stacked = _stack_duplicates(coords, keys, present)
    with plt.rc_context(STYLE):
        ax = _new_axes(ax)
        notes, items = [], []
        for cls in present:
            pos, counts = stacked[cls]
            sizes = _BASE_MARKER * np.sqrt(counts)
            label = f"{names[cls]} (n={counts.sum()})"
            coll = ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c=colours[cls], alpha=0.75,
                              edgecolors="white", linewidths=0.5, label=label)
            coll.counts = counts
            items.append((colours[cls], label))
            notes += [(int(c), p, math.sqrt(s) / 2) for c, p, s in zip(counts, pos, sizes) if c > 1]
        ax.set_xlabel(f"PC1 ({100 * ratio[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC2 ({100 * ratio[1]:.1f}% of variance)")
        if title:
            ax.set_title(title)
        ax.margins(0.12)
        _balance_limits(ax)
        x_low, x_high = ax.get_xlim()
        for count, (x, y), radius in sorted(notes, key=lambda t: -t[0])[:_MAX_NOTES]:
            right = x < x_low + 0.8 * (x_high - x_low)   # near the right edge: label on the left
            ax.annotate(f"\u00d7{count}", (x, y), xytext=((radius + 3) * (1 if right else -1), 0),
                        textcoords="offset points", fontsize=9, color="0.25", va="center",
                        ha="left" if right else "right")
        if legend:
            ax.legend(handles=_legend_handles(items), loc="best", fontsize=9)
    return ax


def _legend_handles(items: list[tuple[str, str]]) -> list[Line2D]:
    """Equal-size legend markers for (colour, label) pairs (the plotted markers vary with counts)."""
    return [Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor=colour,
                   markeredgecolor="white", alpha=0.85, label=label) for colour, label in items]


def plot_embeddings(image_emb: np.ndarray, image_labels, text_emb: np.ndarray, text_labels,
                    title: str = "", colour_by: str = "group") -> Figure:
    """Image PCA (left) and text PCA (right) side by side, with one shared legend below."""
    with plt.rc_context(STYLE):
        fig, (ax_img, ax_txt) = plt.subplots(1, 2, figsize=PAIR_SIZE, layout="constrained")
        plot_pca(image_emb, image_labels, ax=ax_img, title="Image embeddings", colour_by=colour_by, legend=False)
        plot_pca(text_emb, text_labels, ax=ax_txt, title="Text embeddings", colour_by=colour_by, legend=False)
        present = set(_classes(image_labels, len(image_emb), colour_by)[1])
        present |= set(_classes(text_labels, len(text_emb), colour_by)[1])
        order, colours, names = _CLASSES[colour_by]
        order = [c for c in order if c in present]
        fig.legend(handles=_legend_handles([(colours[c], names[c]) for c in order]), loc="outside lower center",
                   ncol=len(order), fontsize=10)
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig


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
        ax = _new_axes(ax, figsize=(5.5, 3.6))
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
        ax = _new_axes(ax, figsize=(5.5, 3.8))
        x = np.arange(len(names))
        bars = ax.bar(x, values, width=0.65, color=[GROUP_COLOURS[g] for g in names], alpha=0.8,
                      edgecolor="0.2", linewidth=0.6)
        ax.axhline(0.5, color="0.35", ls="--", lw=1.2, label="chance", zorder=0.5)
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
        ax.set_xticks(x, [GROUP_LABELS[g].replace(" ", "\n", 1) for g in names])
        ax.set_ylim(0, 1.18)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("accuracy")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper right", fontsize=9)
        if title:
            ax.set_title(title)
    return ax


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
        fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.4 * rows), squeeze=False,
                                 layout="constrained")
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.remove()
                continue
            ax.imshow(imgs[i], interpolation="nearest")
            ax.set_axis_off()
            if titles:
                ax.set_title(str(titles[i]), fontsize=8, fontweight="normal", pad=3)
    return fig


def plot_calibration(table, metric: str = "val_average_acc", chosen: dict | None = None) -> Figure:
    """Validation accuracy at bias 0 against the step budget: a panel per candidate model, a line
    per method (mean over the calibration seeds, the seeds' range as a band); the chosen budget
    of the chosen model marked."""
    candidates = list(dict.fromkeys(table["candidate"]))
    methods = list(dict.fromkeys(table["method"]))
    colours = dict(zip(methods, sns.color_palette("colorblind", len(methods))))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(candidates), figsize=(5.2 * len(candidates), 4.2), sharey=True,
                                 squeeze=False, layout="constrained")
        for ax, candidate in zip(axes[0], candidates):
            part = table[table["candidate"] == candidate]
            for method in methods:
                stats = part[part["method"] == method].groupby("steps")[metric].agg(["mean", "min", "max"])
                if stats.empty:
                    continue
                ax.plot(stats.index, stats["mean"], marker="o", color=colours[method], label=method)
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[method], alpha=0.15, lw=0)
            if chosen and chosen["candidate"] == candidate:
                ax.axvline(chosen["steps"], color="0.3", ls="--", lw=1.2, label="chosen budget")
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(part["steps"].unique()), [str(s) for s in sorted(part["steps"].unique())])
            ax.set_xlabel("optimizer steps (each a full schedule)")
            ax.set_title(candidate, fontsize=11)
        axes[0][0].set_ylabel("validation accuracy, bias 0" if "average" in metric else metric)
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            for h, l in zip(*ax.get_legend_handles_labels()):
                if l not in labels:
                    handles.append(h)
                    labels.append(l)
        fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=9)
    return fig
