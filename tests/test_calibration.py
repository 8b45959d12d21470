"""The budget and model size are chosen by code, on the bias-0 validation set, and are the defaults."""
from pathlib import Path

import pandas as pd
import pytest

from dualenc.runs import calibration
from dualenc.config import ExperimentConfig
from dualenc.runs.metric_registry import names

TABLE = Path(__file__).resolve().parents[1] / "results" / "calibration.csv"


def _table(values: dict) -> pd.DataFrame:
    """values: (candidate, method) -> accuracies at budgets 100, 200, 400 (two seeds alike)."""
    rows = []
    for (candidate, method), accs in values.items():
        for steps, acc in zip((100, 200, 400), accs):
            for seed in (0, 1):
                rows.append({"candidate": candidate, "method": method, "steps": steps, "seed": seed,
                             "val_average_acc": acc, "val_worst_group_acc": acc - 0.03,
                             "group_seconds": steps * (2 if candidate == "big" else 1)})
    return pd.DataFrame(rows)


def test_converged_budget_is_the_first_on_a_plateau():
    table = _table({("small", "a"): (0.70, 0.96, 0.965), ("small", "b"): (0.96, 0.965, 0.96),
                    ("big", "a"): (0.80, 0.97, 0.97), ("big", "b"): (0.60, 0.70, 0.80)})
    conv = calibration.converged_budget(table).set_index(["candidate", "method"])["converged_steps"]
    assert conv[("small", "a")] == 200 and conv[("small", "b")] == 100 and conv[("big", "a")] == 200
    assert pd.isna(conv[("big", "b")])                       # still rising at the largest budget
    assert calibration.choose(table) == {"candidate": "small", "steps": 200, "seconds": 200.0,
                                         "converged": True, "still_rising": 0.0}


def test_a_plateau_below_the_bars_is_not_converged():
    table = _table({("small", "a"): (0.90, 0.905, 0.905), ("small", "b"): (0.96, 0.965, 0.96)})
    table.loc[table["method"] == "b", "val_worst_group_acc"] = 0.85       # average fine, worst group not
    conv = calibration.converged_budget(table)
    assert conv["converged_steps"].isna().all()
    assert calibration.choose(table)["converged"] is False
    relaxed = calibration.converged_budget(table, average_bar=0.9, worst_bar=0.8)
    assert list(relaxed["converged_steps"]) == [100, 100]


def test_a_fall_at_a_larger_budget_is_no_plateau():
    table = _table({("small", "a"): (0.96, 0.965, 0.80)})     # e.g. a seed collapsed at the largest budget
    assert calibration.converged_budget(table)["converged_steps"].isna().all()


def test_no_converged_candidate_falls_back_to_the_largest_budget_and_says_so():
    table = _table({("small", "a"): (0.5, 0.6, 0.7), ("small", "b"): (0.8, 0.9, 0.92),
                    ("big", "a"): (0.6, 0.7, 0.75), ("big", "b"): (0.7, 0.8, 0.95)})
    chosen = calibration.choose(table)
    assert chosen["converged"] is False and chosen["steps"] == 400
    assert chosen["candidate"] == "big"                        # its weakest method is the stronger
    assert chosen["still_rising"] == pytest.approx(0.15)


def test_calibration_runs_on_validation_at_bias_zero(tiny):
    base = tiny(bias=0.75)
    table = calibration.run_calibration(base=base, candidates={"tiny": {}},
                                        methods={"pw": {"loss": "pairwise"}, "io": {"loss": "image_only"}},
                                        budgets=(3, 6), seeds=(1000, 1001), progress=False)
    assert len(table) == 2 * 2 * 2
    assert set(table["seed"]) == {1000, 1001} and table["val_average_acc"].between(0, 1).all()
    assert set(names(stored_in="calibration")) <= set(table.columns)   # the registry's calibration metrics
    assert (table["val_worst_group_acc"] <= table["val_average_acc"]).all()
    assert (table["epochs"] > 0).all() and (table["bias"] == 0.0).all()   # base had bias 0.75


def test_the_defaults_are_the_calibrated_choice():
    chosen = calibration.choose(calibration.read_calibration(TABLE))
    assert calibration.matches_default(chosen), (chosen, ExperimentConfig().train.steps)
    table = pd.read_csv(TABLE)
    assert set(table["method"]) == set(calibration.METHODS)   # every method was calibrated
    assert not set(table["seed"]) & set(range(100))          # apart from the study's seeds
