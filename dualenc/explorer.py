"""Explorer widgets: a kernel-free view for the built book and a live explorer for JupyterLab.

`static_explorer` switches between pre-rendered figures with browser-side links only (`jslink`
between ToggleButtons and nested Stacks), so the widget state saved in an executed notebook keeps
working in static HTML. `live_explorer` trains or loads runs through `run_experiment`.
"""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt

from . import plots
from .config import ExperimentConfig
from .notebook_helpers import GROUP_NAMES, figure_png, pca_panel


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
    panels: {(values of the first k controls): an ipywidgets widget} shown beside the figure. Each
    control is a ToggleButtons whose index is linked in the browser (`jslink`) to the selected
    index of every Stack at its level, so the embedded widget state alone drives the view.
    """
    import ipywidgets as widgets

    toggles = [widgets.ToggleButtons(options=[label for label, _ in options], description=name,
                                     style={"description_width": "90px", "button_width": "110px"})
               for name, options in controls]
    views, links = [], []
    def figure(key):
        value = figures[key]
        if isinstance(value, widgets.Widget):
            return value
        return widgets.Image(value=value, format="png", layout=widgets.Layout(width="440px", max_width="100%"))

    parts = [(controls, figure)]
    if panels:
        depth = len(next(iter(panels)))
        parts.append((controls[:depth], lambda key: panels[key]))
    for ctrl, leaf in parts:
        stacks: dict = {}
        views.append(_nested_stack(ctrl, leaf, stacks))
        for level, level_stacks in stacks.items():
            links += [widgets.jslink((toggles[level], "index"), (s, "selected_index")) for s in level_stacks]
    row = widgets.HBox(views, layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
    box = widgets.VBox([*toggles, row])
    box.links = links  # keep the link widgets alive with the view
    return box


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
                          layout=widgets.Layout(width="360px", max_width="100%")),
            widgets.HTML(run_summary_html(record))])
    return controls, figures, panels


def run_summary_html(record) -> str:
    """A small HTML table of one run's headline metrics (for the explorers)."""
    m = record.metrics
    rows = [("average accuracy", f"{m['average_acc']:.3f}"), ("worst-group accuracy", f"{m['worst_group_acc']:.3f}"),
            ("worst group", plots.GROUP_LABELS[m["worst_group"]]), ("gap (majority - minority)", f"{m['gap']:.3f}"),
            ("probe: animal", f"{m['probe_animal_acc']:.3f}"), ("probe: background", f"{m['probe_background_acc']:.3f}"),
            ("training images", str(m["n_train"]))]
    body = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def live_explorer(base: ExperimentConfig, runs_dir):
    """Kernel-driven explorer for JupyterLab: change settings, press Run, see PCA and accuracies.

    Changing a setting shows the stored run of that setting if it exists (instant); Run trains it
    otherwise. Changing colour, embeddings or split only redraws.
    """
    import ipywidgets as widgets
    from IPython.display import HTML, display

    from .config import CAPTION_MODES, LOSSES
    from .study import is_done, run_dir, run_experiment

    w = {
        "bias": widgets.FloatSlider(value=base.data.bias, min=0.0, max=1.0, step=0.05, description="bias",
                                    continuous_update=False),
        "captions": widgets.Dropdown(options=CAPTION_MODES, value=base.data.captions, description="captions"),
        "seed": widgets.BoundedIntText(value=base.train.seed, min=0, max=10_000, description="seed"),
        "loss": widgets.Dropdown(options=[x for x in LOSSES if x != "image_only"], value=base.train.loss,
                                 description="loss"),
        "colour_by": widgets.ToggleButtons(options=plots.COLOUR_BY, description="colour by"),
        "kind": widgets.ToggleButtons(options=["image", "text"], description="embeddings"),
        "split": widgets.ToggleButtons(options=["train", "test"], description="split"),
    }
    button = widgets.Button(description="Run", button_style="primary", icon="play")
    out = widgets.Output()

    def config():
        return base.replace(bias=float(w["bias"].value), captions=w["captions"].value,
                            seed=int(w["seed"].value), loss=w["loss"].value)

    def redraw(train: bool = False):
        cfg = config()
        with out:
            out.clear_output(wait=True)
            if not (train or is_done(run_dir(cfg, runs_dir))):
                print(f"Not run yet (bias {cfg.data.bias:g}, {cfg.data.captions}, seed {cfg.train.seed}, "
                      f"{cfg.train.loss}): press Run to train it.")
                return
            if train:
                print("training ...")
            record = run_experiment(cfg, root=runs_dir, progress=False)
            out.clear_output(wait=True)
            emb = record.embeddings()
            with plt.rc_context(plots.STYLE):
                fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
                pca_panel(emb, w["kind"].value, w["split"].value, w["colour_by"].value, ax=axes[0],
                          title=f"{w['kind'].value} embeddings, {w['split'].value}")
                plots.plot_group_accuracy({g: record.metrics[f"acc_{g}"] for g in GROUP_NAMES}, ax=axes[1],
                                          title="zero-shot accuracy (test)")
                plt.show()
            display(HTML(run_summary_html(record)))

    for name in ("bias", "captions", "seed", "loss", "colour_by", "kind", "split"):
        w[name].observe(lambda change: redraw(False), names="value")
    button.on_click(lambda _: redraw(True))
    redraw(False)
    controls = widgets.VBox([widgets.HBox([w["bias"], w["captions"]]), widgets.HBox([w["seed"], w["loss"], button]),
                             w["colour_by"], w["kind"], w["split"]])
    return widgets.VBox([controls, out])
