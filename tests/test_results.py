"""dualenc.analysis.results and dualenc.analysis.verdicts on hand-made and synthetic results tables (no training):
intervals that stay in range, seed-paired differences, the four outcomes of a comparison, the
original's claims, the caption comparison measure by measure, the data-size result, the verdict and
the figures.

`synthetic_table` builds a table shaped like the sweep's default grid (families captions,
image_only, losses, variability, data_size) with known effects, seed noise that cancels in paired
differences, and a floor (worst-group accuracy exactly 0) from bias 0.9 on. To check the sweep
page before the real table exists: `python tests/test_results.py /tmp/fake_results.csv`.
"""
import itertools
import math
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from dualenc.book import plots  # noqa: E402
from dualenc.analysis import results as R  # noqa: E402
from dualenc.analysis import comparisons as C  # noqa: E402
from dualenc.analysis import claims as CL  # noqa: E402
from dualenc.analysis import verdicts as V  # noqa: E402
from dualenc.design import ARMS, arm_tables  # noqa: E402
from dualenc.config import GROUP_NAMES  # noqa: E402
from dualenc.runs.metrics import accuracy_summary, mean_ci  # noqa: E402

BIAS_LEVELS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
FEW_LEVELS = (0.0, 0.5, 0.75, 0.9, 1.0)           # the losses and data-size families
SIZES = (192, 768)                                # data size (48 comes from the captions family)
SEEDS = (0, 1, 2, 3, 4)
NOISE = {0: -0.02, 1: -0.01, 2: 0.0, 3: 0.01, 4: 0.02}   # per seed: mean 0
OUTCOME_WORDS = set(C.OUTCOMES)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- a synthetic table like the new grid


def settings(levels=BIAS_LEVELS, few=FEW_LEVELS, sizes=SIZES) -> list:
    """(family, loss, captions, descriptive_share, caption_templates, bias, n_train_per_group)."""
    out = [("captions", "pairwise", c, s, 1, b, 48) for b in levels
           for c, s in (("undescriptive", 1.0), ("descriptive", 1.0), ("descriptive", 0.5), ("background", 1.0),
                        ("size", 1.0))]
    out += [("image_only", "image_only", "undescriptive", 1.0, 1, b, 48) for b in levels]
    out += [("losses", loss, c, 1.0, 1, b, 48) for loss in ("clip", "siglip")
            for c in ("undescriptive", "descriptive") for b in few]
    out += [("variability", "pairwise", "descriptive", 1.0, 4, b, 48) for b in (0.0, 0.75)]
    out += [("data_size", "pairwise", c, 1.0, 1, b, n) for n in sizes for c in ("undescriptive", "descriptive")
            for b in few]
    return out


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def minority(loss, captions, bias, n, help_):
    """Minority-group accuracy before noise: 0.9 without bias, falling to a floor of exactly 0 from
    bias 0.9 on; below the floor descriptive captions add help_ * bias, more with more data."""
    value = max(0.0, 0.9 - bias)
    if captions == "descriptive" and loss != "image_only" and bias < 0.9:
        value += help_ * bias * (1 + np.log2(n / 48) / 4)
    if captions == "background":
        value -= 0.05 * bias
    return value


