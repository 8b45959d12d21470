"""What turns a notebook's parameters into calls: the experiment template's parameters, the run
store and project paths, the registry's configs at a page's sizes, and glued figures.

Used by the notebooks in `notebooks/` and by tests/test_notebooks.py (which checks that PARAMETERS
and parameter_defaults() equal the template's `parameters` cell); nothing in the package imports it.
Tables are in `dualenc.analysis.tables`, figures in `dualenc.book.plots`, the book's quick profile in
`dualenc.book.book_profile`, a setting's seeds in `dualenc.runs.seed_runs`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..config import ConfigError, DataConfig, ExperimentConfig, TrainConfig, config_hash
from .notebook_params import display_path
from ..design import ORIGINAL_EXPERIMENTS, SEEDS
from ..runs.study import REGISTRY, get_experiment, project_root, runs_root

# ---------------------------------------------------------------- parameters of experiment.ipynb

# Parameters a registry experiment fixes (they define the experiment) ...
DEFINING = ("bias", "captions", "descriptive_share", "caption_templates", "loss", "data_dir")
# ... and the ones that may still be changed with it (seed and size knobs).
ADJUSTABLE = ("seed", "steps", "image_size", "n_train_per_group", "n_val_per_group", "n_test_per_group")
PARAMETERS = ("experiment", *DEFINING, *ADJUSTABLE, "seeds", "runs_dir", "test_dir")


def parameter_defaults() -> dict:
    """The dualenc defaults of every template parameter (the template's own defaults equal these)."""
    data, train = DataConfig(), TrainConfig()
    out = {"experiment": "", "runs_dir": "", "seeds": len(SEEDS), "test_dir": ""}
    for name in DEFINING + ADJUSTABLE:
        out[name] = getattr(data, name) if hasattr(data, name) else getattr(train, name)
    return out


def config_from_parameters(params: dict) -> ExperimentConfig:
    """The config the template runs, from its parameters; a bad value raises ConfigError.

    experiment == "": every parameter is used as given.
    experiment == "expN": the registry's config is used; seed, steps, image_size and the
    n_*_per_group sizes override it where they differ from the defaults; a defining parameter
    (bias, captions, descriptive_share, caption_templates, loss, data_dir) must stay at its default
    or equal the registry's value, otherwise it is an error (it would silently be ignored).
    """
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}: allowed are {list(PARAMETERS)}")
    defaults = parameter_defaults()
    values = {k: params.get(k, defaults[k]) for k in PARAMETERS}  # the config stores 1 as 1.0
    for name in ("experiment", "runs_dir", "data_dir", "captions", "loss", "test_dir"):
        if not isinstance(values[name], str):
            raise ConfigError(f"{name}={values[name]!r} is not allowed: expected a string")
    settings = {k: values[k] for k in DEFINING + ADJUSTABLE}
    if not values["experiment"]:
        return ExperimentConfig(name="custom").replace(**settings)
    base = get_experiment(values["experiment"])
    base_values = used_parameters(base)
    for name in DEFINING:
        if values[name] != defaults[name] and values[name] != base_values[name]:
            raise ConfigError(
                f"{name}={values[name]!r} conflicts with experiment={values['experiment']!r}, which fixes "
                f"{name}={base_values[name]!r}: leave {name} at {defaults[name]!r} or set experiment=\"\"")
    changes = {k: values[k] for k in ADJUSTABLE if values[k] != defaults[k]}
    return base.replace(**changes) if changes else base


def used_parameters(config: ExperimentConfig, runs_dir: Optional[str] = None) -> dict:
    """The template parameters as the config actually has them (plus the run's hash)."""
    out = {"experiment": config.name if config.name in REGISTRY else ""}
    for name in DEFINING + ADJUSTABLE:
        section = config.data if hasattr(config.data, name) else config.train
        out[name] = getattr(section, name)
    if runs_dir is not None:
        out["runs_dir"] = display_path(runs_dir)  # a built page shows no folder of the machine that built it
    out["config_hash"] = config_hash(config)
    return out


def resolve_runs_dir(runs_dir: str = "") -> Path:
    """The run store a notebook uses (see `study.runs_root`; "" means the default store)."""
    return runs_root(runs_dir or None)


def project_path(path: str) -> Path:
    """A path relative to the project root (notebooks run in notebooks/), or as given if absolute."""
    path = Path(path)
    return path if path.is_absolute() or project_root() is None else project_root() / path


def registry_configs(names=ORIGINAL_EXPERIMENTS, **sizes) -> dict:
    """Registry experiments (the original's four by default), with seed / steps / size knobs changed
    where given (a value equal to the registry's leaves the config, and so the run, unchanged)."""
    changes = {k: v for k, v in sizes.items() if v is not None}
    return {name: (get_experiment(name).replace(**changes) if changes else get_experiment(name)) for name in names}


def glue_figure(name: str, fig: Figure) -> None:
    """Glue a figure for the book (myst-nb) and show it once, then close it."""
    from myst_nb import glue

    glue(name, fig, display=True)
    plt.close(fig)
