"""Procedural renderer: horses and camels on grass or in the desert (pillow + numpy only).

Backgrounds are computed with numpy at the output size S, with analytically anti-aliased edges
(horizon, tree line, dune ridges, rocks) and static noise textures cached per size that each image
crops at a random offset. Animals are built from polygon parts in "torso units" (torso length 1,
origin at the torso centre, facing right, y down), scaled so the animal spans a share drawn from
`data.animal_size` of the image width, flipped for facing, and drawn as palette indices on a canvas
`_supersample(S)` times larger; box-filtering that canvas gives anti-aliased colour and coverage.
The output depends only on (animal, background, seed, data).

Independence: the animal (coat, shape, pose, facing, size, position and so its ground shadow) is
drawn from its own random stream, seeded by (seed, animal) and not by the background; the
background comes from a second stream. So the distribution of everything about the animal is the
same on grass and in the desert, and one seed gives the same animal on both backgrounds.

Difficulty: with s = `data.animal_similarity` in [0, 1] every shape parameter of an animal (neck
curve and angle, leg length and thickness, knees, hooves, head, mane, tail) moves a share 0.45*s
of the way to the other animal's, the camel's humps shrink to (1 - 0.8*s) of their height, and an
animal takes its coat from the other animal's palette with probability 0.5*s. All three grow
monotonically with s: at 0 the animals are typical, at 1 the palettes fully overlap and the shapes
keep only a tenth of their normal difference (plus low humps).

Contrast: nothing is recoloured to suit the background. Every animal gets the same treatment on
both backgrounds: a dark outline (the silhouette grown by about `_outline_px(S)` pixels: 0.6 at 64 px,
1 at 128 px; in a dark shade of its own coat) and a ground shadow, so its edge stands out even
when the coat is close to the background's colour (a cream camel on sand). `edge_contrast` measures
this (mean colour step across the mask's edge) and the tests check it stays above `MIN_CONTRAST`;
`animal_contrast` (mean colour of the animal against a ring of background) is kept as a measure only.
The returned mask covers the animal with its outline.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .config import ANIMALS, BACKGROUNDS, DataConfig

MIN_CONTRAST = 0.1  # floor the outline keeps `edge_contrast` above; checked by tests, never enforced
SHEET_GROUPS = (("horse", "grass"), ("horse", "desert"), ("camel", "desert"), ("camel", "grass"))

# (coat, mane and tail, lower legs or None)
_COATS = {
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

_SHAPES = {
    "horse": dict(body_h=0.20, leg=0.56, leg_w=0.12, knee=0.0, hoof=1.0, mane=1.0, ear=0.12,
                  neck=((0.32, -0.04), (0.42, -0.28), (0.49, -0.46), (0.58, -0.61)), neck_w=(0.34, 0.14),
                  head_ang=62.0, head_len=0.40, head_w=(0.17, 0.10),
                  tail=((-0.50, -0.12), (-0.63, -0.08), (-0.69, 0.15), (-0.64, 0.44)),
                  tail_w=(0.07, 0.12, 0.05)),
    "camel": dict(body_h=0.18, leg=0.80, leg_w=0.10, knee=1.0, hoof=0.0, mane=0.0, ear=0.05,
                  neck=((0.40, -0.02), (0.68, 0.16), (0.88, 0.0), (0.82, -0.48)), neck_w=(0.22, 0.10),
                  head_ang=12.0, head_len=0.26, head_w=(0.14, 0.09),
                  tail=((-0.46, -0.06), (-0.52, 0.0), (-0.54, 0.15), (-0.52, 0.34)),
                  tail_w=(0.04, 0.035, 0.03)),
}
_HUMP = 0.29


def _check_names(animal: str, background: str) -> None:
    if animal not in ANIMALS:
        raise ValueError(f"animal={animal!r} is not allowed: expected one of {ANIMALS}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background={background!r} is not allowed: expected one of {BACKGROUNDS}")


def _supersample(size: int) -> int:
    return 4 if size <= 40 else 3 if size <= 96 else 2


# ---------------------------------------------------------------- backgrounds (drawn at output size)

@functools.lru_cache(maxsize=8)
def _textures(s: int) -> dict:
    """Static noise fields of height s and width 2s; each image crops them at a random offset."""
    rng = np.random.default_rng(20240 + s)

    def smooth(rows: int, cols: int) -> np.ndarray:
        grid = Image.fromarray(rng.random((rows, cols), dtype=np.float32), mode="F")
        return np.asarray(grid.resize((2 * s, s), Image.BICUBIC), dtype=np.float32)

    cloud = smooth(9, 7) + 0.5 * smooth(18, 14) + 0.25 * smooth(36, 28)
    cloud = (cloud - cloud.min()) / (np.ptp(cloud) + 1e-6)
    patch = smooth(8, 16) + 0.6 * smooth(24, 48)
    patch = (patch - patch.mean()) / (patch.std() + 1e-6)
    big = 4 * s  # grass blades are drawn 4x larger and box-filtered down
    blades = Image.new("L", (2 * big, big), 128)
    draw = ImageDraw.Draw(blades)
    unit = big / 192.0
    n = int(7 * 192 * 192 / 40)
    xs, ys = rng.random(n) * 2 * big, rng.random(n) ** 0.7 * big
    lens = (1.5 + 9 * ys / big) * unit * rng.uniform(0.6, 1.4, n)
    tilts = rng.normal(0, 0.25, n)
    shades = np.where(rng.random(n) < 0.5, rng.integers(175, 255, n), rng.integers(10, 90, n))
    for x, y, ln, t, v in zip(xs, ys, lens, tilts, shades):
        draw.line((x, y, x + t * ln, y - ln), fill=int(v), width=max(1, int(unit)))
    blades = (np.asarray(blades.reduce(4), dtype=np.float32) - 128) / 128
    grain = rng.standard_normal((s, 2 * s)).astype(np.float32)
    out = dict(cloud=cloud, patch=patch, blades=blades / blades.std(), grain=grain,
               y=np.arange(s, dtype=np.float32)[:, None], x=np.arange(s, dtype=np.float32)[None, :] + 0.5,
               subx=(np.arange(4 * s, dtype=np.float32) + 0.5) / 4)
    for value in out.values():
        value.setflags(write=False)
    return out


def _crop(tex: np.ndarray, ox: int) -> np.ndarray:
    return tex[:, ox:ox + tex.shape[0]]


def _jitter(rng: np.random.Generator, colour, spread: float = 0.06, bright: float = 0.08) -> np.ndarray:
    c = np.asarray(colour, dtype=np.float32)
    return c * rng.uniform(1 - spread, 1 + spread, 3).astype(np.float32) * np.float32(rng.uniform(1 - bright, 1 + bright))


def _below(y: np.ndarray, edge) -> np.ndarray:
    """Anti-aliased coverage of the region below `edge` for pixel rows y."""
    return np.clip(y + 1 - edge, 0, 1)


def _sky(rng: np.random.Generator, tex: dict, hz: float, desert: bool) -> np.ndarray:
    s = tex["y"].shape[0]
    top = _jitter(rng, (62, 118, 208), 0.1, 0.1)
    horizon = _jitter(rng, (236, 222, 208) if desert else (206, 226, 246), 0.04, 0.04)
    if desert and rng.random() < 0.4:
        horizon = horizon * np.float32([0.97, 0.91, 1.02])
    t = np.clip(tex["y"] / hz, 0, 1)[..., None] ** 0.7
    sky = top * (1 - t) + horizon * t
    cover = _crop(tex["cloud"], int(rng.integers(0, s)))
    alpha = np.clip((cover - rng.uniform(0.45, 0.7)) * 4.0, 0, 0.9)[..., None]
    return sky * (1 - alpha) + np.float32(250) * alpha


def _grass(rng: np.random.Generator, tex: dict) -> np.ndarray:
    s = tex["y"].shape[0]
    hz = rng.uniform(0.34, 0.46) * s
    img = _sky(rng, tex, hz, desert=False)
    far, near = _jitter(rng, (128, 178, 66), 0.08), _jitter(rng, (58, 128, 36), 0.08)
    r0 = int(hz)
    y = tex["y"][r0:]
    t = np.clip((y - hz) / (s - hz), 0, 1)
    ox = int(rng.integers(0, s))
    shade = 1 + 0.10 * _crop(tex["patch"], ox)[r0:] + 0.16 * _crop(tex["blades"], ox)[r0:] * (0.35 + 0.65 * t)
    ground = (far * (1 - t[..., None]) + near * t[..., None]) * shade[..., None]
    img[r0:] += (ground - img[r0:]) * _below(y, hz)[..., None]
    k = int(rng.integers(6, 14))
    cx, w = rng.uniform(-0.05, 1.05, k) * s, rng.uniform(0.03, 0.08, k) * s
    h = rng.uniform(0.02, 0.075, k) * s
    bumps = h[:, None] * np.sqrt(np.clip(1 - ((tex["subx"] - cx[:, None]) / w[:, None]) ** 2, 0, None))
    top = (hz - np.maximum(bumps.max(axis=0), 0.006 * s)).reshape(s, 4)
    r0, r1 = int(top.min()), int(hz + 0.01 * s) + 1
    y = tex["y"][r0:r1]
    cover = _below(y[..., None], top[None]).mean(axis=2) * np.clip(hz + 0.01 * s - y, 0, 1)
    tree_col = _jitter(rng, (31, 70, 32), 0.1) * (1 + 0.25 * _crop(tex["patch"], s - ox)[r0:r1])[..., None]
    img[r0:r1] += (tree_col - img[r0:r1]) * cover[..., None]
    return img


def _desert(rng: np.random.Generator, tex: dict) -> np.ndarray:
    s = tex["y"].shape[0]
    x = tex["x"]
    hz = rng.uniform(0.36, 0.48) * s
    img = _sky(rng, tex, hz, desert=True)
    sand = _jitter(rng, (230, 184, 116), 0.05, 0.06)
    light = rng.choice((-1.0, 1.0))
    haze_col = img[int(hz) - 1, s // 2].copy()
    for i, (base, amp) in enumerate(zip((hz, hz + 0.08 * s, hz + 0.2 * s), (0.03 * s, 0.045 * s, 0.06 * s))):
        f, ph = rng.uniform((0.5, 1.3), (1.3, 2.8)), rng.uniform(0, 2 * np.pi, 2)
        arg = 2 * np.pi * f[:, None] * x / s + ph[:, None]
        ridge = base + rng.uniform(-0.02, 0.02) * s - amp * (0.65 * np.sin(arg[0]) + 0.35 * np.sin(arg[1]))
        slope = -amp * 2 * np.pi / s * (0.65 * f[0] * np.cos(arg[0]) + 0.35 * f[1] * np.cos(arg[1]))
        r0 = max(int(ridge.min()), 0)
        y = tex["y"][r0:]
        depth = np.clip((y - ridge) / (0.1 * s), 0, 1)
        layer = sand * (1.04 - 0.04 * i) * ((1 + 0.14 * np.tanh(6 * light * slope)) * (0.92 + 0.08 * depth))[..., None]
        haze = 0.26 - 0.11 * i
        layer = layer * (1 - haze) + haze_col * haze
        img[r0:] += (layer - img[r0:]) * _below(y, ridge)[..., None]
    r0 = int(hz) + 1
    y = tex["y"][r0:]
    t = (y - hz) / (s - hz)
    waves = np.sin(2 * np.pi * (16 * np.sqrt(t) + 0.6 * np.sin(2 * np.pi * 2.5 * x / s + rng.uniform(0, 6))))
    ox = int(rng.integers(0, s))
    img[r0:] *= (1 + 0.035 * waves * (0.3 + t) + 0.02 * _crop(tex["grain"], ox)[r0:]
                 + 0.03 * _crop(tex["patch"], ox)[r0:])[..., None]
    for _ in range(int(rng.integers(1, 4))):
        cy = rng.uniform(0.62, 0.98) * s
        r = rng.uniform(0.012, 0.028) * s * (cy / s) ** 1.5 + 0.3
        cx = rng.uniform(0.02, 0.98) * s
        col = _jitter(rng, (126, 88, 62), 0.08, 0.15)
        r0, r1 = max(int(cy - r - 1), 0), int(cy + r + 2)
        y = tex["y"][r0:r1] + 0.5
        dist = np.sqrt(((x - cx) / (1.6 * r)) ** 2 + ((y - cy) / r) ** 2)
        cover = np.clip((1 - dist) * r + 0.5, 0, 1)[..., None]
        rock = col * (1.0 - 0.25 * np.clip((y - cy) / r, 0, 1))[..., None]
        img[r0:r1] += (rock - img[r0:r1]) * cover
    return img


# ---------------------------------------------------------------- animals (drawn supersampled)

_CIRCLES = {n: np.stack([np.cos(a), np.sin(a)], axis=1)
            for n in (8, 12, 16, 24) for a in [np.linspace(0, 2 * np.pi, n, endpoint=False)]}
_T = {n: np.linspace(0, 1, n)[:, None] for n in (8, 12)}
_TAIL_T = np.linspace(0, 1, 8)


def _bezier(p: np.ndarray, n: int) -> np.ndarray:
    t = _T[n]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3]


def _tube(pts: np.ndarray, widths) -> np.ndarray:
    """Polygon around a polyline with the given full widths at its points."""
    d = np.empty_like(pts)
    d[1:-1] = pts[2:] - pts[:-2]
    d[0], d[-1] = pts[1] - pts[0], pts[-1] - pts[-2]
    d *= (np.asarray(widths) / (2 * np.sqrt((d * d).sum(axis=1)) + 1e-9))[:, None]
    normal = d[:, ::-1] * (-1.0, 1.0)
    return np.concatenate([pts + normal, (pts - normal)[::-1]])


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> np.ndarray:
    return _CIRCLES[n] * (rx, ry) + (cx, cy)


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    """Rotate points by `deg`; positive turns +x towards +y (clockwise on screen)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return v @ np.array([[c, s], [-s, c]])


