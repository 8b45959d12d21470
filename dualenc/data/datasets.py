"""Datasets: the four groups, bias subsampling, disjoint splits, captions, and user image folders."""
from __future__ import annotations

import csv
import functools
import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .captions import all_caption_texts, size_class, training_captions
from ..config import (ANIMALS, BACKGROUNDS, GROUP_NAMES, GROUPS, MINORITY_GROUPS, ConfigError, DataConfig,
                      group_name, minority_kept)

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Split:
    """One split held in memory. images: (N, S, S, 3) uint8; the rest are length-N arrays."""

    images: np.ndarray
    animal: np.ndarray       # str, e.g. "horse"
    background: np.ndarray   # str, e.g. "desert"
    captions: list           # one caption per image (train: by caption mode; val/test: descriptive)
    source: np.ndarray       # str: "generated:<seed>" or the image file's path
    size: Optional[np.ndarray] = None   # str "small" / "large" where captions name sizes (the size control)

    def __len__(self) -> int:
        return len(self.animal)

    @property
    def group(self) -> np.ndarray:
        return np.char.add(np.char.add(self.animal.astype(str), "_"), self.background.astype(str))

    def subset(self, keep: np.ndarray) -> "Split":
        """The images where the boolean mask `keep` is True."""
        idx = np.flatnonzero(keep)
        return Split(self.images[idx], self.animal[idx], self.background[idx],
                     [self.captions[i] for i in idx], self.source[idx], None if self.size is None else self.size[idx])

    def group_counts(self) -> dict:
        groups = self.group
        return {group_name(a, b): int((groups == group_name(a, b)).sum()) for a, b in GROUPS}


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split


def image_seed(data_seed: int, split: str, animal: str, background: str, index: int) -> int:
    """Per-image render seed; the split name is part of it, so splits never share an image."""
    key = f"{data_seed}/{split}/{animal}_{background}/{index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little")


def apply_bias(split: Split, data: DataConfig) -> Split:
    """Keep `minority_kept(bias, n)` images of each minority group (the first ones, so levels nest)."""
    keep = np.ones(len(split), dtype=bool)
    for animal, background in MINORITY_GROUPS:
        idx = np.flatnonzero((split.animal == animal) & (split.background == background))
        n_keep = minority_kept(data.bias, len(idx))
        keep[idx[n_keep:]] = False
    return split.subset(keep)


def _labels(per_group: int) -> tuple[np.ndarray, np.ndarray]:
    animal = np.repeat([a for a, _ in GROUPS], per_group)
    background = np.repeat([b for _, b in GROUPS], per_group)
    return animal, background


# Fields of DataConfig that the rendered pixels depend on (bias and captions do not).
RENDER_FIELDS = ("image_size", "animal_size", "animal_similarity", "data_seed")


def data_cache_dir() -> Path:
    """$DUALENC_DATA_CACHE, else data/generated in a source checkout, else ~/.cache/dualenc."""
    if os.environ.get("DUALENC_DATA_CACHE"):
        return Path(os.environ["DUALENC_DATA_CACHE"])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data" / "generated"
    return Path.home() / ".cache" / "dualenc"


@functools.lru_cache(maxsize=1)
def _renderer_digest() -> str:
    """Hash of the renderer's source (render.py and its render_*.py parts): a renderer change
    invalidates the data cache."""
    from . import render
    files = sorted(Path(render.__file__).parent.glob("render*.py"))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _render_key(data: DataConfig, split: str, per_group: int) -> str:
    fields = {f: getattr(data, f) for f in RENDER_FIELDS}
    fields["data_seed"] = data.draw_seed
    text = f"{sorted(fields.items())}/{split}/{per_group}/{_renderer_digest()}".encode()
    return f"{split}-{hashlib.sha256(text).hexdigest()[:16]}"


def _render_split(data: DataConfig, split: str, per_group: int, progress: bool) -> Split:
    """Render a split, or read it from the data cache (keyed by what the pixels depend on)."""
    path = data_cache_dir() / f"{_render_key(data, split, per_group)}.npz"
    if path in _MEMORY_CACHE:
        return _copy(_MEMORY_CACHE[path])
    if path.is_file():
        try:
            with np.load(path) as npz:
                split_data = Split(npz["images"], npz["animal"], npz["background"], [""] * len(npz["animal"]),
                                   npz["source"])
            _MEMORY_CACHE[path] = split_data
            return _copy(split_data)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache file: render again and overwrite it
    split_data = _render_fresh(data, split, per_group, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, images=split_data.images, animal=split_data.animal, background=split_data.background,
                 source=split_data.source)
    os.replace(tmp, path)
    _MEMORY_CACHE[path] = split_data
    return _copy(split_data)


_MEMORY_CACHE: dict = {}


def _copy(split: Split) -> Split:
    return Split(split.images, split.animal, split.background, list(split.captions), split.source, split.size)


