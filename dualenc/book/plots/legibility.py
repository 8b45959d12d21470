"""Is a figure legible in the book? Every drawn text at least MIN_POINTS at the size the page shows
it, and no two texts overlapping.

The book shows a figure as myst-nb saved it (a PNG at the figure's dpi, cropped tight), scaled down
to the text column when it is wider: a text of f points then appears at f * dpi / 96 * scale CSS
points, scale = min(1, column / image width). `BOOK_COLUMN_PX` is the text column of a page at a
1280 px wide window, measured in Chromium.
"""
from __future__ import annotations

from itertools import combinations
from unittest.mock import patch

from matplotlib.figure import Figure
from matplotlib.text import Text

MIN_POINTS = 9.0
BOOK_COLUMN_PX = 688            # the article column at a 1280 px window (sphinx-book-theme; measured in Chromium)
CSS_DPI = 96


def drawn_texts(fig: Figure) -> list:
    """The non-empty texts a draw of `fig` actually renders (hidden tick labels and axes left out)."""
    drawn = []
    draw = Text.draw

    def record(text, renderer):
        draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append(text)

    with patch.object(Text, "draw", record):
        fig.canvas.draw()
    return list(dict.fromkeys(drawn))


def shown_scale(fig: Figure, column_px: float = BOOK_COLUMN_PX) -> float:
    """CSS points per point of the figure, as the book shows it."""
    renderer = fig.canvas.get_renderer()
    width_px = fig.get_tightbbox(renderer).width * fig.dpi
    return min(1.0, column_px / width_px) * fig.dpi / CSS_DPI


def _same_rotated_axis(a: Text, b: Text) -> bool:
    """Rotated tick labels of one axis: their upright boxes overlap although the glyphs do not."""
    return a.get_rotation() % 180 != 0 and a.get_rotation() == b.get_rotation() and a.axes is b.axes \
        and abs(a.get_position()[1] - b.get_position()[1]) < 1e-9


def legibility_problems(fig: Figure, column_px: float = BOOK_COLUMN_PX, min_points: float = MIN_POINTS) -> list:
    """What makes `fig` hard to read in the book: texts smaller than `min_points` as shown, and
    pairs of texts whose boxes overlap (by more than a pixel each way). Empty when legible."""
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    scale = shown_scale(fig, column_px)
    problems = [f"{t.get_text()!r} is {t.get_fontsize() * scale:.1f} pt as shown (at least {min_points:g})"
                for t in texts if t.get_fontsize() * scale < min_points - 0.05]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        wide = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        high = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if wide > 1 and high > 1 and not _same_rotated_axis(a, b):
            problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    return problems
