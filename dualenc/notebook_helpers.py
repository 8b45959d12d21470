"""Helpers that keep the notebooks thin: parameter handling, tables and composite figures.

The notebooks in `notebooks/` call these; nothing else in the package depends on this file.
Figures use `dualenc.plots` for every panel and its colours (the original study's).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import plots
from .notebook_params import display_path
from .config import (GROUP_NAMES, ANIMALS, BACKGROUNDS, GROUPS, MAJORITY_GROUPS, MINORITY_GROUPS, ConfigError, DataConfig,
                     ExperimentConfig, TrainConfig, config_hash, group_name)


# ---------------------------------------------------------------- parameters of experiment.ipynb

# Parameters a registry experiment fixes (they define the experiment) ...
DEFINING = ("bias", "captions", "descriptive_share", "caption_templates", "loss", "data_dir")
# ... and the ones that may still be changed with it (seed and size knobs).
ADJUSTABLE = ("seed", "steps", "image_size", "n_train_per_group", "n_val_per_group", "n_test_per_group")
PARAMETERS = ("experiment", *DEFINING, *ADJUSTABLE, "seeds", "runs_dir", "test_dir")


def parameter_defaults() -> dict:
    """The dualenc defaults of every template parameter (the template's own defaults equal these)."""
    from .sweep import SEEDS
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
    from .study import get_experiment

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
    out = {"experiment": config.name if config.name in _registry_names() else ""}
    for name in DEFINING + ADJUSTABLE:
        section = config.data if hasattr(config.data, name) else config.train
        out[name] = getattr(section, name)
    if runs_dir is not None:
        out["runs_dir"] = display_path(runs_dir)  # a built page shows no folder of the machine that built it
    out["config_hash"] = config_hash(config)
    return out


def _registry_names() -> tuple:
    from .study import REGISTRY
    return tuple(REGISTRY)


def resolve_runs_dir(runs_dir: str = "") -> Path:
    """The run store a notebook uses (see `study.runs_root`; "" means the default store)."""
    from .study import runs_root
    return runs_root(runs_dir or None)


def project_path(path: str) -> Path:
    """A path relative to the project root (notebooks run in notebooks/), or as given if absolute."""
    from .study import project_root
    path = Path(path)
    return path if path.is_absolute() or project_root() is None else project_root() / path


def converged_table(converged: pd.DataFrame) -> pd.DataFrame:
    """calibration.converged_budget for reading: a row per (model, method)."""
    out = converged.rename(columns={"candidate": "model", "converged_steps": "converged at (steps)",
                                    "val_average_acc_at_largest": "validation accuracy, largest budget"})
    return out.set_index(["model", "method"]).round(3)


ORIGINAL_EXPERIMENTS = ("exp1", "exp2", "exp3", "exp4")

# The book's quick profile (a smoke-test build, `tools/build_book.py --profile quick`): every page
# trains at these sizes and the sweep page reads the tiny `ci` grid. The build exports the
# profile in $DUALENC_BOOK_PROFILE; outside a quick build these functions change nothing.
BOOK_PROFILE_ENV = "DUALENC_BOOK_PROFILE"
QUICK_SIZES = {"steps": 30, "n_val_per_group": 12, "n_test_per_group": 24}
QUICK_SEEDS = 2


def in_book_build() -> bool:
    """Whether this kernel runs for a book build (tools/build_book.py exports the profile)."""
    return bool(os.environ.get(BOOK_PROFILE_ENV, ""))


def quick_book_build() -> bool:
    return os.environ.get(BOOK_PROFILE_ENV, "") == "quick"


def book_profile_sizes(sizes: dict) -> dict:
    """`sizes` with the quick profile's sizes laid over them in a quick book build."""
    return {**sizes, **QUICK_SIZES} if quick_book_build() else sizes


def book_profile_seeds(seeds: int) -> int:
    """Seeds a page trains: `seeds`, or QUICK_SEEDS in a quick book build."""
    return QUICK_SEEDS if quick_book_build() else seeds


def book_profile_grid(grid: str) -> str:
    """The sweep grid a page reads: `grid`, or the tiny "ci" grid in a quick book build."""
    return "ci" if quick_book_build() else grid


def registry_configs(names=ORIGINAL_EXPERIMENTS, **sizes) -> dict:
    """Registry experiments (the original's four by default), with seed / steps / size knobs changed
    where given (a value equal to the registry's leaves the config, and so the run, unchanged)."""
    from .study import get_experiment
    changes = {k: v for k, v in sizes.items() if v is not None}
    return {name: (get_experiment(name).replace(**changes) if changes else get_experiment(name)) for name in names}


# ---------------------------------------------------------------- data


def sample_training_images(data: DataConfig, per_group: int = 6) -> tuple[np.ndarray, list]:
    """The first `per_group` training images of each group that this bias keeps, a row per group
    (padded with blank tiles where the bias keeps fewer), and titles naming each row's group.

    Generated data is rendered directly (the same seeds as the run); user images are loaded.
    """
    from .data import build_dataset, image_seed
    from .render import render_image

    images, titles = [], []
    if data.data_dir:
        train = build_dataset(data).train
    for animal, background in GROUPS:
        g = group_name(animal, background)
        if data.data_dir:
            idx = np.flatnonzero(train.group == g)[:per_group]
            picked = list(train.images[idx])
        else:
            kept = data.minority_kept() if (animal, background) in MINORITY_GROUPS else data.n_train_per_group
            picked = [render_image(animal, background, image_seed(data.draw_seed, "train", animal, background, i), data)
                      for i in range(min(per_group, kept))]
        label = plots.GROUP_LABELS[g]
        if not data.data_dir and (animal, background) in MINORITY_GROUPS:
            label += f" ({data.minority_kept()} of {data.n_train_per_group} kept)"
        titles += [label] + [""] * (per_group - 1)
        blank = np.full((data.image_size, data.image_size, 3), 255, dtype=np.uint8)
        images += picked + [blank] * (per_group - len(picked))
    return np.stack(images), titles


def group_counts_table(config: ExperimentConfig, metrics: dict) -> pd.DataFrame:
    """Training / validation / test images per group for this run."""
    d = config.data
    rows = []
    for animal, background in GROUPS:
        g = group_name(animal, background)
        minority = (animal, background) in MINORITY_GROUPS
        rows.append({"group": plots.GROUP_LABELS[g], "role": "minority" if minority else "majority",
                     "training images": int(metrics[f"n_train_{g}"]),
                     "validation images": d.n_val_per_group if not d.data_dir else np.nan,
                     "test images": d.n_test_per_group if not d.data_dir else np.nan})
    return pd.DataFrame(rows).set_index("group")


def bias_table(levels=(0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0), n_per_group: Optional[int] = None) -> pd.DataFrame:
    """What each bias level keeps, from DataConfig: minority images kept and the majority share."""
    rows = []
    for b in levels:
        d = DataConfig(bias=float(b), **({"n_train_per_group": n_per_group} if n_per_group else {}))
        rows.append({"bias": b, "majority images per group": d.n_train_per_group,
                     "minority images kept per group": d.minority_kept(),
                     "training images": 2 * d.n_train_per_group + 2 * d.minority_kept(),
                     "majority share per animal": d.majority_share()})
    return pd.DataFrame(rows)


def plot_bias_levels(table: pd.DataFrame) -> Figure:
    """Bars: images per group kept at each bias level; line: majority share per animal."""
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.0), layout="constrained")
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


