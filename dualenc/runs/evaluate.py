"""Evaluation of a trained model on the balanced splits: embeddings, predictions and metrics.

`RunOutputs` holds what a model gives on the splits (embeddings, zero-shot or classifier
predictions, probes), each computed on first use and kept; every metric of the registry
(`metric_registry`) is a function of it, and `evaluate` walks the registry to fill a run's
metrics.json. The metric functions themselves live in `metrics` (numpy only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from . import metrics
from ..data.captions import ZERO_SHOT_CLASS_PROMPTS, ZERO_SHOT_POOLED_PROMPTS, ZERO_SHOT_SIZE_PROMPTS
from ..config import ANIMALS, ExperimentConfig
from ..data.datasets import SPLITS, Dataset, Split
from .metric_registry import compute_metrics
from ..data.tokenizer import Tokenizer
from ..model.train import TrainResult, image_tensor

# Prompt set whose zero-shot accuracy is the headline, by training caption mode:
# a model is asked in the words it was trained with.
HEADLINE_PROMPTS = {"undescriptive": "class", "descriptive": "pooled", "background": "class", "size": "size"}
# Prompt set -> (the prompts of each class, how a class's prompts are pooled: metrics.PROMPT_POOLS).
# "class": the bare class names; "pooled": the four descriptive captions, an image takes the animal
# of its best-matching caption (see metrics.zero_shot_scores). Every model with a text tower is
# asked with these; OWN_PROMPT_SETS only by the models trained on them (their words are in no
# other model's vocabulary): "size", the size control's four captions, pooled like "pooled".
PROMPT_SETS = {"class": (ZERO_SHOT_CLASS_PROMPTS, "mean"), "pooled": (ZERO_SHOT_POOLED_PROMPTS, "max")}
OWN_PROMPT_SETS = {"size": (ZERO_SHOT_SIZE_PROMPTS, "max")}
CLASSIFIER = "classifier"  # an image-only model's "prompt set": its classifier head


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
def classifier_predict(model, split: Split, device: str, batch_size: int = 256) -> np.ndarray:
    """An image-only model's predicted animal index per image: (N,)."""
    out = [model(image_tensor(split.images[i:i + batch_size], torch.device(device))[None])[0].argmax(1).cpu()
           for i in range(0, len(split), batch_size)]
    return torch.cat(out).numpy()


PIXEL_POOL = 4  # the raw-pixel probe reads 4x4-averaged pixels: 16x16x3 = 768 features at 64 px