def _shape(animal: str, s: float) -> dict:
    own, other = _SHAPES[animal], _SHAPES["camel" if animal == "horse" else "horse"]
    k = 0.45 * s
    p = {key: (1 - k) * np.asarray(own[key], dtype=float) + k * np.asarray(other[key], dtype=float)
         for key in own}
    p["hump"] = _HUMP * (1 - 0.8 * s) if animal == "camel" else 0.0
    return p


_FORE = np.array([[0, 0], [0.01, 0.52], [0, 0.86], [0.02, 1.0]])
_HIND = np.array([[0, 0], [-1.0, 0.48], [-0.03, 0.86], [0, 1.0]])


def _leg(p: dict, x: float, angle: float, hind: bool, colour: str, parts: list) -> None:
    length = (p["body_h"] + p["leg"]) / np.cos(np.radians(angle))
    local = _HIND * (1, length) if hind else _FORE * (1, length)
    if hind:
        local[1, 0] = -0.06 - 0.03 * p["knee"]
    pts = _rot(local, angle) + (x, 0)
    w = p["leg_w"]
    widths = np.array([1.5 if hind else 1.2, 0.52, 0.40, 0.46]) * w
    parts.append((_tube(pts, widths), colour))
    if colour == "coat":
        parts.append((_tube(pts[1:], widths[1:]), "points"))
    if p["knee"] > 0.05:
        parts.append((_ellipse(*pts[1], 0.5 * p["knee"] * w, 0.045 * p["knee"], 8), "knee"))
    foot = pts[-1]
    if p["hoof"] >= 0.5:
        hw = 0.3 * w
        parts.append((foot + ((-hw, -0.05), (hw, -0.05), (1.2 * hw, 0.0), (-1.1 * hw, 0.0)), "hoof"))
    else:
        parts.append((_ellipse(foot[0] + 0.01, foot[1] - 0.015, 0.06, 0.022, 8), "knee"))


