import numpy as np
import pytest
import torch

from dualenc.data.datasets import build_dataset
from dualenc.runs.study import run_experiment
from dualenc.data.tokenizer import Tokenizer
from dualenc.model.train import CaptionTable, label_tensors, pair_targets, train
from dualenc.data.datasets import vocabulary_texts


@pytest.mark.parametrize("captions, share, templates", [
    ("undescriptive", 1.0, 1), ("descriptive", 1.0, 1), ("descriptive", 0.5, 3), ("background", 1.0, 2)])
def test_no_negative_pair_shares_the_positive_caption(tiny, captions, share, templates):
    config = tiny(captions=captions, descriptive_share=share, caption_templates=templates, bias=0.5)
    dataset = build_dataset(config.data)
    tokenizer = Tokenizer.from_texts(vocabulary_texts(dataset), 8)
    texts = sorted(set(dataset.train.captions))
    table = CaptionTable.build(texts, tokenizer, torch.device("cpu"))
    index = torch.tensor([texts.index(c) for c in dataset.train.captions])
    animal, background = label_tensors(dataset.train, torch.device("cpu"))
    targets = pair_targets(animal, background, index, table)           # every pair of the set
    same_caption = index[:, None] == index[None, :]
    assert targets[same_caption].min() == 1.0
    assert targets.diagonal().min() == 1.0
    assert targets.min() == 0.0  # and there are negatives


def test_same_seed_same_metrics(tiny, tmp_path):
    config = tiny(steps=48)
    a = run_experiment(config, root=tmp_path / "a", progress=False)
    b = run_experiment(config, root=tmp_path / "b", progress=False)
    drop = {"train_seconds"}
    assert {k: v for k, v in a.metrics.items() if k not in drop} == \
           {k: v for k, v in b.metrics.items() if k not in drop}
    assert np.array_equal(a.embeddings()["image_test"], b.embeddings()["image_test"])
    c = run_experiment(config.replace(seed=1), root=tmp_path / "a", progress=False)
    assert not np.array_equal(a.embeddings()["image_test"], c.embeddings()["image_test"])


@pytest.mark.parametrize("loss", ["pairwise", "clip", "siglip", "image_only"])
def test_tiny_run_learns_above_chance(tiny, tmp_path, loss):
    record = run_experiment(tiny(loss=loss), root=tmp_path, progress=False)
    assert record.metrics["average_acc"] >= 0.7, record.metrics  # chance is 0.5
    assert record.history["loss"].iloc[-1] < record.history["loss"].iloc[0]


def test_non_finite_loss_is_a_clear_error(tiny, monkeypatch):
    config = tiny(steps=12)
    dataset = build_dataset(config.data)
    monkeypatch.setattr("dualenc.model.batches.batch_loss", lambda *a, **k: torch.tensor([float("nan")], requires_grad=True))
    with pytest.raises(FloatingPointError, match="non-finite loss.*step 0"):
        train(config, dataset, progress=False)
