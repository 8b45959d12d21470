"""The live explorer for JupyterLab: its decisions (`LiveController`, no widgets needed) and its
widgets (`live_explorer`).

A setting (bias, captions, seed, loss) already in the run store is shown at once; one that is not
waits for the Run button, which trains it with the trainer's progress bar and keeps the controls
disabled meanwhile (so clicks during training cannot queue another run).
"""
from __future__ import annotations

import html
import traceback
from pathlib import Path
from typing import Callable, Iterable, Optional

import matplotlib.pyplot as plt

from . import plots
from ..config import GROUP_NAMES, ConfigError, ExperimentConfig
from .plots import figure_png, pca_panel
from .run_summary import run_summary_html
from ..runs.study import RunRecord, is_done, load_run, run_dir, run_experiment

SETTINGS = ("bias", "captions", "seed", "loss")   # what picks a run; the view controls only redraw
STORED, NOT_RUN, TRAINED, INVALID = "stored", "not run", "trained", "invalid"


class LiveController:
    """What the live explorer does when a setting changes or Run is pressed, without widgets.

    draw(record) shows a run (draw(None) hides the shown one), say(text) shows a status line;
    every object in `busy` (anything with a `disabled` attribute: the Run button, the setting
    controls) is disabled while training and enabled again afterwards, also when training fails.
    train(config) trains and stores one run (default: `run_experiment` into runs_dir with progress
    bars)."""

    def __init__(self, base: ExperimentConfig, runs_dir, draw: Callable, say: Callable,
                 busy: Iterable = (), train: Optional[Callable] = None):
        self.base, self.runs_dir = base, Path(runs_dir)
        self.draw, self.say, self.busy = draw, say, list(busy)
        self.train = train or (lambda config: run_experiment(config, root=self.runs_dir, progress=True))
        self.record: Optional[RunRecord] = None
        self.training = False

    def config(self, settings: dict) -> ExperimentConfig:
        """The base config with the settings laid over it (bias rounded: a slider's 0.15 may come
        as 0.15000000000000002, which would be another run)."""
        changes = {k: settings[k] for k in SETTINGS if k in settings}
        if "bias" in changes:
            changes["bias"] = round(float(changes["bias"]), 6)
        if "seed" in changes:
            changes["seed"] = int(changes["seed"])
        return self.base.replace(**changes)

    def stored(self, config: ExperimentConfig) -> Optional[RunRecord]:
        path = run_dir(config, self.runs_dir)
        return load_run(path) if is_done(path) else None

    def select(self, settings: dict) -> str:
        """Show the stored run of `settings` ("stored"), or say that it needs Run ("not run")."""
        try:
            config = self.config(settings)
        except ConfigError as err:
            self.record = None
            self.draw(None)
            self.say(f"Not a valid setting: {err}")
            return INVALID
        self.record = self.stored(config)
        if self.record is None:
            self.draw(None)
            self.say(f"Not run yet ({describe(config)}): press Run to train it.")
            return NOT_RUN
        self.say(f"Stored run {self.record.path.name} ({describe(config)}).")
        self.draw(self.record)
        return STORED

    def run(self, settings: dict) -> str:
        """Run pressed: show the setting at once if stored, else train it with `busy` disabled.
        Returns "stored", "trained", "invalid" or "busy" (a press while training does nothing).
        An error in training propagates after the controls are enabled again."""
        if self.training:
            return "busy"
        state = self.select(settings)
        if state != NOT_RUN:
            return state
        config = self.config(settings)
        self.training = True
        for widget in self.busy:
            widget.disabled = True
        self.say(f"Training ({describe(config)}) ...")
        try:
            self.record = self.train(config)
        except BaseException:
            self.say(f"Training failed ({describe(config)}).")
            raise
        finally:
            for widget in self.busy:
                widget.disabled = False
            self.training = False
        self.say(f"Trained and stored run {self.record.path.name} ({describe(config)}).")
        self.draw(self.record)
        return TRAINED

    def redraw(self) -> None:
        """A view control changed (embeddings, split, colour): draw the shown run again."""
        if self.record is not None:
            self.draw(self.record)


def describe(config: ExperimentConfig) -> str:
    return (f"bias {config.data.bias:g}, {config.data.captions} captions, seed {config.train.seed}, "
            f"{config.train.loss} loss")


