"""Explorer widgets: a kernel-free view for the built book and a live explorer for JupyterLab.

`static_explorer` switches between pre-rendered figures with browser-side links only (`jslink`
between one row of Dropdowns and nested Stacks), so the widget state saved in an executed notebook
keeps working in static HTML. `live_explorer` (in `explorer_live`) trains or loads runs through
`run_experiment`.
"""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import plots
from ..config import GROUP_LABELS, GROUP_NAMES
from ..design import ARMS
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

    controls: [(description, [(label, value), ...]), ...], a third item "slider" for a slider
    instead of a menu; figures: {(value per control): PNG bytes or a widget};
    panels: {(values of the first k controls): an ipywidgets widget} shown beside the figure. The
    controls are compact Dropdowns in one row above the figure; each one's index is linked in the
    browser (`jslink`) to the selected index of every Stack at its level, so the embedded widget
    state alone drives the view.
    """
    import ipywidgets as widgets

    menus = [_control(options, kind) for _, options, *kind in controls]
    views, links = [], []
    def figure(key):
        value = figures[key]
        if isinstance(value, widgets.Widget):
            return value
        return widgets.Image(value=value, format="png", layout=widgets.Layout(width=f"{PCA_VIEW_PX}px", max_width="100%"))

    parts = [(controls, figure)]
    if panels:
        depth = len(next(iter(panels)))
        parts.append((controls[:depth], lambda key: panels[key]))
    for ctrl, leaf in parts:
        stacks: dict = {}
        views.append(_nested_stack([c[:2] for c in ctrl], leaf, stacks))
        for level, level_stacks in stacks.items():
            links += [widgets.jslink((menus[level], "index"), (s, "selected_index")) for s in level_stacks]
    # one row: each menu under its name (names beside the menus would not fit in one book-page row)
    labelled = [widgets.VBox([widgets.HTML(f"<b>{name}</b>", layout=widgets.Layout(height="20px", margin="0")), menu],
                             layout=widgets.Layout(margin="0 10px 4px 0"))
                for (name, *_), menu in zip(controls, menus)]
    wrap = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
    box = widgets.VBox([widgets.HBox(labelled, layout=wrap), widgets.HBox(views, layout=wrap)])
    box.links = links  # keep the link widgets alive with the view
    return box


def _control(options: list, kind: list):
    """A Dropdown, or with kind ["slider"] a SelectionSlider, over the options' labels; both have the
    `index` that `static_explorer` links to its Stacks."""
    import ipywidgets as widgets

    labels = [label for label, _ in options]
    if kind == ["slider"]:
        return widgets.SelectionSlider(options=labels, continuous_update=True, readout=True,
                                       layout=widgets.Layout(width=f"{min(520, 48 * len(labels) + 80)}px"))
    return widgets.Dropdown(options=labels, layout=widgets.Layout(width=_menu_width(options)))


def _menu_width(options: list) -> str:
    """A Dropdown just wide enough for its longest label (about 8 px a letter and the arrow)."""
    return f"{8 * max(len(label) for label, _ in options) + 40}px"


EXPLORER_DPI = 96                  # one image pixel per CSS pixel: the views are shown at their own size
PCA_VIEW_PX, BARS_VIEW_PX = 380, 280


def explorer_pca_figure(emb: dict, kind: str, split: str, colour: str, title: str) -> Figure:
    """One precomputed PCA view, sized to be shown PCA_VIEW_PX wide."""
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(PCA_VIEW_PX / EXPLORER_DPI, 3.6), dpi=EXPLORER_DPI, layout="constrained")
        pca_panel(emb, kind, split, colour, ax=ax, title=title)
        ax.locator_params(axis="both", nbins=5)
    return fig


def explorer_bars_figure(metrics: dict) -> Figure:
    """A run's per-group accuracy bars, sized to be shown BARS_VIEW_PX wide beside the PCA view."""
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(BARS_VIEW_PX / EXPLORER_DPI, 2.9), dpi=EXPLORER_DPI, layout="constrained")
        plots.plot_group_accuracy({g: metrics[f"acc_{g}"] for g in GROUP_NAMES}, ax=ax,
                                  title="zero-shot accuracy, test\n(dashed line: chance)")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_xticks(ax.get_xticks(), [GROUP_LABELS[g].split()[0] + "\n" + GROUP_LABELS[g].split()[-1]
                                        for g in GROUP_NAMES], fontsize=9)
    return fig