def caption_examples(modes: dict, n_per_group: int = 48, data_seed: int = 0) -> pd.DataFrame:
    """Training captions per group for each caption setting: distinct strings with their counts.

    `modes` maps a column title to DataConfig overrides, e.g. {"descriptive, share 0.5":
    {"captions": "descriptive", "descriptive_share": 0.5}}.
    """
    from .captions import training_captions
    from .data import image_seed

    animal = np.repeat([a for a, _ in GROUPS], n_per_group)
    background = np.repeat([b for _, b in GROUPS], n_per_group)
    table = {}
    for title, changes in modes.items():
        d = DataConfig(n_train_per_group=n_per_group, data_seed=data_seed, **changes)
        caps = np.array(training_captions(animal, background, d, image_seed(d.draw_seed, "train", "captions", "", 0)))
        column = {}
        for a, b in GROUPS:
            texts, counts = np.unique(caps[(animal == a) & (background == b)], return_counts=True)
            column[plots.GROUP_LABELS[group_name(a, b)]] = "; ".join(
                f"\u201c{t}\u201d \u00d7{c}" for t, c in sorted(zip(texts, counts), key=lambda tc: -tc[1]))
        table[title] = column
    return pd.DataFrame(table)


PROBE_FEATURES = {"pixels": "raw pixels", "random": "untrained encoder", "trained": "trained encoder"}


