import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest

from dualenc.config import ExperimentConfig, config_hash, to_json
from dualenc.design import (ARMS, BIAS_LEVELS, BLOCKS, DATA_SIZES, LEVEL_SETS, ORIGINAL_BIAS, SEEDS, STRONG_BIAS)
from dualenc.runs.study import DONE, clean_stale_staging, collect, is_done, load_run, run_dir
from dualenc.runs.sweep import ci_grid, default_grid, run_sweep

LOSS_BIAS_LEVELS = SIZE_BIAS_LEVELS = LEVEL_SETS["few"]
VARIABILITY_BIAS_LEVELS = LEVEL_SETS["variability"]
CAPTION_VARIANTS = next(b.arms for b in BLOCKS if b.family == "captions")


def test_default_grid_expands_to_the_study_configs():
    grid = default_grid()
    settings = 5 * len(BIAS_LEVELS) + len(BIAS_LEVELS) + 2 * 2 * len(LOSS_BIAS_LEVELS) \
        + len(VARIABILITY_BIAS_LEVELS) + len(DATA_SIZES) * len(SIZE_BIAS_LEVELS) * 2
    assert len({config_hash(c) for c in grid}) == len(grid) == settings * len(SEEDS)
    assert len(SEEDS) >= 5
    families = Counter(c.name for c in grid)
    assert set(families) == {"captions", "image_only", "losses", "variability", "data_size"}
    captions = [c for c in grid if c.name == "captions"]
    assert {c.data.bias for c in captions} == set(BIAS_LEVELS)
    assert Counter((c.data.captions, c.data.descriptive_share) for c in captions) == {
        ("undescriptive", 1.0): 11 * len(SEEDS), ("descriptive", 1.0): 11 * len(SEEDS),
        ("descriptive", 0.5): 11 * len(SEEDS), ("background", 1.0): 11 * len(SEEDS), ("size", 1.0): 11 * len(SEEDS)}
    losses = [c for c in grid if c.name == "losses"]
    assert {c.train.loss for c in losses} == {"clip", "siglip"}
    assert len({c.data.bias for c in losses}) >= 5
    sizes = [c for c in grid if c.name == "data_size"]
    assert {c.data.n_train_per_group for c in sizes} | {48} == {48, 192, 768}
    assert len({c.data.bias for c in sizes}) >= 5
    assert {c.data.caption_templates for c in grid if c.name == "variability"} == {4}
    assert all(c.train.loss == "pairwise" for c in grid if c.name in ("captions", "variability", "data_size"))
    assert {c.train.seed for c in grid} == set(SEEDS)
    assert all(c.data.data_seed is None for c in grid)          # each seed is its own data draw
    assert len({c.train.steps for c in grid}) == 1                # one budget for every arm


def test_grid_runs_whole_comparisons_first():
    """A sweep stopped early holds whole comparisons: the core arms at the key levels, then the
    data-size axis at the original's bias, then the bias curve of the question's arms."""
    grid = default_grid()
    arm = lambda c: (c.name, c.data.captions if c.name == "captions" else c.train.loss, c.data.descriptive_share)
    n_core = 5 * 3 * len(SEEDS)
    core = grid[:n_core]
    assert {c.data.bias for c in core} == {0.0, ORIGINAL_BIAS, STRONG_BIAS}
    assert {arm(c) for c in core} == {("captions", "undescriptive", 1.0), ("captions", "descriptive", 1.0),
                                      ("captions", "background", 1.0), ("captions", "size", 1.0),
                                      ("image_only", "image_only", 1.0)}
    n_sizes = len(DATA_SIZES) * 2 * len(SEEDS)
    sizes = grid[n_core:n_core + n_sizes]
    assert all(c.name == "data_size" and c.data.bias == ORIGINAL_BIAS for c in sizes)
    assert {c.data.n_train_per_group for c in sizes} == set(DATA_SIZES)
    other_levels = set(BIAS_LEVELS) - {0.0, ORIGINAL_BIAS, STRONG_BIAS}
    curve = grid[n_core + n_sizes:n_core + n_sizes + 4 * len(other_levels) * len(SEEDS)]
    assert {c.data.bias for c in curve} == other_levels
    assert {arm(c) for c in curve} == {("captions", "undescriptive", 1.0), ("captions", "descriptive", 1.0),
                                       ("captions", "size", 1.0), ("image_only", "image_only", 1.0)}