def synthetic_table(seeds=SEEDS, help_=0.2, levels=BIAS_LEVELS, few=FEW_LEVELS, sizes=SIZES) -> pd.DataFrame:
    rows = []
    for (family, loss, captions, share, templates, bias, n), seed in itertools.product(
            settings(levels, few, sizes), seeds):
        noise = NOISE.get(seed, 0.0)
        low = minority(loss, captions, bias, n, help_)
        floor = low <= 0.0
        major = _clip(0.9 + 0.1 * bias + noise)
        acc = {"horse_grass": major, "camel_desert": major, "horse_desert": 0.0 if floor else _clip(low + noise),
               "camel_grass": 0.0 if floor else _clip(low + 0.02 + noise)}
        descriptive = captions == "descriptive"
        row = {"run": f"{family}-{loss}-{captions}-{share}-{templates}-{bias}-{n}-{seed}", "name": family,
               "loss": loss, "captions": captions, "descriptive_share": share, "caption_templates": templates,
               "bias": bias, "n_train_per_group": n, "seed": seed, "steps": 1000,
               **{f"acc_{g}": v for g, v in acc.items()}, **accuracy_summary(acc),
               "headline_prompts": "classifier" if loss == "image_only" else "pooled" if descriptive else "class"}
        if loss != "image_only":
            # the other prompt set: "horse" / "camel" a little worse for descriptive models, the four
            # captions a little better for the others (floors and ceilings stay where they are)
            shift = -0.05 if descriptive else 0.03
            other = {g: v if g in GROUP_NAMES[:2] or v in (0.0, 1.0) else _clip(v + shift) for g, v in acc.items()}
            for name, values in ({"pooled": acc, "class": other} if descriptive else
                                 {"class": acc, "pooled": other}).items():
                row.update({f"zs_{name}_acc_{g}": values[g] for g in GROUP_NAMES})
                row.update({f"zs_{name}_{k}": v for k, v in accuracy_summary(values).items()})
        row.update({
            "probe_animal_acc": 0.95 - 0.2 * bias + (0.02 if descriptive else 0.0) + noise,
            "probe_background_acc": 0.8 + 0.1 * bias + (0.05 if captions == "background" else 0.0) + noise,
            "probe_animal_acc_pixels": 0.7 + noise, "probe_background_acc_pixels": 0.9 + noise,
            "probe_animal_acc_random": 0.75 + noise, "probe_background_acc_random": 0.92 + noise,
            "silhouette_animal_image": 0.3 - 0.2 * bias + noise,
            "silhouette_background_image": 0.05 + 0.2 * bias + (0.1 if descriptive else 0) + noise,
            "silhouette_group_image": 0.1 + noise,
            "silhouette_animal_text": math.nan if loss == "image_only" else 0.5 + noise,
            "silhouette_background_text": math.nan if loss == "image_only" else (0.6 if descriptive else -0.1) + noise,
            "silhouette_group_text": math.nan if loss == "image_only" else 0.2 + noise,
            "majority_share": 1.0 if bias == 1 else 48 / (48 + round((1 - bias) * 48)),
            "n_train": 2 * n + 2 * round((1 - bias) * n), "train_seconds": 1.0, "final_loss": 0.1})
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def df():
    return R.tidy(synthetic_table())


@pytest.fixture(scope="module")
def summary(df):
    return R.summarise(df)


def hand_table(arms: dict, metric: str = "worst_group_acc") -> pd.DataFrame:
    """A hand-made table: {(variant, bias): [value per seed]} for the pairwise loss, 48 per group."""
    rows = [{"run": f"{v}-{b}-{s}", "loss": "pairwise", "variant": v, "bias": b, "n_train_per_group": 48, "seed": s,
             metric: x} for (v, b), values in arms.items() for s, x in enumerate(values)]
    return pd.DataFrame(rows)


A = {"loss": "pairwise", "variant": "descriptive", "bias": 0.9}
B = {"loss": "pairwise", "variant": "undescriptive", "bias": 0.9}


# ---------------------------------------------------------------- rows, levels and differences


def test_variants_and_derived_columns(df):
    assert set(df["variant"]) == {"undescriptive", "descriptive", "descriptive_share_0.5", "background",
                                  "descriptive_templates_4", "image_only", "size"}
    assert set(df["arm"]) == set(ARMS)          # every row named by its declared arm
    assert (df["variant"] == [ARMS[a].variant for a in df["arm"]]).all()
    row = R.select(df, loss="pairwise", variant="undescriptive", bias=0.75, seed=1).iloc[0]
    assert row["majority_acc"] == pytest.approx(0.965) and row["minority_acc"] == pytest.approx(0.15)
    assert row["zs_pooled_minority_acc"] == pytest.approx(0.18)        # +0.03 on the minority groups
    # without n_train_per_group, a setting is the base size's (the data-size family is left out)
    assert set(R.select(df, loss="pairwise", variant="descriptive", bias=0.5)["n_train_per_group"]) == {48}
    assert len(R.select(df, loss="pairwise", variant="descriptive", bias=0.5, n_train_per_group=768)) == 5


def test_an_undeclared_setting_is_named_as_such():
    odd = synthetic_table().iloc[:3].assign(captions="descriptive", descriptive_share=0.25)
    assert set(R.tidy(odd)["arm"]) == {"undeclared: pairwise, descriptive, share 0.25, 1 templates"}
    stored = synthetic_table().iloc[:2].assign(arm="pairwise_background")    # a row's own arm comes first
    assert set(R.tidy(stored)["arm"]) == {"pairwise_background"}


def test_level_intervals_stay_inside_the_unit_interval():
    values = [0.184, 0.9, 1.0, 1.0, 1.0]
    assert mean_ci(values)[2] > 1.0                                    # a t interval leaves [0, 1] here ...
    table = hand_table({("descriptive", 0.0): values})
    r = R.interval(table, "worst_group_acc", loss="pairwise", variant="descriptive", bias=0.0)
    assert 0.0 <= r["low"] <= r["mean"] <= r["high"] <= 1.0            # ... the bootstrap interval does not
    assert r["high"] == 1.0 and r["n"] == 5


