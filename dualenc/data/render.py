"""Procedural renderer: horses and camels on grass or in the desert (pillow + numpy only).

The public entry points are here: `render_image`, `contact_sheet`, and the contrast measures
re-exported from `render_contrast`. The parts live beside this file, one job each:
`render_backgrounds` (sky, grass, desert), `render_animals` (the animals' polygon geometry),
`render_palette` (coat colours), `render_contrast` (how well an animal stands out).

Backgrounds are computed with numpy at the output size S. Animals are built from polygon parts in
torso units, scaled so the animal spans a share drawn from `data.animal_size` of the image width,
flipped for facing, and drawn as palette indices on a canvas `_supersample(S)` times larger;
box-filtering that canvas gives anti-aliased colour and coverage. The output depends only on
(animal, background, seed, data).

Independence: the animal (coat, shape, pose, facing, size, position and so its ground shadow) is
drawn from its own random stream, seeded by (seed, animal) and not by the background; the
background comes from a second stream. So the distribution of everything about the animal is the
same on grass and in the desert, and one seed gives the same animal on both backgrounds.

Difficulty: with similarity = `data.animal_similarity` in [0, 1] every shape parameter of an animal
(neck curve and angle, leg length and thickness, knees, hooves, head, mane, tail) moves a share
0.45 * similarity of the way to the other animal's, the camel's humps shrink to (1 - 0.8 * similarity)
of their height, and an animal takes its coat from the other animal's palette with probability
0.5 * similarity. All three grow monotonically: at 0 the animals are typical, at 1 the palettes fully
overlap and the shapes keep only a tenth of their normal difference (plus low humps).

Contrast: nothing is recoloured to suit the background. Every animal gets the same treatment on
both backgrounds: a dark outline (the silhouette grown by about `_outline_px(S)` pixels: 0.6 at 64 px,
1 at 128 px; in a dark shade of its own coat) and a ground shadow, so its edge stands out even
when the coat is close to the background's colour (a cream camel on sand). `edge_contrast` measures
this (mean colour step across the mask's edge) and the tests check it stays above `MIN_CONTRAST`;
`animal_contrast` (mean colour of the animal against a ring of background) is kept as a measure only.
The returned mask covers the animal with its outline.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..config import ANIMALS, BACKGROUNDS, DataConfig
from .render_animals import animal_parts, blend_shape
from .render_backgrounds import BACKGROUND_PAINTERS, textures
from .render_contrast import MIN_CONTRAST, animal_contrast, edge_contrast  # noqa: F401  (public API)
from .render_palette import PART_INDEX, choose_coat

SHEET_GROUPS = (("horse", "grass"), ("horse", "desert"), ("camel", "desert"), ("camel", "grass"))

_ALPHA_PALETTE = [0, 0, 0] + [255] * 765
_ANY = [0] + [255] * 255  # point() table: any coverage -> full


def _check_names(animal: str, background: str) -> None:
    if animal not in ANIMALS:
        raise ValueError(f"animal={animal!r} is not allowed: expected one of {ANIMALS}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background={background!r} is not allowed: expected one of {BACKGROUNDS}")


def _supersample(size: int) -> int:
    return 4 if size <= 40 else 3 if size <= 96 else 2


def _outline_px(size: int) -> float:
    """Width of the dark outline around every animal, in output pixels."""
    return max(0.6, size / 128)


def _check_seed(seed) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: expected a non-negative integer")


def render_image(animal: str, background: str, seed: int, data: DataConfig, return_mask: bool = False,
                 coat_of: str | None = None):
    """(S, S, 3) uint8 RGB image, S = data.image_size; with return_mask also a (S, S) bool mask of the
    animal (its outline included). `coat_of` (another animal) paints the same animal, in the same
    pose, size and place, in a coat drawn from that animal's palettes: a cue-conflict image."""
    _check_names(animal, background)
    if coat_of is not None and coat_of not in ANIMALS:
        raise ValueError(f"coat_of={coat_of!r} is not allowed: expected None or one of {ANIMALS}")
    _check_seed(seed)
    out, alpha = _render(animal, background, int(seed), data, coat_of)
    return (out, alpha >= 0.5) if return_mask else out


def _animal(animal: str, seed: int, data: DataConfig, coat_of: str | None = None) -> tuple:
    """The animal's draws, in the order the renderer makes them from its own stream: (the stream,
    for its place and facing; shape; coat palette; parts; size, the share of the image width drawn
    from data.animal_size). A coat of another animal comes from a stream of its own, so everything
    else stays the same."""
    rng = np.random.default_rng([seed, ANIMALS.index(animal), 0xA11])
    shape = blend_shape(animal, data.animal_similarity)
    pal = choose_coat(animal, rng, data.animal_similarity)
    parts = animal_parts(shape, rng)
    size = float(rng.uniform(*data.animal_size))
    if coat_of is not None and coat_of != animal:
        pal = choose_coat(coat_of, np.random.default_rng([seed, ANIMALS.index(animal), 0xC0A7]), 0.0)
    return rng, shape, pal, parts, size