def _render_fresh(data: DataConfig, split: str, per_group: int, progress: bool) -> Split:
    from .render import render_image

    animal, background = _labels(per_group)
    seeds = [image_seed(data.draw_seed, split, a, b, i % per_group)
             for i, (a, b) in enumerate(zip(animal, background))]
    images = np.stack([render_image(a, b, s, data) for a, b, s in
                       tqdm(list(zip(animal, background, seeds)), desc=f"render {split}",
                            disable=not progress, leave=False)])
    source = np.array([f"generated:{s}" for s in seeds])
    return Split(images, animal, background, [""] * len(animal), source)


def _with_captions(split: Split, data: DataConfig, seed_key: str) -> Split:
    if split.captions and all(split.captions):
        return split  # a user manifest gave every image its own caption
    seed = image_seed(data.draw_seed, seed_key, "captions", "", 0)
    if data.captions == "size":
        split.size = generated_sizes(split, data)
    split.captions = training_captions(split.animal, split.background, data, seed, split.size)
    return split


def generated_sizes(split: Split, data: DataConfig) -> np.ndarray:
    """"small" or "large" for each generated image: the size the renderer drew for it
    (`render.animal_size_draw`, `captions.size_class`). A user's image has no drawn size."""
    from .render import animal_size_draw

    if not all(str(s).startswith("generated:") for s in split.source):
        raise ConfigError("captions='size' needs generated images (their size is the renderer's draw); "
                          f"{data.data_dir!r} holds a user's images")
    return np.array([size_class(animal_size_draw(a, int(str(s).split(":", 1)[1]), data), data)
                     for a, s in zip(split.animal, split.source)])


def _descriptive_for_eval(split: Split) -> Split:
    from .captions import DESCRIPTIVE
    split.captions = [DESCRIPTIVE[g] for g in split.group]
    return split


def build_dataset(data: DataConfig, progress: bool = False) -> Dataset:
    """Render (or load) the three splits; bias applies to the training split only."""
    if data.data_dir:
        splits = load_user_splits(data)
    else:
        sizes = {"train": data.n_train_per_group, "val": data.n_val_per_group, "test": data.n_test_per_group}
        splits = {s: _render_split(data, s, n, progress) for s, n in sizes.items()}
    train = _with_captions(apply_bias(splits["train"], data), data, "train")
    return Dataset(train, _descriptive_for_eval(splits["val"]), _descriptive_for_eval(splits["test"]))


def vocabulary_texts(dataset: Dataset) -> list[str]:
    """All strings the tokenizer must know: every generated caption and the user's own."""
    return sorted(set(all_caption_texts()) | set(dataset.train.captions))


# ---------------------------------------------------------------- user images


class ImageEntry(NamedTuple):
    """One listed image file and its labels; `split` is "" unless the folder or manifest names it."""

    path: Path
    animal: str
    background: str
    caption: str = ""
    split: str = ""


def _read_image(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.BICUBIC)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err
    return np.asarray(rgb, dtype=np.uint8)