def test_every_level_interval_of_the_summary_is_inside_its_range(summary):
    for metric in R.METRICS:
        if f"{metric}_mean" not in summary:
            continue
        lo, hi = R.bounds(metric)
        part = summary[[f"{metric}_{s}" for s in ("low", "mean", "high")]].dropna()
        assert len(part), metric
        assert (part.iloc[:, 0] >= lo).all() and (part.iloc[:, 2] <= hi).all(), metric
        assert (part.iloc[:, 0] <= part.iloc[:, 1] + 1e-12).all() and (part.iloc[:, 1] <= part.iloc[:, 2] + 1e-12).all()


def test_level_intervals_are_deterministic_and_a_bootstrap(df):
    first, second = R.summarise(df), R.summarise(df)
    pd.testing.assert_frame_equal(first, second)
    row = first[(first["variant"] == "undescriptive") & np.isclose(first["bias"], 0.75)
                & (first["n_train_per_group"] == 48)].iloc[0]
    # five seeds with noise -0.02..0.02: a t interval would be +-0.0196; the percentile bootstrap of
    # the mean is narrower (about +-0.0113) and lies within the values' range
    assert row["worst_group_acc_mean"] == pytest.approx(0.15)
    assert 0.005 < row["worst_group_acc_high"] - 0.15 < 0.015 and 0.005 < 0.15 - row["worst_group_acc_low"] < 0.015


def test_one_seed_has_no_interval_and_decides_nothing():
    table = hand_table({("descriptive", 0.9): [0.4], ("undescriptive", 0.9): [0.1]})
    r = R.interval(table, "worst_group_acc", **A)
    assert r["mean"] == 0.4 and math.isnan(r["low"]) and math.isnan(r["high"])
    assert C.compare(table, "worst_group_acc", A, B)["outcome"] == "inconclusive"
    assert R.interval_text(0.4, math.nan, math.nan) == "0.400"


def test_paired_difference_is_taken_seed_by_seed(df):
    a = {"loss": "pairwise", "variant": "descriptive", "bias": 0.75}
    b = {"loss": "pairwise", "variant": "undescriptive", "bias": 0.75}
    d = R.paired_difference(df, "acc_horse_desert", a, b)
    # the seed noise cancels in each pair: exactly 0.2 * 0.75 with no spread
    assert d["mean"] == pytest.approx(0.15) and d["low"] == pytest.approx(0.15) and d["n"] == 5
    assert (d["mean_a"], d["mean_b"]) == pytest.approx((0.30, 0.15))


def test_paired_difference_needs_matching_seeds(df):
    a = {"loss": "pairwise", "variant": "descriptive", "bias": 0.75}
    b = {"loss": "pairwise", "variant": "undescriptive", "bias": 0.75}
    fewer = df[~((df["seed"] == 2) & (df["variant"] == "undescriptive"))]
    with pytest.raises(ValueError, match="cannot pair"):
        R.paired_difference(fewer, "gap", a, b)
    with pytest.raises(ValueError, match="cannot pair"):
        C.compare(fewer, "gap", a, b)                     # a pairing error is not hidden as "not run"
    with pytest.raises(R.MissingSetting, match="no runs"):
        R.interval(df, "gap", loss="pairwise", variant="descriptive", bias=0.3)
    assert C.compare(df, "gap", {**a, "bias": 0.3}, b)["outcome"] == C.NOT_RUN
    doubled = pd.concat([df, df.assign(run=df["run"] + "-again")])
    with pytest.raises(ValueError, match="several runs per seed"):
        R.paired_difference(doubled, "gap", a, b)


def test_interval_text():
    assert R.interval_text(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]"
    assert R.interval_text(0.05, -0.01, 0.1, digits=2, signed=True) == "+0.05 [-0.01, +0.10]"
    assert R.interval_text(math.nan, 0, 0) == "n/a"


# ---------------------------------------------------------------- the four outcomes


@pytest.mark.parametrize("a_values, b_values, expected, word", [
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 1, "uninformative"),          # a floor: both arms at 0
    ([0.01, 0.0, 0.02], [0.0, 0.0, 0.0], 1, "uninformative"),        # within 0.02 of 0, even if a - b > 0
    ([1.0, 1.0, 0.99], [1.0, 0.99, 1.0], 1, "uninformative"),        # a ceiling
    ([0.30, 0.10, 0.22], [0.20, 0.20, 0.20], 1, "inconclusive"),     # the interval spans 0
    ([0.10, 0.12, 0.11], [0.40, 0.41, 0.43], 1, "contradicted"),     # a clear negative
    ([0.40, 0.41, 0.43], [0.10, 0.12, 0.11], 1, "supported"),        # a clear positive
    ([0.10, 0.12, 0.11], [0.40, 0.41, 0.43], -1, "supported"),       # ... as expected, when a drop is claimed
    ([0.0, 0.0, 0.0], [0.50, 0.52, 0.51], 1, "contradicted"),        # one arm at the floor is informative
])
def test_outcome_on_hand_made_tables(a_values, b_values, expected, word):
    table = hand_table({("descriptive", 0.9): a_values, ("undescriptive", 0.9): b_values})
    r = C.compare(table, "worst_group_acc", A, B, expected=expected)
    assert r["outcome"] == word
    assert r["n"] == 3 and r["mean"] == pytest.approx(np.mean(a_values) - np.mean(b_values))


