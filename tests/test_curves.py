"""Learning curves (dualenc.runs.curves) and the comparison at matched convergence (dualenc.analysis.curves)."""
import math

import numpy as np
import pandas as pd
import pytest

from dualenc.analysis import curves as analysis
from dualenc.config import config_hash
from dualenc.design import CURVE_ARMS, role_levels
from dualenc.runs import curves


def test_curve_configs_are_the_grid_runs_at_other_budgets():
    from dualenc.runs.sweep import default_grid

    configs = curves.curve_configs(budgets={0.0: (1000, 2000, 4000), 0.75: (1000, 2000)}, seeds=(0, 1))
    assert len(configs) == len(CURVE_ARMS) * (3 + 2) * 2
    assert [c.train.steps for c in configs] == sorted(c.train.steps for c in configs)
    assert configs[0].data.bias == 0.0                      # bias 0 first: its validation picks the budgets
    grid = {config_hash(c) for c in default_grid()}
    at_study_budget = [c for c in configs if c.train.steps == 1000]
    assert all(config_hash(c) in grid for c in at_study_budget)       # the same runs as the grid's
    assert not any(config_hash(c) in grid for c in configs if c.train.steps == 2000)


def test_curves_train_what_is_missing_and_read_the_grid_table(tmp_path):
    from conftest import tiny_config

    base = tiny_config(steps=6)
    first = curves.run_curves(tmp_path / "a", tmp_path / "a.csv", grid_table=None, base=base, budgets={b: (6,) for b in role_levels().values()},
                              seeds=(0, 1), progress=False, max_steps=6)
    assert len(first) == len(CURVE_ARMS) * 3 * 2 and first[["val_average_acc", "val_worst_group_acc"]].notna().all().all()

    table = curves.run_curves(tmp_path / "b", tmp_path / "b.csv", grid_table=tmp_path / "a.csv", base=base,
                              budgets={b: (6, 12) for b in role_levels().values()}, seeds=(0, 1), progress=False,
                              max_steps=12)
    assert len(table) == len(CURVE_ARMS) * 3 * 2 * 2 and set(table["steps"]) == {6, 12}
    # the grid's budget above bias 0 was read from the given table, not trained again
    trained = {p.name for p in (tmp_path / "b").iterdir() if not p.name.startswith(".")}
    read = set(first.loc[first["bias"] > 0, "run"])
    assert read and not (read & trained) and read <= set(table["run"])
    assert len(trained) == len(table) - len(read)
    assert pd.read_csv(tmp_path / "b.csv")["run"].tolist() == table["run"].tolist()


def test_an_arm_still_rising_at_bias_0_is_trained_on_to_the_largest_budget(tmp_path):
    from conftest import tiny_config

    base, budgets = tiny_config(steps=3), {0.0: (3, 6)}
    rising = curves.run_curves(tmp_path / "r", tmp_path / "r.csv", grid_table=None, base=base, budgets=budgets,
                               seeds=(0,), progress=False, max_steps=24, tolerance=-1.0)   # every doubling "gains"
    assert sorted(rising["steps"].unique()) == [3, 6, 12, 24] and (rising["bias"] == 0).all()
    assert (rising.groupby("steps")["arm"].nunique() == len(CURVE_ARMS)).all()
    flat = curves.run_curves(tmp_path / "r", tmp_path / "f.csv", grid_table=None, base=base, budgets=budgets,
                             seeds=(0,), progress=False, max_steps=24, tolerance=1.0)      # nothing moves by 1
    assert sorted(flat["steps"].unique()) == [3, 6]
    extensions = curves.plateau_extensions(tmp_path / "r", base, budgets, seeds=(0,), max_steps=24, tolerance=-1.0)
    assert sorted(c.train.steps for c in extensions) == [12] * len(CURVE_ARMS) + [24] * len(CURVE_ARMS)
    assert curves.plateau_extensions(tmp_path / "r", base, budgets, seeds=(0,), max_steps=24, tolerance=1.0) == []


def _synthetic(val: dict, worst: dict) -> pd.DataFrame:
    """Curve rows: val[arm] = bias-0 validation accuracy by budget; worst[(arm, bias, steps)] = the
    test worst-group accuracy of seeds 0..2 (seed s adds 0.01 * s; arm "d" 0.01 + 0.002 * s more)."""
    rows = []
    for (arm, bias, steps), value in worst.items():
        for seed in range(3):
            v = val[arm].get(steps) if bias == 0 else math.nan
            rows.append({"arm": arm, "bias": bias, "steps": steps, "seed": seed, "n_train_per_group": 48,
                         "val_average_acc": v, "val_worst_group_acc": v,
                         "worst_group_acc": value + 0.01 * seed + (0.01 + 0.002 * seed if arm == "d" else 0.0),
                         "probe_animal_acc": 0.9})
    return pd.DataFrame(rows)


def test_own_budget_is_the_first_on_the_bias_0_validation_plateau():
    val = {"d": {1000: 0.90, 2000: 0.96, 4000: 0.965}, "u": {1000: 0.97, 2000: 0.972, 4000: 0.975},
           "s": {1000: 0.90, 2000: 0.93, 4000: 0.96}}
    worst = {(arm, b, s): 0.5 for arm in val for b in role_levels().values() for s in (1000, 2000, 4000)}
    budgets = analysis.own_budgets(_synthetic(val, worst), arms=("d", "u", "s"))
    assert budgets["d"] == 2000 and budgets["u"] == 1000 and math.isnan(budgets["s"])


def test_matched_reads_each_arm_at_its_own_budget():
    val = {"d": {1000: 0.90, 2000: 0.96, 4000: 0.965}, "u": {1000: 0.97, 2000: 0.972, 4000: 0.975}}
    worst = {(arm, b, s): 0.5 for arm in val for b in role_levels().values() for s in (1000, 2000, 4000)}
    worst.update({("d", b, 1000): 0.3 for b in role_levels().values()})   # behind at 1000 only
    df = _synthetic(val, worst)
    table = analysis.matched(df, analysis.own_budgets(df, arms=("d", "u")), arm="d", baseline="u")
    assert len(table) == len(role_levels())
    assert np.allclose(table["same_estimate"], -0.2 + 0.012) and (table["same_outcome"] == "contradicted").all()
    assert np.allclose(table["own_estimate"], 0.012) and (table["own_outcome"] == "supported").all()
    assert table["differ"].all()
    assert analysis.matched_reading(table, analysis.own_budgets(df, arms=("d", "u")), arms=("d", "u")) == "differ at bias 0, 0.75 and 0.9"
    assert analysis.matched_reading(table.assign(differ=False), {"d": 2000, "u": 1000}, arms=("d", "u")) == "agree at every level"
    assert "reached no plateau" in analysis.matched_reading(table, {"d": math.nan, "u": 1000}, arms=("d", "u"))
    shown = analysis.matched_table(table)
    assert list(shown.columns) == ["same budget", "each arm's own budget"] and list(shown.index) == [0.0, 0.75, 0.9]
    assert shown["same budget"].str.endswith("contradicted").all() and shown["each arm's own budget"].str.startswith("+0.012").all()
    effects = analysis.effect_by_budget(df, arm="d", baseline="u")
    worst_rows = effects[effects["measure"] == "worst_group_acc"]
    assert len(worst_rows) == len(role_levels()) * 3
    assert np.allclose(worst_rows.sort_values("steps")["estimate"].to_numpy()[:3], -0.188)


def test_a_missing_table_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="dualenc curves"):
        analysis.read_curves(tmp_path / "none.csv")