def probe_summary(records: list) -> pd.DataFrame:
    """Mean probe accuracy over the seeds' runs: rows pixels / random / trained, columns animal /
    background (probes fit on the validation split, scored on the test split)."""
    suffix = {"pixels": "_pixels", "random": "_random", "trained": ""}
    return pd.DataFrame({features: {label: float(np.mean([r.metrics[f"probe_{label}_acc{suffix[features]}"]
                                                         for r in records]))
                                    for label in ("animal", "background")}
                         for features in PROBE_FEATURES}).T


def probe_summary_table(probes: pd.DataFrame) -> pd.DataFrame:
    out = probes.rename(index=PROBE_FEATURES, columns={"animal": "probe: animal", "background": "probe: background"})
    out.index.name = "features"
    return out.round(3)


# ---------------------------------------------------------------- metrics


_METRIC_ROWS = [
    # (section, key, meaning)
    ("headline", "average_acc", "zero-shot accuracy, mean of the four groups"),
    ("headline", "worst_group_acc", "zero-shot accuracy of the worst group"),
    ("headline", "worst_group", "the worst group"),
    ("headline", "gap", "majority minus minority accuracy"),
    *[("per group", f"acc_{g}", f"zero-shot accuracy on {plots.GROUP_LABELS[g]}") for g in GROUP_NAMES],
    ("prompt sets", "zs_class_average_acc", 'average accuracy, prompts "horse" / "camel"'),
    ("prompt sets", "zs_class_worst_group_acc", 'worst-group accuracy, prompts "horse" / "camel"'),
    ("prompt sets", "zs_pooled_average_acc", "average accuracy, four descriptive captions pooled"),
    ("prompt sets", "zs_pooled_worst_group_acc", "worst-group accuracy, four descriptive captions pooled"),
    ("probes", "probe_animal_acc", "linear probe on image embeddings: animal"),
    ("probes", "probe_background_acc", "linear probe on image embeddings: background"),
    ("geometry", "silhouette_animal_image", "silhouette of test image embeddings by animal"),
    ("geometry", "silhouette_background_image", "... by background"),
    ("geometry", "silhouette_group_image", "... by group"),
    ("geometry", "silhouette_animal_text", "silhouette of training caption embeddings by animal"),
    ("geometry", "silhouette_background_text", "... by background"),
    ("geometry", "silhouette_group_text", "... by group"),
]
_METRIC_ROWS_LABELS = [(key, meaning) for _, key, meaning in _METRIC_ROWS] + [
    ("majority_acc", "zero-shot accuracy, mean of the two majority groups"),
    ("minority_acc", "zero-shot accuracy, mean of the two minority groups"),
    ("probe_animal_acc_pixels", "linear probe on raw pixels: animal"),
    ("probe_animal_acc_random", "linear probe on an untrained encoder: animal"),
    ("silhouette_animal_image", "silhouette of test image embeddings by animal"),
    ("silhouette_background_image", "silhouette of test image embeddings by background"),
]