def test_outcome_rules():
    assert C.outcome(0.01, 0.2) == "supported" and C.outcome(-0.2, -0.01) == "contradicted"
    assert C.outcome(-0.2, -0.01, expected=-1) == "supported"
    assert C.outcome(-0.1, 0.2) == "inconclusive" and C.outcome(0.0, 0.2) == "inconclusive"   # touching 0
    assert C.outcome(math.nan, math.nan) == "inconclusive"
    assert C.outcome(0.55, 0.7, threshold=0.5) == "supported" and C.outcome(0.4, 0.6, threshold=0.5) == "inconclusive"
    # the floor / ceiling rule comes first, needs every arm there, and two arms at least
    assert C.outcome(0.01, 0.02, arms=(0.015, 0.0)) == "uninformative"
    assert C.outcome(0.01, 0.02, arms=(0.03, 0.0)) == "supported"
    assert C.outcome(0.9, 1.0, arms=(0.995,)) == "supported"
    assert C.outcome(-0.02, -0.01, arms=(0.98, 1.0)) == "uninformative"
    assert C.outcome(-0.02, -0.01, arms=(-0.99, -1.0), limits=(-1, 1)) == "uninformative"
    assert C.at_floor_or_ceiling([0.02, 0.0]) and not C.at_floor_or_ceiling([0.021, 0.0])
    with pytest.raises(ValueError, match="expected"):
        C.outcome(0.1, 0.2, expected=0)


def test_direction_words_come_only_from_a_decided_interval():
    assert C.direction({"outcome": "supported", "mean": 0.1}) == "higher"
    assert C.direction({"outcome": "supported", "mean": -0.1}, up="rose", down="fell") == "fell"
    assert C.direction({"outcome": "contradicted", "mean": -0.1}) == "lower"
    for word in ("inconclusive", "uninformative", C.NOT_RUN):
        phrase = C.direction({"outcome": word, "mean": 0.3})
        assert "higher" not in phrase.replace("clearly higher", "") and "lower" not in phrase


# ---------------------------------------------------------------- the original's claims


def test_claims_get_one_of_the_four_outcomes(df):
    table = CL.claims(df)
    assert list(table["test"]) == [t.test for t in CL.TESTS]
    assert set(table["outcome"]) <= OUTCOME_WORDS
    outcomes = dict(zip(table["test"], table["outcome"]))
    assert outcomes["1a"] == outcomes["1b"] == "supported"
    assert outcomes["1c"] == "contradicted"     # at bias 0 the minority groups are 0.01 better
    assert outcomes["3a"] == "supported" and outcomes["3b"] == "supported"   # a claimed drop, found
    assert outcomes["4a"] == "supported"
    values = CL.claim_values(table)
    assert [values[f"claim_{c}"] for c in (1, 2, 3, 4)] == ["contradicted", "supported", "supported", "supported"]
    assert values["test_4a"] == pytest.approx(0.15) and values["claim_4_set_aside"] == "none"
    shown = CL.claims_display(table)
    assert shown.loc["4a", "estimate [95% CI]"] == "+0.150 [+0.150, +0.150]"
    assert shown.loc["1a", "estimate [95% CI]"].startswith("0.90")                 # a level: no sign
    assert shown.loc["1b", "claim"] == "" and shown.loc["1a", "claim"].startswith("exp1 (contradicted): ")


def test_a_claim_follows_the_data():
    hurt, none = R.tidy(synthetic_table(help_=-0.2)), R.tidy(synthetic_table(help_=0.0))
    assert dict(zip(CL.claims(hurt)["test"], CL.claims(hurt)["outcome"]))["4a"] == "contradicted"
    assert CL.claim_values(CL.claims(none))["claim_4"] == "inconclusive"     # identical arms: the interval is 0