def pixels(split: Split, pool: int = PIXEL_POOL) -> np.ndarray:
    """Raw pixels as features: (N, (S/pool)^2 * 3) in [0, 1], averaged over pool x pool blocks
    (a logistic regression on all 12288 pixels of a 64 px image takes ~10 s and reads no better)."""
    n, s = len(split), split.images.shape[1]
    pool = pool if s % pool == 0 else 1
    blocks = split.images.reshape(n, s // pool, pool, s // pool, pool, 3).mean(axis=(2, 4))
    return blocks.reshape(n, -1) / 255.0


_PIXEL_PROBES: dict = {}  # the raw-pixel probes depend on the validation and test images only


def _pixel_probe(dataset: Dataset, label: str) -> float:
    key = (hash((tuple(dataset.val.source), tuple(dataset.test.source), dataset.val.images.shape)), label)
    if key not in _PIXEL_PROBES:
        _PIXEL_PROBES[key] = metrics.linear_probe(pixels(dataset.val), getattr(dataset.val, label),
                                                  pixels(dataset.test), getattr(dataset.test, label))
    return _PIXEL_PROBES[key]


class RunOutputs:
    """What a trained model gives on a dataset, each piece computed on first use and then kept:
    what every registered metric is computed from. `training` (how the model was trained) is read
    by the training-run metrics only; a transfer to a folder has only a test split."""

    def __init__(self, config: ExperimentConfig, dataset: Dataset, model, tokenizer: Tokenizer,
                 device: str = "cpu", training: Optional[TrainResult] = None):
        self.config, self.dataset, self.model, self.tokenizer = config, dataset, model, tokenizer
        self.device, self.training = device, training
        self.has_text = config.train.loss != "image_only"
        self.headline_prompts = HEADLINE_PROMPTS[config.data.captions] if self.has_text else CLASSIFIER
        self.prompt_sets = (tuple(PROMPT_SETS) + ((self.headline_prompts,) if self.headline_prompts in OWN_PROMPT_SETS
                                                  else ())) if self.has_text else (CLASSIFIER,)
        self._kept: dict = {}

    @classmethod
    def of(cls, config: ExperimentConfig, dataset: Dataset, result: TrainResult) -> "RunOutputs":
        return cls(config, dataset, result.model, result.tokenizer, result.device, result)

    def _once(self, key: tuple, compute: Callable):
        if key not in self._kept:
            self._kept[key] = compute()
        return self._kept[key]

    def split(self, name: str) -> Split:
        return getattr(self.dataset, name)

    def image_embeddings(self, split: str) -> np.ndarray:
        return self._once(("image", split), lambda: embed_images(self.model, self.split(split), self.device))

    def prompt_embeddings(self, prompt_set: str) -> list:
        """One (P_k, D) array of prompt embeddings per class (ANIMALS order)."""
        prompts, _ = {**PROMPT_SETS, **OWN_PROMPT_SETS}[prompt_set]
        return self._once(("prompts", prompt_set),
                          lambda: [embed_texts(self.model, self.tokenizer, p, self.device) for p in prompts])

    def caption_embeddings(self) -> np.ndarray:
        """The training captions' embeddings: (N_train, D)."""
        return self._once(("captions",), lambda: embed_texts(self.model, self.tokenizer,
                                                             self.dataset.train.captions, self.device))

    def predicted(self, prompts: str, split: str = "test") -> np.ndarray:
        """Predicted animal index per image of `split`; prompts: a prompt set, CLASSIFIER or "headline"."""
        prompts = self.headline_prompts if prompts == "headline" else prompts
        if prompts == CLASSIFIER:
            return self._once(("predicted", prompts, split),
                              lambda: classifier_predict(self.model, self.split(split), self.device))
        return self._once(("predicted", prompts, split), lambda: metrics.zero_shot_predict(
            self.image_embeddings(split), self.prompt_embeddings(prompts),
            pool={**PROMPT_SETS, **OWN_PROMPT_SETS}[prompts][1]))

    def group_accuracy(self, prompts: str, split: str = "test") -> dict:
        """Accuracy of `predicted(prompts, split)` in each group (metrics.group_accuracy)."""
        data = self.split(split)
        return self._once(("group_accuracy", prompts, split), lambda: metrics.group_accuracy(
            self.predicted(prompts, split) == np.array([ANIMALS.index(a) for a in data.animal]),
            data.animal, data.background))

    def accuracy_summary(self, prompts: str, split: str = "test") -> dict:
        return self._once(("summary", prompts, split),
                          lambda: metrics.accuracy_summary(self.group_accuracy(prompts, split)))

    def probe(self, target: str, features: str = "image") -> float:
        """Test accuracy of a linear probe for `target` ("animal" or "background") fit on the
        validation split; features: "image" (the trained encoder's embeddings), "pixels" (raw
        pixels) or "random" (an untrained encoder of the same architecture and seed)."""
        if features == "pixels":
            return _pixel_probe(self.dataset, target)
        embed = self.image_embeddings if features == "image" else self._untrained_image_embeddings
        val, test = self.dataset.val, self.dataset.test
        return self._once(("probe", target, features), lambda: metrics.linear_probe(
            embed("val"), getattr(val, target), embed("test"), getattr(test, target)))

    def _untrained_image_embeddings(self, split: str) -> np.ndarray:
        from ..model.train import build_model

        untrained = self._once(("untrained",), lambda: build_model(self.config, len(self.tokenizer))
                               .to(self.device).eval())
        return self._once(("untrained", split), lambda: embed_images(untrained, self.split(split), self.device))

    def silhouettes(self, embeddings: str) -> dict:
        """metrics.silhouettes of the test images' ("image") or the training captions' ("text") embeddings."""
        data, emb = ((self.dataset.test, lambda: self.image_embeddings("test")) if embeddings == "image"
                     else (self.dataset.train, self.caption_embeddings))
        return self._once(("silhouettes", embeddings),
                          lambda: metrics.silhouettes(emb(), data.animal, data.background))

    def train_counts(self) -> dict:
        """Training images per group, as loaded."""
        return self._once(("train_counts",), self.dataset.train.group_counts)

    def embeddings(self) -> dict:
        """What a run stores in embeddings.npz."""
        emb = {f"image_{name}": self.image_embeddings(name) for name in SPLITS}
        if self.has_text:
            emb.update({f"prompt_{name}": np.concatenate(self.prompt_embeddings(name)) for name in self.prompt_sets})
            emb["text_train"] = self.caption_embeddings()
        for name in SPLITS:
            emb[f"animal_{name}"] = self.split(name).animal.astype(str)
            emb[f"background_{name}"] = self.split(name).background.astype(str)
        emb["captions_train"] = np.array(self.dataset.train.captions, dtype=str)
        return emb

    def predictions(self, split: str = "test") -> pd.DataFrame:
        """One row per image of `split`: labels, source, each prompt set's prediction, and whether
        the headline prediction is right."""
        data = self.split(split)
        table = pd.DataFrame({"animal": data.animal, "background": data.background,
                              "group": data.group, "source": data.source})
        for name in self.prompt_sets:
            table[f"pred_{name}"] = [ANIMALS[k] for k in self.predicted(name, split)]
        table["correct"] = table[f"pred_{self.headline_prompts}"] == table["animal"]
        return table


def evaluate(config: ExperimentConfig, dataset: Dataset, result: TrainResult) -> Evaluation:
    """Every registered metric of the run (`metric_registry`), its embeddings and test predictions."""
    result.model.eval()
    outputs = RunOutputs.of(config, dataset, result)
    return Evaluation(compute_metrics(outputs), outputs.embeddings(), outputs.predictions())
