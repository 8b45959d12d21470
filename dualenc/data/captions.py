"""Caption strings for each group and caption mode, and which captions are true of which images.

A caption states an animal, a background, or both. Caption j is *consistent* with image i when
every attribute it states matches the image: that rule decides positives and negatives in every
loss, so identical captions are never a negative pair.
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

ZERO_SHOT_CLASS_PROMPTS = [["horse"], ["camel"]]  # class k = ANIMALS[k]
ZERO_SHOT_POOLED_PROMPTS = [
    [DESCRIPTIVE[group_name(a, b)] for b in BACKGROUNDS] for a in ANIMALS
]


def caption_for(animal: str, background: str, descriptive: bool, mode: str, template: int) -> str:
    """The caption of one image: its mode, whether it is descriptive, and its paraphrase index."""
    if mode == "background":
        return _BACKGROUND_TEMPLATES[background][template]
    if not descriptive:
        return _ANIMAL_TEMPLATES[template].format(a=animal)
    orig = DESCRIPTIVE[group_name(animal, background)]
    return _DESCRIPTIVE_TEMPLATES[background][template].format(a=animal, orig=orig)


def all_caption_texts() -> list[str]:
    """Every string a generated dataset or a zero-shot prompt can use (fixes the vocabulary)."""
    texts = set()
    for animal, background in GROUPS:
        for mode in ("undescriptive", "descriptive", "background"):
            for descriptive in (False, True):
                for t in range(4):
                    texts.add(caption_for(animal, background, descriptive, mode, t))
    return sorted(texts)


def training_captions(animal: np.ndarray, background: np.ndarray, data: DataConfig,
                      rng_seed: int) -> list[str]:
    """Captions for training images, following data.captions, descriptive_share and templates.

    In the descriptive mode a share `descriptive_share` of each group's images (chosen by a
    seeded permutation) gets the descriptive caption and the rest the undescriptive one.
    """
    n = len(animal)
    rng = np.random.default_rng(rng_seed)
    descriptive = np.zeros(n, dtype=bool)
    if data.captions == "descriptive":
        for a, b in GROUPS:
            idx = np.flatnonzero((animal == a) & (background == b))
            k = int(round(data.descriptive_share * len(idx)))
            descriptive[rng.permutation(idx)[:k]] = True
    template = np.arange(n) % data.caption_templates
    return [caption_for(animal[i], background[i], bool(descriptive[i]), data.captions, int(template[i]))
            for i in range(n)]


def caption_attributes(text: str) -> tuple[int, int]:
    """(animal index or -1, background index or -1) that a caption states, read from its words."""
    words = set(text.lower().replace(",", " ").split())
    animal = next((k for k, a in enumerate(ANIMALS) if a in words), -1)
    bg_words = ({"grass", "field", "meadow"}, {"desert", "sand", "sandy", "dunes"})
    background = next((k for k, w in enumerate(bg_words) if words & w), -1)
    return animal, background


def consistency(image_animal: np.ndarray, image_background: np.ndarray,
                caption_animal: np.ndarray, caption_background: np.ndarray) -> np.ndarray:
    """(..., N_images, N_captions) bool: caption j is true of image i (every stated attribute
    matches). Leading dimensions (e.g. K models) broadcast."""
    a_ok = (caption_animal[..., None, :] < 0) | (caption_animal[..., None, :] == image_animal[..., :, None])
    b_ok = (caption_background[..., None, :] < 0) | (caption_background[..., None, :] == image_background[..., :, None])
    return a_ok & b_ok
