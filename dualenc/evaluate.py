"""Evaluation of a trained model on the balanced splits: embeddings, predictions and metrics.

The metric functions themselves live in `metrics` (numpy only); this file runs the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import metrics
from .captions import ZERO_SHOT_CLASS_PROMPTS, ZERO_SHOT_POOLED_PROMPTS
from .config import ANIMALS, ExperimentConfig
from .data import Dataset, Split
from .tokenizer import Tokenizer
from .train import TrainResult, image_tensor

# Prompt set whose zero-shot accuracy is the headline, by training caption mode:
# a model is asked in the words it was trained with.
HEADLINE_PROMPTS = {"undescriptive": "class", "descriptive": "pooled", "background": "class"}


@dataclass
class Evaluation:
    metrics: dict                  # flat: one value per metric name
    embeddings: dict               # name -> array, saved as embeddings.npz
    predictions: pd.DataFrame      # one row per test image


# Models here are single models (K = 1, see model.member): inputs get a leading model dimension.

@torch.no_grad()
def embed_images(model, split: Split, device: str, batch_size: int = 256) -> np.ndarray:
    out = [model.encode_image(image_tensor(split.images[i:i + batch_size], torch.device(device))[None])[0].cpu()
           for i in range(0, len(split), batch_size)]
    return torch.cat(out).float().numpy()                        # (N, D)


@torch.no_grad()
def embed_texts(model, tokenizer: Tokenizer, texts: list, device: str) -> np.ndarray:
    ids, mask = tokenizer.encode(texts)
    dev = torch.device(device)
    return model.encode_text(torch.from_numpy(ids).to(dev)[None], torch.from_numpy(mask).to(dev)[None])[0] \
        .cpu().float().numpy()


@torch.no_grad()
def classifier_predict(model, split: Split, device: str) -> np.ndarray:
    logits = model(image_tensor(split.images, torch.device(device))[None])[0]
    return logits.argmax(1).cpu().numpy()


PIXEL_POOL = 4  # the raw-pixel probe reads 4x4-averaged pixels: 16x16x3 = 768 features at 64 px


def pixels(split: Split, pool: int = PIXEL_POOL) -> np.ndarray:
    """Raw pixels as features: (N, (S/pool)^2 * 3) in [0, 1], averaged over pool x pool blocks
    (a logistic regression on all 12288 pixels of a 64 px image takes ~10 s and reads no better)."""
    n, s = len(split), split.images.shape[1]
    pool = pool if s % pool == 0 else 1
    blocks = split.images.reshape(n, s // pool, pool, s // pool, pool, 3).mean(axis=(2, 4))
    return blocks.reshape(n, -1) / 255.0


_PIXEL_PROBES: dict = {}  # the raw-pixel probes depend on the validation and test images only


def _pixel_probes(dataset: Dataset) -> dict:
    key = hash((tuple(dataset.val.source), tuple(dataset.test.source), dataset.val.images.shape))
    if key not in _PIXEL_PROBES:
        val_x, test_x = pixels(dataset.val), pixels(dataset.test)
        _PIXEL_PROBES[key] = {f"probe_{label}_acc_pixels": metrics.linear_probe(
            val_x, getattr(dataset.val, label), test_x, getattr(dataset.test, label))
            for label in ("animal", "background")}
    return _PIXEL_PROBES[key]


def reference_probes(config: ExperimentConfig, dataset: Dataset, vocab_size: int, device: str) -> dict:
    """The animal and background probes on raw pixels and on a randomly initialised (untrained)
    encoder of the same architecture and seed: what a trained encoder's probes are measured against."""
    from .train import build_model

    untrained = build_model(config, vocab_size).to(device).eval()
    val_x, test_x = embed_images(untrained, dataset.val, device), embed_images(untrained, dataset.test, device)
    out = dict(_pixel_probes(dataset))
    for label in ("animal", "background"):
        out[f"probe_{label}_acc_random"] = metrics.linear_probe(
            val_x, getattr(dataset.val, label), test_x, getattr(dataset.test, label))
    return out