def test_a_claim_at_a_ceiling_is_uninformative(df):
    ceiling = df.copy()
    for g in GROUP_NAMES:                    # every group perfect at bias 0 and 0.75: no room to show a change
        ceiling.loc[ceiling["bias"].isin([0.0, 0.75]), f"acc_{g}"] = 1.0
    ceiling = R.tidy(ceiling.drop(columns=["majority_acc", "minority_acc"]))
    values = CL.claim_values(CL.claims(ceiling))
    assert values["test_1c_outcome"] == values["test_3a_outcome"] == values["test_3b_outcome"] == "uninformative"
    assert values["claim_3"] == "uninformative"
    assert values["claim_1"] == "supported" and values["claim_1_set_aside"] == "1c"


def test_claim_outcome_combines_tests():
    assert CL.claim_outcome(["supported", "supported"]) == "supported"
    assert CL.claim_outcome(["supported", "uninformative"]) == "supported"
    assert CL.claim_outcome(["supported", "inconclusive"]) == "inconclusive"
    assert CL.claim_outcome(["inconclusive", "contradicted"]) == "contradicted"
    assert CL.claim_outcome(["uninformative", "uninformative"]) == "uninformative"
    assert CL.claim_outcome([C.NOT_RUN]) == C.NOT_RUN


# ---------------------------------------------------------------- captions, measure by measure


def test_caption_comparison_on_every_measure(df):
    cap = C.caption_comparison(df)
    assert set(cap["measure"]) == set(C.CAPTION_MEASURES)
    assert sorted(cap["bias"].unique()) == list(BIAS_LEVELS)
    assert set(cap["outcome"]) <= OUTCOME_WORDS
    at = cap[np.isclose(cap["bias"], 0.75)].set_index("key")["outcome"].to_dict()
    assert at == {"wga": "supported", "wga_class": "supported", "wga_pooled": "supported",
                  "majority": "inconclusive", "probe": "supported"}
    floor = cap[cap["bias"] >= 0.9]
    assert (floor.loc[floor["key"].isin(C.WORST_GROUP), "outcome"] == "uninformative").all()
    shown = C.comparison_display(cap, [0.75])
    assert shown.loc[("0.75", C.CAPTION_MEASURES["worst_group_acc"].label), "outcome"] == "supported"


def test_agreement_says_where_the_measures_agree(df):
    cap = C.caption_comparison(df)
    status, sentence = C.agreement(cap, 0.75)
    assert status == "partly agree"          # higher on four measures, majority accuracy unclear
    assert "Worst-group accuracy in each model's own words: +0.15 [+0.15, +0.15], higher." in sentence
    import re
    majority = re.search(r"Majority-group accuracy: [^\]]*\], (\w+)\.", sentence)
    assert majority and majority.group(1) == "inconclusive" and "lower" not in sentence   # its outcome last
    assert all(len(s.split()) <= 25 for s in sentence.split(". "))           # short sentences
    status, sentence = C.agreement(cap, 0.95)
    assert status == "agree" and "Worst-group accuracy in each model's own words: " in sentence \
        and "uninformative (both at a floor or a ceiling)" in sentence
    only_floor = cap[cap["key"].isin(C.WORST_GROUP)]
    assert C.agreement(only_floor, 1.0)[0] == "uninformative"
    mixed = cap.copy()
    mixed.loc[np.isclose(mixed["bias"], 0.75) & (mixed["key"] == "wga_class"), "outcome"] = "contradicted"
    assert C.agreement(mixed, 0.75)[0] == "disagree"
    assert C.agreement(cap, 0.3)[0] == C.NOT_RUN
    unclear = cap.copy()
    unclear.loc[np.isclose(unclear["bias"], 0.75), "outcome"] = "inconclusive"
    status, sentence = C.agreement(unclear, 0.75)
    assert status == "inconclusive" and "higher on" not in sentence.replace("clearly higher nor lower on", "")


def test_background_control_and_probe_references(df):
    bg = C.caption_comparison(df, "pairwise_background", measures=C.BACKGROUND_MEASURES)
    at = bg[np.isclose(bg["bias"], 0.75)].set_index("key")["outcome"].to_dict()
    assert at["probe_background"] == "supported" and set(at) == {"probe", "probe_background"}  # no words
    refs = C.probe_references(df, levels=[0.0, 0.75])
    assert set(refs["reference"]) == {"pixels", "random"} and set(refs["outcome"]) == {"supported"}
    row = refs[(refs["variant"] == "descriptive") & (refs["bias"] == 0.75) & (refs["reference"] == "pixels")].iloc[0]
    assert row["estimate"] == pytest.approx(0.95 - 0.15 + 0.02 - 0.7)


# ---------------------------------------------------------------- data size, the verdict