def _group_folder_entries(root: Path, split: str = "", allow_empty: bool = False) -> list[ImageEntry]:
    entries = []
    for animal, background in GROUPS:
        group = group_name(animal, background)
        folder = root / group
        if not folder.is_dir():
            layouts = "" if split else " (or train/, val/ and test/ folders that each hold them)"
            raise FileNotFoundError(f"missing group folder {folder} for group {group!r}: expected "
                                    f"<root>/<animal>_<background>/ for each of {list(GROUP_NAMES)}{layouts}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files and not allow_empty:
            raise FileNotFoundError(f"group folder {folder} ({group!r}) has no {'/'.join(IMAGE_SUFFIXES)} images")
        entries += [ImageEntry(p, animal, background, "", split) for p in files]
    return entries


def _folder_entries(root: Path) -> list[ImageEntry]:
    """`<root>/<group>/`, or an exported dataset `<root>/{train,val,test}/<group>/` whose training
    split may lack a group (bias 1)."""
    splits_present = [s for s in SPLITS if (root / s).is_dir()]
    if any((root / g).is_dir() for g in GROUP_NAMES) or not splits_present:
        return _group_folder_entries(root)
    missing = [s for s in SPLITS if s not in splits_present]
    if missing:
        raise FileNotFoundError(f"{root} has split folder(s) {splits_present} but not {missing}: a dataset "
                                f"with splits has train/, val/ and test/, each holding {list(GROUP_NAMES)}")
    return [e for s in SPLITS for e in _group_folder_entries(root / s, s, allow_empty=s == "train")]


def _manifest_entries(manifest: Path) -> list[ImageEntry]:
    entries = []
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        missing = {"path", "animal", "background"} - columns
        if missing:
            raise ValueError(f"manifest {manifest} lacks column(s) {sorted(missing)}: "
                             "expected path, animal, background and optionally caption and split")
        for line, row in enumerate(reader, start=2):
            animal, background = row["animal"].strip().lower(), row["background"].strip().lower()
            if animal not in ANIMALS or background not in BACKGROUNDS:
                raise ValueError(f"manifest {manifest} line {line}: animal={row['animal']!r}, "
                                 f"background={row['background']!r}; allowed {ANIMALS} and {BACKGROUNDS}")
            split = (row.get("split") or "").strip().lower()
            if "split" in columns and split not in SPLITS:
                raise ValueError(f"manifest {manifest} line {line}: split={row['split']!r}; allowed {SPLITS}")
            path = Path(row["path"])
            path = path if path.is_absolute() else manifest.parent / path
            entries.append(ImageEntry(path, animal, background, (row.get("caption") or "").strip(), split))
    present = {(e.animal, e.background) for e in entries}
    for group in GROUPS:
        if group not in present:
            raise ValueError(f"manifest {manifest} has no images of group {group_name(*group)!r}")
    return entries


def list_image_entries(root: str | Path) -> list[ImageEntry]:
    """The image files of a folder (`<root>/<animal>_<background>/*.png|jpg`, optionally under
    train/, val/ and test/) or a CSV manifest, with their labels; reads no pixels. A missing group
    is an error naming the group."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data_dir {str(root)!r} does not exist: expected a folder "
                                "<root>/<animal>_<background>/ or a CSV manifest")
    if root.is_file() and root.suffix.lower() != ".csv":
        raise ValueError(f"{str(root)!r} is a file but not a .csv manifest: expected a folder "
                         "<root>/<animal>_<background>/ or a CSV manifest")
    return _manifest_entries(root) if root.is_file() else _folder_entries(root)


def read_image_entries(entries: list[ImageEntry], size: int, on_error: str = "raise") -> tuple[Split, list]:
    """Read listed images at size x size (resized only when their size differs) into one Split;
    also returns the entries kept. on_error="raise" stops at the first unreadable file (the message
    names it); "warn" skips it with a warning."""
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error={on_error!r} is not allowed: expected 'raise' or 'warn'")
    images, kept = [], []
    for entry in entries:
        try:
            images.append(_read_image(entry.path, size))
            kept.append(entry)
        except ValueError as err:
            if on_error == "raise":
                raise
            warnings.warn(f"skipping {err}", stacklevel=2)
    lost = sorted({group_name(e.animal, e.background) for e in entries} -
                  {group_name(e.animal, e.background) for e in kept})
    if lost:
        raise ValueError(f"no readable image of group(s) {lost}: every one was skipped")
    paths, animal, background, captions, _ = zip(*kept)
    split = Split(np.stack(images), np.array(animal), np.array(background), list(captions),
                  np.array([str(p) for p in paths]))
    return split, kept


def split_user_entries(split: Split, seed: int, shares=(0.6, 0.2, 0.2)) -> dict:
    """Deterministic per-group split of user images into train/val/test by hashing each path."""
    keys = np.array([int.from_bytes(hashlib.sha256(f"{seed}/{p}".encode()).digest()[:8], "little")
                     for p in split.source])
    assign = np.empty(len(split), dtype=object)
    for animal, background in GROUPS:
        idx = np.flatnonzero((split.animal == animal) & (split.background == background))
        idx = idx[np.argsort(keys[idx], kind="stable")]
        n_train = int(round(shares[0] * len(idx)))
        n_val = int(round(shares[1] * len(idx)))
        assign[idx[:n_train]] = "train"
        assign[idx[n_train:n_train + n_val]] = "val"
        assign[idx[n_train + n_val:]] = "test"
    out = {}
    for name in SPLITS:
        part = split.subset(assign == name)
        for a, b in GROUPS:
            if not ((part.animal == a) & (part.background == b)).any():
                raise ValueError(f"group {group_name(a, b)!r} has too few images for a {name} split "
                                 f"(need at least 4 per group for train/val/test)")
        out[name] = part
    return out


def load_user_splits(data: DataConfig) -> dict:
    """User images split into train/val/test: the splits the folder (train/, val/, test/) or the
    manifest (a `split` column) declares, e.g. an exported dataset's; else a per-group hash split."""
    on_error = "warn" if data.skip_unreadable else "raise"
    everything, kept = read_image_entries(list_image_entries(data.data_dir), data.image_size, on_error)
    if not any(e.split for e in kept):
        return split_user_entries(everything, data.draw_seed)
    declared = np.array([e.split for e in kept])
    out = {name: everything.subset(declared == name) for name in SPLITS}
    for name, part in out.items():
        empty = [g for g, n in part.group_counts().items() if n == 0]
        if empty and (name != "train" or len(empty) == len(GROUP_NAMES)):
            raise ValueError(f"{data.data_dir}: its {name} split has no images of group(s) {empty} "
                             "(val and test need every group)")
    return out
