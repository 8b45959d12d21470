"""Hand-worked examples with known answers for dualenc.runs.metrics."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from dualenc.runs import metrics
from dualenc.config import (ANIMALS, BACKGROUNDS, GROUP_NAMES, GROUPS, MAJORITY_GROUPS, MINORITY_GROUPS,
                            group_name)
from dualenc.runs.metrics import (accuracy_summary, bootstrap_ci, class_embeddings, group_accuracy, linear_probe,
                             mean_ci, silhouettes, summarise_seeds, zero_shot_predict)


def unit(deg):
    r = math.radians(deg)
    return np.array([math.cos(r), math.sin(r)])


# ---------------------------------------------------------------- zero-shot

def test_zero_shot_pooling_changes_the_answer():
    image = unit(45)[None, :]                       # one image at 45 degrees
    class1 = [unit(70)]                             # cos(25 deg) = 0.906
    # class 0 with only its first prompt (0 deg): cos(45 deg) = 0.707 < 0.906 -> class 1
    assert zero_shot_predict(image, [np.array([[10.0, 0.0]]), class1]).tolist() == [1]
    # pooled: normalise (10,0) and (0,1), mean (0.5, 0.5), re-normalise -> 45 deg: cos = 1 -> class 0
    assert zero_shot_predict(image, [np.array([[10.0, 0.0], [0.0, 1.0]]), class1]).tolist() == [0]
    # without normalising first, the mean (5, 0.5) points at 5.7 deg and class 1 would win
    np.testing.assert_allclose(class_embeddings([np.array([[10.0, 0.0], [0.0, 1.0]]), class1])[0],
                               unit(45), atol=1e-12)


def test_zero_shot_several_images_and_single_vector_prompt():
    images = np.stack([unit(0), unit(90), unit(10), unit(80)])
    pred = zero_shot_predict(images, [unit(0), unit(90)])          # (D,) prompts accepted
    assert pred.dtype.kind == "i" and pred.tolist() == [0, 1, 0, 1]


def test_zero_shot_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="size"):
        zero_shot_predict(np.ones((2, 3)), [np.ones((1, 2)), np.ones((1, 2))])


# ---------------------------------------------------------------- group accuracy

def four_group_example():
    """4 examples per group; correct counts 4, 3, 2, 1 in GROUPS order, shuffled."""
    animal, background, correct = [], [], []
    for (a, b), n_right in zip(GROUPS, (4, 3, 2, 1)):
        animal += [a] * 4
        background += [b] * 4
        correct += [True] * n_right + [False] * (4 - n_right)
    order = np.random.default_rng(0).permutation(16)
    return (np.array(correct)[order], list(np.array(animal)[order]), list(np.array(background)[order]))


def test_group_accuracy_by_hand():
    correct, animal, background = four_group_example()
    acc = group_accuracy(correct, animal, background)
    assert list(acc) == ["horse_grass", "camel_desert", "horse_desert", "camel_grass"]
    assert acc == {"horse_grass": 1.0, "camel_desert": 0.75, "horse_desert": 0.5, "camel_grass": 0.25}


def test_accuracy_summary_by_hand():
    s = accuracy_summary({"horse_grass": 1.0, "camel_desert": 0.75, "horse_desert": 0.5, "camel_grass": 0.25})
    assert s["worst_group_acc"] == 0.25 and s["worst_group"] == "camel_grass"
    assert s["average_acc"] == pytest.approx(2.5 / 4)
    # majority (1.0 + 0.75) / 2 = 0.875; minority (0.5 + 0.25) / 2 = 0.375
    assert s["gap"] == pytest.approx(0.5)


def test_missing_group_is_named():
    correct, animal, background = four_group_example()
    keep = [i for i in range(16) if not (animal[i] == "horse" and background[i] == "desert")]
    with pytest.raises(ValueError, match="horse_desert"):
        group_accuracy(correct[keep], [animal[i] for i in keep], [background[i] for i in keep])
    with pytest.raises(ValueError, match="camel_grass"):
        accuracy_summary({"horse_grass": 1.0, "camel_desert": 1.0, "horse_desert": 1.0})


def test_group_accuracy_rejects_unknown_labels_and_lengths():
    with pytest.raises(ValueError, match="Horse"):
        group_accuracy([True], ["Horse"], ["grass"])
    with pytest.raises(ValueError, match="lengths"):
        group_accuracy([True, False], ["horse"], ["grass"])


# ---------------------------------------------------------------- probes

def test_linear_probe_separable_and_random():
    rng = np.random.default_rng(0)
    y = np.array(["horse", "camel"] * 100)
    x = rng.normal(size=(200, 8)) + 5.0 * (y == "horse")[:, None]
    assert linear_probe(x[:100], y[:100], x[100:], y[100:]) == 1.0
    x_rand = rng.normal(size=(2200, 8))
    y_rand = rng.integers(0, 2, size=2200)
    acc = linear_probe(x_rand[:200], y_rand[:200], x_rand[200:], y_rand[200:])
    assert 0.4 < acc < 0.6


def test_linear_probe_standardises_features_and_takes_any_labels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] + 0.8 * rng.normal(size=80) > 0).astype(int)   # noisy: the accuracy is neither 0.5 nor 1
    acc = linear_probe(x[:40], y[:40], x[40:], y[40:])
    assert 0.6 < acc < 1.0
    # features are standardised first, so rescaling one of them by 1000 leaves the probe unchanged
    scaled = x * np.array([1000.0, 1.0, 1.0, 0.001])
    assert linear_probe(scaled[:40], y[:40], scaled[40:], y[40:]) == acc
    # string labels give the same probe as the integers they name
    names = np.array(["camel", "horse"])[y]
    assert linear_probe(x[:40], names[:40], x[40:], names[40:]) == acc
    with pytest.raises(ValueError, match="2 classes"):
        linear_probe(x[:30], np.zeros(30), x[30:], y[30:])


# ---------------------------------------------------------------- geometry

def labelled_points(n_per_group=10):
    animal = [a for a, _ in GROUPS for _ in range(n_per_group)]
    background = [b for _, b in GROUPS for _ in range(n_per_group)]
    return animal, background


def test_silhouettes_follow_the_structure():
    rng = np.random.default_rng(0)
    animal, background = labelled_points()
    sign = np.where(np.array(animal) == "horse", 1.0, -1.0)
    emb = np.zeros((40, 4))
    emb[:, 0] = sign                                 # direction set by the animal only
    emb[:, 1:] = 0.05 * rng.normal(size=(40, 3))
    s = silhouettes(emb, animal, background)
    assert set(s) == {"silhouette_animal", "silhouette_background", "silhouette_group"}
    assert s["silhouette_animal"] > 0.9
    assert abs(s["silhouette_background"]) < 0.2
    # one direction per group: every grouping has structure, the group one the most
    groups = [GROUPS.index((a, b)) for a, b in zip(animal, background)]
    emb_g = np.eye(4)[groups] + 0.05 * rng.normal(size=(40, 4))
    assert silhouettes(emb_g, animal, background)["silhouette_group"] > 0.9


def test_silhouette_single_class_is_nan():
    rng = np.random.default_rng(0)
    s = silhouettes(rng.normal(size=(6, 3)), ["horse"] * 6, ["grass", "desert"] * 3)
    assert math.isnan(s["silhouette_animal"])           # only horses: undefined, not a crash
    assert not math.isnan(s["silhouette_background"])   # two backgrounds
    assert not math.isnan(s["silhouette_group"])        # horse_grass and horse_desert


# ---------------------------------------------------------------- seeds

def test_mean_ci_by_hand():
    mean, low, high = mean_ci([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)   # t_{0.975, 4} * sd / sqrt(n)
    assert mean == 3.0
    assert (3.0 - low) == pytest.approx(half, abs=1e-5) and high - 3.0 == pytest.approx(1.963, abs=1e-3)


def test_mean_ci_edge_cases():
    v, low, high = mean_ci([0.7])
    assert v == 0.7 and math.isnan(low) and math.isnan(high)
    assert mean_ci([1.0, float("nan"), 3.0])[0] == 2.0
    assert all(math.isnan(x) for x in mean_ci([]))
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1, 2], confidence=95)


def test_bootstrap_ci_by_hand():
    # two seeds, 0 and 1: a resampled mean is 0, 0.5 or 1 with chances 1/4, 1/2, 1/4, so the 2.5th
    # and 97.5th percentiles of 10 000 of them are 0 and 1
    assert bootstrap_ci([0.0, 1.0]) == (0.5, 0.0, 1.0)
    # three seeds 0, 0, 1: a resampled mean is k/3 with k ~ Binomial(3, 1/3): P(0) = 8/27 = 0.30,
    # P(1/3) = 12/27, so the cumulative chance is 0.74 at 1/3; the 50% interval runs from the 25th
    # percentile (0) to the 75th (2/3)
    mean, low, high = bootstrap_ci([0.0, 0.0, 1.0], confidence=0.5)
    assert mean == pytest.approx(1 / 3) and (low, high) == pytest.approx((0.0, 2 / 3))


def test_bootstrap_ci_stays_inside_the_values_range_where_t_does_not():
    values = [0.184, 0.9, 1.0, 1.0, 1.0]
    assert mean_ci(values)[2] > 1.0
    mean, low, high = bootstrap_ci(values)
    assert 0.184 <= low < mean < high <= 1.0
    rng = np.random.default_rng(3)
    for _ in range(50):
        v = rng.choice([0.0, 0.02, 0.5, 0.98, 1.0], size=int(rng.integers(2, 11)))
        m, lo, hi = bootstrap_ci(v)
        assert v.min() <= lo <= m <= hi <= v.max()


def test_bootstrap_ci_is_deterministic_and_follows_its_seed():
    values = [0.11, 0.52, 0.23, 0.94, 0.35, 0.66, 0.47]
    first = bootstrap_ci(values)
    # the same on every call: not from the resample cache, and not from numpy's global RNG
    metrics._resample_index.cache_clear()
    np.random.seed(12345)
    np.random.random(7)
    assert bootstrap_ci(list(values)) == first
    assert bootstrap_ci(values, seed=1) != first                     # the RNG seed is what fixes it
    # it is the documented resampling: numpy's default_rng(seed), percentiles of the resampled means
    v = np.array(values)
    means = v[np.random.default_rng(0).integers(0, len(v), size=(10_000, len(v)))].mean(axis=1)
    assert first[1:] == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_bootstrap_ci_edge_cases():
    v, low, high = bootstrap_ci([0.7])
    assert v == 0.7 and math.isnan(low) and math.isnan(high)
    assert bootstrap_ci([0.2, float("nan"), 0.4])[0] == pytest.approx(0.3)
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    assert bootstrap_ci([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1, 2], confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1, 2], n_resamples=0)


def test_summarise_seeds():
    df = pd.DataFrame({
        "bias": [0.0] * 5 + [0.5] * 2,
        "captions": ["descriptive"] * 5 + ["undescriptive"] * 2,
        "seed": [0, 1, 2, 3, 4, 0, 1],
        "acc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, float("nan")],
    })
    out = summarise_seeds(df, ["bias", "captions"], ["acc"])
    assert list(out.columns) == ["bias", "captions", "acc_mean", "acc_low", "acc_high", "n_seeds"]
    assert out["n_seeds"].tolist() == [5, 2]
    first = out.iloc[0]
    assert first["acc_mean"] == pytest.approx(0.3)
    assert (first["acc_low"], first["acc_high"]) == pytest.approx(bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5])[1:])
    assert out.iloc[1]["acc_mean"] == 0.5 and math.isnan(out.iloc[1]["acc_low"])
    t = summarise_seeds(df, ["bias", "captions"], ["acc"], interval="t").iloc[0]
    assert t["acc_high"] == pytest.approx(0.3 + 0.19632, abs=1e-4)      # the Student-t interval on request
    whole = summarise_seeds(df, [], ["acc"])
    assert len(whole) == 1 and whole["n_seeds"].iloc[0] == 7
    with pytest.raises(ValueError, match="loss"):
        summarise_seeds(df, ["bias"], ["loss"])
    with pytest.raises(ValueError, match="interval='normal'"):
        summarise_seeds(df, ["bias"], ["acc"], interval="normal")


def test_groups_are_every_pair_once_majority_first():
    # accuracy_summary's gap reads MAJORITY_GROUPS and MINORITY_GROUPS: they must split GROUPS, and
    # each animal must be in one majority and one minority group (its usual and its unusual background)
    assert sorted(GROUPS) == sorted(itertools.product(ANIMALS, BACKGROUNDS))
    assert GROUPS == MAJORITY_GROUPS + MINORITY_GROUPS
    for groups in (MAJORITY_GROUPS, MINORITY_GROUPS):
        assert sorted(a for a, _ in groups) == sorted(ANIMALS)
        assert sorted(b for _, b in groups) == sorted(BACKGROUNDS)
    names = [group_name(a, b) for a, b in GROUPS]
    assert len(set(names)) == len(GROUPS) and tuple(names) == GROUP_NAMES
    assert [tuple(name.split("_")) for name in names] == list(GROUPS)   # a name reads back as its group


def test_max_pooling_reads_the_nearest_caption_where_mean_pooling_fails():
    # The horse captions (grass, desert) are orthogonal; the camel captions are near-opposite, so
    # their mean is short and renormalising it inflates it. An image right on "horse in the desert"
    # is a horse by its nearest caption, but mean pooling calls it a camel.
    horse = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    camel = np.array([[0.6, 0.8 * 0.8, 0.0], [-0.8, 0.0, 0.6]])
    camel = camel / np.linalg.norm(camel, axis=1, keepdims=True)
    image = np.array([[0.05, 1.0, 0.0]])
    assert zero_shot_predict(image, [horse, camel], pool="max").tolist() == [0]
    assert zero_shot_predict(image, [horse, camel], pool="mean").tolist() == [1]
    with pytest.raises(ValueError, match="pool='min'"):
        zero_shot_predict(image, [horse, camel], pool="min")