def test_data_size_result(df):
    ds = C.data_size_comparison(df)
    assert list(dict.fromkeys(ds["n_train_per_group"])) == ["48", "192", "768", "768 - 48"]
    assert set(ds["outcome"]) <= OUTCOME_WORDS
    at = ds[np.isclose(ds["bias"], 0.75)].set_index("n_train_per_group")
    assert at.loc["768", "estimate"] == pytest.approx(0.15 * 2) and at.loc["768 - 48", "outcome"] == "supported"
    assert C.scale_summary(ds)[0] == "changes"          # the effect doubles: the change is supported
    # make the smallest size's effect unclear: descriptive = undescriptive plus seed noise of both signs
    unclear = df.copy()
    rows = (unclear["variant"] == "descriptive") & (unclear["n_train_per_group"] == 48) & (unclear["bias"] == 0.75)
    und = R.by_seed(df, "worst_group_acc", {**C.PAIRWISE_UNDESCRIPTIVE, "bias": 0.75})
    unclear.loc[rows, "worst_group_acc"] = [und[s] + 0.03 * (s - 2) for s in unclear.loc[rows, "seed"]]
    status, sentence = C.scale_summary(C.data_size_comparison(unclear))
    assert "(inconclusive) with 48" in sentence and "(supported) with 768" in sentence
    # an effect decided at one size and not at another is no change by itself: only the change decides
    same = df.copy()
    for n in (192, 768):
        for variant in ("descriptive", "undescriptive"):
            pairwise = (same["variant"] == variant) & (same["loss"] == "pairwise")
            rows = pairwise & (same["n_train_per_group"] == n)
            base = same[pairwise & (same["n_train_per_group"] == 48)].set_index(["bias", "seed"])
            same.loc[rows, "worst_group_acc"] = [base.loc[(b, s), "worst_group_acc"] for b, s in
                                                 same.loc[rows, ["bias", "seed"]].to_numpy()]
    assert C.scale_summary(C.data_size_comparison(same))[0] in ("is not shown to change (inconclusive)", "uninformative")
    assert C.data_size_comparison(df[df["n_train_per_group"] == 48]).empty
    assert C.scale_summary(C.data_size_comparison(df[df["n_train_per_group"] == 48]))[0] == C.NOT_RUN


def test_verdict_gives_every_key_an_outcome_word(df):
    v = V.verdict(df).glue_values()
    outcomes = {k: w for k, w in v.items() if k.endswith("_outcome")}
    assert len(outcomes) > 60 and set(outcomes.values()) <= OUTCOME_WORDS      # the full grid: nothing "not run"
    assert v["n_runs"] == len(df) and v["seeds_text"] == "5" and (v["orig_bias"], v["strong_bias"]) == (0.75, 0.9)
    assert v["cap_orig_wga"] == pytest.approx(0.15) and v["cap_orig_wga_outcome"] == "supported"
    assert v["cap_strong_wga_outcome"] == "uninformative" and v["cap_strong_agreement"] == "agree"
    assert v["bias_undescriptive_outcome"] == "supported"                  # bias lowers worst-group accuracy
    assert v["ds_changes"] == "changes" and v["ds_small_n"] == 48 and v["ds_large_n"] == 768
    assert v["answer"] == "yes" and v["xue_phrase"] == "agrees with"
    assert v["answer_sentence"].startswith("At bias 0.75, descriptive captions minus")
    assert v["cap_n_rows"] == sum(v[f"cap_n_{w}"] for w in C.OUTCOMES)
    # plain Python values: myst-nb's {glue:text} formats "0.15", not "np.float64(0.15)"
    assert not [k for k, x in {**v, **CL.claim_values(CL.claims(df))}.items() if isinstance(x, np.generic)]


@pytest.mark.parametrize("help_, word", [
    (-0.2, "no"),
    (0.0, "no"),            # no help in the model's own words, and lower with the other prompt sets
    (0.04, "mixed"),        # +0.03 in its own words, -0.02 with "horse" / "camel"
])
def test_the_answer_follows_the_outcomes(help_, word):
    v = V.verdict(R.tidy(synthetic_table(help_=help_)))
    assert v.answer == word and v.phrases["xue_phrase"] == V.ANSWER_WORDS[word]


def test_the_answer_when_measures_disagree_or_sit_at_floors(df):
    cap = C.caption_comparison(df)
    assert V.answer(cap, [0.75, 0.9]) == "yes"
    assert V.answer(cap, [0.9, 0.95]) == "uninformative"                  # floors at both levels
    mixed = cap.copy()
    mixed.loc[np.isclose(mixed["bias"], 0.75) & (mixed["key"] == "wga_class"), "outcome"] = "contradicted"
    assert V.answer(mixed, [0.75, 0.9]) == "mixed"
    headline_only = cap.copy()
    headline_only.loc[headline_only["key"].isin(["wga_class", "wga_pooled"]), "outcome"] = "inconclusive"
    assert V.answer(headline_only, [0.75, 0.9]) == "partly"
    unclear = cap.copy()
    unclear.loc[np.isclose(unclear["bias"], 0.75), "outcome"] = "inconclusive"
    assert V.answer(unclear, [0.75, 0.9]) == "inconclusive"


