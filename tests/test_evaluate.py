"""`dualenc.runs.evaluate.evaluate` on tiny trained models, read through its output only: the metrics
agree with each other and with the per-image predictions, and the same seed gives the same numbers."""
import numpy as np
import pytest

from conftest import tiny_config
from dualenc.config import GROUP_NAMES, MAJORITY_GROUPS, MINORITY_GROUPS, group_name
from dualenc.data.datasets import build_dataset
from dualenc.runs.evaluate import evaluate
from dualenc.model.train import train

STEPS = 24  # a few steps: the numbers need not be good, only consistent


def _evaluate(config):
    dataset = build_dataset(config.data)
    return evaluate(config, dataset, train(config, dataset, progress=False)), dataset


@pytest.fixture(scope="module", params=["pairwise", "image_only"])
def evaluated(request):
    config = tiny_config(loss=request.param, steps=STEPS, bias=0.5, captions="descriptive")
    return (config, *_evaluate(config))


def _check_accuracy_block(metrics, prefix):
    acc = {g: metrics[f"{prefix}acc_{g}"] for g in GROUP_NAMES}
    assert all(0.0 <= v <= 1.0 for v in acc.values())
    assert metrics[f"{prefix}average_acc"] == pytest.approx(np.mean(list(acc.values())))
    assert metrics[f"{prefix}worst_group_acc"] == min(acc.values()) <= metrics[f"{prefix}average_acc"]
    assert acc[metrics[f"{prefix}worst_group"]] == min(acc.values())
    majority = np.mean([acc[group_name(*g)] for g in MAJORITY_GROUPS])
    minority = np.mean([acc[group_name(*g)] for g in MINORITY_GROUPS])
    assert metrics[f"{prefix}gap"] == pytest.approx(majority - minority)


def test_group_accuracies_agree_with_each_other_and_with_the_predictions(evaluated):
    config, result, dataset = evaluated
    metrics, predictions = result.metrics, result.predictions
    _check_accuracy_block(metrics, "")
    if config.train.loss != "image_only":
        for prompts in ("class", "pooled"):
            _check_accuracy_block(metrics, f"zs_{prompts}_")
    # the headline accuracies are the per-image predictions averaged over each group of the test set
    assert len(predictions) == len(dataset.test)
    assert predictions["correct"].dtype == bool
    per_group = predictions.groupby("group")["correct"].mean()
    for g in GROUP_NAMES:
        assert metrics[f"acc_{g}"] == pytest.approx(per_group[g])


def test_counts_probes_and_embeddings(evaluated):
    config, result, dataset = evaluated
    metrics, emb = result.metrics, result.embeddings
    counts = dataset.train.group_counts()
    assert {g: metrics[f"n_train_{g}"] for g in GROUP_NAMES} == counts
    assert metrics["n_train"] == sum(counts.values()) == len(dataset.train)
    # bias 0.5 keeps 24 of a minority group's 48 images: per animal 48 / (48 + 24)
    assert counts[group_name(*MINORITY_GROUPS[0])] == 24
    assert metrics["majority_share"] == pytest.approx(48 / 72)
    for name in ("probe_animal_acc", "probe_background_acc", "probe_animal_acc_pixels", "probe_animal_acc_random"):
        assert 0.0 <= metrics[name] <= 1.0
    for split in ("train", "val", "test"):
        image = emb[f"image_{split}"]
        assert image.shape == (len(getattr(dataset, split)), config.model.embed_dim)
        assert np.allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-5)
        assert list(emb[f"animal_{split}"]) == list(getattr(dataset, split).animal)
    assert metrics["steps"] == STEPS and np.isfinite(metrics["final_loss"])


def test_same_seed_same_evaluation_and_another_seed_differs():
    config = tiny_config(steps=STEPS, bias=0.5)
    first, _ = _evaluate(config)
    again, _ = _evaluate(config)                 # trained again from scratch
    timing = {"train_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in timing} == \
           {k: v for k, v in again.metrics.items() if k not in timing}
    assert np.array_equal(first.embeddings["image_test"], again.embeddings["image_test"])
    assert first.predictions.equals(again.predictions)
    other, _ = _evaluate(config.replace(seed=1))
    assert not np.array_equal(first.embeddings["image_test"], other.embeddings["image_test"])