def metrics_table(metrics: dict) -> pd.DataFrame:
    """The run's metrics with a section and a meaning per row (rows a run lacks are left out)."""
    rows = []
    for section, key, meaning in _METRIC_ROWS:
        if key in metrics:
            value = metrics[key]
            shown = plots.GROUP_LABELS.get(value, value) if isinstance(value, str) else float(value)
            rows.append({"section": section, "metric": key, "value": shown, "meaning": meaning})
    return pd.DataFrame(rows).set_index(["section", "metric"])


def plot_zero_shot(metrics: dict, headline: str = "") -> Figure:
    """Per-group accuracy bars: one panel per prompt set (the headline set first), or the classifier's."""
    sets = [(p, t) for p, t in (("class", 'prompts "horse" / "camel"'), ("pooled", "descriptive captions pooled"))
            if f"zs_{p}_acc_horse_grass" in metrics]
    sets.sort(key=lambda pt: pt[0] != metrics.get("headline_prompts"))
    if not sets:
        sets = [("", "image-only classifier")]
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.0), layout="constrained", squeeze=False)
        for ax, (prefix, title) in zip(axes.flat, sets):
            key = f"zs_{prefix}_acc_" if prefix else "acc_"
            mark = " (headline)" if prefix == metrics.get("headline_prompts") and len(sets) > 1 else ""
            plots.plot_group_accuracy({g: metrics[key + g] for g in GROUP_NAMES}, ax=ax, title=title + mark)
        if headline:
            fig.suptitle(headline, fontweight="bold")
    return fig


def _labels(emb: dict, split: str) -> dict:
    return {"animal": emb[f"animal_{split}"], "background": emb[f"background_{split}"]}


def _prompt_labels() -> dict:
    """Labels of the four descriptive captions in `prompt_pooled` (animal-major, as in ZERO_SHOT_POOLED_PROMPTS)."""
    return {"animal": np.array([a for a in ANIMALS for _ in BACKGROUNDS]),
            "background": np.array([b for _ in ANIMALS for b in BACKGROUNDS])}


def pca_figures(emb: dict, colour_by: str = "group") -> dict:
    """The original's PCA views: training images and captions, then the balanced test set with the
    four descriptive captions as its text (runs without a text tower get image panels only)."""
    out = {}
    for split, text_key, text_labels, title in (
            ("train", "text_train", _labels(emb, "train"), "Training set (as in the original)"),
            ("test", "prompt_pooled", _prompt_labels(), "Balanced test set; text: the four descriptive captions")):
        if text_key in emb:
            out[split] = plots.plot_embeddings(emb[f"image_{split}"], _labels(emb, split), emb[text_key],
                                               text_labels, title=title, colour_by=colour_by)
        else:
            ax = plots.plot_pca(emb[f"image_{split}"], _labels(emb, split), title=title, colour_by=colour_by)
            out[split] = ax.figure
    return out


def pca_panel(emb: dict, kind: str, split: str, colour_by: str = "group", ax=None, title: str = ""):
    """One PCA panel: kind "image" or "text", split "train" or "test" (test text: the four captions)."""
    if kind == "image":
        x, labels = emb[f"image_{split}"], _labels(emb, split)
    elif split == "train" and "text_train" in emb:
        x, labels = emb["text_train"], _labels(emb, "train")
    elif "prompt_pooled" in emb:
        x, labels = emb["prompt_pooled"], _prompt_labels()
    else:
        raise ValueError("this run has no text embeddings (image-only baseline)")
    return plots.plot_pca(x, labels, ax=ax, title=title, colour_by=colour_by)


