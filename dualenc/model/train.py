"""The trainer: K independent models in one loop (K = 1 is a model trained alone).

A budget is a number of optimizer steps, the same whatever the data size; each model draws its
batches from its own reshuffled stream of its own training set (permutation after permutation, so
every image is used and none is dropped), with its own flips and shifts. Batches of all K models
are gathered and augmented together, the K forward passes run as one set of batched kernels, and
one fused AdamW step updates every model. The models share nothing: model k's loss depends only on
its own weights and data, and the K losses are summed, so model k's gradients are its own.
Deterministic on the CPU for the same configs.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from tqdm.auto import tqdm

from .batches import (CaptionTable, GroupData, augment, batch_images, batch_loss, image_tensor,  # noqa: F401
                      label_tensors, pair_targets, step_function, streams)
from ..config import ANIMALS, ExperimentConfig, body_hash, config_hash
from ..data.datasets import Dataset, vocabulary_texts
from .towers import DualEncoder, ImageClassifier, member, stack_models
from ..data.tokenizer import Tokenizer

# Fields a group of models trained together may differ in (everything else must match): the seed
# and each model's own data (its draw, bias, captions and sizes); they share image size, model and
# optimisation.
PER_MODEL_DATA_FIELDS = ("bias", "captions", "descriptive_share", "caption_templates", "n_train_per_group",
                         "n_val_per_group", "n_test_per_group", "animal_size", "animal_similarity", "data_seed")
PER_MODEL_FIELDS = ("name", "train.seed", *(f"data.{f}" for f in PER_MODEL_DATA_FIELDS))
# compile="auto" compiles a group whose steps x models reach this. A compiled bf16 step saves ~4 ms
# per model-step here (bench_train.py: bf16+compile+K=5 vs bf16+K=5); that repays a compile served
# from inductor's disk cache (seconds), not a cold one (~25-30 s, the benchmark's first step).
AUTO_COMPILE_MODEL_STEPS = 1500


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


@dataclass
class TrainResult:
    """One trained model (K = 1), however it was trained."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    history: list = field(default_factory=list)   # rows: step, epoch, loss (window mean), lr
    seconds: float = 0.0                          # wall time of the whole group's training
    device: str = "cpu"
    trained_with: list = field(default_factory=list)  # config hashes of the group, in order
    batch_size: int = 0
    steps: int = 0
    n_train: int = 0
    compiled: bool = False                        # whether the step ran torch.compile'd

    @property
    def epochs(self) -> float:
        """Passes over the training set that the step budget amounts to."""
        return self.steps * self.batch_size / max(1, self.n_train)


