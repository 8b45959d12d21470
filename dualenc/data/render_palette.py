"""Colours of the renderer: the coat palettes of the animals and the random colour jitter that the
backgrounds share.

An animal is drawn as palette indices (one per body part, `PART_INDEX`); `choose_coat` picks the
palette of one animal. With similarity > 0 an animal may take the other animal's coat.
"""
from __future__ import annotations

import numpy as np

# (coat, mane and tail, lower legs or None)
COATS = {
    "horse": (((118, 62, 32), (28, 22, 20), (38, 28, 24)),      # bay
              ((168, 86, 42), (140, 66, 30), None),             # chestnut
              ((34, 30, 30), (16, 15, 15), None),               # black
              ((158, 158, 154), (92, 92, 92), (110, 108, 104)), # grey
              ((226, 224, 216), (186, 184, 178), None),         # white
              ((192, 156, 102), (58, 44, 34), (62, 48, 38)),    # dun
              ((88, 56, 38), (30, 22, 18), None),               # brown
              ((208, 166, 92), (236, 226, 196), None)),         # palomino
    "camel": (((212, 172, 118), (168, 128, 86), None),          # sand
              ((188, 140, 92), (140, 100, 66), None),           # tan
              ((140, 98, 62), (98, 68, 44), None),              # brown
              ((230, 212, 170), (190, 164, 122), None),         # cream
              ((198, 152, 100), (150, 110, 70), None)),         # fawn
}

PART_NAMES = ("coat", "far", "belly", "hair", "points", "knee", "hoof", "eye", "outline")
PART_INDEX = {name: i + 1 for i, name in enumerate(PART_NAMES)}  # palette index 0: no animal
OUTLINE_SHADE = 0.2  # the outline's colour as a share of the coat's


def jitter(rng: np.random.Generator, colour, spread: float = 0.06, bright: float = 0.08) -> np.ndarray:
    """`colour` with each channel scaled by 1 +- spread and the whole by 1 +- bright (uniform draws)."""
    c = np.asarray(colour, dtype=np.float32)
    return c * rng.uniform(1 - spread, 1 + spread, 3).astype(np.float32) * np.float32(rng.uniform(1 - bright, 1 + bright))


def choose_coat(animal: str, rng: np.random.Generator, similarity: float) -> np.ndarray:
    """(1 + len(PART_NAMES), 3) palette; row 0 (no animal) stays black. With probability
    0.5 * similarity the coat comes from the other animal's palettes."""
    other = "camel" if animal == "horse" else "horse"
    choices = COATS[other if rng.random() < 0.5 * similarity else animal]
    coat, hair, points = choices[int(rng.integers(len(choices)))]
    coat = jitter(rng, coat)
    hair = jitter(rng, hair, 0.04, 0.06)
    points = coat * 0.92 if points is None else jitter(rng, points, 0.04, 0.06)
    return np.array([(0, 0, 0), coat, coat * 0.72, coat * 0.93, hair, points, coat * 0.8,
                     (44, 38, 34), (18, 14, 12), coat * OUTLINE_SHADE], dtype=np.float32)