def animal_size_draw(animal: str, seed: int, data: DataConfig) -> float:
    """The size drawn for the animal of (animal, seed): its body length as a share of the image
    width before it is fitted to the frame (the same draw `render_image` uses)."""
    _check_names(animal, BACKGROUNDS[0])
    _check_seed(seed)
    return _animal(animal, int(seed), data)[4]


def _render(animal: str, background: str, seed: int, data: DataConfig, coat_of: str | None = None) -> tuple:
    """The image and the animal's (S, S) float32 coverage in [0, 1], its outline included."""
    size = data.image_size
    ss = _supersample(size)
    canvas = size * ss
    tex = textures(size)
    # Two independent streams: everything about the animal comes from one that does not know the
    # background, so its distribution (and, for one seed, the animal itself) is the same on both.
    rng_animal, shape, pal, parts, size_draw = _animal(animal, seed, data, coat_of)
    rng_bg = np.random.default_rng([seed, ANIMALS.index(animal), BACKGROUNDS.index(background), 0xB6])
    pts = np.concatenate([poly for poly, _ in parts])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    ground = shape["body_h"] + shape["leg"]
    width, height = hi - lo
    line = _outline_px(size)
    margin = max(0.03 * size, 1.0) + line
    room = size - 2 * margin
    scale = min(size_draw * size, room) / width
    scale = min(scale, 0.95 * room / height)
    gy = max(margin + scale * (ground - lo[1]), rng_animal.uniform(0.78, 0.95) * size)
    gy = min(gy, size - margin - scale * (hi[1] - ground))
    x0 = rng_animal.uniform(margin, max(margin, size - margin - scale * width))
    sign = -1.0 if rng_animal.random() < 0.5 else 1.0  # facing left flips x about the bounding box
    anchor, gain = (lo[0] if sign > 0 else hi[0], ground), (sign * scale, scale)
    cx = (rng_animal.uniform(-0.1, 0.1) - anchor[0]) * gain[0] + x0

    bg = BACKGROUND_PAINTERS[background](rng_bg, tex)
    d2 = ((tex["x"] - cx) / (0.62 * scale)) ** 2 + ((tex["y"] + 0.5 - gy) / (0.07 * scale + 0.5)) ** 2
    bg = bg * (1 - 0.42 * np.clip(1 - d2, 0, 1) ** 0.6)[..., None]

    pts = ((pts - anchor) * gain + (x0, gy)) * ss
    label = Image.new("P", (canvas, canvas), 0)
    draw = ImageDraw.Draw(label)
    start = 0
    for poly, name in parts:
        draw.polygon(pts[start:start + len(poly)].ravel().tolist(), fill=PART_INDEX[name])
        start += len(poly)
    # outline: the silhouette grown by `line` output pixels, in a dark shade of the coat
    label.putpalette(_ALPHA_PALETTE)
    body = label.convert("L")
    grown = body.filter(ImageFilter.BoxBlur(max(1, round(line * ss)))).point(_ANY)
    drawn = Image.new("P", (canvas, canvas), 0)
    drawn.paste(PART_INDEX["outline"], mask=grown)
    drawn.paste(label, mask=body)
    alpha = np.asarray(grown.reduce(ss), dtype=np.float32) / 255
    # palette index 0 is black, so the box-filtered colour is premultiplied by coverage
    drawn.putpalette(np.clip(pal, 0, 255).astype(np.uint8).tobytes())
    colour = np.asarray(drawn.convert("RGB").reduce(ss), dtype=np.float32)
    out = np.clip(bg * (1 - alpha)[..., None] + colour + 0.5, 0, 255).astype(np.uint8)
    return out, alpha


def contact_sheet(data: DataConfig, per_group: int = 8, seed: int = 0, scale: int = 2) -> Image.Image:
    """One row per group in order horse-grass, horse-desert, camel-desert, camel-grass, with a small
    label per row; images upscaled by `scale` (nearest) so 64 px images are visible."""
    tile, gap, label_w = data.image_size * scale, 4, 90
    sheet = Image.new("RGB", (label_w + per_group * (tile + gap), len(SHEET_GROUPS) * (tile + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, (animal, background) in enumerate(SHEET_GROUPS):
        top = gap + row * (tile + gap)
        draw.text((6, top + tile // 2 - 6), f"{animal}-{background}", fill=(0, 0, 0), font=font)
        for i in range(per_group):
            img = Image.fromarray(render_image(animal, background, seed * 100003 + i, data))
            sheet.paste(img.resize((tile, tile), Image.NEAREST), (label_w + i * (tile + gap), top))
    return sheet
