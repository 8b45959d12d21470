"""The look every figure shares: style, sizes, the original study's colours, readable names.

Colours follow the original study: red camel-desert, blue horse-desert, cyan camel-grass, green
horse-grass. The style (seaborn whitegrid, book-page sizes) is applied inside each figure function
only; `use_style()` applies it globally, e.g. at the top of a notebook.
"""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ...config import ANIMALS, BACKGROUNDS, GROUP_LABELS, GROUP_NAMES

GROUP_COLOURS = {"camel_desert": "red", "horse_desert": "blue", "camel_grass": "cyan", "horse_grass": "green"}
ANIMAL_COLOURS = {"horse": "tab:purple", "camel": "tab:orange"}
BACKGROUND_COLOURS = {"grass": "tab:green", "desert": "goldenrod"}
COLOUR_BY = ("group", "animal", "background")
CLASS_STYLES = {"group": (GROUP_NAMES, GROUP_COLOURS, GROUP_LABELS),      # colour_by -> order, colours, labels
                "animal": (ANIMALS, ANIMAL_COLOURS, {a: a for a in ANIMALS}),
                "background": (BACKGROUNDS, BACKGROUND_COLOURS, {b: b for b in BACKGROUNDS})}

STYLE = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.3),
         "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "legend.frameon": True,
         "legend.framealpha": 0.9, "axes.titleweight": "bold"}
# The book shows a figure at its own size up to the text column (`legibility.BOOK_COLUMN_PX`, at the
# figure dpi of 110 about 6.25 inches) and shrinks a wider one, text and all: figures stay within PAGE_WIDTH.
PAGE_WIDTH = 6.6           # inches
SINGLE_SIZE = (5.5, 4.2)   # inches: one panel, about half to two thirds of a book page
PAIR_SIZE = (PAGE_WIDTH, 3.8)   # two panels side by side, a full page width


def use_style() -> None:
    """Apply the project's figure style globally (the figure functions apply it to themselves)."""
    plt.rcParams.update(STYLE)


def new_axes(ax: Axes | None, figsize=SINGLE_SIZE) -> Axes:
    """`ax`, or the Axes of a new figure of `figsize`."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def legend_handles(items: list[tuple[str, str]]) -> list[Line2D]:
    """Equal-size round legend markers for (colour, label) pairs (plotted markers may vary in size)."""
    return [Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor=colour,
                   markeredgecolor="white", alpha=0.85, label=label) for colour, label in items]


def figure_png(fig: Figure, dpi: int = 80, close: bool = True) -> bytes:
    """A figure as PNG bytes (closed afterwards, so notebooks do not show it twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return buf.getvalue()
