"""One training step's inputs and losses for K models: the group's tensors, the batch gather (with
flips and shifts folded into its index), the K losses, and that step compiled with torch.compile.

`GroupData` holds everything a group of K models trains on, in tensors built once: every model's
training images in one (N, S, S, 3) tensor, their labels and caption indices, the table of distinct
captions, and each model's stream of batch indices, flips and shifts for the whole budget. A step
reads one column block of the streams; `step_losses` gathers the batch and returns the K losses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..data.captions import SIZE_CODES, caption_attributes, consistency
from ..config import ANIMALS, BACKGROUNDS, ExperimentConfig
from ..data.datasets import Split
from .losses import CONTRASTIVE_LOSSES, classifier_loss
from ..data.tokenizer import Tokenizer


def image_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    return pixel_tensor(images, device).permute(0, 3, 1, 2).contiguous()


def pixel_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, S, S, 3) float in [-1, 1] (channels last: the batch gather's layout)."""
    return torch.from_numpy(images).to(device).float().div_(127.5).sub_(1.0)


def label_tensors(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(animal, second) label tensors: the second label is the image's background, or its size
    code where its captions name sizes (`captions.SIZE_CODES`)."""
    animal = torch.tensor([ANIMALS.index(a) for a in split.animal], device=device)
    second = [BACKGROUNDS.index(b) for b in split.background] if split.size is None else \
        [SIZE_CODES[s] for s in split.size]
    return animal, torch.tensor(second, device=device)


@dataclass
class CaptionTable:
    """Distinct captions, tokenized once. ids/mask (U, L); attributes (U,), -1 = not stated; `background`
    is the second attribute (a background, or a size code: `captions.SIZE_CODES`)."""

    texts: list
    ids: torch.Tensor
    mask: torch.Tensor
    animal: torch.Tensor
    background: torch.Tensor

    @classmethod
    def build(cls, texts: list, tokenizer: Tokenizer, device: torch.device, sizes: bool = False) -> "CaptionTable":
        """`sizes`: a model of the group names sizes, so size words are read as attributes."""
        ids, mask = tokenizer.encode(texts)
        attributes = np.array([caption_attributes(t, sizes) for t in texts]).reshape(-1, 2)
        return cls(list(texts), torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device),
                   torch.from_numpy(attributes[:, 0]).to(device), torch.from_numpy(attributes[:, 1]).to(device))


def streams(config: ExperimentConfig, n: int, batch: int, device) -> tuple:
    """Model k's reshuffled stream for the whole budget: indices (steps*batch,) into its own
    training set (permutation after permutation), flips (steps*batch,) and shifts (steps*batch, 2)."""
    tc = config.train
    generator = torch.Generator().manual_seed(tc.seed)
    total = tc.steps * batch
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(math.ceil(total / n))])[:total]
    flips = torch.rand(total, generator=generator) < 0.5
    max_shift = config.data.image_size // 16
    shifts = torch.randint(-max_shift, max_shift + 1, (total, 2), generator=generator)
    return order.to(device), flips.to(device), shifts.to(device)


@dataclass
class GroupData:
    """What K models train on, built once. pixels (N, S, S, 3) holds every model's training images
    (model k's at offsets[k]); animal, background, caption_index (N,); order, flips (K, steps*batch)
    and shifts (K, steps*batch, 2) are the models' streams, order already offset into pixels."""

    pixels: torch.Tensor
    animal: torch.Tensor
    background: torch.Tensor
    caption_index: torch.Tensor
    captions: CaptionTable
    order: torch.Tensor
    flips: torch.Tensor
    shifts: torch.Tensor
    batch: int
    sizes: list
    augment: bool

    @classmethod
    def build(cls, configs: list, splits: list, tokenizer: Tokenizer, device: torch.device) -> "GroupData":
        sizes = [len(s) for s in splits]
        batch = min(configs[0].train.batch_size, *sizes)
        pixels = pixel_tensor(np.concatenate([s.images for s in splits]), device)
        animal, background = (torch.cat(t) for t in zip(*[label_tensors(s, device) for s in splits]))
        # one table of the captions of every model (models with other caption modes share it: a
        # model's loss reads only its own captions' rows, and its clip/siglip columns are masked
        # to the captions of its own batch)
        texts = sorted(set().union(*[s.captions for s in splits]))
        lookup = {text: i for i, text in enumerate(texts)}
        caption_index = torch.tensor([lookup[c] for s in splits for c in s.captions], device=device)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        per_model = [streams(c, n, batch, device) for c, n in zip(configs, sizes)]
        order = torch.stack([s[0] + int(o) for s, o in zip(per_model, offsets)])
        table = CaptionTable.build(texts, tokenizer, device, sizes=any(s.size is not None for s in splits))
        return cls(pixels, animal, background, caption_index, table, order,
                   torch.stack([s[1] for s in per_model]), torch.stack([s[2] for s in per_model]), batch, sizes,
                   configs[0].train.augment)

    def at(self, step: int) -> tuple:
        """The step's batch: index, flip (K, B) and shift (K, B, 2); flip and shift None without augment."""
        cols = slice(step * self.batch, (step + 1) * self.batch)
        # contiguous: the same strides whatever the budget, so a compiled step is reused across groups
        index = self.order[:, cols].contiguous()
        if not self.augment:
            return index, None, None
        return index, self.flips[:, cols].contiguous(), self.shifts[:, cols].contiguous()


def pixel_indices(size: int, flip: torch.Tensor, shift: torch.Tensor) -> tuple:
    """Rows (B, S) and columns (B, S) to read so that an image comes out flipped (when `flip`) and
    then translated by `shift` (rows, columns; edge pixels repeated): flip (B,) bool, shift (B, 2)."""
    position = torch.arange(size, device=shift.device)
    rows = (position[None, :] - shift[:, :1]).clamp(0, size - 1)
    cols = (position[None, :] - shift[:, 1:]).clamp(0, size - 1)
    return rows, torch.where(flip[:, None], size - 1 - cols, cols)


def batch_images(pixels: torch.Tensor, index: torch.Tensor, flip: Optional[torch.Tensor] = None,
                 shift: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One gather: images `index` (B,) of `pixels` (N, S, S, 3), flipped and shifted when flip and
    shift are given, as (B, 3, S, S)."""
    if flip is None:
        return pixels[index].permute(0, 3, 1, 2)
    rows, cols = pixel_indices(pixels.shape[1], flip, shift)
    return pixels[index[:, None, None], rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def augment(images: torch.Tensor, flip: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Random horizontal flips and translations (edge pixels repeated). images (B, 3, S, S);
    flip (B,) bool; shift (B, 2) int pixels (rows, columns)."""
    return batch_images(images.permute(0, 2, 3, 1), torch.arange(len(images), device=images.device), flip, shift)


def pair_targets(animal: torch.Tensor, background: torch.Tensor, column_caption: torch.Tensor,
                 captions: CaptionTable) -> torch.Tensor:
    """(..., B, C) float: 1 where column caption c is true of image b (identical captions: never 0).
    animal, background (..., B); column_caption (..., C) indexes the caption table."""
    return consistency(animal, background, captions.animal[column_caption],
                       captions.background[column_caption]).float()


def batch_loss(model, loss_name: str, images, animal, background, caption_index,
               captions: CaptionTable) -> torch.Tensor:
    """The K models' losses (K,). images (K, B, 3, S, S); animal, background, caption_index (K, B)."""
    if loss_name == "image_only":
        return classifier_loss(model(images), animal)
    loss_fn, columns = CONTRASTIVE_LOSSES[loss_name]
    K = images.shape[0]
    # The text tower runs on the table of distinct training captions (<= 16) for all K models.
    table_emb = model.encode_text(captions.ids.expand(K, -1, -1), captions.mask.expand(K, -1, -1))  # (K, U, D)
    image_emb = model.encode_image(images)                                                      # (K, B, D)
    scale, bias = model.logit_scale(), model.logit_bias
    if columns == "image":
        text_emb = torch.gather(table_emb, 1, caption_index[..., None].expand(-1, -1, table_emb.shape[-1]))
        return loss_fn(image_emb, text_emb, pair_targets(animal, background, caption_index, captions),
                       scale, bias)
    everything = torch.arange(len(captions.texts), device=images.device).expand(K, -1)         # (K, U)
    present = torch.zeros(K, len(captions.texts), dtype=torch.bool, device=images.device)
    present.scatter_(1, caption_index, True)
    return loss_fn(image_emb, table_emb, pair_targets(animal, background, everything, captions),
                   scale, bias, present)


def step_losses(model, loss_name: str, pixels, index, flip, shift, animal, background, caption_index,
                captions: CaptionTable) -> torch.Tensor:
    """The K losses (K,) of one step: the batch gathered from the group's tensors (`GroupData`),
    then `batch_loss`. index, flip (K, B); shift (K, B, 2); flip and shift None: no augmentation."""
    K, B = index.shape
    flat = index.reshape(-1)
    images = batch_images(pixels, flat, None if flip is None else flip.reshape(-1),
                          None if shift is None else shift.reshape(-1, 2))
    return batch_loss(model, loss_name, images.reshape(K, B, *images.shape[1:]), animal[flat].view(K, B),
                      background[flat].view(K, B), caption_index[flat].view(K, B), captions)


class _StepModule(torch.nn.Module):
    """step_losses as a module's forward, so that torch.func.functional_call can run it on any
    model's parameters: the compiled graph then depends on shapes only, not on which model."""

    def __init__(self, model: torch.nn.Module, loss_name: str):
        super().__init__()
        self.model, self.loss_name = model, loss_name

    def forward(self, pixels, index, flip, shift, animal, background, caption_index, ids, mask, caption_animal,
                caption_background, texts: tuple):
        captions = CaptionTable(list(texts), ids, mask, caption_animal, caption_background)
        return step_losses(self.model, self.loss_name, pixels, index, flip, shift, animal, background,
                           caption_index, captions)


_COMPILED: dict = {}


def step_function(compile_step: bool) -> Callable:
    """step_losses, or a torch.compile'd version compiled once per process for each architecture,
    loss and K, and reused for every later group of that shape (the sweep's worker processes). The
    number of training images is a dynamic dimension, so groups of other data sizes reuse it."""
    if not compile_step:
        return step_losses

    def compiled(model, loss_name, pixels, index, flip, shift, animal, background, caption_index, captions):
        key = (repr(model.cfg), model.image_size, getattr(model, "vocab_size", 0), model.k, loss_name,
               pixels.device.type, flip is None)
        if key not in _COMPILED:
            # every variant compiles the same function's code: let dynamo keep a graph for each
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            template = _StepModule(model.empty_like(model.k).to(pixels.device), loss_name)
            _COMPILED[key] = torch.compile(lambda params, *args: torch.func.functional_call(template, params, args),
                                           dynamic=False)
        for tensor in (pixels, animal, background, caption_index):
            torch._dynamo.mark_dynamic(tensor, 0)
        params = {f"model.{name}": p for name, p in model.named_parameters()}
        return _COMPILED[key](params, pixels, index, flip, shift, animal, background, caption_index, captions.ids,
                              captions.mask, captions.animal, captions.background, tuple(captions.texts))

    return compiled
