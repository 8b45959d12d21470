"""The dual encoder: a ViT image tower, a transformer text tower, and an image-only baseline."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig, TextConfig, VisionConfig


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(round(width * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, heads, T, head_dim); attn_mask: (B, 1, 1, T) True = may attend.
        # Written out rather than F.scaled_dot_product_attention: at these sizes (head_dim 32,
        # 65 tokens) the CPU SDPA kernel is slower than two bmm's (benchmarks/README.md).
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)            # (B, heads, T, T)
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        y = scores.softmax(dim=-1) @ v                                       # (B, heads, T, head_dim)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln_2(x))


class ImageEncoder(nn.Module):
    """ViT: patches -> linear embedding + learned positions (+ class token) -> blocks -> pooled -> projection."""

    def __init__(self, cfg: VisionConfig, image_size: int, embed_dim: int):
        super().__init__()
        if image_size % cfg.patch_size:
            raise ValueError(f"image_size={image_size} is not divisible by "
                             f"model.vision.patch_size={cfg.patch_size}")
        self.cfg = cfg
        n_patches = (image_size // cfg.patch_size) ** 2
        self.patch_embed = nn.Linear(3 * cfg.patch_size ** 2, cfg.width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width)) if cfg.pool == "cls" else None
        n_tokens = n_patches + (1 if cfg.pool == "cls" else 0)
        self.pos_embed = nn.Parameter(torch.randn(1, n_tokens, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.ln_post = nn.LayerNorm(cfg.width)
        self.proj = nn.Linear(cfg.width, embed_dim, bias=False)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        # images (B, 3, S, S) -> (B, n_patches, 3 * p * p)
        p = self.cfg.patch_size
        B, C, S, _ = images.shape
        x = images.reshape(B, C, S // p, p, S // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (S // p) ** 2, C * p * p)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(self.patchify(images))             # (B, n_patches, width)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.ln_post(x[:, 0] if self.cls_token is not None else x.mean(dim=1))
        return self.proj(x)                                      # (B, embed_dim), not normalised


class TextEncoder(nn.Module):
    """Token + position embeddings -> blocks with a padding mask -> mean over real tokens -> projection."""

    def __init__(self, cfg: TextConfig, vocab_size: int, embed_dim: int):
        super().__init__()
        self.token_embed = nn.Embedding(vocab_size, cfg.width)
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.context_length, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.ln_post = nn.LayerNorm(cfg.width)
        self.proj = nn.Linear(cfg.width, embed_dim, bias=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # ids, mask: (B, L); mask True marks real tokens
        x = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]
        attn_mask = mask[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        x = (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return self.proj(self.ln_post(x))                        # (B, embed_dim), not normalised


class DualEncoder(nn.Module):
    """CLIP-style pair of towers with L2-normalised outputs, a learnable clamped logit scale and a bias."""

    def __init__(self, cfg: ModelConfig, image_size: int, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.visual = ImageEncoder(cfg.vision, image_size, cfg.embed_dim)
        self.text = TextEncoder(cfg.text, vocab_size, cfg.embed_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(cfg.init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(cfg.init_logit_bias)))
        _init_weights(self)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(ids, mask), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=self.cfg.max_logit_scale)


class ImageClassifier(nn.Module):
    """Image-only baseline: the same image tower with a linear head over the animal classes."""

    def __init__(self, cfg: ModelConfig, image_size: int, n_classes: int = 2):
        super().__init__()
        self.visual = ImageEncoder(cfg.vision, image_size, cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, n_classes)
        _init_weights(self)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(images), dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.visual(images))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