def test_batches_run_in_the_grids_order_across_models():
    """The image-only baseline (another model, so other batches) trains with the core arms at the
    key levels, not after every pairwise batch."""
    from dualenc.runs.sweep import group_configs

    grid = default_grid()
    position = {config_hash(c): i for i, c in enumerate(grid)}
    batches = group_configs(grid)
    firsts = [min(position[config_hash(c)] for c in batch) for batch in batches]
    assert firsts == sorted(firsts)
    core = [c for batch in batches[:5 * 3] for c in batch]        # 5 core arms x 3 key levels, 5 seeds a batch
    assert sum(c.train.loss == "image_only" for c in core) == 3 * len(SEEDS)
    assert sorted(config_hash(c) for b in batches for c in b) == sorted(position)


def test_every_axis_has_the_levels_the_verdicts_read():
    """The verdicts compare bias 0, the original's level and the strong level in every family: each
    axis must run them, and the short axes only levels of the full bias curve."""
    for levels in (BIAS_LEVELS, LOSS_BIAS_LEVELS, SIZE_BIAS_LEVELS):
        assert {0.0, ORIGINAL_BIAS, STRONG_BIAS} <= set(levels) and list(levels) == sorted(levels)
        assert set(levels) <= set(BIAS_LEVELS)
    assert set(VARIABILITY_BIAS_LEVELS) == {0.0, ORIGINAL_BIAS}
    grid = default_grid()
    for family in ("captions", "image_only", "losses", "data_size"):
        assert {0.0, ORIGINAL_BIAS, STRONG_BIAS} <= {c.data.bias for c in grid if c.name == family}, family
    variants = {(c.data.captions, c.data.descriptive_share) for c in grid if c.name == "captions"}
    assert variants == {(ARMS[a].captions, ARMS[a].descriptive_share) for a in CAPTION_VARIANTS}


def _store_state(root):
    done = {p.name: (p / DONE).stat().st_mtime_ns for p in root.iterdir()
            if not p.name.startswith(".") and is_done(p)}
    unfinished = [p.name for p in root.iterdir() if not p.name.startswith(".") and not is_done(p)]
    return done, unfinished


def test_staging_of_a_killed_unreaped_process_is_cleaned(tmp_path):
    """A killed worker stays a zombie until it is reaped; its staging directory is still stale."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while time.time() < deadline and not _zombie(child.pid):
        time.sleep(0.05)
    assert _zombie(child.pid)
    live = tmp_path / f".abc.tmp-{os.getpid()}-x"
    dead = tmp_path / f".abc.tmp-{child.pid}-y"
    live.mkdir(), dead.mkdir()
    assert clean_stale_staging(tmp_path) == 1
    assert live.exists() and not dead.exists()
    child.wait()


def _zombie(pid):
    return open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[0] == "Z"


def _wait_until_group_gone(pgid, timeout=30.0):
    """The killed sweep's workers are reaped by init, a moment after the sweep itself."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_sweep_resumes_without_recomputing(tmp_path):
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dualenc.cli", "sweep", "ci", "--jobs", "2", "--quiet",
                             "--runs", str(root)], env=env, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if root.exists() and len(_store_state(root)[0]) >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_until_group_gone(proc.pid)
    before, unfinished = _store_state(root)
    assert len(before) >= 4 and unfinished == []
    grid = ci_grid()
    report = run_sweep(grid, root=root, jobs=1, progress=False)
    assert report.skipped == len(before) and report.ran == report.total - len(before)
    after, unfinished = _store_state(root)
    assert unfinished == [] and len(after) == report.total
    assert all(after[name] == mtime for name, mtime in before.items()), "a finished run was recomputed"
    assert not list(root.glob(".*")), "staging directories were left behind"
    for config in grid:
        load_run(run_dir(config, root))  # every run directory reads back whole


