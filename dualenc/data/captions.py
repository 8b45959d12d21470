"""Caption strings for each group and caption mode, and which captions are true of which images.

A caption states an animal and at most one other attribute: the background ("horse in the
desert"), or, in the size control, the animal's size ("small horse"). Caption j is *consistent*
with image i when every attribute it states matches the image: that rule decides positives and
negatives in every loss, so identical captions are never a negative pair.

The second attribute is one code: a background (0 grass, 1 desert) or a size (2 small, 3 large,
`SIZE_CODES`). An image's second label is its background, or its size where its model's captions
name sizes (`datasets.Split.size`); a size caption is then never true of an image labelled by its
background, or the other way round.
"""
from __future__ import annotations

import numpy as np

from ..config import ANIMALS, BACKGROUNDS, GROUPS, DataConfig, group_name

# The original study's exact strings.
DESCRIPTIVE = {
    "horse_grass": "horse on the grass",
    "horse_desert": "horse in the desert",
    "camel_desert": "a camel in the desert",
    "camel_grass": "camel on the grass",
}

# Paraphrases for caption variability (template 0 is always the original string).
_ANIMAL_TEMPLATES = ("{a}", "a {a}", "a photo of a {a}", "the {a}")
_DESCRIPTIVE_TEMPLATES = {
    "grass": ("{orig}", "a {a} standing on grass", "a photo of a {a} in a green field", "the {a} on a meadow"),
    "desert": ("{orig}", "a {a} standing on sand", "a photo of a {a} among the dunes", "the {a} in a sandy desert"),
}
_BACKGROUND_TEMPLATES = {
    "grass": ("on the grass", "standing on grass", "in a green field", "on a meadow"),
    "desert": ("in the desert", "standing on sand", "among the dunes", "in a sandy desert"),
}

# The size control: the animal and a visible attribute independent of the background and of the
# animal: its size, split at the middle of the drawn size range (`size_class`). Facing would be
# made false by the training flips.
SIZES = ("small", "large")
SIZE_CODES = {size: len(BACKGROUNDS) + k for k, size in enumerate(SIZES)}
_SIZE_TEMPLATES = ("{s} {a}", "a {s} {a}", "a photo of a {s} {a}", "the {s} {a}")

ZERO_SHOT_CLASS_PROMPTS = [["horse"], ["camel"]]  # class k = ANIMALS[k]
ZERO_SHOT_POOLED_PROMPTS = [
    [DESCRIPTIVE[group_name(a, b)] for b in BACKGROUNDS] for a in ANIMALS
]
ZERO_SHOT_SIZE_PROMPTS = [[_SIZE_TEMPLATES[0].format(s=s, a=a) for s in SIZES] for a in ANIMALS]


def size_class(draw: float, data: DataConfig) -> str:
    """"small" or "large": a size drawn from data.animal_size (`render.animal_size_draw`), split at
    the middle of that range (the median of the uniform draw)."""
    return SIZES[int(draw >= sum(data.animal_size) / 2)]


def caption_for(animal: str, background: str, descriptive: bool, mode: str, template: int,
                size: str = "") -> str:
    """The caption of one image: its mode, whether it is descriptive, its paraphrase index and, in
    the size mode, its size."""
    if mode == "size":
        if size not in SIZES:
            raise ValueError(f"size={size!r} is not allowed in the size caption mode: expected one of {SIZES}")
        return _SIZE_TEMPLATES[template].format(s=size, a=animal)
    if mode == "background":
        return _BACKGROUND_TEMPLATES[background][template]
    if not descriptive:
        return _ANIMAL_TEMPLATES[template].format(a=animal)
    orig = DESCRIPTIVE[group_name(animal, background)]
    return _DESCRIPTIVE_TEMPLATES[background][template].format(a=animal, orig=orig)


def all_caption_texts() -> list[str]:
    """Every string a generated dataset or a shared zero-shot prompt can use (fixes the vocabulary;
    a size-mode model adds its own captions' words, `datasets.vocabulary_texts`)."""
    texts = set()
    for animal, background in GROUPS:
        for mode in ("undescriptive", "descriptive", "background"):
            for descriptive in (False, True):
                for t in range(4):
                    texts.add(caption_for(animal, background, descriptive, mode, t))
    return sorted(texts)


def training_captions(animal: np.ndarray, background: np.ndarray, data: DataConfig,
                      rng_seed: int, size=None) -> list[str]:
    """Captions for training images, following data.captions, descriptive_share and templates.

    In the descriptive mode a share `descriptive_share` of each group's images (chosen by a
    seeded permutation) gets the descriptive caption and the rest the undescriptive one. The size
    mode needs each image's `size` ("small" or "large").
    """
    if data.captions == "size" and size is None:
        raise ValueError("captions='size' needs each image's size: generated images have one "
                         "(datasets.Split.size), a user folder does not")
    n = len(animal)
    rng = np.random.default_rng(rng_seed)
    descriptive = np.zeros(n, dtype=bool)
    if data.captions == "descriptive":
        for a, b in GROUPS:
            idx = np.flatnonzero((animal == a) & (background == b))
            k = int(round(data.descriptive_share * len(idx)))
            descriptive[rng.permutation(idx)[:k]] = True
    template = np.arange(n) % data.caption_templates
    return [caption_for(animal[i], background[i], bool(descriptive[i]), data.captions, int(template[i]),
                        "" if size is None else str(size[i])) for i in range(n)]


def caption_attributes(text: str, sizes: bool = False) -> tuple[int, int]:
    """(animal index or -1, second attribute code or -1) that a caption states, read from its
    words: a background (0, 1), or with `sizes` (a size-mode model's captions) a size
    (`SIZE_CODES`)."""
    words = set(text.lower().replace(",", " ").split())
    animal = next((k for k, a in enumerate(ANIMALS) if a in words), -1)
    bg_words = ({"grass", "field", "meadow"}, {"desert", "sand", "sandy", "dunes"})
    second = next((k for k, w in enumerate(bg_words) if words & w), -1)
    if sizes and second < 0:
        second = next((SIZE_CODES[s] for s in SIZES if s in words), -1)
    return animal, second


def consistency(image_animal: np.ndarray, image_background: np.ndarray,
                caption_animal: np.ndarray, caption_background: np.ndarray) -> np.ndarray:
    """(..., N_images, N_captions) bool: caption j is true of image i (every stated attribute
    matches; the background arguments are the second attribute's codes, sizes included).
    Leading dimensions (e.g. K models) broadcast."""
    a_ok = (caption_animal[..., None, :] < 0) | (caption_animal[..., None, :] == image_animal[..., :, None])
    b_ok = (caption_background[..., None, :] < 0) | (caption_background[..., None, :] == image_background[..., :, None])
    return a_ok & b_ok
