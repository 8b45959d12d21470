"""The three image-text losses and the image-only baseline's, for K independent models at once.

Each takes L2-normalised embeddings with a leading model dimension K and a 0/1 `targets` tensor,
and returns the K models' losses (K,): the trainer sums them, so model k's gradients come from
its own loss alone.

targets[k, i, j] = 1 when caption j is true of image i (every attribute it states matches the
image, see `captions.consistency`), else 0. So identical captions are never a negative pair: in
the undescriptive mode, "horse" is a positive for every horse image in the batch.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def _logits(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor,
            bias: Optional[torch.Tensor]) -> torch.Tensor:
    """scale * cosine (+ bias), in fp32. image_emb (K, B, D), text_emb (K, C, D) -> (K, B, C)."""
    cosine = torch.bmm(image_emb, text_emb.transpose(1, 2)).float()
    logits = scale.float()[:, None, None] * cosine
    return logits if bias is None else logits + bias.float()[:, None, None]


def pairwise_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor,
                  scale: torch.Tensor, bias: torch.Tensor,
                  present: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The original study's loss: binary cross-entropy on each (image, caption) pair.

    image_emb (K, B, D); text_emb (K, U, D) holds the training captions; targets (K, B, U);
    present (K, U) bool marks the captions that occur in model k's batch (None: all).
    Positives: each image with its own caption (and any caption true of it). Negatives: each image
    with every distinct caption of the batch of a different label — in the undescriptive mode the
    other animal's caption, in the descriptive mode the other three groups' captions.
    logit = scale * cosine + bias; the loss is the mean BCE over the B x (captions present) pairs.
    """
    bce = F.binary_cross_entropy_with_logits(_logits(image_emb, text_emb, scale, bias), targets.float(),
                                             reduction="none")                       # (K, B, U)
    if present is None:
        return bce.mean(dim=(1, 2))
    weights = present.to(bce.dtype)                                                  # (K, U)
    return (bce * weights[:, None, :]).sum(dim=(1, 2)) / (weights.sum(1) * bce.shape[1])


def _soft_cross_entropy(logits: torch.Tensor, target_rows: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_j p_ij log softmax(logits)_ij. logits, target_rows (K, B, C) -> (K,)."""
    p = target_rows / target_rows.sum(-1, keepdim=True)
    return -(p * logits.log_softmax(dim=-1)).sum(-1).mean(-1)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor,
              scale: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP), label-aware: the target distribution of a row (or column) is
    uniform over the captions (images) true of it, not only the diagonal.

    image_emb (K, B, D); text_emb (K, B, D) is each image's own caption; targets (K, B, B). No bias.
    """
    logits = _logits(image_emb, text_emb, scale, None)                                # (K, B, B)
    targets = targets.float()
    return 0.5 * (_soft_cross_entropy(logits, targets)
                  + _soft_cross_entropy(logits.transpose(1, 2), targets.transpose(1, 2)))


def siglip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor,
                scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """SigLIP: -1/B * sum_ij log sigmoid(z_ij * (scale * cos_ij + bias)), z = +1 positive, -1 negative.

    image_emb (K, B, D); text_emb (K, B, D) is each image's own caption; targets (K, B, B).
    """
    logits = _logits(image_emb, text_emb, scale, bias)                                # (K, B, B)
    signs = 2.0 * targets.float() - 1.0
    return -F.logsigmoid(signs * logits).sum(dim=(1, 2)) / image_emb.shape[1]


# name -> (function, which captions form the columns: every training caption, or one per "image")
CONTRASTIVE_LOSSES = {
    "pairwise": (pairwise_loss, "table"),
    "clip": (clip_loss, "image"),
    "siglip": (siglip_loss, "image"),
}


def classifier_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Image-only baseline: cross-entropy on the animal. logits (K, B, 2), labels (K, B) -> (K,)."""
    log_p = logits.float().log_softmax(dim=-1)
    return -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean(-1)