def live_figure(record: RunRecord, kind: str = "image", split: str = "train", colour_by: str = "group"):
    """One run's PCA panel beside its per-group zero-shot accuracies (a matplotlib Figure)."""
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
        pca_panel(record.embeddings(), kind, split, colour_by, ax=axes[0], title=f"{kind} embeddings, {split}")
        plots.plot_group_accuracy({g: record.metrics[f"acc_{g}"] for g in GROUP_NAMES}, ax=axes[1],
                                  title="zero-shot accuracy (test)")
    return fig


def live_explorer(base: ExperimentConfig, runs_dir, train: Optional[Callable] = None):
    """Kernel-driven explorer for JupyterLab: change settings, press Run, see PCA and accuracies.

    Returns a VBox; its `controller` attribute is the `LiveController` and `widgets` the controls
    by name (for tests). `train` replaces the training call (tests)."""
    import ipywidgets as widgets

    from ..config import CAPTION_MODES, LOSSES

    small = {"description_width": "initial"}
    w = {
        "bias": widgets.FloatSlider(value=base.data.bias, min=0.0, max=1.0, step=0.05, description="bias",
                                    continuous_update=False, readout_format=".2f", style=small,
                                    layout=widgets.Layout(width="230px")),
        "captions": widgets.Dropdown(options=CAPTION_MODES, value=base.data.captions, description="captions",
                                     style=small, layout=widgets.Layout(width="210px")),
        # continuous_update: a typed seed counts at once, without Enter or leaving the box
        "seed": widgets.BoundedIntText(value=base.train.seed, min=0, max=10_000, description="seed",
                                       continuous_update=True, style=small, layout=widgets.Layout(width="120px")),
        "loss": widgets.Dropdown(options=[x for x in LOSSES if x != "image_only"], value=base.train.loss,
                                 description="loss", style=small, layout=widgets.Layout(width="140px")),
        "kind": widgets.Dropdown(options=["image", "text"], description="embeddings", style=small,
                                 layout=widgets.Layout(width="170px")),
        "split": widgets.Dropdown(options=["train", "test"], description="split", style=small,
                                  layout=widgets.Layout(width="130px")),
        "colour_by": widgets.Dropdown(options=plots.COLOUR_BY, description="colour by", style=small,
                                      layout=widgets.Layout(width="190px")),
    }
    button = widgets.Button(description="Run", button_style="primary", icon="play",
                            tooltip="train this setting (a stored one is shown at once)",
                            layout=widgets.Layout(width="90px"))
    status = widgets.HTML()
    progress = widgets.Output()          # the trainer's tqdm bars (tqdm.auto makes them widgets in Lab)
    image = widgets.Image(format="png", layout=widgets.Layout(width="820px", max_width="100%"))
    summary = widgets.HTML()
    result = widgets.VBox([image, summary], layout=widgets.Layout(display="none"))

    def settings() -> dict:
        return {name: w[name].value for name in SETTINGS}

    def draw(record: Optional[RunRecord]) -> None:
        if record is None:
            result.layout.display = "none"
            return
        image.value = figure_png(live_figure(record, w["kind"].value, w["split"].value, w["colour_by"].value))
        summary.value = run_summary_html(record, compact=True)
        result.layout.display = None

    def say(text: str) -> None:
        status.value = html.escape(text)

    def train_with_bar(config: ExperimentConfig) -> RunRecord:
        progress.clear_output()
        with progress:
            record = (train or (lambda c: run_experiment(c, root=runs_dir, progress=True)))(config)
        progress.clear_output()
        return record

    controller = LiveController(base, runs_dir, draw, say, busy=[button, *(w[k] for k in SETTINGS)],
                                train=train_with_bar)

    def on_run(_=None) -> None:
        try:
            controller.run(settings())
        except Exception as err:  # noqa: BLE001 - shown in the explorer, which stays usable
            status.value = f"<b>Training failed:</b> {html.escape(f'{type(err).__name__}: {err}')}"
            with progress:
                traceback.print_exc()

    for name in SETTINGS:
        w[name].observe(lambda change: controller.select(settings()), names="value")
    for name in ("kind", "split", "colour_by"):
        w[name].observe(lambda change: controller.redraw(), names="value")
    button.on_click(on_run)
    controller.select(settings())
    row = widgets.Layout(flex_flow="row wrap", align_items="center")
    box = widgets.VBox([widgets.HBox([*(w[k] for k in SETTINGS), button], layout=row),
                        widgets.HBox([w["kind"], w["split"], w["colour_by"]], layout=row),
                        status, progress, result])
    box.controller, box.widgets, box.button = controller, w, button
    return box