def _animal_parts(p: dict, rng: np.random.Generator) -> list:
    """(polygon in torso units, colour name) pairs, back to front."""
    parts: list = []
    bh = p["body_h"]
    fx, hx = rng.uniform(0.24, 0.32), rng.uniform(-0.34, -0.27)
    spread_f, spread_h = rng.uniform(-14, 14, 2)
    _leg(p, hx - 0.06, -spread_h, True, "far", parts)
    _leg(p, fx + 0.05, -spread_f, False, "far", parts)
    tail = _rot(p["tail"] - p["tail"][0], rng.uniform(-12, 12)) + p["tail"][0]
    tail_pts = _bezier(tail, 8)
    parts.append((_tube(tail_pts, np.interp(_TAIL_T, (0, 0.6, 1), p["tail_w"])), "hair"))
    if p["hoof"] < 0.5:
        parts.append((_ellipse(*tail_pts[-1], 0.03, 0.05, 8), "hair"))
    parts += [(_ellipse(0, 0, 0.5, bh, 24), "coat"), (_ellipse(0.3, -0.02, 0.2, bh * 0.98), "coat"),
              (_ellipse(-0.3, -0.03, 0.2, bh), "coat")]
    if p["hump"] > 0.01:
        two = rng.random() < 0.5
        for cx in ((-0.17, 0.17) if two else (-0.02,)):
            rx, ry = (0.16, p["hump"] * 0.85) if two else (0.22, p["hump"])
            parts.append((_ellipse(cx, -bh * 0.55, rx, ry + bh * 0.55, 24), "coat"))
    parts.append((_ellipse(0.02, bh * 0.6, 0.36, bh * 0.4), "belly"))
    neck_ctrl = _rot(p["neck"] - p["neck"][0], rng.uniform(-10, 8)) + p["neck"][0]
    neck = _bezier(neck_ctrl, 12)
    neck_w = np.linspace(p["neck_w"][0], p["neck_w"][1], 12)
    neck_poly = _tube(neck, neck_w)
    parts.append((neck_poly, "coat"))
    poll = neck[-1]
    head_dir = _rot(np.array([1.0, 0.0]), p["head_ang"] + rng.uniform(-10, 10))
    up = np.array([head_dir[1], -head_dir[0]])
    muzzle = poll + head_dir * p["head_len"]
    hw0, hw1 = p["head_w"]
    parts.append((_tube(np.array([poll, poll + 0.55 * (muzzle - poll), muzzle]), (hw0, hw0 * 0.8, hw1)), "coat"))
    parts.append((_ellipse(*(poll - 0.02 * up), hw0 * 0.55, hw0 * 0.55, 12), "coat"))
    parts.append((_ellipse(*muzzle, hw1 * 0.55, hw1 * 0.55, 12), "coat"))
    if p["mane"] > 0.05:
        back = np.concatenate([neck_poly[:len(neck) - 1:-1], [poll + head_dir * 0.05 + up * 0.05]])
        parts.append((_tube(back, np.linspace(0.06, 0.08, len(back)) * p["mane"]), "hair"))
    ear_dir = np.array([0.0, -0.55]) + 0.45 * up
    ear_dir /= np.sqrt(ear_dir @ ear_dir)
    side = head_dir * 0.025
    for off in (0.0, -0.035):
        base = poll + up * hw0 * 0.35 + head_dir * (0.03 + off)
        parts.append((np.array([base - side, base + side, base + ear_dir * p["ear"]]), "coat"))
    parts.append((_ellipse(*(poll + head_dir * 0.1 + up * 0.02), 0.018, 0.018, 8), "eye"))
    _leg(p, hx, spread_h, True, "coat", parts)
    _leg(p, fx, spread_f, False, "coat", parts)
    return parts