def test_verdict_on_a_small_grid_marks_what_was_not_run():
    small = R.tidy(synthetic_table(seeds=(0, 1), levels=(0.0, 0.75, 0.95), few=(0.0, 0.75, 0.95), sizes=()))
    small = small[small["name"] != "variability"]
    v = V.verdict(small).glue_values()
    assert v["strong_bias"] == 0.95 and v["ds_sizes"] == C.NOT_RUN and v["ds_changes"] == C.NOT_RUN
    assert v["templates_orig_outcome"] == C.NOT_RUN and math.isnan(v["templates_orig"])
    assert set(w for k, w in v.items() if k.endswith("_outcome")) <= OUTCOME_WORDS | {C.NOT_RUN}
    assert v.keys() == V.verdict(R.tidy(synthetic_table())).glue_values().keys()      # the same glue keys for every grid


def fake_runs(values: dict) -> dict:
    """exp1..exp4 -> [run per seed] with only what comparison_effects reads."""
    from types import SimpleNamespace as NS
    return {name: [NS(metrics={"worst_group_acc": v}, config=NS(train=NS(seed=s))) for s, v in enumerate(vs)]
            for name, vs in values.items()}


def test_comparison_page_effects_are_paired_and_decided():
    from dualenc.analysis.tables import ONE_SEED_WORDS, comparison_effects
    runs = fake_runs({"exp1": [0.60, 0.62, 0.64], "exp2": [0.61, 0.64, 0.64],     # +0.01, +0.02, 0: spans 0
                      "exp3": [0.00, 0.00, 0.01], "exp4": [0.01, 0.00, 0.00]})    # both at the floor
    e = comparison_effects(runs)
    assert e["captions_unbiased"]["mean"] == pytest.approx(0.01) and e["captions_unbiased"]["n"] == 3
    assert e["captions_unbiased"]["outcome"] == "inconclusive"
    assert e["captions_unbiased"]["words"].startswith("not clearly different")
    assert e["captions_biased"]["outcome"] == "uninformative"                   # a floor, not "no change"
    assert e["bias_undescriptive"]["outcome"] == "supported"                    # a drop, as claimed
    assert e["bias_undescriptive"]["words"] == "lower"
    one = comparison_effects(fake_runs({"exp1": [0.5], "exp2": [0.7], "exp3": [0.2], "exp4": [0.1]}))
    assert one["captions_unbiased"]["outcome"] == "inconclusive"                # one seed decides nothing
    assert {r["words"] for r in one.values()} == {ONE_SEED_WORDS}               # no direction from a point estimate
    with pytest.raises(ValueError, match="cannot pair"):
        comparison_effects(fake_runs({"exp1": [0.5, 0.6], "exp2": [0.7], "exp3": [0.2], "exp4": [0.1]}))


# ---------------------------------------------------------------- tables and figures


def test_tables_hold_one_cell_per_method_and_bias(summary):
    t = R.wide_table(summary, "worst_group_acc", arm_tables()["losses"], digits=3)
    assert t.shape == (7, 5) and list(t.columns) == ["bias 0", "bias 0.5", "bias 0.75", "bias 0.9", "bias 1"]
    assert t.loc['pairwise, "horse" / "camel"', "bias 0.75"].startswith("0.150 [")
    assert t.loc['pairwise, "horse" / "camel"', "bias 0.9"] == "0.000 [0.000, 0.000]"
    var = R.wide_table(summary, "worst_group_acc", arm_tables()["variability"], levels=[0.0, 0.5])
    assert var.loc["pairwise, descriptive, 4 templates", "bias 0.5"] == "not run"
    big = R.wide_table(summary, "worst_group_acc", ["pairwise_descriptive"], levels=[0.75], n=768)
    assert big.iloc[0, 0].startswith("0.45")                    # 0.15 + 0.2 * 0.75 * 2


def lines_and_bands(ax):
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    return labels, bands


