"""Transfer: score a stored run on another image folder or CSV manifest.

The result is stored beside the run, never in its own metrics:
`RUN_DIR/transfer/<folder name>-<hash of the folder's path and file list>.json` (and `.csv`, one
prediction per image). Metric names are those of the run's metrics.json (`zs_class_acc_horse_grass`,
`zs_pooled_worst_group_acc`, `acc_camel_grass`, `average_acc`, ...), so the two compare directly.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import pandas as pd

from ..config import ANIMALS, GROUP_NAMES, ConfigError
from ..data.datasets import Dataset, list_image_entries, read_image_entries
from .metric_registry import PROMPT_SECTIONS

TRANSFER_DIR = "transfer"
# The registry's sections a transfer computes: test accuracy with each prompt set (or the classifier).
TRANSFER_SECTIONS = ("accuracy", "zs_class", "zs_pooled")


@dataclass
class Transfer:
    """A run scored on a folder: per-group accuracy of each prompt set (or the classifier head)."""

    run_dir: str
    test_dir: str                 # as given
    test_dir_resolved: str
    n_images: int
    counts: dict                  # group -> images scored
    prompt_sets: list             # ["class", "pooled"] for a dual encoder, ["classifier"] for image-only
    headline_prompts: str         # the prompt set the run's own headline metrics use
    metrics: dict                 # metrics.json names (TRANSFER_SECTIONS); the headline set's also without prefix
    skipped: list = field(default_factory=list)   # unreadable files skipped (on_error="warn")
    image_size: int = 0
    created: str = ""
    path: Optional[str] = None    # the stored JSON file

    def table(self) -> pd.DataFrame:
        """Rows: the four groups, then average and worst group; columns: images, then the
        accuracy of each prompt set (the worst-group row holds each set's own worst group)."""
        keys = [f"acc_{g}" for g in GROUP_NAMES] + ["average_acc", "worst_group_acc"]
        table = pd.DataFrame(index=pd.Index([*GROUP_NAMES, "average", "worst group"], name="group"))
        table["images"] = pd.array([self.counts[g] for g in GROUP_NAMES] + [self.n_images, pd.NA], dtype="Int64")
        for name in self.prompt_sets:  # the headline set's names carry no prefix
            prefix = "" if name == self.headline_prompts else PROMPT_SECTIONS[name][0]
            table[name] = [self.metrics[prefix + key] for key in keys]
        table.attrs["headline_prompts"] = self.headline_prompts
        return table

    def report(self) -> str:
        """A small readable table and where the result is stored."""
        shown = self.table().map(lambda v: "-" if pd.isna(v) else f"{v:.3f}" if isinstance(v, float) else v)
        shown = shown.to_string()
        skipped = f" ({len(self.skipped)} unreadable skipped)" if self.skipped else ""
        return (f"transfer of run {Path(self.run_dir).name} to {self.test_dir}: {self.n_images} images"
                f"{skipped}, {self.image_size} px; headline prompts: {self.headline_prompts}\n"
                f"{shown}\nstored: {self.path}")


def list_test_entries(test_dir: str | Path) -> list:
    """The images of a test folder or manifest, listed (no pixels read): checks its layout."""
    if not Path(test_dir).exists():
        raise ConfigError(f"test_dir {str(test_dir)!r} does not exist: expected a folder "
                          "<root>/<animal>_<background>/*.png|jpg or a CSV manifest")
    return list_image_entries(test_dir)


def folder_key(test_dir: str | Path, entries: list) -> str:
    """`<folder name>-<10 hex digits>`: the hash covers the resolved path and every listed file
    with its labels, so a changed folder gets a new result file."""
    resolved = Path(test_dir).resolve()
    listing = "\n".join(f"{e.path.resolve()},{e.animal},{e.background},{e.split}" for e in entries)
    digest = hashlib.sha256(f"{resolved}\n{listing}".encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", resolved.stem if resolved.is_file() else resolved.name) or "folder"
    return f"{name}-{digest}"


def evaluate_on_folder(run_dir: str | Path, test_dir: str | Path, on_error: str = "raise",
                       device: str = "cpu") -> Transfer:
    """Score the run in `run_dir` on every image of `test_dir` (`<root>/<animal>_<background>/`,
    an exported dataset's split folder, or a CSV manifest; resized to the run's image size) and
    store the result under `run_dir/transfer/`. on_error="warn" skips unreadable images."""
    from .evaluate import RunOutputs
    from .metric_registry import compute_metrics
    from .study import _write_text, check_stored_model, load_model, load_run

    run_dir = Path(run_dir)
    check_stored_model(run_dir)
    if on_error not in ("raise", "warn"):
        raise ConfigError(f"on_error={on_error!r} is not allowed: expected 'raise' or 'warn'")
    entries = list_test_entries(test_dir)
    config = load_run(run_dir).config
    images, kept = read_image_entries(entries, config.data.image_size, on_error)
    model, tokenizer = load_model(run_dir)
    outputs = RunOutputs(config, Dataset(train=None, val=None, test=images), model.to(device), tokenizer, device)
    transfer = Transfer(str(run_dir), str(test_dir), str(Path(test_dir).resolve()), len(images),
                        images.group_counts(), list(outputs.prompt_sets), outputs.headline_prompts,
                        compute_metrics(outputs, TRANSFER_SECTIONS),
                        sorted({str(e.path) for e in entries} - {str(e.path) for e in kept}),
                        config.data.image_size, datetime.now(timezone.utc).isoformat(timespec="seconds"))

    folder = run_dir / TRANSFER_DIR
    folder.mkdir(exist_ok=True)
    key = folder_key(test_dir, entries)
    transfer.path = str(folder / f"{key}.json")
    table = pd.DataFrame({"path": images.source, "animal": images.animal, "background": images.background})
    for name in outputs.prompt_sets:
        table[f"pred_{name}"] = [ANIMALS[k] for k in outputs.predicted(name)]
    _write_text(folder / f"{key}.csv", table.to_csv(index=False))
    _write_text(Path(transfer.path), json.dumps(asdict(transfer), indent=2))
    return transfer


def transfer_table(run_dir: str | Path, test_dir: str | Path, on_error: str = "raise") -> pd.DataFrame:
    """For a notebook: `evaluate_on_folder` (stored as usual), as a per-group accuracy table."""
    return evaluate_on_folder(run_dir, test_dir, on_error=on_error).table()


def transfer_summary(run_dirs: list, test_dir: str | Path, on_error: str = "raise") -> pd.DataFrame:
    """Several runs (the seeds of one setting) scored on one folder: `transfer_table`'s accuracies
    as the mean over the runs (the worst-group row: the mean of each run's own worst group)."""
    if not run_dirs:
        raise ConfigError("transfer_summary needs at least one run directory")
    tables = [transfer_table(run_dir, test_dir, on_error=on_error) for run_dir in run_dirs]
    accuracy = pd.concat([t.drop(columns="images") for t in tables]).groupby(level=0, sort=False).mean()
    out = tables[0][["images"]].join(accuracy)
    out.attrs = {**tables[0].attrs, "runs": len(tables)}
    return out
