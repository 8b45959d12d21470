"""The trainer: tensors in memory, AdamW with warm-up and cosine decay, deterministic on the CPU."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .captions import caption_attributes, consistency
from .config import ANIMALS, BACKGROUNDS, ExperimentConfig
from .data import Dataset, Split, vocabulary_texts
from .losses import CONTRASTIVE_LOSSES, classifier_loss
from .model import DualEncoder, ImageClassifier
from .tokenizer import Tokenizer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def image_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0).contiguous()


def label_tensors(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    animal = torch.tensor([ANIMALS.index(a) for a in split.animal], device=device)
    background = torch.tensor([BACKGROUNDS.index(b) for b in split.background], device=device)
    return animal, background


@dataclass
class CaptionTable:
    """The distinct training captions, tokenized once. ids/mask (U, L); attributes (U,), -1 = not stated."""

    texts: list
    ids: torch.Tensor
    mask: torch.Tensor
    animal: torch.Tensor
    background: torch.Tensor

    @classmethod
    def build(cls, texts: list, tokenizer: Tokenizer, device: torch.device) -> "CaptionTable":
        ids, mask = tokenizer.encode(texts)
        attributes = np.array([caption_attributes(t) for t in texts]).reshape(-1, 2)
        return cls(list(texts), torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device),
                   torch.from_numpy(attributes[:, 0]).to(device), torch.from_numpy(attributes[:, 1]).to(device))


@dataclass
class TrainResult:
    model: torch.nn.Module
    tokenizer: Tokenizer
    history: list = field(default_factory=list)   # one row per epoch: epoch, loss, lr
    seconds: float = 0.0
    device: str = "cpu"


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def augment(images: torch.Tensor, flip: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Random horizontal flips and translations (edge pixels repeated). images (B, 3, S, S);
    flip (B,) bool; shift (B, 2) int pixels (rows, columns)."""
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    size = images.shape[-1]
    position = torch.arange(size, device=images.device)
    rows = (position[None, :] - shift[:, :1]).clamp(0, size - 1)              # (B, S)
    cols = (position[None, :] - shift[:, 1:]).clamp(0, size - 1)              # (B, S)
    batch = torch.arange(len(images), device=images.device)[:, None, None]
    # (B, S, S, 3) gathered per image, then back to (B, 3, S, S)
    return images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def build_model(config: ExperimentConfig, vocab_size: int) -> torch.nn.Module:
    torch.manual_seed(config.train.seed)
    if config.train.loss == "image_only":
        return ImageClassifier(config.model, config.data.image_size, len(ANIMALS))
    return DualEncoder(config.model, config.data.image_size, vocab_size)


def pair_targets(animal: torch.Tensor, background: torch.Tensor, column_caption: torch.Tensor,
                 captions: CaptionTable) -> torch.Tensor:
    """(B, C) float: 1 where column caption c is true of image b (identical captions: never 0)."""
    return consistency(animal, background, captions.animal[column_caption],
                       captions.background[column_caption]).float()


def batch_loss(model, config: ExperimentConfig, images, animal, background, caption_index,
               captions: CaptionTable) -> torch.Tensor:
    """Loss of one batch. images (B, 3, S, S); animal, background, caption_index (B,)."""
    if config.train.loss == "image_only":
        return classifier_loss(model(images), animal)
    loss_fn, columns = CONTRASTIVE_LOSSES[config.train.loss]
    distinct, inverse = torch.unique(caption_index, return_inverse=True)
    # The text tower runs on the batch's distinct captions only (<= 16), then is gathered.
    text_emb = model.encode_text(captions.ids[distinct], captions.mask[distinct])   # (U, D)
    image_emb = model.encode_image(images)                                          # (B, D)
    if columns == "image":
        text_emb, column_caption = text_emb[inverse], caption_index                 # (B, D)
    else:
        column_caption = distinct
    targets = pair_targets(animal, background, column_caption, captions)
    return loss_fn(image_emb, text_emb, targets, model.logit_scale(), model.logit_bias)


def train(config: ExperimentConfig, dataset: Dataset, progress: bool = True) -> TrainResult:
    """Train the model of `config` on dataset.train; deterministic for config.train.seed on the CPU."""
    tc = config.train
    device = resolve_device(tc.device)
    tokenizer = Tokenizer.from_texts(vocabulary_texts(dataset), config.model.text.context_length)
    model = build_model(config, len(tokenizer)).to(device)

    train_split = dataset.train
    images = image_tensor(train_split.images, device)
    animal, background = label_tensors(train_split, device)
    caption_texts = sorted(set(train_split.captions))
    captions = CaptionTable.build(caption_texts, tokenizer, device)
    caption_index = torch.tensor([caption_texts.index(c) for c in train_split.captions], device=device)

    n = len(train_split)
    batch_size = min(tc.batch_size, n)
    steps_per_epoch = max(1, n // batch_size)  # the remainder (< one batch) is left out that epoch
    total = steps_per_epoch * tc.epochs
    # fused: one kernel for all parameters instead of a loop over ~40 small tensors (+3-4%)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, max(1, int(tc.warmup_frac * total))))
    generator = torch.Generator().manual_seed(tc.seed)

    history, start = [], time.perf_counter()
    bar = tqdm(range(tc.epochs), desc=f"train {config.name or 'run'}", disable=not progress, leave=False)
    for epoch in bar:
        order = torch.randperm(n, generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        max_shift = config.data.image_size // 16
        shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size].to(device)
            batch = images[idx]
            if tc.augment:
                batch = augment(batch, flips[idx.cpu()].to(device), shifts[idx.cpu()].to(device))
            loss = batch_loss(model, config, batch, animal[idx], background[idx], caption_index[idx], captions)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite loss {loss.item()} at epoch {epoch}, step {step} "
                    f"(loss={tc.loss!r}, lr={tc.lr}); try a lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            epoch_loss += loss.item()
        history.append({"epoch": epoch + 1, "loss": epoch_loss / steps_per_epoch,
                        "lr": optimizer.param_groups[0]["lr"]})
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
    model.eval()
    return TrainResult(model, tokenizer, history, time.perf_counter() - start, str(device))
