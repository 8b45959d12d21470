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
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from .captions import caption_attributes, consistency
from .config import ANIMALS, BACKGROUNDS, ExperimentConfig, config_hash
from .data import Dataset, Split, vocabulary_texts
from .losses import CONTRASTIVE_LOSSES, classifier_loss
from .model import DualEncoder, ImageClassifier, member, stack_models
from .tokenizer import Tokenizer

# Fields a group of models trained together may differ in (everything else must match).
PER_MODEL_FIELDS = ("name", "train.seed", "data.data_seed")


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
    """Distinct captions, tokenized once. ids/mask (U, L); attributes (U,), -1 = not stated."""

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

    @property
    def epochs(self) -> float:
        """Passes over the training set that the step budget amounts to."""
        return self.steps * self.batch_size / max(1, self.n_train)


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
    body["data"].pop("data_seed")
    from .config import from_dict
    return config_hash(from_dict(body))


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


def _check_group(configs: list) -> None:
    keys = {group_key(c) for c in configs}
    if len(keys) > 1:
        raise ValueError(f"configs trained together may differ only in {PER_MODEL_FIELDS}; "
                         f"got {len(keys)} different settings")


def _streams(config: ExperimentConfig, n: int, batch: int, device) -> tuple:
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


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list:
    """Weight decay on matmul weights and token embeddings only (not norms, biases, positions,
    class token, logit scale and bias), as in CLIP."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = name.endswith(".weight") and param.ndim == 3 and ".ln" not in name
        (decay if is_matrix or name.endswith("token_embed") else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_group(configs: list, datasets: list, progress: bool = True,
                on_checkpoint: Optional[Callable] = None, checkpoint_every: int = 0) -> list:
    """Train len(configs) independent models together; returns a TrainResult per model, in order.

    The configs may differ only in seed, data_seed and name (`group_key`); each model trains on its
    own dataset. `on_checkpoint(step, model, tokenizer)` is called every `checkpoint_every` steps
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

    splits = [d.train for d in datasets]
    sizes = [len(s) for s in splits]
    batch = min(tc.batch_size, *sizes)
    images = image_tensor(np.concatenate([s.images for s in splits]), device)        # (sum n, 3, S, S)
    animal, background = (torch.cat(t) for t in zip(*[label_tensors(s, device) for s in splits]))
    caption_texts = sorted(set().union(*[s.captions for s in splits]))
    captions = CaptionTable.build(caption_texts, tokenizer, device)
    lookup = {text: i for i, text in enumerate(caption_texts)}
    caption_index = torch.tensor([lookup[c] for s in splits for c in s.captions], device=device)

    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    streams = [_streams(c, n, batch, device) for c, n in zip(configs, sizes)]
    order = torch.stack([s[0] + int(o) for s, o in zip(streams, offsets)])   # (K, steps*batch) global
    flips = torch.stack([s[1] for s in streams])                              # (K, steps*batch)
    shifts = torch.stack([s[2] for s in streams])                             # (K, steps*batch, 2)

    optimizer = torch.optim.AdamW(_parameter_groups(model, tc.weight_decay), lr=tc.lr,
                                  fused=device.type in ("cpu", "cuda"))
    warmup = max(1, int(tc.warmup_frac * tc.steps))
    step_loss = _compiled_loss(tc.compile)
    log_every = max(1, tc.steps // 50)
    histories: list = [[] for _ in configs]
    window = torch.zeros(K, dtype=torch.float64)
    start = time.perf_counter()
    bar = tqdm(range(tc.steps), desc=f"train {config.name or 'run'} x{K}", disable=not progress, leave=False)
    model.train()
    for step in bar:
        lr = tc.lr * lr_factor(step, tc.steps, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        cols = slice(step * batch, (step + 1) * batch)
        idx = order[:, cols].reshape(-1)                                       # (K*batch,)
        x = images[idx]
        if tc.augment:
            x = augment(x, flips[:, cols].reshape(-1), shifts[:, cols].reshape(-1, 2))
        x = x.view(K, batch, *x.shape[1:])
        with _autocast(device, tc.precision):
            losses = step_loss(model, tc.loss, x, animal[idx].view(K, batch), background[idx].view(K, batch),
                               caption_index[idx].view(K, batch), captions)  # (K,)
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
                        tc.steps, sizes[k]) for k in range(K)]


def train(config: ExperimentConfig, dataset: Dataset, progress: bool = True) -> TrainResult:
    """Train one model alone (a group of one)."""
    return train_group([config], [dataset], progress=progress)[0]


class _StepLoss(torch.nn.Module):
    """batch_loss as a module's forward, so that torch.func.functional_call can run it on any
    model's parameters: the compiled graph then depends on shapes only, not on which model."""

    def __init__(self, model: torch.nn.Module, loss_name: str):
        super().__init__()
        self.model, self.loss_name = model, loss_name

    def forward(self, images, animal, background, caption_index, ids, mask, caption_animal, caption_background,
                texts: tuple):
        captions = CaptionTable(list(texts), ids, mask, caption_animal, caption_background)
        return batch_loss(self.model, self.loss_name, images, animal, background, caption_index, captions)


_COMPILED: dict = {}


def _compiled_loss(compile_step: bool, model: Optional[torch.nn.Module] = None) -> Callable:
    """batch_loss, or a torch.compile'd version compiled once per process for each architecture,
    loss and K, and reused for every later group of that shape (the sweep's worker processes)."""
    if not compile_step:
        return batch_loss

    def compiled(model, loss_name, images, animal, background, caption_index, captions):
        key = (repr(model.cfg), model.image_size, getattr(model, "vocab_size", 0), model.k, loss_name,
               images.device.type)
        if key not in _COMPILED:
            # every variant compiles the same function's code: let dynamo keep a graph for each
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            template = _StepLoss(model.empty_like(model.k).to(images.device), loss_name)
            run = torch.compile(lambda params, *args: torch.func.functional_call(template, params, args),
                                dynamic=False)
            _COMPILED[key] = run
        params = {f"model.{name}": p for name, p in model.named_parameters()}
        return _COMPILED[key](params, images, animal, background, caption_index, captions.ids, captions.mask,
                              captions.animal, captions.background, tuple(captions.texts))

    return compiled
