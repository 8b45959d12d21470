"""The dual encoder (a ViT image tower and a transformer text tower) and the image-only baseline,
written for K independent models at once.

Every weight carries a leading model dimension K: a linear layer holds (K, in, out) and runs as one
batched matmul for all K models, so K seeds of one setting train in one loop with one set of
kernels (the per-op overhead that bounds a model this small is paid once, not K times). The models
share nothing: model k's outputs depend only on model k's weights and inputs. K = 1 is a model
trained alone, through the same code. `member(k)` copies model k out as a K = 1 model.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig, TextConfig, VisionConfig


class StackedLinear(nn.Module):
    """K independent linear layers: x (K, N, in) -> (K, N, out)."""

    def __init__(self, k: int, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, n_in, n_out))
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.bias = nn.Parameter(torch.zeros(k, 1, n_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


class StackedLayerNorm(nn.Module):
    """K independent LayerNorms over the last dimension: x (K, ..., C)."""

    def __init__(self, k: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(k, 1, width))
        self.bias = nn.Parameter(torch.zeros(k, 1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = F.layer_norm(x.reshape(shape[0], -1, shape[-1]), shape[-1:])
        return torch.addcmul(self.bias, y, self.weight).view(shape)


class Block(nn.Module):
    """Pre-norm transformer block for K models: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, k: int, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.ln_1 = StackedLayerNorm(k, width)
        self.qkv = StackedLinear(k, width, 3 * width)
        self.proj = StackedLinear(k, width, width)
        self.ln_2 = StackedLayerNorm(k, width)
        hidden = int(round(width * mlp_ratio))
        self.fc = StackedLinear(k, width, hidden)
        self.fc_out = StackedLinear(k, hidden, width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        K, B, T, C = x.shape
        h = self.heads
        qkv = self.qkv(self.ln_1(x).view(K, B * T, C))                       # (K, B*T, 3C)
        q, k, v = qkv.view(K * B, T, 3, h, C // h).permute(2, 0, 3, 1, 4)    # each (K*B, h, T, C/h)
        # Written out rather than F.scaled_dot_product_attention: at these sizes the CPU SDPA
        # kernel is slower than two batched matmuls (benchmarks/README.md).
        scores = (q * (C // h) ** -0.5) @ k.transpose(-2, -1)                # (K*B, h, T, T)
        if attn_mask is not None:                                            # (K*B, 1, 1, T), True = attend
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(K, B * T, C)
        x = x + self.proj(y).view(K, B, T, C)
        hidden = F.gelu(self.fc(self.ln_2(x).view(K, B * T, C)), approximate="tanh")
        return x + self.fc_out(hidden).view(K, B, T, C)


class StackedConvStem(nn.Module):
    """K independent convolutional stems (Xiao et al. 2021, "Early convolutions help transformers see
    better"): 3x3 stride-2 convolutions with ReLU halve the image until one position is left per
    patch, then a 1x1 convolution maps to the tower's width. images (K, B, 3, S, S) -> (K, B, P, W)."""

    def __init__(self, k: int, patch_size: int, width: int):
        super().__init__()
        halvings = int(math.log2(patch_size))
        channels = [3] + [max(8, width >> (halvings - 1 - i)) for i in range(halvings)] + [width]
        # weights (K, out, in, kh, kw): run as one grouped convolution, model k is group k
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(k, c_out, c_in, size, size))
            for c_in, c_out, size in zip(channels[:-1], channels[1:], [3] * halvings + [1]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(k, c_out)) for c_out in channels[1:])
        for weight in self.weights:
            fan_in = weight.shape[2] * weight.shape[3] * weight.shape[4]
            nn.init.normal_(weight, std=math.sqrt(2.0 / fan_in))
        self.k = k

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        K, B, C, S, _ = images.shape
        x = images.transpose(0, 1).reshape(B, K * C, S, S)                     # (B, K*3, S, S)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = F.conv2d(x, weight.flatten(0, 1), bias.flatten(), stride=1 if i == last else 2,
                         padding=0 if i == last else 1, groups=K)
            if i < last:
                x = F.relu(x)
        width, side = x.shape[1] // K, x.shape[-1]
        return x.view(B, K, width, side * side).permute(1, 0, 3, 2)            # (K, B, P, W)


class ImageEncoder(nn.Module):
    """ViT: patches -> linear embedding + learned positions (+ class token) -> blocks -> pooled -> projection."""

    def __init__(self, k: int, cfg: VisionConfig, image_size: int, embed_dim: int):
        super().__init__()
        if image_size % cfg.patch_size:
            raise ValueError(f"image_size={image_size} is not divisible by "
                             f"model.vision.patch_size={cfg.patch_size}")
        self.cfg = cfg
        n_patches = (image_size // cfg.patch_size) ** 2
        if cfg.stem == "conv":
            self.stem = StackedConvStem(k, cfg.patch_size, cfg.width)
        else:
            self.patch_embed = StackedLinear(k, 3 * cfg.patch_size ** 2, cfg.width)
        self.cls_token = nn.Parameter(torch.zeros(k, 1, 1, cfg.width)) if cfg.pool == "cls" else None
        n_tokens = n_patches + (1 if cfg.pool == "cls" else 0)
        self.pos_embed = nn.Parameter(torch.randn(k, 1, n_tokens, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(Block(k, cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.ln_post = StackedLayerNorm(k, cfg.width)
        self.proj = StackedLinear(k, cfg.width, embed_dim, bias=False)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        # images (K, B, 3, S, S) -> (K, B * n_patches, 3 * p * p)
        p = self.cfg.patch_size
        K, B, C, S, _ = images.shape
        x = images.reshape(K, B, C, S // p, p, S // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(K, B * (S // p) ** 2, C * p * p)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        K, B = images.shape[:2]
        if self.cfg.stem == "conv":
            x = self.stem(images)                                                      # (K, B, P, W)
        else:
            x = self.patch_embed(self.patchify(images)).view(K, B, -1, self.cfg.width)  # (K, B, P, W)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(K, B, 1, -1), x], dim=2)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.ln_post(x[:, :, 0] if self.cls_token is not None else x.mean(dim=2))  # (K, B, W)
        return self.proj(x)                                       # (K, B, embed_dim), not normalised


class TextEncoder(nn.Module):
    """Token + position embeddings -> blocks with a padding mask -> mean over real tokens -> projection."""

    def __init__(self, k: int, cfg: TextConfig, vocab_size: int, embed_dim: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.token_embed = nn.Parameter(torch.randn(k, vocab_size, cfg.width) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(k, 1, cfg.context_length, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(Block(k, cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.ln_post = StackedLayerNorm(k, cfg.width)
        self.proj = StackedLinear(k, cfg.width, embed_dim, bias=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # ids, mask: (K, U, L), mask True marks real tokens
        K, U, L = ids.shape
        # a one-hot matmul instead of an embedding gather: one batched kernel, deterministic backward
        one_hot = F.one_hot(ids.reshape(K, U * L), self.vocab_size).to(self.token_embed.dtype)
        x = torch.bmm(one_hot, self.token_embed).view(K, U, L, -1) + self.pos_embed[:, :, :L]
        attn_mask = mask.reshape(K * U, 1, 1, L)
        for block in self.blocks:
            x = block(x, attn_mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        x = (x * weights).sum(2) / weights.sum(2).clamp_min(1.0)                     # (K, U, W)
        return self.proj(self.ln_post(x))                         # (K, U, embed_dim), not normalised


class DualEncoder(nn.Module):
    """K CLIP-style pairs of towers with L2-normalised outputs, learnable clamped logit scales and biases."""

    def __init__(self, cfg: ModelConfig, image_size: int, vocab_size: int, k: int = 1):
        super().__init__()
        self.cfg, self.image_size, self.vocab_size, self.k = cfg, image_size, vocab_size, k
        self.visual = ImageEncoder(k, cfg.vision, image_size, cfg.embed_dim)
        self.text = TextEncoder(k, cfg.text, vocab_size, cfg.embed_dim)
        self.log_logit_scale = nn.Parameter(torch.full((k,), math.log(cfg.init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.full((k,), float(cfg.init_logit_bias)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images (K, B, 3, S, S) -> (K, B, D), unit norm."""
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (K, U, L) -> (K, U, D), unit norm."""
        return F.normalize(self.text(ids, mask), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        """(K,) scales, clamped to cfg.max_logit_scale."""
        return self.log_logit_scale.exp().clamp(max=self.cfg.max_logit_scale)

    def empty_like(self, k: int) -> "DualEncoder":
        return DualEncoder(self.cfg, self.image_size, self.vocab_size, k)


class ImageClassifier(nn.Module):
    """K image-only baselines: the same image tower with a linear head over the animal classes."""

    def __init__(self, cfg: ModelConfig, image_size: int, n_classes: int = 2, k: int = 1):
        super().__init__()
        self.cfg, self.image_size, self.n_classes, self.k = cfg, image_size, n_classes, k
        self.visual = ImageEncoder(k, cfg.vision, image_size, cfg.embed_dim)
        self.head = StackedLinear(k, cfg.embed_dim, n_classes)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(images), dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (K, B, 3, S, S) -> logits (K, B, n_classes)."""
        return self.head(self.visual(images))

    def empty_like(self, k: int) -> "ImageClassifier":
        return ImageClassifier(self.cfg, self.image_size, self.n_classes, k)


def stack_models(models: list) -> nn.Module:
    """One K-model module from K single models (K = 1 each) of the same architecture."""
    stacked = models[0].empty_like(len(models))
    with torch.no_grad():
        for name, param in stacked.named_parameters():
            param.copy_(torch.cat([dict(m.named_parameters())[name] for m in models]))
    return stacked


def member(model: nn.Module, k: int) -> nn.Module:
    """A K = 1 copy of model k of a stacked module (its weights copied, not shared)."""
    single = model.empty_like(1)
    with torch.no_grad():
        for name, param in single.named_parameters():
            param.copy_(dict(model.named_parameters())[name][k:k + 1])
    return single.train(model.training)


def count_parameters(module: nn.Module) -> int:
    """Parameters of one model (a stacked module's total divided by K)."""
    return sum(p.numel() for p in module.parameters()) // getattr(module, "k", 1)