@pytest.mark.slow
def test_sweep_on_a_dask_local_cluster(tmp_path):
    import distributed
    configs = ci_grid()[:3]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        report = run_sweep(configs, root=tmp_path, scheduler=client, progress=False)
    assert (report.total, report.ran) == (3, 3)
    assert all(is_done(run_dir(c, tmp_path)) for c in configs)
    assert run_sweep(configs, root=tmp_path, jobs=1, progress=False).ran == 0


def _fake_run(root, config, metrics):
    path = run_dir(config, root)
    path.mkdir(parents=True)
    (path / "config.json").write_text(to_json(config))
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "history.csv").write_text("epoch,loss\n1,0.5\n")
    (path / DONE).write_text("x")
    return path.name


def test_collector_table_matches_a_golden_example(tmp_path):
    a = ExperimentConfig(name="captions").replace(bias=0.75, captions="descriptive", seed=1)
    b = ExperimentConfig(name="losses").replace(loss="clip")
    run_a = _fake_run(tmp_path, a, {"worst_group_acc": 0.25, "average_acc": 0.625})
    run_b = _fake_run(tmp_path, b, {"worst_group_acc": 0.5, "average_acc": 0.75})
    (tmp_path / ".half.tmp-1-x").mkdir()                         # staging: ignored
    (run_dir(a.replace(seed=9), tmp_path)).mkdir()               # no DONE: ignored
    table = collect(tmp_path)
    golden = pd.DataFrame({
        "run": sorted([run_a, run_b]),
    }).merge(pd.DataFrame([
        {"run": run_a, "name": "captions", "bias": 0.75, "captions": "descriptive", "seed": 1,
         "loss": "pairwise", "worst_group_acc": 0.25, "average_acc": 0.625},
        {"run": run_b, "name": "losses", "bias": 0.0, "captions": "undescriptive", "seed": 0,
         "loss": "clip", "worst_group_acc": 0.5, "average_acc": 0.75}]), on="run")
    pd.testing.assert_frame_equal(table[golden.columns].reset_index(drop=True), golden, check_dtype=False)
    assert "model.vision.width" in table and "steps" in table


def test_a_table_grown_over_machines_keeps_old_rows_and_counts_them_done(tmp_path):
    from dualenc.runs.study import write_results
    from dualenc.runs.sweep import grid_results

    a = ExperimentConfig(name="captions").replace(bias=0.75, seed=1)
    b = ExperimentConfig(name="captions").replace(bias=0.75, seed=2)
    first, second = tmp_path / "machine1", tmp_path / "machine2"
    _fake_run(first, a, {"worst_group_acc": 0.25, "average_acc": 0.625})
    out = tmp_path / "table.csv"
    write_results(first, out)
    # a second machine with an empty store continues the grid (b only) and merges its runs in
    _fake_run(second, b, {"worst_group_acc": 0.5, "average_acc": 0.75})
    table, _ = write_results(second, out, merge=True)
    assert sorted(table["run"]) == sorted([config_hash(a), config_hash(b)])
    assert sorted(pd.read_csv(out)["worst_group_acc"]) == [0.25, 0.5]
    c = a.replace(seed=3)
    table, report = grid_results([a, b, c], out, root=second, train_missing=False)
    assert (report.total, report.skipped, report.missing, report.ran) == (3, 2, 1, 0) and len(table) == 2


def test_sweep_skips_runs_a_stored_table_already_holds(tmp_path, monkeypatch):
    import dualenc.runs.sweep as sweep

    trained = []
    monkeypatch.setattr(sweep, "_run_group", lambda dicts, root, threads: trained.append(len(dicts)) or [])
    configs = [ExperimentConfig(name="captions").replace(seed=s) for s in range(3)]
    report = run_sweep(configs, root=tmp_path, progress=False, done={config_hash(configs[0])})
    assert (report.skipped, report.ran) == (1, 2) and trained == [2]
