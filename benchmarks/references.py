"""Reference towers of the same sizes as ours, for bench_train.py: open_clip's VisionTransformer +
TextTransformer, and timm's VisionTransformer with our text tower. Neither library is a project
dependency; each loader returns (None, why) when it is missing.

The reference models are single models (K = 1) behind the interface `dualenc.model.train.batch_loss`
uses: inputs and outputs carry a leading model dimension of size 1.
"""
from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import math
import subprocess
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

from dualenc.config import ExperimentConfig
from dualenc.model.towers import TextEncoder

INSTALL_HINT = ("pip install --no-deps --target /tmp/openclip_pkgs open_clip_torch, then run with "
                "PYTHONPATH=/tmp/openclip_pkgs")


class _Placeholder(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f"torchvision stand-in: {cls.__name__} is not available in this benchmark")


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _TorchvisionStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers every `torchvision[.x]` import with an empty module whose attributes are placeholders:
    enough for `import timm` and `open_clip.transformer`, which only name torchvision classes."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


@functools.lru_cache(maxsize=None)
def torchvision_note() -> str:
    """Use the real torchvision if it imports beside this torch (checked in a subprocess: a failed import
    leaves operator registrations behind); else answer torchvision imports with the stand-in."""
    if "torchvision" in sys.modules:
        return "real (already imported)"
    if importlib.util.find_spec("torchvision") is None:
        why = "torchvision is not installed"
    elif subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True,
                        timeout=300).returncode == 0:
        return "real"
    else:
        why = "the installed torchvision does not import beside this torch"
    sys.meta_path.insert(0, _TorchvisionStandIn())
    return f"stand-in ({why})"


def load_open_clip_transformer():
    """open_clip.transformer without running open_clip/__init__.py (which imports the whole package)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None, f"open_clip not available ({INSTALL_HINT})"
    if "open_clip" not in sys.modules:
        package = types.ModuleType("open_clip")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["open_clip"] = package
    torchvision_note()
    try:
        module = importlib.import_module("open_clip.transformer")
        version = importlib.import_module("open_clip.version").__version__
    except Exception as err:  # noqa: BLE001 - any failure means: leave the reference out
        return None, f"open_clip not available ({type(err).__name__}: {err})"
    return module, f"open_clip {version}"


def load_timm_vit():
    if importlib.util.find_spec("timm") is None:
        return None, "timm not available (optional)"
    torchvision_note()
    try:
        import timm
        from timm.models.vision_transformer import VisionTransformer
    except Exception as err:  # noqa: BLE001
        return None, f"timm not available ({type(err).__name__}: {err})"
    return VisionTransformer, f"timm {timm.__version__}"


class ReferenceDualEncoder(nn.Module):
    """Single-model reference towers behind batch_loss's K-model interface (K = 1)."""

    k = 1

    def __init__(self, visual: nn.Module, text: nn.Module, text_is_stacked: bool, config: ExperimentConfig):
        super().__init__()
        self.visual, self.text, self.text_is_stacked = visual, text, text_is_stacked
        self.max_logit_scale = config.model.max_logit_scale
        self.log_logit_scale = nn.Parameter(torch.full((1,), math.log(config.model.init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.full((1,), float(config.model.init_logit_bias)))

    def encode_image(self, images):                       # (1, B, 3, S, S) -> (1, B, D)
        return F.normalize(self.visual(images[0]), dim=-1)[None]

    def encode_text(self, ids, mask):                     # (1, U, L) -> (1, U, D)
        out = self.text(ids, mask) if self.text_is_stacked else self.text(ids[0])[None]
        return F.normalize(out, dim=-1)

    def logit_scale(self):
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)


def gelu_tanh():
    return nn.GELU(approximate="tanh")


def open_clip_model(oc, config: ExperimentConfig, vocab_size: int) -> nn.Module:
    """open_clip towers of our sizes, set to our semantics where open_clip allows it: no ln_pre, LN after
    pooling, tanh GELU, bidirectional text attention with a padding mask."""
    torch.manual_seed(config.train.seed)
    m, v, t = config.model, config.model.vision, config.model.text
    visual = oc.VisionTransformer(
        image_size=config.data.image_size, patch_size=v.patch_size, width=v.width, layers=v.depth,
        heads=v.heads, mlp_ratio=v.mlp_ratio, output_dim=m.embed_dim, no_ln_pre=True,
        pool_type="tok" if v.pool == "cls" else "avg", final_ln_after_pool=True, act_layer=gelu_tanh)
    text = oc.TextTransformer(
        context_length=t.context_length, vocab_size=vocab_size, width=t.width, heads=t.heads, layers=t.depth,
        mlp_ratio=t.mlp_ratio, output_dim=m.embed_dim, no_causal_mask=True, use_pad_mask=True, pad_id=0,
        pool_type="first", act_layer=gelu_tanh)
    return ReferenceDualEncoder(visual, text, False, config)


def timm_model(vit_cls, config: ExperimentConfig, vocab_size: int) -> nn.Module:
    """timm's ViT as the image tower (LN after pooling, tanh GELU); our TextEncoder (K = 1) as the text tower."""
    torch.manual_seed(config.train.seed)
    m, v = config.model, config.model.vision
    visual = vit_cls(img_size=config.data.image_size, patch_size=v.patch_size, num_classes=m.embed_dim,
                     global_pool="token" if v.pool == "cls" else "avg", embed_dim=v.width, depth=v.depth,
                     num_heads=v.heads, mlp_ratio=v.mlp_ratio, class_token=True, fc_norm=True,
                     act_layer="gelu_tanh")
    return ReferenceDualEncoder(visual, TextEncoder(1, m.text, vocab_size, m.embed_dim), True, config)


def reference_models(config: ExperimentConfig, vocab_size: int) -> tuple[dict, list]:
    """{name: model} of the references that load here, and a note on each library."""
    models, notes = {}, []
    oc, note = load_open_clip_transformer()
    notes.append(note)
    if oc is not None:
        models["open_clip"] = open_clip_model(oc, config, vocab_size)
    vit, note = load_timm_vit()
    notes.append(note)
    if vit is not None:
        models["timm_vit+our_text"] = timm_model(vit, config, vocab_size)
    if models:
        notes.append(f"torchvision: {torchvision_note()}")
    return models, notes
