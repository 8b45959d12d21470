"""The three image-text losses. Each takes L2-normalised embeddings and a 0/1 `targets` matrix.

targets[i, j] = 1 when caption j is true of image i (every attribute it states matches the image,
see `captions.consistency`), else 0. So identical captions are never a negative pair: in the
undescriptive mode, "horse" is a positive for every horse image in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor,
                  scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The original study's loss: binary cross-entropy on each (image, caption) pair.

    image_emb (B, D); text_emb (U, D) holds the batch's *distinct* captions; targets (B, U).
    Positives: each image with its own caption (and any caption true of it). Negatives: each image
    with every distinct caption of a different label — in the undescriptive mode the other animal's
    caption, in the descriptive mode the other three groups' captions.
    logit = scale * cosine + bias; the loss is the mean BCE over all B x U pairs.
    """
    logits = scale * image_emb @ text_emb.T + bias              # (B, U)
    return F.binary_cross_entropy_with_logits(logits, targets)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor,
              scale: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP), label-aware: the target distribution of a row (or column) is
    uniform over the captions (images) true of it, not only the diagonal.

    image_emb (B, D); text_emb (B, D) is each image's own caption; targets (B, B). No bias.
    """
    logits = scale * image_emb @ text_emb.T                     # (B, B)
    image_to_text = targets / targets.sum(1, keepdim=True)
    text_to_image = targets.T / targets.T.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, image_to_text) + F.cross_entropy(logits.T, text_to_image))


def siglip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor,
                scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """SigLIP: -1/B * sum_ij log sigmoid(z_ij * (scale * cos_ij + bias)), z = +1 positive, -1 negative.

    image_emb (B, D); text_emb (B, D) is each image's own caption; targets (B, B).
    """
    logits = scale * image_emb @ text_emb.T + bias              # (B, B)
    signs = 2.0 * targets - 1.0
    return -F.logsigmoid(signs * logits).sum() / len(image_emb)


# name -> (function, which captions form the columns: "distinct" in the batch or one per "image")
CONTRASTIVE_LOSSES = {
    "pairwise": (pairwise_loss, "distinct"),
    "clip": (clip_loss, "image"),
    "siglip": (siglip_loss, "image"),
}


def classifier_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Image-only baseline: cross-entropy on the animal. logits (B, 2), labels (B,)."""
    return F.cross_entropy(logits, labels)
