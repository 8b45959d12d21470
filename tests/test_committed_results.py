"""The committed results table (results/default.csv) is what the code produces."""
from pathlib import Path

import pandas as pd
import pytest

from dualenc.config import config_hash
from dualenc.runs.replication import replicate, tolerances
from dualenc.runs.study import run_group
from dualenc.runs.sweep import default_grid, group_configs

TABLE = Path(__file__).resolve().parents[1] / "results" / "default.csv"


def test_committed_table_rows_are_default_grid_configs():
    table = pd.read_csv(TABLE)
    grid = {config_hash(c): c for c in default_grid()}
    assert set(table["run"]) <= set(grid) and table["run"].is_unique
    assert table["worst_group_acc"].between(0, 1).all()
    # whole settings only: every seed of a setting that is in the table
    present = {config_hash(c) for c in grid.values()} & set(table["run"])
    for group in group_configs(list(grid.values())):
        hashes = {config_hash(c) for c in group}
        assert not (hashes & present) or hashes <= present
    # the core comparison is there: both caption arms and the baseline at the original's bias
    core = table[(table["name"].isin(["captions", "image_only"])) & (table["bias"] == 0.75)]
    assert {"undescriptive", "descriptive"} <= set(core["captions"])


@pytest.mark.slow
def test_a_committed_setting_is_reproduced_by_training_again(tmp_path):
    """Trains the bias-0.75 descriptive setting's 5 seeds again (one thread, seeds together, as the
    sweep does). Where the committed rows were made by this code on these kernels (code digest and
    kernel fingerprint), every measure must be bitwise equal. Elsewhere each run must lie within
    the per-run tolerance of its committed counterpart and the seed mean of the differences within
    the seed-mean tolerance: both are set from the cross-machine spread measured in
    results/replication.csv (`replication.tolerances`: 5 root-mean-square differences, and at
    least 1.5 times the largest measured; worst-group accuracy: 0.154 per run, 0.069 for the
    mean of 5 seeds, from the spread measured on 2026-12-03)."""
    group = next(g for g in group_configs(default_grid())
                 if g[0].name == "captions" and g[0].data.bias == 0.75 and g[0].data.captions == "descriptive"
                 and g[0].data.descriptive_share == 1.0)
    result = replicate(run_group(group, root=tmp_path, progress=False))
    assert result is not None, "the committed table lacks the setting"
    print(result.summary.to_string())
    if result.bitwise_expected:
        assert (result.summary["outcome"] == "bitwise equal").all(), result.summary
    else:
        assert result.summary["outcome"].isin(["bitwise equal", "consistent"]).all(), \
            f"outside the measured spread:\n{result.summary}\ntolerances:\n{tolerances()}"


def test_the_committed_curves_hold_the_grid_runs_at_the_study_budget():
    """results/curves.csv: every curve setting with its 5 seeds (and the bias-0 extensions of arms still
    rising there); at the study's budget and bias 0 its
    runs were trained again for the curves (to read their validation accuracy), and every measure
    equals the grid's committed run of the same config hash: the curves and the grid are one study."""
    from dualenc.design import CURVE_ARMS, CURVE_BUDGETS, CURVE_MAX_STEPS, SEEDS

    curves = pd.read_csv(TABLE.parent / "curves.csv")
    expected = {(arm, bias, steps) for arm in CURVE_ARMS for bias, budgets in CURVE_BUDGETS.items() for steps in budgets}
    found = set(map(tuple, curves[["arm", "bias", "steps"]].drop_duplicates().to_numpy().tolist()))
    assert expected <= found
    # beyond the design's budgets: only bias-0 doublings up to the largest budget (`plateau_extensions`)
    largest = max(CURVE_BUDGETS[0.0])
    assert all(bias == 0 and steps <= CURVE_MAX_STEPS and (steps / largest).is_integer()
               and ((arm, 0.0, steps // 2) in found) for arm, bias, steps in found - expected)
    assert (curves.groupby(["arm", "bias", "steps"])["seed"].nunique() == len(SEEDS)).all()
    assert curves.loc[curves["bias"] == 0, "val_average_acc"].notna().all()
    grid = pd.read_csv(TABLE).set_index("run")
    study = curves[curves["steps"] == 1000].set_index("run")
    assert set(study.index) <= set(grid.index)
    measures = ["worst_group_acc", "average_acc", "probe_animal_acc", "probe_background_acc", "final_loss"]
    assert (study[measures] == grid.loc[study.index, measures]).all().all()


def test_the_committed_book_runs_are_the_grid_runs_of_the_pages():
    """results/book_runs/ holds exactly the four experiment pages' runs (the full profile's), without
    weights, made by code that trains like today's, and each is the grid's committed run of the same
    config hash, measure for measure: a fresh clone's book reads them instead of training them."""
    import json
    import sys

    from dualenc.book.page_runs import FOLDER, SKIPPED
    from dualenc.config import from_dict
    from dualenc.runs.study import run_status

    sys.path.insert(0, str(TABLE.parents[1] / "tools"))
    import build_book

    declared = build_book.template_parameters(build_book.TEMPLATE)
    configs = build_book.page_configs([build_book.page_params(exp, "full", declared) for exp in build_book.EXPERIMENTS])
    committed = TABLE.parents[1] / FOLDER
    assert sorted(p.name for p in committed.iterdir()) == sorted({config_hash(c) for c in configs})
    grid = pd.read_csv(TABLE).set_index("run")
    measures = ["worst_group_acc", "average_acc", "probe_animal_acc", "probe_background_acc", "final_loss"]
    for config in configs:
        path = committed / config_hash(config)
        assert run_status(path) == "done", f"{path} was made by other code: python tools/build_book.py --commit-runs"
        assert not any((path / name).exists() for name in SKIPPED)
        assert config_hash(from_dict(json.loads((path / "config.json").read_text()))) == path.name
        metrics = json.loads((path / "metrics.json").read_text())
        assert all(metrics[m] == grid.loc[path.name, m] for m in measures), path.name
