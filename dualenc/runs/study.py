"""The experiment registry, the run store and the results table.

One run is one directory `<runs>/<config hash>/` holding config.json, metrics.json, history.csv,
embeddings.npz, predictions.csv and a DONE marker. A run is built in a temporary directory and
renamed into place, so a crash never leaves a half-written run that looks finished.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ..config import ConfigError, DataConfig, ExperimentConfig, config_hash, from_dict, minority_kept, to_json
from . import provenance
from ..design import ORIGINAL, ORIGINAL_BIAS, arm_of_config, experiment_config

DONE = "DONE"
MODEL = "model.pt"
COPIED = "copied_from.txt"  # in a finished run copied without its weights from results/book_runs/
TOKENIZER = "tokenizer.json"  # the vocabulary the model was trained with (the group's, for seeds trained together)
# The experiment registry: named settings that `dualenc run NAME`, the notebooks and the book use. It
# starts with the original's four (`design.ORIGINAL`); more may be registered beside them.
REGISTRY = {e.name: experiment_config(e) for e in ORIGINAL}


def _bias_in_words(bias: float) -> str:
    n = DataConfig().n_train_per_group
    return f"bias {bias:g} ({minority_kept(bias, n)} of {n} minority images kept)"


DESCRIPTIONS = {
    "exp1": "no bias, undescriptive captions (\"horse\" / \"camel\")",
    "exp2": "no bias, descriptive captions (\"horse in the desert\", ...)",
    "exp3": f"{_bias_in_words(ORIGINAL_BIAS)}, undescriptive captions",
    "exp4": f"{_bias_in_words(ORIGINAL_BIAS)}, descriptive captions",
}


def get_experiment(name: str) -> ExperimentConfig:
    if name not in REGISTRY:
        raise ConfigError(f"experiment={name!r} is not in the registry: expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def runs_root(root: Optional[str | Path] = None) -> Path:
    """The run store: `root`, else $DUALENC_RUNS, else `runs/` at the project root (the nearest
    folder above the working directory with pyproject.toml and dualenc/), else ./runs.

    Looking for the project root lets the CLI, papermill runs from the root and notebooks executed
    in `notebooks/` share one store."""
    if root:
        return Path(root)
    if os.environ.get("DUALENC_RUNS"):
        return Path(os.environ["DUALENC_RUNS"])
    root = project_root()
    return root / "runs" if root else Path("runs")


def project_root() -> Optional[Path]:
    """The nearest folder at or above the working directory with pyproject.toml and dualenc/."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "dualenc").is_dir():
            return folder
    return None


def run_dir(config: ExperimentConfig, root: Optional[str | Path] = None) -> Path:
    return runs_root(root) / config_hash(config)


def is_done(path: Path) -> bool:
    return (path / DONE).is_file()


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda tmp: Path(tmp).write_text(text))


@dataclass
class RunRecord:
    """A finished run as stored: its directory, config, flat metrics and training history."""

    path: Path
    config: ExperimentConfig
    metrics: dict
    history: pd.DataFrame

    def embeddings(self) -> dict:
        with np.load(self.path / "embeddings.npz") as npz:
            return {k: npz[k] for k in npz.files}

    def predictions(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "predictions.csv")


def load_run(path: str | Path) -> RunRecord:
    path = Path(path)
    if not is_done(path):
        raise FileNotFoundError(f"{path} is not a finished run (no {DONE} marker)")
    config = from_dict(json.loads((path / "config.json").read_text()))
    metrics = json.loads((path / "metrics.json").read_text())
    return RunRecord(path, config, metrics, pd.read_csv(path / "history.csv"))


