"""Declare that today's code trains exactly like the code that made the stored runs.

A change to a file the code digest covers (`provenance.code_files`) makes every stored run stale,
even when it cannot change a number: a moved module, a new arm, a new field nobody reads in
training. Rather than train the whole grid again, `check` trains one stored batch of every arm
again with today's code, exactly as the sweep did (the same batch, one thread each, the stored run's
compile setting), and compares each run's weights and measures with the stored ones. Only if every
one is bitwise equal does `declare` write "today's digest trains like the stored one" into
`provenance.EQUIVALENCE_FILE`; from then on the stored runs count as today's (`study.run_status`,
`provenance.same_making`) and a committed table keeps the digest of the code that made it.

`dualenc equivalence --runs DIR --jobs 2` does both; on any difference it writes nothing and
names the runs that differ.
"""
from __future__ import annotations

import csv
import datetime
import json
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional

import pandas as pd
import torch

from . import provenance
from ..config import ConfigError
from ..design import arm_of_config
from .study import MODEL, is_done, load_run, runs_root, stored_training
from .sweep import _run_group

IGNORED_MEASURES = ("train_seconds",)   # wall-clock times: never equal


def stored_batches(root: Optional[str | Path] = None, per_arm: int = 1) -> list:
    """Up to `per_arm` stored batches of each arm made by other code (not declared equivalent),
    each a list of run ids in the order they were trained together, first found first."""
    today = provenance.code_digest()
    batches, seen, count = [], set(), {}
    for path in sorted(runs_root(root).glob("*")):
        if path.name.startswith(".") or not is_done(path) or path.name in seen:
            continue
        training = stored_training(path)
        if provenance.same_training(training.get("code_digest", provenance.UNRECORDED), today):
            continue
        batch = training.get("trained_with") or [path.name]
        if not all(is_done(runs_root(root) / run) for run in batch):
            continue
        seen.update(batch)
        arm = arm_of_config(load_run(path).config)
        if count.get(arm, 0) < per_arm:
            count[arm] = count.get(arm, 0) + 1
            batches.append(batch)
    return batches


def _weights_equal(a: Path, b: Path) -> bool:
    wa, wb = (torch.load(p / MODEL, map_location="cpu", weights_only=True) for p in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _measures(path: Path) -> dict:
    measures = json.loads((path / "metrics.json").read_text())
    return {k: v for k, v in measures.items() if k not in IGNORED_MEASURES}


def check(root: Optional[str | Path] = None, per_arm: int = 1, jobs: int = 1,
          scratch: Optional[str | Path] = None) -> pd.DataFrame:
    """Train the `stored_batches` again with today's code (one thread per batch, `jobs` at once) in
    `scratch` (a temporary folder by default) and compare: one row per run with its arm, the stored
    code digest, whether weights and measures are bitwise equal, and the outcome."""
    root = runs_root(root)
    batches = stored_batches(root, per_arm)
    if not batches:
        raise ConfigError(f"no stored runs in {str(root)!r} were made by other code than today's "
                          f"({provenance.code_digest()}): nothing to check")
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        configs = [[json.loads((root / run / "config.json").read_text()) for run in batch] for batch in batches]
        threads = [stored_training(root / batch[0]).get("threads", 1) for batch in batches]
        if jobs <= 1:
            before = torch.get_num_threads()
            try:
                for batch, n in zip(configs, threads):
                    _run_group(batch, tmp, n)
            finally:
                torch.set_num_threads(before)
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                list(pool.map(_run_group, configs, [tmp] * len(batches), threads))
        rows = []
        for batch in batches:
            for run in batch:
                stored, again = root / run, Path(tmp) / run
                weights, measures = _weights_equal(stored, again), _measures(stored) == _measures(again)
                rows.append({"run": run, "arm": arm_of_config(load_run(stored).config),
                             "stored_code": stored_training(stored).get("code_digest", provenance.UNRECORDED),
                             "weights_equal": weights, "measures_equal": measures,
                             "outcome": "bitwise equal" if weights and measures else "differs"})
    return pd.DataFrame(rows)


def declare(table: pd.DataFrame, path: Optional[Path] = None, command: str = "") -> dict:
    """Append "today's code trains like the stored runs' code" to the declarations file, if every
    row of a `check` table is bitwise equal and the stored runs share one training digest; else
    ConfigError naming what differs, and nothing is written."""
    path = provenance.EQUIVALENCE_FILE if path is None else Path(path)
    differs = table[table["outcome"] != "bitwise equal"]
    if len(differs):
        raise ConfigError(f"today's code ({provenance.code_digest()}) does not train like the stored runs: "
                          f"{len(differs)} of {len(table)} runs differ ({', '.join(differs['run'])}); "
                          "nothing was declared")
    stored = {provenance.training_digest(d, path) for d in table["stored_code"]}
    if len(stored) != 1 or provenance.UNRECORDED in stored:
        raise ConfigError(f"the checked runs were made by several codes or by unrecorded code ({sorted(stored)}): "
                          "check runs of one code digest")
    row = {"code_digest": provenance.code_digest(), "trains_like": stored.pop(),
           "checked_on": datetime.date.today().isoformat(), "runs_compared": len(table),
           "arms": " ".join(sorted(set(table["arm"].astype(str)))), "command": command}
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    return row


def main(runs: Optional[str], per_arm: int, jobs: int, command: str) -> int:
    table = check(runs, per_arm=per_arm, jobs=jobs)
    print(table.to_string(index=False))
    row = declare(table, command=command)
    print(f"declared: code {row['code_digest']} trains like {row['trains_like']} "
          f"({row['runs_compared']} runs of {len(row['arms'].split())} arms bitwise equal) -> "
          f"{provenance.EQUIVALENCE_FILE}")
    return 0
