"""Export a configuration's train/val/test images as PNG files in the layout the image loader reads.

`OUT/<split>/<animal>_<background>/<index>.png` (the training split after bias), and
`OUT/manifest.csv` with one row per image: path (relative to OUT), split, animal, background,
caption, source. `--data-dir OUT`, `OUT/manifest.csv` or `OUT/<split>` reads it back.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from ..config import GROUP_NAMES, ConfigError, ExperimentConfig
from .datasets import SPLITS, Dataset, build_dataset

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("path", "split", "animal", "background", "caption", "source")
EXPORT_INFO = "export.json"  # the data config that made the images, and the counts


@dataclass
class ExportReport:
    out: Path
    counts: dict        # split -> {group: images}
    seconds: float

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST

    @property
    def n_images(self) -> int:
        return sum(sum(groups.values()) for groups in self.counts.values())

    def summary(self) -> str:
        lines = [f"wrote {self.n_images} images to {self.out} in {self.seconds:.1f} s"]
        for split, groups in self.counts.items():
            lines.append(f"  {split:<5}  " + "  ".join(f"{g} {n}" for g, n in groups.items()))
        lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export folder {str(out)!r} is a file: expected a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"export folder {str(out)!r} is not empty: choose a new or empty folder, "
                              "or pass --force to replace an earlier export")
        if not (out / MANIFEST).is_file():
            raise ConfigError(f"export folder {str(out)!r} is not empty and holds no {MANIFEST}, so it is not "
                              "an earlier export: --force replaces only an earlier export")


def _file_names(count: int) -> list:
    width = max(3, len(str(count - 1)))
    return [f"{i:0{width}d}.png" for i in range(count)]


def _write_images(dataset: Dataset, root: Path, progress: bool) -> list:
    """Write every image under root; returns the manifest rows."""
    rows = []
    bar = tqdm(total=sum(len(getattr(dataset, s)) for s in SPLITS), desc="export", disable=not progress,
               leave=False)
    for split_name in SPLITS:
        split = getattr(dataset, split_name)
        groups = split.group
        for group in GROUP_NAMES:
            folder = root / split_name / group
            folder.mkdir(parents=True)
            indices = [i for i, g in enumerate(groups) if g == group]
            for i, name in zip(indices, _file_names(len(indices))):
                Image.fromarray(split.images[i]).save(folder / name)
                rows.append({"path": f"{split_name}/{group}/{name}", "split": split_name,
                             "animal": split.animal[i], "background": split.background[i],
                             "caption": split.captions[i], "source": split.source[i]})
                bar.update()
    bar.close()
    return rows


def export_dataset(config: ExperimentConfig, out: str | Path, force: bool = False,
                   progress: bool = True) -> ExportReport:
    """Write `config`'s three splits (data drawn with `config.resolved_data()`, the training split
    biased) to `out`. Refuses a non-empty `out` unless `force`, which replaces an earlier export.
    The files are written in a temporary folder beside `out` and renamed into place."""
    start = time.perf_counter()
    given, out = Path(out), Path(out).resolve()
    _check_target(given, force)
    data = config.resolved_data()
    dataset = build_dataset(data, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    os.chmod(staging, 0o755)  # mkdtemp makes it private
    try:
        rows = _write_images(dataset, staging, progress)
        with open(staging / MANIFEST, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        counts = {s: getattr(dataset, s).group_counts() for s in SPLITS}
        info = {"data": dict(config.to_dict()["data"], data_seed=data.draw_seed), "counts": counts,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (staging / EXPORT_INFO).write_text(json.dumps(info, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(given, counts, time.perf_counter() - start)
