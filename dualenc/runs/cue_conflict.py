"""What "the animal" is to a model: its shape or its colour (after Geirhos et al., ICLR 2019).

Every stored run is asked again, in its own words (its headline prompts, or its classifier), on its
own balanced test images in two altered forms:

- `acc_coat_swap`: each animal wears a coat drawn from the other animal's palettes, rendered at
  render time (`render_image(coat_of=...)`): same shape, pose, size, place and background. Right
  means the shape won; wrong means the coat did.
- `acc_greyscale`: the test images in grey (ITU-R 601 luma): no colour at all.

Beside them `acc_test` is the same read-out on the unaltered images (the run's average accuracy).
Each is the mean of the four groups' accuracies. Camels here are sand-coloured like the desert, so
a model that reads colour reads the background's colour too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..config import ANIMALS, DataConfig, ExperimentConfig
from ..data.datasets import Split, build_dataset
from .. import design
from ..design import arm_of_config
from .evaluate import RunOutputs
from .study import is_done, load_model, load_run, runs_root

MEASURES = ("acc_test", "acc_coat_swap", "acc_greyscale")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
BASE_SIZE = ExperimentConfig().data.n_train_per_group   # the bias curve's size (not the data-size block's)


def greyscale(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 images in grey: each pixel's luma on all three channels."""
    luma = np.rint(images.astype(np.float32) @ LUMA).clip(0, 255).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=-1)


def coat_swapped(split: Split, data: DataConfig) -> np.ndarray:
    """The generated images of `split`, each animal in a coat of the other animal."""
    from ..data.render import render_image

    other = {a: b for a, b in zip(ANIMALS, ANIMALS[::-1])}
    return np.stack([render_image(a, b, int(str(s).split(":", 1)[1]), data, coat_of=other[a])
                     for a, b, s in zip(split.animal, split.background, split.source)])


_ALTERED: dict = {}   # render key of a test split -> its altered images (shared by the runs of one draw)


def _altered(dataset, data: DataConfig) -> dict:
    key = (tuple(dataset.test.source), data.image_size, data.animal_size, data.animal_similarity)
    if key not in _ALTERED:
        _ALTERED[key] = {"acc_coat_swap": coat_swapped(dataset.test, data),
                         "acc_greyscale": greyscale(dataset.test.images)}
    return _ALTERED[key]


def run_row(path: Path) -> Optional[dict]:
    """The cue-conflict row of one stored run of generated images (None for a user's images)."""
    record = load_run(path)
    config = record.config
    if config.data.data_dir:
        return None
    data = config.resolved_data()
    dataset = build_dataset(data)
    model, tokenizer = load_model(path)
    row = {"run": path.name, "arm": arm_of_config(config), "bias": data.bias, "seed": config.train.seed,
           "n_train_per_group": data.n_train_per_group}
    variants = {"acc_test": dataset.test.images, **_altered(dataset, data)}
    for name, images in variants.items():
        test = Split(images, dataset.test.animal, dataset.test.background, dataset.test.captions,
                     dataset.test.source)
        altered = type(dataset)(dataset.train, dataset.val, test)
        outputs = RunOutputs(config, altered, model, tokenizer)
        row[name] = outputs.accuracy_summary("headline")["average_acc"]
    return row


def scored_arms() -> tuple:
    """The core arms (`design.Arm.core`) whose own words can name the animal: not the
    background-only control, whose text never names one."""
    return tuple(a.name for a in design.ARMS.values() if a.core and a.captions != "background")


def collect_cue_conflict(root: Optional[str | Path] = None, runs: Optional[set] = None) -> pd.DataFrame:
    """One row per finished run of a `scored_arms` arm at the base training-set size and at a bias
    level the verdict reads (`design.role_levels`) in the store (only `runs`, if given)."""
    rows, arms, levels = [], scored_arms(), design.role_levels().values()
    for path in sorted(runs_root(root).glob("*")):
        if path.name.startswith(".") or not is_done(path) or (runs is not None and path.name not in runs):
            continue
        config = load_run(path).config
        if arm_of_config(config) not in arms or config.data.n_train_per_group != BASE_SIZE \
                or not any(abs(config.data.bias - b) < 1e-9 for b in levels):
            continue
        row = run_row(path)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows)


def cue_table(path: Optional[str | Path], root: Optional[str | Path], runs: set) -> pd.DataFrame:
    """The committed table at `path` if there is one, else the rows of `runs` asked from the store at
    `root` (a quick build that trained its own runs)."""
    if path is not None and Path(path).is_file():
        return pd.read_csv(path)
    return collect_cue_conflict(root, runs=runs)