def reading(records: list) -> dict:
    """Phrases for a notebook's reading of the seeds of one setting, decided by 95% Student-t
    intervals over the seeds, as every difference in the book (never from one run; with one seed
    nothing is claimed)."""
    from .metrics import mean_ci

    def sign(values) -> int:
        _, low, high = mean_ci(values)
        return 1 if low > 0 else -1 if high < 0 else 0   # NaN interval (one seed): 0

    gap = sign([r.metrics["gap"] for r in records])
    probes = sign([r.metrics["probe_background_acc"] - r.metrics["probe_animal_acc"] for r in records])
    return {
        "worst_group": plots.GROUP_LABELS[records[0].metrics["worst_group"]],
        "easier_feature": {1: "the background is the more linearly readable of the two",
                           -1: "the animal is the more linearly readable of the two",
                           0: "neither is clearly the more readable over these seeds"}[probes],
        "gap_reading": {1: "the majority groups are classified better than the minority groups",
                        -1: "the minority groups are classified better than the majority groups",
                        0: "over these seeds the interval of the gap spans 0, so no difference between majority "
                           "and minority groups can be claimed"}[gap],
    }


# ---------------------------------------------------------------- several seeds of one setting

SEED_SUMMARY_METRICS = ["average_acc", "worst_group_acc", "gap", "majority_acc", "minority_acc",
                        "acc_horse_grass", "acc_camel_desert", "acc_horse_desert", "acc_camel_grass",
                        "probe_animal_acc", "probe_background_acc", "probe_animal_acc_pixels",
                        "probe_animal_acc_random", "silhouette_animal_image", "silhouette_background_image"]


def check_seeds(seeds) -> int:
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= 100:
        raise ConfigError(f"seeds={seeds!r} is not allowed: expected an integer in [1, 100]")
    return seeds


def seed_records(config: ExperimentConfig, seeds: int, runs_dir) -> list:
    """The runs of seeds config.seed, config.seed + 1, ...: trained together (or loaded)."""
    from .study import run_group
    from .sweep import group_configs

    configs = [config.replace(seed=config.train.seed + i) for i in range(check_seeds(seeds))]
    return [r for group in group_configs(configs) for r in run_group(group, root=runs_dir, progress=False)]


def _with_group_means(metrics: dict) -> dict:
    out = dict(metrics)
    out["majority_acc"] = np.mean([metrics[f"acc_{group_name(*g)}"] for g in MAJORITY_GROUPS])
    out["minority_acc"] = np.mean([metrics[f"acc_{group_name(*g)}"] for g in MINORITY_GROUPS])
    return out


def seed_summary(records: list) -> pd.DataFrame:
    """Index: metric; columns mean, low, high (95% percentile-bootstrap interval over seeds, as
    every level in the book: it stays inside the values' range), min, max."""
    from .metrics import bootstrap_ci

    rows = {}
    table = [_with_group_means(r.metrics) for r in records]
    for key in SEED_SUMMARY_METRICS:
        values = [m[key] for m in table if key in m]
        if not values:
            continue
        mean, low, high = bootstrap_ci(values)
        rows[key] = {"mean": mean, "low": low, "high": high, "min": min(values), "max": max(values)}
    return pd.DataFrame(rows).T


def seed_summary_table(records: list) -> pd.DataFrame:
    """The seed summary for reading: readable metric names, "mean [low, high]" and the seeds' range."""
    summary = seed_summary(records)
    labels = dict(_METRIC_ROWS_LABELS)
    out = pd.DataFrame({
        f"mean [95% interval], {len(records)} seeds": [
            f"{r['mean']:.3f}" + ("" if np.isnan(r["low"]) else f" [{r['low']:.3f}, {r['high']:.3f}]")
            for _, r in summary.iterrows()],
        "range over seeds": [f"{r['min']:.3f} to {r['max']:.3f}" for _, r in summary.iterrows()]},
        index=[labels.get(k, k) for k in summary.index])
    out.index.name = "metric"
    return out


def glue_figure(name: str, fig: Figure) -> None:
    """Glue a figure for the book (myst-nb) and show it once, then close it."""
    from myst_nb import glue

    glue(name, fig, display=True)
    plt.close(fig)