_NAMES = ("coat", "far", "belly", "hair", "points", "knee", "hoof", "eye", "outline")
_INDEX = {name: i + 1 for i, name in enumerate(_NAMES)}
_ALPHA_PALETTE = [0, 0, 0] + [255] * 765
_ANY = [0] + [255] * 255  # point() table: any coverage -> full
_OUTLINE_SHADE = 0.2


def _outline_px(size: int) -> float:
    """Width of the dark outline around every animal, in output pixels."""
    return max(0.6, size / 128)


def _choose_coat(animal: str, rng: np.random.Generator, s: float) -> np.ndarray:
    """(1 + len(_NAMES), 3) palette; row 0 (no animal) stays black."""
    other = "camel" if animal == "horse" else "horse"
    choices = _COATS[other if rng.random() < 0.5 * s else animal]
    coat, hair, points = choices[int(rng.integers(len(choices)))]
    coat = _jitter(rng, coat)
    hair = _jitter(rng, hair, 0.04, 0.06)
    points = coat * 0.92 if points is None else _jitter(rng, points, 0.04, 0.06)
    return np.array([(0, 0, 0), coat, coat * 0.72, coat * 0.93, hair, points, coat * 0.8,
                     (44, 38, 34), (18, 14, 12), coat * _OUTLINE_SHADE], dtype=np.float32)


