"""How well a rendered animal stands out from its background: `edge_contrast` (checked by the tests
against `MIN_CONTRAST`) and `animal_contrast` (kept as a measure only)."""
from __future__ import annotations

import numpy as np

MIN_CONTRAST = 0.1  # floor the outline keeps `edge_contrast` above; checked by tests, never enforced


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1) square."""
    out = mask.copy()
    for _ in range(2):
        acc = out.copy()
        for k in range(1, r + 1):
            acc[k:] |= out[:-k]
            acc[:-k] |= out[k:]
        out = acc.T
    return out


def _ring_means(image: np.ndarray, mask: np.ndarray) -> tuple:
    """Mean colour of the animal and of a ring of width S/16 around it."""
    mask = np.asarray(mask, dtype=bool)
    ring = _dilate(mask, max(1, round(mask.shape[0] / 16))) & ~mask
    weights = np.stack([mask, ring]).reshape(2, -1).astype(np.float32)
    sums = weights @ np.asarray(image, dtype=np.float32).reshape(-1, 3)
    return tuple(sums / np.maximum(weights.sum(axis=1, keepdims=True), 1))


def animal_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Distance in [0, 1] between the animal's mean RGB colour and that of a ring of background
    around it (width S/16), as Euclidean RGB distance / (255 * sqrt 3). 0 for an empty mask."""
    if not np.any(mask):
        return 0.0
    animal, ring = _ring_means(image, mask)
    return float(np.linalg.norm(animal - ring) / (255 * np.sqrt(3)))


def edge_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """How well the animal's edge stands out, in [0, 1]: the mean Euclidean RGB distance / (255 * sqrt 3)
    between the two pixels of every horizontally or vertically adjacent pair that straddles the edge
    of the mask (one pixel inside, one outside). 0 for an empty or full mask."""
    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    total, count = 0.0, 0
    for axis in (0, 1):
        n = mask.shape[axis] - 1
        a, b = mask.take(range(1, n + 1), axis), mask.take(range(n), axis)
        cross = a != b
        diff = image.take(range(1, n + 1), axis)[cross] - image.take(range(n), axis)[cross]
        total += float(np.sqrt((diff * diff).sum(axis=1)).sum())
        count += int(cross.sum())
    return total / (count * 255 * np.sqrt(3)) if count else 0.0