# ---------------------------------------------------------------- several runs


def comparison_table(records: dict) -> pd.DataFrame:
    """One row per experiment (keyed by name): settings, the number of seeds, the headline metrics,
    worst-group accuracy with each prompt set, and the probes beside the raw-pixel and
    random-encoder probes (where the runs have them). A value is a RunRecord or a list of them (the
    seeds of one setting): numbers are then means over the seeds, and the worst group the one most
    seeds share."""
    rows = []
    for name, recs in records.items():
        recs = list(recs) if isinstance(recs, (list, tuple)) else [recs]

        def mean(key):
            return float(np.mean([r.metrics.get(key, np.nan) for r in recs]))

        worst = pd.Series([r.metrics["worst_group"] for r in recs]).mode().iloc[0]
        d = recs[0].config.data
        rows.append({"experiment": name, "bias": d.bias, "captions": d.captions, "seeds": len(recs),
                     "average acc": mean("average_acc"), "worst-group acc": mean("worst_group_acc"),
                     "worst group": plots.GROUP_LABELS[worst], "gap": mean("gap"),
                     'worst-group acc, "horse" / "camel"': mean("zs_class_worst_group_acc"),
                     "worst-group acc, four captions": mean("zs_pooled_worst_group_acc"),
                     "probe: animal": mean("probe_animal_acc"),
                     "probe: animal, raw pixels": mean("probe_animal_acc_pixels"),
                     "probe: animal, random encoder": mean("probe_animal_acc_random"),
                     "probe: background": mean("probe_background_acc"),
                     "silhouette image: animal": mean("silhouette_animal_image"),
                     "silhouette image: background": mean("silhouette_background_image"),
                     "silhouette text: animal": mean("silhouette_animal_text"),
                     "silhouette text: background": mean("silhouette_background_text")})
    return pd.DataFrame(rows).set_index("experiment")


def _change(value: float) -> str:
    """How one run's number stands to another's: "above", "below" or "equal to". A description of
    two single runs, never a claim: one seed has no interval."""
    return "above" if value > 0 else "below" if value < 0 else "equal to"


# effect -> (a, b, expected sign of a - b): descriptive captions are claimed to help, bias to hurt
EFFECTS = {"captions_unbiased": ("exp2", "exp1", 1), "captions_biased": ("exp4", "exp3", 1),
           "bias_undescriptive": ("exp3", "exp1", -1), "bias_descriptive": ("exp4", "exp2", -1)}


def comparison_effects(records: dict, metric: str = "worst_group_acc") -> dict:
    """The four effects of the original's design on `metric`, a minus b, paired by seed:
    captions_unbiased = exp2 - exp1, captions_biased = exp4 - exp3 (claimed: higher),
    bias_undescriptive = exp3 - exp1, bias_descriptive = exp4 - exp2 (claimed: lower).

    `records` maps exp1..exp4 to a RunRecord or a list of them (the same seeds in each). Returns
    name -> {"mean", "low", "high", "n", "outcome", "words"}: the 95% Student-t interval of the
    seed-by-seed differences and the claim's outcome (`verdicts.outcome`, floors and ceilings
    first). "words" is a direction ("higher" / "lower") only for a supported or contradicted
    outcome; with one seed there is no interval, the outcome is inconclusive and "words" only
    describes the two runs ("above" / "below" / "equal to")."""
    from .metrics import mean_ci
    from .results import bounds
    from .verdicts import direction, outcome

    runs = {name: {r.config.train.seed: float(r.metrics[metric])
                   for r in (recs if isinstance(recs, (list, tuple)) else [recs])} for name, recs in records.items()}
    out = {}
    for name, (a, b, expected) in EFFECTS.items():
        if set(runs[a]) != set(runs[b]):
            raise ValueError(f"cannot pair {a} (seeds {sorted(runs[a])}) with {b} (seeds {sorted(runs[b])})")
        seeds = sorted(runs[a])
        x, y = np.array([runs[a][s] for s in seeds]), np.array([runs[b][s] for s in seeds])
        mean, low, high = mean_ci(x - y)
        r = {"mean": mean, "low": low, "high": high, "n": len(seeds),
             "outcome": outcome(low, high, expected, arms=(float(x.mean()), float(y.mean())), limits=bounds(metric))}
        r["words"] = direction(r) if len(seeds) > 1 else _change(mean)
        out[name] = r
    return out