def test_headline_figure_has_a_line_and_band_per_variant(summary):
    fig = plots.plot_headline(summary)
    assert len(fig.axes) == 3
    expected = [ARMS[a].label for a in arm_tables()["captions"]]
    for ax in fig.axes:
        labels, bands = lines_and_bands(ax)
        assert [lab for lab in labels if lab != "chance"] == expected and len(bands) == len(expected)
        shown = [t.get_text() for t in ax.get_xticklabels()]
        assert len(ax.get_xticks()) == len(BIAS_LEVELS)
        assert shown in ([f"{b:g}" for b in BIAS_LEVELS], [])    # panels above another share its labels
        for band in bands:                                   # every band inside [0, 1]
            y = band.get_paths()[0].vertices[:, 1]
            assert y.min() >= 0.0 and y.max() <= 1.0
    assert any(t.get_text() for ax in fig.axes for t in ax.get_xticklabels())
    worst = fig.axes[0].get_lines()[0]
    assert np.allclose(worst.get_ydata()[:3], [0.9, 0.65, 0.4])   # undescriptive, base size only


def test_probe_figure_shows_pixel_and_random_references(summary):
    fig = plots.plot_probes(summary)
    labels, bands = lines_and_bands(fig.axes[0])
    assert {"raw pixels", "random-init encoder"} <= set(labels) and len(bands) == len(arm_tables()["captions"])
    pixels = next(line for line in fig.axes[0].get_lines() if line.get_label() == "raw pixels")
    assert np.allclose(pixels.get_ydata(), 0.7)


def test_other_figures(summary, df):
    sil = plots.plot_silhouettes(summary)
    assert [ax.get_title().replace("\n", " ") for ax in sil.axes] == ["silhouette by background, image", "silhouette by background, text",
                                                   "silhouette by animal, image", "silhouette by animal, text"]
    assert len(lines_and_bands(sil.axes[1])[1]) == len(arm_tables()["captions"]) - 1   # image-only: no text tower
    assert len(plots.plot_prompt_sets(summary).axes) == 2
    losses = plots.plot_losses(summary)
    assert len(losses.axes[0].containers) == len(arm_tables()["losses"])
    assert [len(c.lines[0].get_xdata()) for c in plots.plot_variability(summary).axes[0].containers] == [2, 2, 2]
    size = plots.plot_data_size(summary)
    assert [ax.get_title() for ax in size.axes] == [f"bias {b:g}" for b in FEW_LEVELS]
    assert [t.get_text() for t in size.axes[0].get_xticklabels()] == ["48", "192", "768"]
    diffs = plots.plot_differences(C.caption_comparison(df), title="x")
    assert len(diffs.axes[0].containers) == len(C.CAPTION_MEASURES)


# ---------------------------------------------------------------- the sweep page, end to end


@pytest.mark.slow
def test_sweep_notebook_runs_on_the_ci_grid(tmp_path):
    """The results page end to end on the tiny grid: every glue the prose names exists, the figures
    are images, the answer is one of the verdict's words, and a second run trains nothing."""
    import papermill
    import nbformat
    from test_notebooks import NOTEBOOKS, glued, referenced_glue_keys

    from dualenc.runs.sweep import ci_grid

    def run(name, page="sweep"):
        papermill.execute_notebook(str(NOTEBOOKS / f"{page}.ipynb"), str(tmp_path / name), kernel_name="python3",
                                   parameters={"grid": "ci", "runs_dir": str(tmp_path / "runs"), "jobs": 2},
                                   progress_bar=False, cwd=str(tmp_path), execution_timeout=600)
        return glued(nbformat.read(tmp_path / name, as_version=4))

    glue = run("first.ipynb")
    assert referenced_glue_keys(nbformat.read(tmp_path / "first.ipynb", as_version=4)) <= set(glue)
    assert glue["sw_n_runs"][0] == glue["sw_n_grid"][0] == len(ci_grid())
    for fig in ("primary", "headline", "control", "background_wins", "cue_conflict"):
        assert "image/png" in glue[f"sw_fig_{fig}"][1]
    assert glue["sw_answer"][0] in ("yes", "partly", "mixed", "no", "inconclusive", "uninformative")
    assert glue["sw_cv_own_descriptive"][0] == "not run"       # the ci grid has no learning curves
    assert (tmp_path / "results" / "ci.csv").is_file()  # the grid's table, read as is next time
    assert run("second.ipynb")["sw_sweep_ran"][0] == 0
    # the appendix reads the same table: every comparison behind the results page
    appendix = run("appendix.ipynb", "all_comparisons")
    assert referenced_glue_keys(nbformat.read(tmp_path / "appendix.ipynb", as_version=4)) <= set(appendix)
    for fig in ("caption_effects", "prompt_sets", "probes", "silhouettes", "losses", "data_size"):
        assert "image/png" in appendix[f"sw_fig_{fig}"][1]
    assert appendix["sw_sweep_ran"][0] == 0


if __name__ == "__main__":
    synthetic_table().to_csv(sys.argv[1] if len(sys.argv) > 1 else "fake_results.csv", index=False)
