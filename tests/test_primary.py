"""The declared test (dualenc.analysis.primary) on synthetic tables with known effects, and Holm's
correction on known p-values."""
import math

import numpy as np
import pandas as pd
import pytest

from dualenc import design
from dualenc.analysis import primary, results

from test_results import synthetic_table


def tidy(help_: float) -> pd.DataFrame:
    return results.tidy(synthetic_table(help_=help_))


def test_holm_adjusts_step_down_and_leaves_nan_out():
    adjusted = primary.holm([0.01, 0.04, math.nan, 0.03])
    assert adjusted[:2] == pytest.approx([0.03, 0.06]) and adjusted[3] == pytest.approx(0.06)
    assert math.isnan(adjusted[2])
    assert primary.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])     # capped at 1


@pytest.mark.parametrize("help_,outcome,words", [
    (0.2, "supported", {"help": "yes", "hurt": "no"}),
    (-0.2, "contradicted", {"help": "no", "hurt": "yes"}),
])
def test_the_interaction_averages_the_strong_levels_minus_no_bias(help_, outcome, words):
    df = tidy(help_)
    inter, effect = primary.interaction(df), primary.averaged_effect(df)
    # the synthetic minority accuracy is 0.9 - bias, plus help_ * bias with descriptive captions, with
    # a floor at 0 (and from bias 0.9 on); no help at bias 0
    expected = np.mean([max(0.0, 0.9 - b + help_ * b) - (0.9 - b) if b < 0.9 else 0.0 for b in design.PRIMARY.levels])
    assert inter["mean"] == pytest.approx(expected) and effect["mean"] == pytest.approx(expected)
    assert inter["outcome"] == outcome and inter["n"] == 5
    answers = primary.answers(effect, inter)
    assert {k: answers[k] for k in ("help", "hurt")} == words
    assert answers["bias"].startswith("yes")


def test_seed_noise_widens_the_interval_and_no_effect_is_not_shown():
    df = tidy(0.0)
    noise = df["seed"].map({0: -0.05, 1: 0.04, 2: 0.0, 3: 0.03, 4: -0.02})
    descriptive = df["arm"] == design.PRIMARY.arm
    df.loc[descriptive, "worst_group_acc"] = (df["worst_group_acc"] + noise)[descriptive].clip(0, 1)
    inter = primary.interaction(df)
    assert inter["low"] < 0 < inter["high"] and inter["outcome"] == "inconclusive" and 0 < inter["p"] <= 1
    assert primary.answers(primary.averaged_effect(df), inter) == {
        "help": "not shown", "hurt": "not shown", "bias": "not shown"}


def test_the_level_family_sets_floors_aside_and_corrects_the_rest():
    family = primary.level_family(tidy(0.2))
    floor = family["bias"] >= 0.9        # both arms' worst-group accuracy is exactly 0 there
    assert (family.loc[floor, "outcome"] == "uninformative").all() and family.loc[floor, "p_holm"].isna().all()
    assert (family.loc[~floor, "p_holm"] >= family.loc[~floor, "p"]).all()
    at_zero = family[family["bias"] == 0.0].iloc[0]
    assert at_zero["estimate"] == pytest.approx(0.0) and at_zero["holm_outcome"] == "inconclusive"


def test_the_test_reads_the_declaration_and_says_not_run_for_a_missing_level(monkeypatch):
    df = tidy(0.2)
    monkeypatch.setattr(design, "PRIMARY", design.PrimaryTest(*design.QUESTION, "worst_group_acc", (0.5,)))
    assert primary.interaction(df)["mean"] == pytest.approx(0.2 * 0.5)
    monkeypatch.setattr(design, "PRIMARY", design.PrimaryTest(*design.QUESTION, "worst_group_acc", (0.33,)))
    assert primary.interaction(df)["outcome"] == "not run"
    assert primary.answers(primary.averaged_effect(df), primary.interaction(df))["bias"] == "not run"
