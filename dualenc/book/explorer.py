"""Explorer widgets: a kernel-free view for the built book and a live explorer for JupyterLab.

`static_explorer` switches between pre-rendered figures with browser-side links only (`jslink`
between one row of Dropdowns and nested Stacks), so the widget state saved in an executed notebook
keeps working in static HTML. `live_explorer` (in `explorer_live`) trains or loads runs through
`run_experiment`.
"""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt

from . import plots
from ..config import GROUP_NAMES
from .plots import figure_png, pca_panel
from .run_summary import run_summary_html


def _nested_stack(controls: list, leaf, stacks: dict, prefix: tuple = (), level: int = 0):
    """Stacks nested one level per control; the leaves are leaf(values). stacks[level] collects them."""
    import ipywidgets as widgets

    if level == len(controls):
        return leaf(prefix)
    children = [_nested_stack(controls, leaf, stacks, prefix + (value,), level + 1)
                for _, value in controls[level][1]]
    stack = widgets.Stack(children, selected_index=0)
    stacks.setdefault(level, []).append(stack)
    return stack


def static_explorer(controls: list, figures: dict, panels: Optional[dict] = None):
    """Controls that switch between pre-rendered views with no Python kernel (for the built book).

    controls: [(description, [(label, value), ...]), ...]; figures: {(value per control): PNG bytes
    or a widget};
    panels: {(values of the first k controls): an ipywidgets widget} shown beside the figure. The
    controls are compact Dropdowns in one row above the figure; each one's index is linked in the
    browser (`jslink`) to the selected index of every Stack at its level, so the embedded widget
    state alone drives the view.
    """
    import ipywidgets as widgets

    menus = [widgets.Dropdown(options=[label for label, _ in options],
                              layout=widgets.Layout(width=_menu_width(options)))
             for _, options in controls]
    views, links = [], []
    def figure(key):
        value = figures[key]
        if isinstance(value, widgets.Widget):
            return value
        return widgets.Image(value=value, format="png", layout=widgets.Layout(width="380px", max_width="100%"))

    parts = [(controls, figure)]
    if panels:
        depth = len(next(iter(panels)))
        parts.append((controls[:depth], lambda key: panels[key]))
    for ctrl, leaf in parts:
        stacks: dict = {}
        views.append(_nested_stack(ctrl, leaf, stacks))
        for level, level_stacks in stacks.items():
            links += [widgets.jslink((menus[level], "index"), (s, "selected_index")) for s in level_stacks]
    # one row: each menu under its name (names beside the menus would not fit in one book-page row)
    labelled = [widgets.VBox([widgets.HTML(f"<b>{name}</b>", layout=widgets.Layout(height="20px", margin="0")), menu],
                             layout=widgets.Layout(margin="0 10px 4px 0"))
                for (name, _), menu in zip(controls, menus)]
    wrap = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
    box = widgets.VBox([widgets.HBox(labelled, layout=wrap), widgets.HBox(views, layout=wrap)])
    box.links = links  # keep the link widgets alive with the view
    return box


def _menu_width(options: list) -> str:
    """A Dropdown just wide enough for its longest label (about 8 px a letter and the arrow)."""
    return f"{8 * max(len(label) for label, _ in options) + 40}px"


def explorer_views(records: dict, dpi: int = 72) -> tuple[list, dict, dict]:
    """Pre-rendered views of runs keyed by (bias, captions), for `static_explorer`.

    Returns the controls (bias, captions, embeddings, split, colour by), one PCA PNG per
    combination, and per run a panel with its per-group accuracy bars and headline metrics.
    """
    import ipywidgets as widgets

    biases = sorted({b for b, _ in records})
    modes = [m for m in ("undescriptive", "descriptive", "background") if any(c == m for _, c in records)]
    controls = [("bias", [(f"{b:g}", b) for b in biases]), ("captions", [(m, m) for m in modes]),
                ("embeddings", [("image", "image"), ("text", "text")]),
                ("split", [("train", "train"), ("test", "test")]),
                ("colour by", [(c, c) for c in plots.COLOUR_BY])]
    figures, panels = {}, {}
    for (bias, mode), record in records.items():
        emb = record.embeddings()
        for kind in ("image", "text"):
            for split in ("train", "test"):
                for colour in plots.COLOUR_BY:
                    with plt.rc_context(plots.STYLE):
                        fig, ax = plt.subplots(figsize=(5.6, 4.4), layout="constrained")
                        what = {("image", "train"): "training images", ("image", "test"): "test images",
                                ("text", "train"): "training captions",
                                ("text", "test"): "the four descriptive captions"}[(kind, split)]
                        pca_panel(emb, kind, split, colour, ax=ax, title=f"bias {bias:g}, {mode}: {what}")
                    figures[(bias, mode, kind, split, colour)] = figure_png(fig, dpi)
        bars = plots.plot_group_accuracy({g: record.metrics[f"acc_{g}"] for g in GROUP_NAMES},
                                         title="zero-shot accuracy (test)").figure
        panels[(bias, mode)] = widgets.VBox([
            widgets.Image(value=figure_png(bars, dpi), format="png",
                          layout=widgets.Layout(width="280px", max_width="100%")),
            widgets.HTML(run_summary_html(record, compact=True))])
    return controls, figures, panels


# the live explorer (JupyterLab) lives in explorer_live; imported here for the notebooks
from .explorer_live import LiveController, live_explorer  # noqa: E402,F401