def explorer_views(records: dict) -> tuple[list, dict, dict]:
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
                what = {("image", "train"): "training images", ("image", "test"): "test images",
                        ("text", "train"): "training captions",
                        ("text", "test"): "the four descriptive captions"}[(kind, split)]
                for colour in plots.COLOUR_BY:
                    fig = explorer_pca_figure(emb, kind, split, colour, title=f"bias {bias:g}, {mode}:\n{what}")
                    figures[(bias, mode, kind, split, colour)] = figure_png(fig, EXPLORER_DPI)
        panels[(bias, mode)] = widgets.VBox([
            widgets.Image(value=figure_png(explorer_bars_figure(record.metrics), EXPLORER_DPI), format="png",
                          layout=widgets.Layout(width=f"{BARS_VIEW_PX}px", max_width="100%")),
            widgets.HTML(run_summary_html(record, compact=True))])
    return controls, figures, panels


def bias_curve_views(summary, arms) -> tuple[list, dict]:
    """Views of the results table's settings over the whole bias curve, for `static_explorer`: a bias
    slider (every level in `summary`, `results.summarise`, base size) and an arm menu (`arms` that
    the table holds); per (bias, arm) a panel with the per-group accuracies, worst-group and average
    accuracy and the two probes, each a mean over seeds with its 95% interval."""
    import ipywidgets as widgets

    from ..analysis.results import at_size

    summary = at_size(summary, None)
    levels = sorted(summary["bias"].unique())
    arms = [a for a in arms if (summary["arm"] == a).any()]
    controls = [("bias", [(f"{b:g}", float(b)) for b in levels], "slider"),
                ("arm", [(_arm_name(a), a) for a in arms])]
    views = {}
    for bias in levels:
        for arm in arms:
            rows = summary[(summary["arm"] == arm) & np.isclose(summary["bias"], bias)]
            views[(float(bias), arm)] = widgets.HTML(setting_panel_html(rows.iloc[0] if len(rows) else None, bias, arm))
    return controls, views


def _arm_name(arm: str) -> str:
    """The arm's label, with its loss where that is not the original's pairwise loss."""
    spec = ARMS[arm]
    return spec.label if spec.loss in ("pairwise", "image_only") else f"{spec.label} ({spec.loss} loss)"


PANEL_MEASURES = (("worst_group_acc", "worst-group accuracy"), ("average_acc", "average accuracy"),
                  ("probe_animal_acc", "animal probe"), ("probe_background_acc", "background probe"))


def setting_panel_html(row, bias: float, arm: str) -> str:
    """One setting's accuracies as HTML bars: a mean over seeds and its 95% interval per row."""
    from html import escape

    head = f"bias {bias:g} &middot; {escape(_arm_name(arm))}"
    attrs = f'class="bias-panel" data-bias="{bias:g}" data-arm="{arm}"'
    if row is None:
        return f'<div {attrs}><b>{head}</b><p>This arm was not run at this bias level.</p></div>'
    lines = [(GROUP_LABELS[g], f"acc_{g}") for g in GROUP_NAMES] + [(label, m) for m, label in PANEL_MEASURES]
    body = []
    for label, metric in lines:
        if f"{metric}_mean" not in row or pd.isna(row[f"{metric}_mean"]):
            continue
        mean, low, high = (float(row[f"{metric}_{k}"]) for k in ("mean", "low", "high"))
        body.append(
            f'<tr><td style="padding-right:8px">{escape(label)}</td>'
            f'<td style="width:200px"><div style="position:relative;height:12px;background:#eee">'
            f'<div style="position:absolute;left:0;width:{100 * mean:.1f}%;height:12px;background:#0173b2"></div>'
            f'<div style="position:absolute;left:{100 * low:.1f}%;width:{100 * max(high - low, 0.002):.1f}%;'
            f'top:5px;height:2px;background:#000"></div></div></td>'
            f'<td style="padding-left:8px;font-variant-numeric:tabular-nums">{mean:.2f} [{low:.2f}, {high:.2f}]</td></tr>')
    seeds = int(row["n_seeds"]) if "n_seeds" in row else 0
    return (f'<div {attrs}><b>{head}</b>, {seeds} seeds: mean and 95% interval over seeds'
            f'<table style="margin-top:6px">{"".join(body)}</table></div>')


# the live explorer (JupyterLab) lives in explorer_live; imported here for the notebooks
from .explorer_live import LiveController, live_explorer  # noqa: E402,F401
