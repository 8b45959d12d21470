"""Backgrounds of the renderer, computed with numpy at the output size: grass (sky, tree line,
textured green ground, blades) and desert (sky, shaded dunes, ripples, rocks).

Edges (horizon, tree line, dune ridges, rocks) are anti-aliased analytically. The noise textures
are static per image size (`textures`, cached) and each image crops them at a random offset.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from .render_palette import jitter


@functools.lru_cache(maxsize=8)
def textures(size: int) -> dict:
    """Static noise fields of height `size` and width 2 * size; each image crops them at a random offset."""
    rng = np.random.default_rng(20240 + size)

    def smooth(rows: int, cols: int) -> np.ndarray:
        grid = Image.fromarray(rng.random((rows, cols), dtype=np.float32), mode="F")
        return np.asarray(grid.resize((2 * size, size), Image.BICUBIC), dtype=np.float32)

    cloud = smooth(9, 7) + 0.5 * smooth(18, 14) + 0.25 * smooth(36, 28)
    cloud = (cloud - cloud.min()) / (np.ptp(cloud) + 1e-6)
    patch = smooth(8, 16) + 0.6 * smooth(24, 48)
    patch = (patch - patch.mean()) / (patch.std() + 1e-6)
    big = 4 * size  # grass blades are drawn 4x larger and box-filtered down
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
    grain = rng.standard_normal((size, 2 * size)).astype(np.float32)
    out = dict(cloud=cloud, patch=patch, blades=blades / blades.std(), grain=grain,
               y=np.arange(size, dtype=np.float32)[:, None],
               x=np.arange(size, dtype=np.float32)[None, :] + 0.5,
               subx=(np.arange(4 * size, dtype=np.float32) + 0.5) / 4)
    for value in out.values():
        value.setflags(write=False)
    return out


def _crop(tex: np.ndarray, ox: int) -> np.ndarray:
    return tex[:, ox:ox + tex.shape[0]]


def _below(y: np.ndarray, edge) -> np.ndarray:
    """Anti-aliased coverage of the region below `edge` for pixel rows y."""
    return np.clip(y + 1 - edge, 0, 1)


def _sky(rng: np.random.Generator, tex: dict, hz: float, desert: bool) -> np.ndarray:
    size = tex["y"].shape[0]
    top = jitter(rng, (62, 118, 208), 0.1, 0.1)
    horizon = jitter(rng, (236, 222, 208) if desert else (206, 226, 246), 0.04, 0.04)
    if desert and rng.random() < 0.4:
        horizon = horizon * np.float32([0.97, 0.91, 1.02])
    t = np.clip(tex["y"] / hz, 0, 1)[..., None] ** 0.7
    sky = top * (1 - t) + horizon * t
    cover = _crop(tex["cloud"], int(rng.integers(0, size)))
    alpha = np.clip((cover - rng.uniform(0.45, 0.7)) * 4.0, 0, 0.9)[..., None]
    return sky * (1 - alpha) + np.float32(250) * alpha


def grass(rng: np.random.Generator, tex: dict) -> np.ndarray:
    """(S, S, 3) float32 grass background, S the size of `tex`."""
    size = tex["y"].shape[0]
    hz = rng.uniform(0.34, 0.46) * size
    img = _sky(rng, tex, hz, desert=False)
    far, near = jitter(rng, (128, 178, 66), 0.08), jitter(rng, (58, 128, 36), 0.08)
    r0 = int(hz)
    y = tex["y"][r0:]
    t = np.clip((y - hz) / (size - hz), 0, 1)
    ox = int(rng.integers(0, size))
    shade = 1 + 0.10 * _crop(tex["patch"], ox)[r0:] + 0.16 * _crop(tex["blades"], ox)[r0:] * (0.35 + 0.65 * t)
    ground = (far * (1 - t[..., None]) + near * t[..., None]) * shade[..., None]
    img[r0:] += (ground - img[r0:]) * _below(y, hz)[..., None]
    k = int(rng.integers(6, 14))
    cx, w = rng.uniform(-0.05, 1.05, k) * size, rng.uniform(0.03, 0.08, k) * size
    h = rng.uniform(0.02, 0.075, k) * size
    bumps = h[:, None] * np.sqrt(np.clip(1 - ((tex["subx"] - cx[:, None]) / w[:, None]) ** 2, 0, None))
    top = (hz - np.maximum(bumps.max(axis=0), 0.006 * size)).reshape(size, 4)
    r0, r1 = int(top.min()), int(hz + 0.01 * size) + 1
    y = tex["y"][r0:r1]
    cover = _below(y[..., None], top[None]).mean(axis=2) * np.clip(hz + 0.01 * size - y, 0, 1)
    tree_col = jitter(rng, (31, 70, 32), 0.1) * (1 + 0.25 * _crop(tex["patch"], size - ox)[r0:r1])[..., None]
    img[r0:r1] += (tree_col - img[r0:r1]) * cover[..., None]
    return img


def desert(rng: np.random.Generator, tex: dict) -> np.ndarray:
    """(S, S, 3) float32 desert background, S the size of `tex`."""
    size = tex["y"].shape[0]
    x = tex["x"]
    hz = rng.uniform(0.36, 0.48) * size
    img = _sky(rng, tex, hz, desert=True)
    sand = jitter(rng, (230, 184, 116), 0.05, 0.06)
    light = rng.choice((-1.0, 1.0))
    haze_col = img[int(hz) - 1, size // 2].copy()
    for i, (base, amp) in enumerate(zip((hz, hz + 0.08 * size, hz + 0.2 * size),
                                        (0.03 * size, 0.045 * size, 0.06 * size))):
        f, ph = rng.uniform((0.5, 1.3), (1.3, 2.8)), rng.uniform(0, 2 * np.pi, 2)
        arg = 2 * np.pi * f[:, None] * x / size + ph[:, None]
        ridge = base + rng.uniform(-0.02, 0.02) * size - amp * (0.65 * np.sin(arg[0]) + 0.35 * np.sin(arg[1]))
        slope = -amp * 2 * np.pi / size * (0.65 * f[0] * np.cos(arg[0]) + 0.35 * f[1] * np.cos(arg[1]))
        r0 = max(int(ridge.min()), 0)
        y = tex["y"][r0:]
        depth = np.clip((y - ridge) / (0.1 * size), 0, 1)
        layer = sand * (1.04 - 0.04 * i) * ((1 + 0.14 * np.tanh(6 * light * slope)) * (0.92 + 0.08 * depth))[..., None]
        haze = 0.26 - 0.11 * i
        layer = layer * (1 - haze) + haze_col * haze
        img[r0:] += (layer - img[r0:]) * _below(y, ridge)[..., None]
    r0 = int(hz) + 1
    y = tex["y"][r0:]
    t = (y - hz) / (size - hz)
    waves = np.sin(2 * np.pi * (16 * np.sqrt(t) + 0.6 * np.sin(2 * np.pi * 2.5 * x / size + rng.uniform(0, 6))))
    ox = int(rng.integers(0, size))
    img[r0:] *= (1 + 0.035 * waves * (0.3 + t) + 0.02 * _crop(tex["grain"], ox)[r0:]
                 + 0.03 * _crop(tex["patch"], ox)[r0:])[..., None]
    for _ in range(int(rng.integers(1, 4))):
        cy = rng.uniform(0.62, 0.98) * size
        r = rng.uniform(0.012, 0.028) * size * (cy / size) ** 1.5 + 0.3
        cx = rng.uniform(0.02, 0.98) * size
        col = jitter(rng, (126, 88, 62), 0.08, 0.15)
        r0, r1 = max(int(cy - r - 1), 0), int(cy + r + 2)
        y = tex["y"][r0:r1] + 0.5
        dist = np.sqrt(((x - cx) / (1.6 * r)) ** 2 + ((y - cy) / r) ** 2)
        cover = np.clip((1 - dist) * r + 0.5, 0, 1)[..., None]
        rock = col * (1.0 - 0.25 * np.clip((y - cy) / r, 0, 1))[..., None]
        img[r0:r1] += (rock - img[r0:r1]) * cover
    return img


BACKGROUND_PAINTERS = {"grass": grass, "desert": desert}