def plot_group_accuracy_comparison(records: dict) -> Figure:
    """Grouped bars: per-group accuracy of each run in the original's colours; each run's worst group
    hatched, its value in bold."""
    from matplotlib.patches import Patch

    names = list(records)
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(9, 4.6), layout="constrained")
        width = 0.8 / len(GROUP_NAMES)
        x = np.arange(len(names))
        for k, g in enumerate(GROUP_NAMES):
            values = [records[n].metrics[f"acc_{g}"] for n in names]
            bars = ax.bar(x - 0.4 + (k + 0.5) * width, values, width, color=plots.GROUP_COLOURS[g], alpha=0.8,
                          edgecolor="0.2", linewidth=0.6)
            labels = ax.bar_label(bars, fmt="%.2f", fontsize=7.5, padding=2)
            for bar, label, n in zip(bars, labels, names):
                if records[n].metrics["worst_group"] == g:
                    bar.set_hatch("//")
                    bar.set_edgecolor("black")
                    label.set_fontweight("bold")
        ax.axhline(0.5, color="0.35", ls="--", lw=1.2, zorder=0.5)
        ax.set_xticks(x, [f"{n}\nbias {records[n].config.data.bias:g}\n{records[n].config.data.captions}"
                          for n in names])
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("zero-shot accuracy (test)")
        ax.grid(axis="x", visible=False)
        ax.set_title("Per-group accuracy of each experiment")
        handles = [Patch(facecolor=plots.GROUP_COLOURS[g], alpha=0.8, edgecolor="0.2", label=plots.GROUP_LABELS[g])
                   for g in GROUP_NAMES]
        handles += [Patch(facecolor="white", edgecolor="black", hatch="//", label="worst group"),
                    plt.Line2D([], [], color="0.35", ls="--", label="chance")]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9)
    return fig


def pca_grid(records: dict, split: str = "train", kind: str = "image", colour_by: str = "group") -> Figure:
    """The runs' PCA panels in a grid of two columns, with one shared legend."""
    names = list(records)
    rows = int(np.ceil(len(names) / 2))
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(rows, 2, figsize=(10, 4.3 * rows), layout="constrained", squeeze=False)
        for ax, name in zip(axes.flat, names):
            d = records[name].config.data
            pca_panel(records[name].embeddings(), kind, split, colour_by, ax=ax,
                      title=f"{name}: bias {d.bias:g}, {d.captions}")
            ax.get_legend().remove()
        for ax in list(axes.flat)[len(names):]:
            ax.remove()
        colours, names = {"group": (plots.GROUP_COLOURS, plots.GROUP_LABELS),
                          "animal": (plots.ANIMAL_COLOURS, {a: a for a in ANIMALS}),
                          "background": (plots.BACKGROUND_COLOURS, {b: b for b in BACKGROUNDS})}[colour_by]
        handles = [plt.Line2D([], [], ls="", marker="o", markersize=7, markerfacecolor=colours[k],
                              markeredgecolor="white", label=names[k]) for k in colours]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
        fig.suptitle(f"{kind.capitalize()} embeddings, {'training' if split == 'train' else 'balanced test'} set",
                     fontweight="bold")
    return fig


def figure_png(fig: Figure, dpi: int = 80, close: bool = True) -> bytes:
    """A figure as PNG bytes (closed afterwards, so notebooks do not show it twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return buf.getvalue()