def save_run(path: Path, config: ExperimentConfig, evaluation, history: list,
             training: Optional[dict] = None, model=None, tokenizer=None) -> None:
    """Write every file of a run into a fresh temporary directory, then rename it to `path`.
    `training` (how the model was trained: alone or with which runs) goes to training.json, the
    model's weights to model.pt, the tokenizer's vocabulary to tokenizer.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-"))
    try:
        _write_text(staging / "config.json", to_json(config))
        _write_text(staging / "metrics.json", json.dumps(evaluation.metrics, indent=2, sort_keys=True))
        _write_text(staging / "history.csv", pd.DataFrame(history).to_csv(index=False))
        _write_text(staging / "predictions.csv", evaluation.predictions.to_csv(index=False))
        _write_atomic(staging / "embeddings.npz", lambda tmp: _savez(tmp, evaluation.embeddings))
        if training is not None:
            _write_text(staging / "training.json", json.dumps(training, indent=2, sort_keys=True))
        if model is not None:
            import torch
            _write_atomic(staging / MODEL, lambda tmp: torch.save(model.state_dict(), tmp))
        if tokenizer is not None:
            _write_text(staging / TOKENIZER, json.dumps({"vocab": tokenizer.vocab,
                                                         "context_length": tokenizer.context_length}))
        _write_text(staging / DONE, config_hash(config) + "\n")
        if path.exists():  # an unfinished leftover (no DONE) from an interrupted run
            shutil.rmtree(path)
        os.replace(staging, path)
    except OSError:
        if is_done(path):  # another process finished the same config first: keep its result
            return
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def clean_stale_staging(root: Optional[str | Path] = None) -> int:
    """Remove staging directories left by killed processes (their pid no longer runs)."""
    removed = 0
    for staging in runs_root(root).glob(".*.tmp-*"):
        pid = staging.name.split(".tmp-")[-1].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether `pid` runs. A killed process not yet reaped (a zombie) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux) or the process just went
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _savez(tmp: str, arrays: dict) -> None:
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def run_experiment(config: ExperimentConfig, root: Optional[str | Path] = None, progress: bool = True,
                   force: bool = False) -> RunRecord:
    """Train and evaluate `config`, or return the stored result if this config already finished."""
    return run_group([config], root=root, progress=progress, force=force)[0]


def run_status(path: Path) -> str:
    """"missing" (not finished), "stale" (finished by other code: its training.json records
    another code digest, or none, that is not declared to train like today's), "copied" (finished
    by today's code, copied without its weights from the book's results/book_runs/: its measures and
    embeddings can be read, but what needs the weights trains it again) or "done"."""
    if not is_done(path):
        return "missing"
    if not provenance.same_training(stored_code_digest(path), provenance.code_digest()):
        return "stale"
    return "copied" if (path / COPIED).is_file() and not (path / MODEL).is_file() else "done"


def stored_code_digest(path: Path) -> str:
    """The code digest a finished run recorded (UNRECORDED for runs stored before digests)."""
    return stored_training(path).get("code_digest", provenance.UNRECORDED)


def run_group(configs: list, root: Optional[str | Path] = None, progress: bool = True,
              force: bool = False, retrain_stale: bool = True, accept_copies: bool = True) -> list:
    """Train the unfinished configs of `configs` together as one batch of independent models
    (they may differ only in seed, data_seed and name: `train.group_key`), evaluate and store each
    as its own run. Returns the RunRecords in the order given; finished ones are loaded. A stale
    run (made by other code) is trained again, with a warning, unless `retrain_stale` is False:
    then it is loaded as it is. A run copied without weights (`run_status` "copied") is loaded,
    unless `accept_copies` is False: then it is trained again, to the same measures, with them."""
    from ..data.datasets import build_dataset
    from .evaluate import evaluate
    from ..model.train import train_group

    paths = [run_dir(c, root) for c in configs]
    status = [run_status(p) for p in paths]
    stale = [p.name for p, s in zip(paths, status) if s == "stale"]
    if stale and retrain_stale and not force:
        warnings.warn(f"{len(stale)} stored run(s) were made by other code (code digest is now "
                      f"{provenance.code_digest()}): training again: {', '.join(stale)}", stacklevel=2)
    todo = [i for i, s in enumerate(status) if force or s == "missing" or (s == "stale" and retrain_stale)
            or (s == "copied" and not accept_copies)]
    if todo:
        group = [configs[i] for i in todo]
        datasets = [build_dataset(c.resolved_data(), progress=progress) for c in group]
        results = train_group(group, datasets, progress=progress)
        for i, config, dataset, result in zip(todo, group, datasets, results):
            evaluation = evaluate(config, dataset, result)
            training = {"trained_with": result.trained_with, "position": result.trained_with.index(config_hash(config)),
                        "precision": config.train.precision, "compile": result.compiled,
                        "group_seconds": result.seconds, **provenance.provenance(result.device)}
            save_run(paths[i], config, evaluation, result.history, training, result.model, result.tokenizer)
    return [load_run(p) for p in paths]


def check_stored_model(path: str | Path) -> None:
    """ConfigError, naming what is missing, unless `path` is a finished run with its weights."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run directory {str(path)!r} does not exist: expected a finished run "
                          "such as runs/<config hash>")
    if not is_done(path):
        raise ConfigError(f"{str(path)!r} is not a finished run (no {DONE} marker): expected a "
                          "directory of the run store such as runs/<config hash>")
    if not (path / MODEL).is_file():
        raise ConfigError(f"run {str(path)!r} has no {MODEL} (stored without its weights: from before runs "
                          "kept them, or copied from the book's results/book_runs/): train it again with --force")


