"""The training step bench_train.py times: `dualenc.model.train.train_group`'s loop body, on prepared data.

`Workload` is train_group's setup for K models (seeds 0..K-1) on synthetic training sets shaped like
the default one; `Contender` is its loop body (LR schedule, gather and augment, `batch_loss` or the
compiled step under autocast, the finite check, backward, one fused AdamW step over the stacked
parameters), one step per call, so that several contenders can be timed interleaved.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from dualenc.data.captions import training_captions
from dualenc.config import GROUPS, ExperimentConfig
from dualenc.data.datasets import Dataset, Split, vocabulary_texts
from dualenc.model.towers import stack_models
from dualenc.data.tokenizer import Tokenizer
from dualenc.model.batches import GroupData, step_function
from dualenc.model.train import _autocast, _parameter_groups, build_model, lr_factor

DEVICE = torch.device("cpu")
SCHEDULE = (10_000, 1_000)  # LR schedule (total, warm-up steps): the value does not change the speed
CYCLE = 50                  # steps of batch streams prepared; the timed loop cycles through them


def synthetic_dataset(config: ExperimentConfig) -> Dataset:
    """A training split shaped like the config's (groups, sizes, captions) with random pixels: the speed
    does not depend on what the images show. Val and test are the same split (the trainer ignores them)."""
    data = config.resolved_data()
    per_group = max(data.n_train_per_group, -(-config.train.batch_size // len(GROUPS)))
    animal = np.repeat([a for a, _ in GROUPS], per_group)
    background = np.repeat([b for _, b in GROUPS], per_group)
    rng = np.random.default_rng(data.draw_seed)
    pixels = rng.integers(0, 256, (len(animal), data.image_size, data.image_size, 3), dtype=np.uint8)
    captions = training_captions(animal, background, data, data.draw_seed)
    split = Split(pixels, animal, background, captions, np.array(["synthetic"] * len(animal)))
    return Dataset(split, split, split)


class Workload:
    """train_group's setup for K models (seeds 0..K-1), each on its own synthetic training set: all K
    sets' images in one tensor, labels, the caption table, and each model's stream of batch indices,
    flips and shifts for CYCLE steps."""

    def __init__(self, config: ExperimentConfig, k: int):
        self.config, self.k = config, k
        self.configs = [config.replace(seed=s, steps=CYCLE) for s in range(k)]
        self.datasets = [synthetic_dataset(c) for c in self.configs]
        vocabulary = sorted(set().union(*[vocabulary_texts(d) for d in self.datasets]))
        self.tokenizer = Tokenizer.from_texts(vocabulary, config.model.text.context_length)
        self.data = GroupData.build(self.configs, [d.train for d in self.datasets], self.tokenizer, DEVICE)
        self.batch, self.captions = self.data.batch, self.data.captions

    def model(self) -> torch.nn.Module:
        """The K models stacked, as train_group builds them (build_model with seeds 0..K-1)."""
        return stack_models([build_model(c, len(self.tokenizer)) for c in self.configs]).to(DEVICE)

    def batch_at(self, step: int) -> tuple:
        """step_losses' inputs at `step` (cycling through CYCLE prepared steps)."""
        index, flip, shift = self.data.at(step % CYCLE)
        d = self.data
        return d.pixels, index, flip, shift, d.animal, d.background, d.caption_index, d.captions


class Contender:
    """One timed training loop: train_group's loop body on a workload, for a precision ("fp32" | "bf16")
    and eager or compiled loss. `model` replaces the workload's own (a reference implementation)."""

    def __init__(self, name: str, work: Workload, precision: str = "fp32", compile_step: bool = False,
                 model: torch.nn.Module | None = None):
        self.name, self.work, self.precision, self.compiled = name, work, precision, compile_step
        self.model = (work.model() if model is None else model.to(DEVICE)).train()
        tc = work.config.train
        self.optimizer = torch.optim.AdamW(_parameter_groups(self.model, tc.weight_decay), lr=tc.lr, fused=True)
        self.step_loss = step_function(compile_step)
        self.steps_done = 0

    @property
    def images_per_step(self) -> int:
        return self.work.k * self.work.batch

    def step(self) -> None:
        tc = self.work.config.train
        lr = tc.lr * lr_factor(self.steps_done, *SCHEDULE)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with _autocast(DEVICE, self.precision):
            losses = self.step_loss(self.model, tc.loss, *self.work.batch_at(self.steps_done))   # (K,)
        detached = losses.detach().double().cpu()
        if not torch.isfinite(detached).all():
            raise FloatingPointError(f"{self.name}: non-finite loss at step {self.steps_done}")
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        self.steps_done += 1

    def run(self, steps: int) -> float:
        """Wall seconds of `steps` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - start
