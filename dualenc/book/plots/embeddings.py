"""PCA views of the embeddings: one panel, image and text side by side, a grid of runs.

Every function draws into a given Axes (or makes its own figure) and returns it; none calls plt.show.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ...config import ANIMALS, BACKGROUNDS, group_name
from .style import CLASS_STYLES, COLOUR_BY, PAGE_WIDTH, PAIR_SIZE, STYLE, legend_handles, new_axes

_BASE_MARKER = 22.0        # scatter marker area (pt^2) of a single point
_MAX_NOTES = 12            # at most this many "xN" count labels per panel
_OFFSET = 0.035            # share of the spread by which classes at one position are set apart


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
    u, singular_values, vt = np.linalg.svd(x, full_matrices=False)
    k = min(2, len(singular_values))
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    coords = np.zeros((len(x), 2))
    coords[:, :k] = u[:, :k] * singular_values[:k] * signs
    var = singular_values ** 2
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
    order = CLASS_STYLES[colour_by][0]
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
    _, colours, names = CLASS_STYLES[colour_by]
    stacked = _stack_duplicates(coords, keys, present)
    with plt.rc_context(STYLE):
        ax = new_axes(ax)
        notes, items = [], []
        for cls in present:
            pos, counts = stacked[cls]
            sizes = _BASE_MARKER * np.sqrt(counts)
            label = f"{names[cls]} (n={counts.sum()})"
            coll = ax.scatter(pos[:, 0], pos[:, 1], s=sizes, c=colours[cls], alpha=0.75,
                              edgecolors="white", linewidths=0.5, label=label)
            coll.counts = counts
            items.append((colours[cls], label))
            notes += [(int(c), p, math.sqrt(area) / 2) for c, p, area in zip(counts, pos, sizes) if c > 1]
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
            ax.legend(handles=legend_handles(items), loc="best", fontsize=9)
    return ax


def plot_embeddings(image_emb: np.ndarray, image_labels, text_emb: np.ndarray, text_labels,
                    title: str = "", colour_by: str = "group") -> Figure:
    """Image PCA (left) and text PCA (right) side by side, with one shared legend below."""
    with plt.rc_context(STYLE):
        fig, (ax_img, ax_txt) = plt.subplots(1, 2, figsize=PAIR_SIZE, layout="constrained")
        plot_pca(image_emb, image_labels, ax=ax_img, title="Image embeddings", colour_by=colour_by, legend=False)
        plot_pca(text_emb, text_labels, ax=ax_txt, title="Text embeddings", colour_by=colour_by, legend=False)
        present = set(_classes(image_labels, len(image_emb), colour_by)[1])
        present |= set(_classes(text_labels, len(text_emb), colour_by)[1])
        order, colours, names = CLASS_STYLES[colour_by]
        order = [c for c in order if c in present]
        fig.legend(handles=legend_handles([(colours[c], names[c]) for c in order]), loc="outside lower center",
                   ncol=len(order), fontsize=10)
        if title:
            fig.suptitle(title, fontweight="bold")
    return fig


# ---------------------------------------------------------------- a run's stored embeddings


def _split_labels(emb: dict, split: str) -> dict:
    return {"animal": emb[f"animal_{split}"], "background": emb[f"background_{split}"]}


def _pooled_prompt_labels() -> dict:
    """Labels of the four descriptive captions in `prompt_pooled` (animal-major, as in ZERO_SHOT_POOLED_PROMPTS)."""
    return {"animal": np.array([a for a in ANIMALS for _ in BACKGROUNDS]),
            "background": np.array([b for _ in ANIMALS for b in BACKGROUNDS])}


def pca_figures(emb: dict, colour_by: str = "group") -> dict:
    """The original's PCA views of one run's embeddings (`RunRecord.embeddings()`): training images
    and captions, then the balanced test set with the four descriptive captions as its text (runs
    without a text tower get image panels only). Returns {"train": Figure, "test": Figure}."""
    out = {}
    test_title = "Balanced test set; text: the four descriptive captions"
    for split, text_key, text_labels, title in (
            ("train", "text_train", _split_labels(emb, "train"), "Training set (as in the original)"),
            ("test", "prompt_pooled", _pooled_prompt_labels(), test_title)):
        if text_key in emb:
            out[split] = plot_embeddings(emb[f"image_{split}"], _split_labels(emb, split), emb[text_key],
                                         text_labels, title=title, colour_by=colour_by)
        else:
            ax = plot_pca(emb[f"image_{split}"], _split_labels(emb, split), title=title, colour_by=colour_by)
            out[split] = ax.figure
    return out


def pca_panel(emb: dict, kind: str, split: str, colour_by: str = "group", ax=None, title: str = ""):
    """One PCA panel: kind "image" or "text", split "train" or "test" (test text: the four captions)."""
    if kind == "image":
        x, labels = emb[f"image_{split}"], _split_labels(emb, split)
    elif split == "train" and "text_train" in emb:
        x, labels = emb["text_train"], _split_labels(emb, "train")
    elif "prompt_pooled" in emb:
        x, labels = emb["prompt_pooled"], _pooled_prompt_labels()
    else:
        raise ValueError("this run has no text embeddings (image-only baseline)")
    return plot_pca(x, labels, ax=ax, title=title, colour_by=colour_by)


def pca_grid(records: dict, split: str = "train", kind: str = "image", colour_by: str = "group") -> Figure:
    """The runs' PCA panels (name -> RunRecord) in a grid of two columns, with one shared legend."""
    names = list(records)
    rows = int(np.ceil(len(names) / 2))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, 2, figsize=(PAGE_WIDTH, 3.3 * rows + 0.8), layout="constrained", squeeze=False)
        for ax, name in zip(axes.flat, names):
            d = records[name].config.data
            pca_panel(records[name].embeddings(), kind, split, colour_by, ax=ax,
                      title=f"{name}: bias {d.bias:g}, {d.captions}")
            ax.get_legend().remove()
        for ax in list(axes.flat)[len(names):]:
            ax.remove()
        order, colours, class_labels = CLASS_STYLES[colour_by]
        fig.legend(handles=legend_handles([(colours[c], class_labels[c]) for c in order]),
                   loc="outside lower center", ncol=len(order))
        fig.suptitle(f"{kind.capitalize()} embeddings, {'training' if split == 'train' else 'balanced test'} set",
                     fontweight="bold")
    return fig