def _accuracy_block(prefix: str, pred: np.ndarray, split: Split) -> dict:
    truth = np.array([ANIMALS.index(a) for a in split.animal])
    group_acc = metrics.group_accuracy(pred == truth, split.animal, split.background)
    block = {f"{prefix}acc_{g}": v for g, v in group_acc.items()}
    block.update({f"{prefix}{k}": v for k, v in metrics.accuracy_summary(group_acc).items()})
    return block


def _silhouettes(suffix: str, emb: np.ndarray, split: Split) -> dict:
    return {f"{k}_{suffix}": v for k, v in metrics.silhouettes(emb, split.animal, split.background).items()}


def evaluate(config: ExperimentConfig, dataset: Dataset, result: TrainResult) -> Evaluation:
    model, device = result.model, result.device
    model.eval()
    emb = {f"image_{name}": embed_images(model, getattr(dataset, name), device) for name in ("train", "val", "test")}
    test = dataset.test
    predictions = pd.DataFrame({"animal": test.animal, "background": test.background,
                                "group": test.group, "source": test.source})
    out: dict = {}
    if config.train.loss == "image_only":
        predictions["pred_classifier"] = [ANIMALS[k] for k in classifier_predict(model, test, device)]
        headline = "classifier"
        out.update(_accuracy_block("", predictions["pred_classifier"].map(ANIMALS.index).to_numpy(), test))
    else:
        headline = HEADLINE_PROMPTS[config.data.captions]
        # "class": the bare class names; "pooled": the four descriptive captions, an image takes
        # the animal of its best-matching caption (see metrics.zero_shot_scores).
        prompt_sets = {"class": (ZERO_SHOT_CLASS_PROMPTS, "mean"), "pooled": (ZERO_SHOT_POOLED_PROMPTS, "max")}
        for name, (prompts, pool) in prompt_sets.items():
            class_emb = [embed_texts(model, result.tokenizer, p, device) for p in prompts]
            emb[f"prompt_{name}"] = np.concatenate(class_emb)
            pred = metrics.zero_shot_predict(emb["image_test"], class_emb, pool=pool)
            predictions[f"pred_{name}"] = [ANIMALS[k] for k in pred]
            out.update(_accuracy_block(f"zs_{name}_", pred, test))
        for key in [k for k in list(out) if k.startswith(f"zs_{headline}_")]:
            out[key.removeprefix(f"zs_{headline}_")] = out[key]
        emb["text_train"] = embed_texts(model, result.tokenizer, dataset.train.captions, device)
        out.update(_silhouettes("text", emb["text_train"], dataset.train))
    predictions["correct"] = predictions[f"pred_{headline}"] == predictions["animal"]
    out["headline_prompts"] = headline
    val = dataset.val
    out["probe_animal_acc"] = metrics.linear_probe(emb["image_val"], val.animal, emb["image_test"], test.animal)
    out["probe_background_acc"] = metrics.linear_probe(emb["image_val"], val.background,
                                                       emb["image_test"], test.background)
    out.update(_silhouettes("image", emb["image_test"], test))
    counts = dataset.train.group_counts()
    out.update({f"n_train_{g}": n for g, n in counts.items()})
    out["n_train"] = len(dataset.train)
    out.update(reference_probes(config, dataset, len(result.tokenizer), device))
    out["majority_share"] = config.data.majority_share()
    out["train_seconds"] = result.seconds
    out["trained_together"] = len(result.trained_with)
    out["steps"] = result.steps
    out["batch_size_used"] = result.batch_size
    out["epochs"] = result.epochs
    out["final_loss"] = result.history[-1]["loss"] if result.history else float("nan")
    for split_name in ("train", "val", "test"):
        split = getattr(dataset, split_name)
        emb[f"animal_{split_name}"] = split.animal.astype(str)
        emb[f"background_{split_name}"] = split.background.astype(str)
    emb["captions_train"] = np.array(dataset.train.captions, dtype=str)
    return Evaluation(out, emb, predictions)