def lr_factor(step: int, total: int, warmup: int, schedule: str = "cosine", decay: int = 0) -> float:
    """Linear warm-up to 1, then cosine decay to 0 ("cosine"), or constant until the last `decay`
    steps and a linear decay to 0 over them ("wsd": warmup-stable-decay, Hägele et al. 2024)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "wsd":
        return min(1.0, (total - step) / max(1, decay))
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_model(config: ExperimentConfig, vocab_size: int) -> torch.nn.Module:
    """One model (K = 1), initialised from config.train.seed alone."""
    torch.manual_seed(config.train.seed)
    if config.train.loss == "image_only":
        return ImageClassifier(config.model, config.data.image_size, len(ANIMALS))
    return DualEncoder(config.model, config.data.image_size, vocab_size)


def group_key(config: ExperimentConfig) -> str:
    """Configs with the same key can train together: they differ only in PER_MODEL_FIELDS."""
    body = config.to_dict()
    body.pop("name")
    body["train"].pop("seed")
    for name in PER_MODEL_DATA_FIELDS:
        body["data"].pop(name)
    return body_hash(body)


def compiles(config: ExperimentConfig, n_models: int) -> bool:
    """Whether a group of `n_models` models of `config` runs a torch.compile'd step: train.compile,
    or for "auto", when the group is long enough to repay a cold compile and a C++ compiler (which
    inductor needs on the CPU) is on the PATH."""
    choice = config.train.compile
    if choice != "auto":
        return bool(choice)
    long_enough = config.train.steps * n_models >= AUTO_COMPILE_MODEL_STEPS
    return long_enough and any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


def _check_group(configs: list) -> None:
    keys = {group_key(c) for c in configs}
    if len(keys) > 1:
        raise ValueError(f"configs trained together may differ only in {PER_MODEL_FIELDS}; "
                         f"got {len(keys)} different settings")


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list:
    """Weight decay on matmul weights and token embeddings only (not norms, biases, positions,
    class token, logit scale and bias), as in CLIP."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = (name.endswith(".weight") and param.ndim == 3 and ".ln" not in name) or ".stem.weights." in name
        (decay if is_matrix or name.endswith("token_embed") else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_group(configs: list, datasets: list, progress: bool = True,
                on_checkpoint: Optional[Callable] = None, checkpoint_every: int = 0) -> list:
    """Train len(configs) independent models together; returns a TrainResult per model, in order.

    The configs may differ only in seed, name and their data (`group_key`: draw, bias, captions,
    sizes); each model trains on its own dataset. `on_checkpoint(step, model, tokenizer)` is called every `checkpoint_every` steps
    with the stacked model (used to draw learning curves on the validation set)."""
    if len(configs) != len(datasets) or not configs:
        raise ValueError(f"need one dataset per config: got {len(configs)} configs, {len(datasets)} datasets")
    _check_group(configs)
    config = configs[0]
    tc, K = config.train, len(configs)
    device = resolve_device(tc.device)
    vocabulary = sorted(set().union(*[vocabulary_texts(d) for d in datasets]))
    tokenizer = Tokenizer.from_texts(vocabulary, config.model.text.context_length)
    model = stack_models([build_model(c, len(tokenizer)) for c in configs]).to(device)

    data = GroupData.build(configs, [d.train for d in datasets], tokenizer, device)
    batch, sizes = data.batch, data.sizes
    optimizer = torch.optim.AdamW(_parameter_groups(model, tc.weight_decay), lr=tc.lr,
                                  fused=device.type in ("cpu", "cuda"))
    warmup = max(1, int(tc.warmup_frac * tc.steps))
    decay = int(round(tc.decay_frac * tc.steps))
    compiled = compiles(config, K)
    step_losses = step_function(compiled)
    log_every = max(1, tc.steps // 50)
    histories: list = [[] for _ in configs]
    window = torch.zeros(K, dtype=torch.float64)
    start = time.perf_counter()
    bar = tqdm(range(tc.steps), desc=f"train {config.name or 'run'} x{K}", disable=not progress, leave=False)
    model.train()
    for step in bar:
        lr = tc.lr * lr_factor(step, tc.steps, warmup, tc.schedule, decay)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index, flip, shift = data.at(step)
        with _autocast(device, tc.precision):
            losses = step_losses(model, tc.loss, data.pixels, index, flip, shift, data.animal, data.background,
                                 data.caption_index, data.captions)                          # (K,)
        detached = losses.detach().double().cpu()
        if not torch.isfinite(detached).all():
            bad = int((~torch.isfinite(detached)).nonzero()[0])
            raise FloatingPointError(
                f"non-finite loss {detached[bad].item()} at step {step} of model {bad} (seed "
                f"{configs[bad].train.seed}, loss={tc.loss!r}, lr={tc.lr}); try a lower lr")
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        window += detached
        if (step + 1) % log_every == 0 or step + 1 == tc.steps:
            count = (step % log_every) + 1
            for k, history in enumerate(histories):
                history.append({"step": step + 1, "epoch": (step + 1) * batch / sizes[k],
                                "loss": float(window[k]) / count, "lr": lr})
            window.zero_()
            bar.set_postfix(loss=f"{histories[0][-1]['loss']:.4f}")
        if on_checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            model.eval()
            on_checkpoint(step + 1, model, tokenizer)
            model.train()
    seconds = time.perf_counter() - start
    model.eval()
    hashes = [config_hash(c) for c in configs]
    return [TrainResult(member(model, k), tokenizer, histories[k], seconds, str(device), hashes, batch,
                        tc.steps, sizes[k], compiled) for k in range(K)]


def train(config: ExperimentConfig, dataset: Dataset, progress: bool = True) -> TrainResult:
    """Train one model alone (a group of one)."""
    return train_group([config], [dataset], progress=progress)[0]
