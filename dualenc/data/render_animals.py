"""Animal geometry of the renderer: horses and camels built from polygon parts.

Coordinates are "torso units": torso length 1, origin at the torso centre, facing right, y down.
`blend_shape` gives an animal's shape parameters at a similarity; `animal_parts` draws the random
pose and returns the polygons, back to front, each with the name of its colour in the palette
(`render_palette.PART_NAMES`).
"""
from __future__ import annotations

import numpy as np

SHAPES = {
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
HUMP_HEIGHT = 0.29

_CIRCLES = {n: np.stack([np.cos(a), np.sin(a)], axis=1)
            for n in (8, 12, 16, 24) for a in [np.linspace(0, 2 * np.pi, n, endpoint=False)]}
_T = {n: np.linspace(0, 1, n)[:, None] for n in (8, 12)}
_TAIL_T = np.linspace(0, 1, 8)
_FORE = np.array([[0, 0], [0.01, 0.52], [0, 0.86], [0.02, 1.0]])
_HIND = np.array([[0, 0], [-1.0, 0.48], [-0.03, 0.86], [0, 1.0]])


def blend_shape(animal: str, similarity: float) -> dict:
    """The animal's shape parameters moved a share 0.45 * similarity towards the other animal's;
    a camel's humps shrink to (1 - 0.8 * similarity) of their height (a horse has none)."""
    own, other = SHAPES[animal], SHAPES["camel" if animal == "horse" else "horse"]
    k = 0.45 * similarity
    p = {key: (1 - k) * np.asarray(own[key], dtype=float) + k * np.asarray(other[key], dtype=float)
         for key in own}
    p["hump"] = HUMP_HEIGHT * (1 - 0.8 * similarity) if animal == "camel" else 0.0
    return p


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
    cos, sin = np.cos(a), np.sin(a)
    return v @ np.array([[cos, sin], [-sin, cos]])


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


def animal_parts(p: dict, rng: np.random.Generator) -> list:
    """(polygon in torso units, colour name) pairs, back to front, for shape parameters p."""
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