# ---------------------------------------------------------------- contrast

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


# ---------------------------------------------------------------- public API

def render_image(animal: str, background: str, seed: int, data: DataConfig, return_mask: bool = False):
    """(S, S, 3) uint8 RGB image, S = data.image_size; with return_mask also a (S, S) bool mask of the
    animal (its outline included)."""
    _check_names(animal, background)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: expected a non-negative integer")
    out, alpha = _render(animal, background, int(seed), data)
    return (out, alpha >= 0.5) if return_mask else out


def _render(animal: str, background: str, seed: int, data: DataConfig) -> tuple:
    """The image and the animal's (S, S) float32 coverage in [0, 1], its outline included."""
    size = data.image_size
    ss = _supersample(size)
    c = size * ss
    tex = _textures(size)
    # Two independent streams: everything about the animal comes from one that does not know the
    # background, so its distribution (and, for one seed, the animal itself) is the same on both.
    rng_animal = np.random.default_rng([seed, ANIMALS.index(animal), 0xA11])
    rng_bg = np.random.default_rng([seed, ANIMALS.index(animal), BACKGROUNDS.index(background), 0xB6])

    sim = data.animal_similarity
    shape = _shape(animal, sim)
    pal = _choose_coat(animal, rng_animal, sim)
    parts = _animal_parts(shape, rng_animal)
    pts = np.concatenate([poly for poly, _ in parts])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    ground = shape["body_h"] + shape["leg"]
    width, height = hi - lo
    line = _outline_px(size)
    margin = max(0.03 * size, 1.0) + line
    room = size - 2 * margin
    scale = min(rng_animal.uniform(*data.animal_size) * size, room) / width
    scale = min(scale, 0.95 * room / height)
    gy = max(margin + scale * (ground - lo[1]), rng_animal.uniform(0.78, 0.95) * size)
    gy = min(gy, size - margin - scale * (hi[1] - ground))
    x0 = rng_animal.uniform(margin, max(margin, size - margin - scale * width))
    sign = -1.0 if rng_animal.random() < 0.5 else 1.0  # facing left flips x about the bounding box
    anchor, gain = (lo[0] if sign > 0 else hi[0], ground), (sign * scale, scale)
    cx = (rng_animal.uniform(-0.1, 0.1) - anchor[0]) * gain[0] + x0

    bg = (_grass if background == "grass" else _desert)(rng_bg, tex)
    d2 = ((tex["x"] - cx) / (0.62 * scale)) ** 2 + ((tex["y"] + 0.5 - gy) / (0.07 * scale + 0.5)) ** 2
    bg = bg * (1 - 0.42 * np.clip(1 - d2, 0, 1) ** 0.6)[..., None]

    pts = ((pts - anchor) * gain + (x0, gy)) * ss
    label = Image.new("P", (c, c), 0)
    draw = ImageDraw.Draw(label)
    start = 0
    for poly, name in parts:
        draw.polygon(pts[start:start + len(poly)].ravel().tolist(), fill=_INDEX[name])
        start += len(poly)
    # outline: the silhouette grown by `line` output pixels, in a dark shade of the coat
    label.putpalette(_ALPHA_PALETTE)
    body = label.convert("L")
    grown = body.filter(ImageFilter.BoxBlur(max(1, round(line * ss)))).point(_ANY)
    drawn = Image.new("P", (c, c), 0)
    drawn.paste(_INDEX["outline"], mask=grown)
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
