"""Why an arm classifies as it does, from the stored runs' embeddings: results/mechanism.csv.

For every finished run with a text tower, from its embeddings.npz (no training, no model):

- `cos_<a>__<b>`: the cosine similarity of two prompts' text embeddings, for the prompts "horse",
  "camel" and the four descriptive captions (named by their group: horse_grass, ...), and three
  averages: `cos_same_animal` (one animal, two backgrounds), `cos_same_background` (one background,
  two animals) and `cos_neither`;
- `match_<kind>`: for the minority-group test images, which of the four descriptive captions is
  nearest to the image, by kind: `exact` (its animal and background), `animal` (its animal, the
  other background), `background` (the other animal, its background: the background won) and
  `neither`. Shares of the minority images, summing to 1.

`dualenc mechanism --runs DIR --grid default --out results/mechanism.csv` writes the table; the
sweep page reads it.
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..data.captions import ZERO_SHOT_CLASS_PROMPTS
from ..config import ANIMALS, BACKGROUNDS, group_name
from ..design import arm_of_config
from .study import is_done, load_run, runs_root, stored_training

CLASS_PROMPTS = tuple(p[0] for p in ZERO_SHOT_CLASS_PROMPTS)                        # "horse", "camel"
CAPTION_GROUPS = tuple(group_name(a, b) for a in ANIMALS for b in BACKGROUNDS)   # captions.ZERO_SHOT_POOLED_PROMPTS order
PROMPTS = (*CLASS_PROMPTS, *CAPTION_GROUPS)
MINORITY = ("horse_desert", "camel_grass")
MATCH_KINDS = ("exact", "animal", "background", "neither")


def _pairs(groups: tuple, same: str) -> list:
    """Pairs of caption groups that share `same` ("animal", "background") or "neither"."""
    def parts(g):
        return dict(zip(("animal", "background"), g.split("_")))
    out = []
    for a, b in combinations(groups, 2):
        shared = {k for k in ("animal", "background") if parts(a)[k] == parts(b)[k]}
        if (same == "neither" and not shared) or same in shared:
            out.append((a, b))
    return out


def similarity(prompts: np.ndarray) -> dict:
    """cos_<a>__<b> for every pair of PROMPTS, and the three averages over the descriptive captions;
    `prompts`: (len(PROMPTS), D) L2-normalised text embeddings in PROMPTS order."""
    cos = prompts @ prompts.T
    index = {name: i for i, name in enumerate(PROMPTS)}
    out = {f"cos_{a}__{b}": float(cos[index[a], index[b]]) for a, b in combinations(PROMPTS, 2)}
    for same in ("animal", "background", "neither"):
        out[f"cos_same_{same}" if same != "neither" else "cos_neither"] = float(
            np.mean([cos[index[a], index[b]] for a, b in _pairs(CAPTION_GROUPS, same)]))
    return out


def caption_matches(images: np.ndarray, captions: np.ndarray, animal: np.ndarray, background: np.ndarray) -> dict:
    """match_<kind>: shares of the minority-group images whose nearest descriptive caption is of
    each kind (MATCH_KINDS); `captions` in CAPTION_GROUPS order. NaN with no minority image."""
    groups = np.array([group_name(a, b) for a, b in zip(animal, background)])
    minority = np.isin(groups, MINORITY)
    if not minority.any():
        return {f"match_{k}": np.nan for k in MATCH_KINDS}
    nearest = np.array(CAPTION_GROUPS)[np.argmax(images[minority] @ captions.T, axis=1)]
    won = [tuple(n.split("_")) for n in nearest]
    same_animal = np.array([w[0] == a for w, a in zip(won, animal[minority])])
    same_background = np.array([w[1] == b for w, b in zip(won, background[minority])])
    kinds = {"exact": same_animal & same_background, "animal": same_animal & ~same_background,
             "background": ~same_animal & same_background, "neither": ~same_animal & ~same_background}
    return {f"match_{k}": float(v.mean()) for k, v in kinds.items()}


def run_row(path: Path) -> Optional[dict]:
    """The mechanism row of one finished run (None for a run without a text tower)."""
    record = load_run(path)
    z = record.embeddings()
    if "prompt_pooled" not in z:
        return None
    prompts = np.concatenate([z["prompt_class"], z["prompt_pooled"]])
    c = record.config
    return {"run": path.name, "arm": arm_of_config(c), "bias": c.data.bias, "seed": c.train.seed,
            "n_train_per_group": c.data.n_train_per_group,
            "code_digest": stored_training(path).get("code_digest"),
            **similarity(prompts), **caption_matches(z["image_test"], z["prompt_pooled"], z["animal_test"],
                                                     z["background_test"])}


def collect_mechanism(root: Optional[str | Path] = None, runs: Optional[set] = None) -> pd.DataFrame:
    """One row per finished run with a text tower in the store (only `runs`, if given)."""
    rows = []
    for path in sorted(runs_root(root).glob("*")):
        if path.name.startswith(".") or not is_done(path) or (runs is not None and path.name not in runs):
            continue
        row = run_row(path)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows)


def mechanism_table(path: Optional[str | Path], root: Optional[str | Path], runs: set) -> pd.DataFrame:
    """The committed table at `path` if there is one, else the rows of `runs` collected from the store
    at `root` (a quick build that trained its own runs)."""
    if path is not None and Path(path).is_file():
        return pd.read_csv(path)
    return collect_mechanism(root, runs=runs)