def load_model(path: str | Path):
    """The trained model of a stored run (K = 1, eval mode) and its tokenizer."""
    import torch

    from ..data.datasets import build_dataset, vocabulary_texts
    from ..data.tokenizer import Tokenizer
    from ..model.train import build_model

    check_stored_model(path)
    record = load_run(path)
    config = record.config
    if (record.path / TOKENIZER).is_file():
        stored = json.loads((record.path / TOKENIZER).read_text())
        tokenizer = Tokenizer(stored["vocab"], stored["context_length"])
    else:  # a run stored before tokenizer.json: rebuild the vocabulary its training used
        if config.data.data_dir:
            vocabulary = vocabulary_texts(build_dataset(config.resolved_data()))
        else:
            from ..data.captions import all_caption_texts
            vocabulary = all_caption_texts()
        tokenizer = Tokenizer.from_texts(vocabulary, config.model.text.context_length)
    model = build_model(config, len(tokenizer))
    model.load_state_dict(torch.load(record.path / MODEL, map_location="cpu"))
    return model.eval(), tokenizer


def flat_config(config: ExperimentConfig) -> dict:
    """Config as flat columns: data and train fields by name, model fields dotted."""
    body = config.to_dict()
    row = {"name": body.pop("name")}
    row.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in body["data"].items()})
    row.update(body["train"])
    for key, value in body["model"].items():
        if isinstance(value, dict):
            row.update({f"model.{key}.{k}": v for k, v in value.items()})
        else:
            row[f"model.{key}"] = value
    row["animal_size"] = str(row["animal_size"])
    return row


def stored_training(path: Path) -> dict:
    """A run's training.json ({} for a run stored before it existed)."""
    file = Path(path) / "training.json"
    return json.loads(file.read_text()) if file.is_file() else {}


def collect(root: Optional[str | Path] = None) -> pd.DataFrame:
    """One tidy row per finished run in the store: run id, its arm (`design.ARMS`; None for a
    setting no arm declares), config columns, metrics, and what made it (code digest, kernel
    fingerprint, CPU, threads: `provenance.PROVENANCE_COLUMNS`)."""
    return pd.DataFrame([collect_row(path) for path in sorted(runs_root(root).glob("*"))
                         if not path.name.startswith(".") and is_done(path)])


def collect_row(path: Path) -> dict:
    """The results row of one finished run (see `collect`)."""
    record = load_run(path)
    return {"run": path.name, "arm": arm_of_config(record.config), **flat_config(record.config),
            **record.metrics, **provenance.provenance_row(stored_training(path))}


def code_digests(table: pd.DataFrame) -> dict:
    """{code digest: number of rows} of a results table (UNRECORDED for rows without one)."""
    unrecorded = provenance.UNRECORDED
    digests = table["code_digest"].fillna(unrecorded) if "code_digest" in table else \
        pd.Series(unrecorded, index=table.index)
    return digests.value_counts().to_dict()


def write_table(table: pd.DataFrame, out: str | Path) -> Path:
    """`table` as a CSV at `out`, written atomically (a reader never sees half a file)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, lambda tmp: table.to_csv(tmp, index=False))
    return out


def write_results(root: Optional[str | Path] = None, out: str | Path = "results/results.csv",
                  runs: Optional[set] = None, merge: bool = False, mixed_code: bool = False) -> tuple:
    """Collect the run store (only the run ids in `runs`, if given) into `out` (CSV) and the same
    table as Parquet beside it. With `merge`, rows already in `out` whose runs the store lacks are
    kept (a table grown over several machines). A table whose rows were made by different code
    (code digests) is refused, naming them, unless `mixed_code`; nothing is written then."""
    table = collect(root)
    out = Path(out)
    if merge and out.is_file():
        kept = pd.read_csv(out)
        if not table.empty:
            kept = kept[~kept["run"].isin(table["run"])]
        table = pd.concat([kept, table], ignore_index=True) if len(kept) else table
    if runs is not None and not table.empty:
        table = table[table["run"].isin(runs)].reset_index(drop=True)
    digests = code_digests(table) if not table.empty else {}
    if len({provenance.training_digest(d) for d in digests}) > 1 and not mixed_code:
        listed = ", ".join(f"{d} ({n} runs)" for d, n in digests.items())
        raise ConfigError(f"the rows for {str(out)!r} were made by different code: code digests {listed} "
                          f"(today's code is {provenance.code_digest()}); train the stale runs again "
                          "(`dualenc sweep --retrain-stale`) or pass --mixed-code to write them together")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out, out.with_suffix(".parquet")]
    _write_atomic(paths[0], lambda tmp: table.to_csv(tmp, index=False))
    try:
        _write_atomic(paths[1], lambda tmp: table.to_parquet(tmp, index=False))
    except ImportError:  # pyarrow is in the `sweep` extra
        paths = paths[:1]
    return table, paths
