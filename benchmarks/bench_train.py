"""Training-speed benchmark of the default dual encoder (a measurement, not a pass/fail test).

    python benchmarks/bench_train.py [--threads 2] [--steps 30] [--repeats 5] [--batch-size N]
                                     [--json out.json] [--profile] [--skip-reference] [--skip-experiment]

Prints, for `ExperimentConfig()` defaults (or --batch-size):
  1. training throughput (images/s, steps/s: median and min..max over repeats after warm-up) and the
     achieved GFLOP/s, FLOPs counted analytically and cross-checked with torch's FlopCounterMode;
  2. (a) fp32 matmul throughput of torch at the exact matmuls one training step does (recorded with a
     dispatch mode, replayed one by one with the same shapes and strides) and the share of that
     "matmul peak" the training step reaches; (b) the same-size towers from open_clip (or timm's
     ViT when open_clip is missing), same batch, loss and optimizer, timed interleaved with ours;
  3. the wall time of one whole default experiment (exp1), split into data build, train, evaluate.
See benchmarks/README.md for how to read the numbers.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from dualenc.captions import all_caption_texts, training_captions  # noqa: E402
from dualenc.config import ANIMALS, BACKGROUNDS, GROUPS, ExperimentConfig  # noqa: E402
from dualenc.model import TextEncoder, count_parameters  # noqa: E402
from dualenc.tokenizer import Tokenizer  # noqa: E402
from dualenc.train import CaptionTable, batch_loss, build_model, image_tensor, lr_factor  # noqa: E402

aten = torch.ops.aten
MM_OPS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}
# The CPU SDPA kernels; torch's FlopCounterMode has no formula for these (it knows the CUDA ones).
SDPA_FWD = {aten._scaled_dot_product_flash_attention_for_cpu.default}
SDPA_BWD = {aten._scaled_dot_product_flash_attention_for_cpu_backward.default}


# ----------------------------------------------------------------------------- the workload


class Workload:
    """A realistic training step: a pool of 64x64 images like the default training set, random batches
    with flips, the captions of the config's caption mode, batch_loss, AdamW and the LR schedule."""

    def __init__(self, config: ExperimentConfig, seed: int = 0):
        self.config = config
        data, batch = config.data, config.train.batch_size
        per_group = max(data.n_train_per_group, -(-batch // len(GROUPS)))
        animal = np.repeat([a for a, _ in GROUPS], per_group)
        background = np.repeat([b for _, b in GROUPS], per_group)
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (len(animal), data.image_size, data.image_size, 3), dtype=np.uint8)
        self.images = image_tensor(pixels, torch.device("cpu"))                  # (N, 3, S, S)
        self.animal = torch.tensor([ANIMALS.index(a) for a in animal])
        self.background = torch.tensor([BACKGROUNDS.index(b) for b in background])
        captions = training_captions(animal, background, data, seed)
        texts = sorted(set(captions))
        self.tokenizer = Tokenizer.from_texts(all_caption_texts(), config.model.text.context_length)
        self.captions = CaptionTable.build(texts, self.tokenizer, torch.device("cpu"))
        self.caption_index = torch.tensor([texts.index(c) for c in captions])
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self):
        n, b = len(self.animal), self.config.train.batch_size
        idx = torch.randperm(n, generator=self.generator)[:b]
        flip = torch.rand(b, generator=self.generator) < 0.5
        images = self.images[idx]
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images, self.animal[idx], self.background[idx], self.caption_index[idx]


class Trainer:
    """One contender: a model with encode_image / encode_text / logit_scale / logit_bias, trained
    exactly as dualenc.train.train does one step."""

    def __init__(self, name: str, model: nn.Module, work: Workload, total_steps: int = 10_000):
        self.name, self.model, self.work = name, model, work
        tc = work.config.train
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        warmup = max(1, int(tc.warmup_frac * total_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total_steps, warmup))
        self.last_caption_index = None

    def step(self) -> float:
        images, animal, background, caption_index = self.work.batch()
        self.last_caption_index = caption_index
        loss = batch_loss(self.model, self.work.config, images, animal, background, caption_index,
                          self.work.captions)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.name}: non-finite loss")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()


def time_steps(trainer: Trainer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return (time.perf_counter() - start) / steps


def throughput(trainers: list, steps: int, warmup: int, repeats: int, redo: int = 0,
               busy: float = 0.05) -> dict:
    """Seconds per step of each trainer: warm-up, then `repeats` timed runs, interleaved across the
    trainers so that drift of the machine hits all of them alike. A run during which other processes
    used more than `busy` of the CPUs is redone (after waiting for quiet), at most `redo` times in all."""
    for t in trainers:
        time_steps(t, warmup)
    per_step = {t.name: [] for t in trainers}
    disturbed = {t.name: [] for t in trainers}
    redone = 0
    for _ in range(repeats):
        for t in trainers:
            while True:
                monitor = CpuMonitor()
                seconds = time_steps(t, steps)
                others = monitor.others_share()
                if not others > busy or redone >= redo:
                    break
                redone += 1
                wait_for_idle(60)
            per_step[t.name].append(seconds)
            disturbed[t.name].append(others)
    batch = trainers[0].work.config.train.batch_size
    out = {}
    for name, secs in per_step.items():
        med = statistics.median(secs)
        out[name] = {"seconds_per_step": secs, "others_cpu_share": disturbed[name], "steps_per_s": 1 / med,
                     "images_per_s": batch / med, "images_per_s_min": batch / max(secs),
                     "images_per_s_max": batch / min(secs)}
    out["_redone"] = redone
    return out


# ----------------------------------------------------------------------------- FLOPs


def analytic_flops(config: ExperimentConfig, n_captions: int) -> dict:
    """Forward FLOPs (2 x multiply-adds) of the matmuls of one step, by part; training = 3 x forward."""
    m, B = config.model, config.train.batch_size
    v, t, S = m.vision, m.text, config.data.image_size
    out = {}

    def tower(prefix, n_seq, T, C, hidden, depth):
        per = {"qkv": 2 * T * C * 3 * C, "attn_scores": 2 * T * T * C, "attn_weighted_sum": 2 * T * T * C,
               "attn_out_proj": 2 * T * C * C, "mlp": 2 * 2 * T * C * hidden}
        for k, f in per.items():
            out[f"{prefix}.{k}"] = n_seq * depth * f

    n_patches = (S // v.patch_size) ** 2
    out["image.patch_embed"] = 2 * B * n_patches * 3 * v.patch_size ** 2 * v.width
    tower("image", B, n_patches + (1 if v.pool == "cls" else 0), v.width,
          int(round(v.width * v.mlp_ratio)), v.depth)
    out["image.projection"] = 2 * B * v.width * m.embed_dim
    tower("text", n_captions, t.context_length, t.width, int(round(t.width * t.mlp_ratio)), t.depth)
    out["text.projection"] = 2 * n_captions * t.width * m.embed_dim
    out["similarity"] = 2 * B * n_captions * m.embed_dim
    return out


def _sdpa_shapes(q, k):
    """(batch*heads, Tq, Tk, head_dim) of an SDPA call on (B, H, T, d) tensors."""
    bh = math.prod(q.shape[:-2])
    return bh, q.shape[-2], k.shape[-2], q.shape[-1]


def _sdpa_fwd_formula(q_shape, k_shape, *args, **kwargs) -> int:
    bh, tq, tk, d = math.prod(q_shape[:-2]), q_shape[-2], k_shape[-2], q_shape[-1]
    return 4 * bh * tq * tk * d                          # QK^T and PV


def _sdpa_bwd_formula(grad_shape, q_shape, k_shape, *args, **kwargs) -> int:
    return 2 * _sdpa_fwd_formula(q_shape, k_shape)       # dV, dP, dQ, dK


def flop_counter_step(trainer: Trainer) -> dict:
    """FlopCounterMode on one training step, as shipped and with the CPU SDPA kernels added."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(mapping):
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            trainer.step()
        return counter.get_total_flops(), {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}

    shipped, shipped_ops = count({})
    mapping = {op.overloadpacket: _sdpa_fwd_formula for op in SDPA_FWD}
    mapping.update({op.overloadpacket: _sdpa_bwd_formula for op in SDPA_BWD})
    full, full_ops = count(mapping)
    return {"shipped": shipped, "shipped_by_op": shipped_ops, "with_cpu_sdpa": full, "with_cpu_sdpa_by_op": full_ops,
            "distinct_captions": len(torch.unique(trainer.last_caption_index))}


# ----------------------------------------------------------------------------- matmul peak


class MatmulRecorder(TorchDispatchMode):
    """Records every matmul of a step (op, shapes, strides, scalars); SDPA calls become the bmm's they
    amount to (2 forward: QK^T, PV; 4 backward: dV, dP, dQ, dK)."""

    def __init__(self):
        super().__init__()
        self.calls: dict = {}

    def _add(self, key):
        self.calls[key] = self.calls.get(key, 0) + 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in MM_OPS:
            spec = tuple(("T", tuple(a.shape), tuple(a.stride())) if isinstance(a, torch.Tensor) else ("S", a)
                         for a in args)
            self._add((func.__name__, spec, tuple(sorted(kwargs.items()))))
        elif func in SDPA_FWD or func in SDPA_BWD:
            q, k = (args[0], args[1]) if func in SDPA_FWD else (args[1], args[2])
            bh, tq, tk, d = _sdpa_shapes(q, k)
            pairs = [((tq, d), (d, tk)), ((tq, tk), (tk, d))] if func in SDPA_FWD else \
                [((tk, tq), (tq, d)), ((tq, d), (d, tk)), ((tq, tk), (tk, d)), ((tk, tq), (tq, d))]
            for a, b in pairs:
                spec = tuple(("T", (bh, *s), (s[0] * s[1], s[1], 1)) for s in (a, b))
                self._add(("bmm[sdpa]", spec, ()))
        return func(*args, **kwargs)


def _matmul_flops(name: str, spec) -> int:
    shapes = [s[1] for s in spec if s[0] == "T"]
    a, b = (shapes[-2], shapes[-1])
    if name.startswith("bmm") or name.startswith("baddbmm"):
        return 2 * a[0] * a[1] * a[2] * b[2]
    return 2 * a[0] * a[1] * b[1]


def _replay(name: str, spec, kwargs):
    args = []
    for item in spec:
        if item[0] == "T":
            t = torch.empty_strided(item[1], item[2])
            t.normal_()  # fills the whole storage, stride-0 broadcasts included
            args.append(t)
        else:
            args.append(item[1])
    op = aten.bmm.default if name == "bmm[sdpa]" else getattr(aten, name.split(".")[0]).default
    return lambda: op(*args, **dict(kwargs))


def time_call(fn, min_seconds: float = 0.01, repeats: int = 5) -> float:
    """Median seconds per call over `repeats` timed loops of >= min_seconds each, after warm-up."""
    for _ in range(3):
        fn()
    n, start = 1, time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(min_seconds / one))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times)


def matmul_peak(trainer: Trainer) -> dict:
    recorder = MatmulRecorder()
    with recorder:
        trainer.step()
    rows = []
    for (name, spec, kwargs), count in recorder.calls.items():
        flops = _matmul_flops(name, spec)
        seconds = time_call(_replay(name, spec, kwargs))
        shapes = " x ".join("(" + ",".join(map(str, s[1])) + ")" + ("" if _dense(s) else "T")
                            for s in spec if s[0] == "T" and len(s[1]) > 1)
        rows.append({"op": name, "shapes": shapes, "count": count, "flops": flops, "seconds": seconds,
                     "gflops": flops / seconds / 1e9})
    rows.sort(key=lambda r: -r["count"] * r["seconds"])

    def aggregate(rs):
        f = sum(r["count"] * r["flops"] for r in rs)
        s = sum(r["count"] * r["seconds"] for r in rs)
        return {"flops": f, "seconds": s, "gflops": f / s / 1e9 if s else float("nan")}

    return {"all": aggregate(rows), "linear_only": aggregate([r for r in rows if r["op"] != "bmm[sdpa]"]),
            "attention_only": aggregate([r for r in rows if r["op"] == "bmm[sdpa]"]), "shapes": rows}


def _dense(item) -> bool:
    """True when a recorded tensor is row-major contiguous (else it is a transposed/strided view)."""
    return torch.empty_strided(item[1], item[2]).is_contiguous()


# ----------------------------------------------------------------------------- references


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
        return None, "open_clip not available (pip install --no-deps open_clip_torch)"
    if "open_clip" not in sys.modules:
        package = types.ModuleType("open_clip")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["open_clip"] = package
    torchvision_note()
    try:
        module = importlib.import_module("open_clip.transformer")
        version = importlib.import_module("open_clip.version").__version__
    except Exception as err:  # noqa: BLE001 - any failure means: fall back
        return None, f"open_clip not available ({type(err).__name__}: {err})"
    return module, f"open_clip {version}"


def load_timm_vit():
    if importlib.util.find_spec("timm") is None:
        return None, "timm not available"
    torchvision_note()
    try:
        import timm
        from timm.models.vision_transformer import VisionTransformer
    except Exception as err:  # noqa: BLE001
        return None, f"timm not available ({type(err).__name__}: {err})"
    return VisionTransformer, f"timm {timm.__version__}"


class ReferenceDualEncoder(nn.Module):
    """Reference towers behind the interface batch_loss uses."""

    def __init__(self, visual: nn.Module, text: nn.Module, text_takes_mask: bool, config: ExperimentConfig):
        super().__init__()
        self.visual, self.text, self.text_takes_mask = visual, text, text_takes_mask
        self.max_logit_scale = config.model.max_logit_scale
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.model.init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(config.model.init_logit_bias)))

    def encode_image(self, images):
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, ids, mask):
        return F.normalize(self.text(ids, mask) if self.text_takes_mask else self.text(ids), dim=-1)

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
    """timm's ViT as the image tower (LN after pooling, tanh GELU); our TextEncoder as the text tower."""
    torch.manual_seed(config.train.seed)
    m, v = config.model, config.model.vision
    visual = vit_cls(img_size=config.data.image_size, patch_size=v.patch_size, num_classes=m.embed_dim,
                     global_pool="token" if v.pool == "cls" else "avg", embed_dim=v.width, depth=v.depth,
                     num_heads=v.heads, mlp_ratio=v.mlp_ratio, class_token=True, fc_norm=True,
                     act_layer="gelu_tanh")
    return ReferenceDualEncoder(visual, TextEncoder(m.text, vocab_size, m.embed_dim), True, config)


# ----------------------------------------------------------------------------- whole experiment


def time_experiment(name: str) -> dict:
    """Wall time of one registry experiment, cold: the images are rendered into a fresh data cache
    ($DUALENC_DATA_CACHE pointed at a temporary folder, in-process cache emptied), the run store is a
    temporary folder. Then the same work split into its parts, and the data build again from the
    disk cache and from the in-process cache."""
    if importlib.util.find_spec("dualenc.render") is None:
        return {"skipped": "dualenc/render.py is missing (the renderer is not written yet): "
                           f"{name} timing skipped, rerun later"}
    import dualenc.data as data_module
    from dualenc.evaluate import evaluate
    from dualenc.study import get_experiment, run_dir, run_experiment, save_run
    from dualenc.train import train

    def fresh_cache(folder):
        os.environ["DUALENC_DATA_CACHE"] = folder
        memory = getattr(data_module, "_MEMORY_CACHE", None)
        if isinstance(memory, dict):
            memory.clear()

    config = get_experiment(name)
    out = {"experiment": name}
    saved = os.environ.get("DUALENC_DATA_CACHE")
    try:
        with tempfile.TemporaryDirectory(prefix="bench_exp_") as tmp:
            fresh_cache(f"{tmp}/cache-whole")
            start = time.perf_counter()
            run_experiment(config, root=f"{tmp}/runs-whole", progress=False)
            out["run_experiment_s"] = time.perf_counter() - start

            fresh_cache(f"{tmp}/cache-split")
            t0 = time.perf_counter()
            dataset = data_module.build_dataset(config.data, progress=False)
            t1 = time.perf_counter()
            result = train(config, dataset, progress=False)
            t2 = time.perf_counter()
            evaluation = evaluate(config, dataset, result)
            t3 = time.perf_counter()
            save_run(run_dir(config, f"{tmp}/runs-split"), config, evaluation, result.history)
            t4 = time.perf_counter()

            fresh_cache(f"{tmp}/cache-split")                   # same folder: the disk cache is there
            t5 = time.perf_counter()
            data_module.build_dataset(config.data, progress=False)
            t6 = time.perf_counter()
            data_module.build_dataset(config.data, progress=False)
            t7 = time.perf_counter()
    finally:
        if saved is None:
            os.environ.pop("DUALENC_DATA_CACHE", None)
        else:
            os.environ["DUALENC_DATA_CACHE"] = saved
    n_train = len(dataset.train)
    steps = max(1, n_train // min(config.train.batch_size, n_train)) * config.train.epochs
    out.update({"data_build_s": t1 - t0, "train_s": t2 - t1, "evaluate_s": t3 - t2, "save_s": t4 - t3,
                "split_total_s": t4 - t0, "data_build_disk_cache_s": t6 - t5, "data_build_memory_cache_s": t7 - t6,
                "train_steps": steps, "train_steps_per_s": steps / (t2 - t1),
                "n_images": {"train": n_train, "val": len(dataset.val), "test": len(dataset.test)}})
    return out


# ----------------------------------------------------------------------------- profile


def profile_steps(trainer: Trainer, steps: int, rows: int) -> tuple[str, list]:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        trainer.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step()
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages)
    top = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:rows]
    table = [{"op": e.key, "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
              "share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps} for e in top]
    return averages.table(sort_by="self_cpu_time_total", row_limit=rows), table


# ----------------------------------------------------------------------------- report


def _fmt_rate(d: dict) -> str:
    return f"{d['images_per_s']:8.0f} img/s  ({d['images_per_s_min']:.0f}..{d['images_per_s_max']:.0f})  " \
           f"{d['steps_per_s']:6.1f} steps/s"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per repeat (default 30)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported (default 5)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: ExperimentConfig().train.batch_size")
    parser.add_argument("--json", type=Path, default=None, help="also write all numbers to this JSON file")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the open_clip / timm towers")
    parser.add_argument("--skip-experiment", action="store_true", help="leave out the exp1 wall time")
    parser.add_argument("--experiment", default="exp1", help="registry experiment to time (default exp1)")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's top ops of a step")
    parser.add_argument("--profile-rows", type=int, default=20)
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to leave the CPUs idle")
    parser.add_argument("--redo", type=int, default=10,
                        help="redo a timed run that other processes disturbed (>5%% of the CPUs), at most this "
                             "many times in all (default 10; 0 = never)")
    parser.add_argument("--shapes", type=int, default=12, help="matmul shapes to list (default 12)")
    args = parser.parse_args(argv)

    if args.wait_idle > 0:
        waited = wait_for_idle(args.wait_idle)
        print(f"waited {waited:.0f} s for an idle machine")
    run_monitor = CpuMonitor()
    torch.set_num_threads(args.threads)
    config = ExperimentConfig()
    if args.batch_size is not None:
        config = config.replace(batch_size=args.batch_size)
    work = Workload(config)
    ours = Trainer("dualenc", build_model(config, len(work.tokenizer)), work)
    m = config.model
    report: dict = {
        "env": {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(), "cpu": _cpu_name(), "mkldnn": torch.backends.mkldnn.is_available()},
        "model": {"vision": vars(m.vision), "text": vars(m.text), "embed_dim": m.embed_dim,
                  "batch_size": config.train.batch_size, "image_size": config.data.image_size,
                  "captions": config.data.captions, "parameters": count_parameters(ours.model)},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "load_average_start": _load(),
    }
    env, mo = report["env"], report["model"]
    print(f"dualenc training benchmark | torch {env['torch']} | {env['threads']} thread(s) of {env['cpus']} CPUs | "
          f"{env['cpu']}")
    print(f"model: ViT w{m.vision.width} d{m.vision.depth} h{m.vision.heads} p{m.vision.patch_size} "
          f"mlp{m.vision.mlp_ratio:g} on {config.data.image_size}px; text w{m.text.width} d{m.text.depth} "
          f"h{m.text.heads} L{m.text.context_length}; embed {m.embed_dim}; {mo['parameters'] / 1e6:.3f} M params; "
          f"batch {config.train.batch_size}; loss {config.train.loss}; captions {config.data.captions}")

    # --- references (built first so that all contenders are timed interleaved)
    trainers = [ours]
    notes = []
    if not args.skip_reference:
        oc, oc_note = load_open_clip_transformer()
        notes.append(oc_note)
        if oc is not None:
            trainers.append(Trainer("open_clip", open_clip_model(oc, config, len(work.tokenizer)), work))
        vit, timm_note = load_timm_vit()
        notes.append(timm_note)
        if vit is not None:
            trainers.append(Trainer("timm_vit+our_text", timm_model(vit, config, len(work.tokenizer)), work))
        if len(trainers) > 1:
            notes.append(f"torchvision: {torchvision_note()}")
    report["reference_notes"] = notes

    # --- 1. throughput, FLOPs
    monitor = CpuMonitor()
    rates = throughput(trainers, args.steps, args.warmup, args.repeats, args.redo)
    redone = rates.pop("_redone")
    others_throughput = monitor.others_share()
    counted = flop_counter_step(ours)
    parts = analytic_flops(config, counted["distinct_captions"])
    fwd = sum(parts.values())
    train_flops = 3 * fwd
    r = rates["dualenc"]
    gflops = train_flops * r["steps_per_s"] / 1e9
    report["throughput"] = rates
    report["throughput_runs_redone"] = redone
    report["flops"] = {"analytic_forward_by_part": parts, "analytic_forward": fwd, "analytic_training": train_flops,
                       "flop_counter": counted, "achieved_gflops": gflops,
                       "achieved_gflops_min": train_flops * r["images_per_s_min"] / config.train.batch_size / 1e9,
                       "achieved_gflops_max": train_flops * r["images_per_s_max"] / config.train.batch_size / 1e9}

    # --- 2a. matmul peak at the model's shapes
    peak = matmul_peak(ours)
    share = gflops / peak["all"]["gflops"]
    report["matmul"] = peak
    report["share_of_matmul_peak"] = share

    # --- 2b. reference ratio
    ref_name = next((t.name for t in trainers[1:]), None)
    if ref_name:
        report["ours_over_reference"] = {t.name: r["images_per_s"] / rates[t.name]["images_per_s"]
                                         for t in trainers[1:]}

    print("\n1. training throughput (median of %d repeats x %d steps after %d warm-up; min..max)"
          % (args.repeats, args.steps, args.warmup))
    for t in trainers:
        print(f"  {t.name:<20} {_fmt_rate(rates[t.name])}")
    if redone:
        print(f"  ({redone} timed run(s) redone: other processes were using the CPUs)")
    print(f"  FLOPs per step: analytic {train_flops / 1e9:.3f} GFLOP (3 x forward {fwd / 1e9:.3f}); "
          f"FlopCounterMode {counted['with_cpu_sdpa'] / 1e9:.3f} GFLOP with CPU SDPA added, "
          f"{counted['shipped'] / 1e9:.3f} as shipped (no formula for the CPU SDPA kernel)")
    attn = sum(v for k, v in parts.items() if ".attn_scores" in k or ".attn_weighted" in k)
    print(f"    forward by part: " + ", ".join(f"{k} {v / fwd:.1%}" for k, v in parts.items() if v / fwd >= 0.005)
          + f"; attention matmuls {attn / fwd:.1%}")
    print(f"  achieved: {gflops:.1f} GFLOP/s  ({report['flops']['achieved_gflops_min']:.1f}.."
          f"{report['flops']['achieved_gflops_max']:.1f})")

    print("\n2a. fp32 matmul throughput at the model's own matmuls (each replayed alone, weighted by count)")
    for key, label in (("all", "all matmuls"), ("linear_only", "linear layers (mm/addmm)"),
                       ("attention_only", "attention as bmm")):
        p = peak[key]
        print(f"  {label:<26} {p['gflops']:7.1f} GFLOP/s  ({p['flops'] / 1e9:.3f} GFLOP in {p['seconds'] * 1e3:.2f} ms)")
    step_ms = 1e3 / r["steps_per_s"]
    print(f"  share of matmul peak: {gflops:.1f} / {peak['all']['gflops']:.1f} = {share:.0%}  "
          f"(matmuls alone would take {peak['all']['seconds'] * 1e3:.1f} ms of the {step_ms:.1f} ms step)")
    print(f"  slowest shapes (count x ms):")
    for row in peak["shapes"][: args.shapes]:
        print(f"    {row['count']:3d} x {row['seconds'] * 1e3:6.3f} ms  {row['gflops']:6.1f} GFLOP/s  "
              f"{row['op']:<10} {row['shapes']}")

    print("\n2b. reference towers of the same sizes, same batch, loss and optimizer")
    for note in notes:
        print(f"  {note}")
    for t in trainers[1:]:
        print(f"  ours / {t.name}: {report['ours_over_reference'][t.name]:.2f}x images/s "
              f"({r['images_per_s']:.0f} vs {rates[t.name]['images_per_s']:.0f})")
    if len(trainers) == 1:
        print("  no reference measured")

    # --- 3. whole experiment
    if not args.skip_experiment:
        print(f"\n3. one whole default experiment ({args.experiment})")
        exp_monitor = CpuMonitor()
        exp = time_experiment(args.experiment)
        exp["others_cpu_share"] = exp_monitor.others_share()
        report["experiment"] = exp
        if "skipped" in exp:
            print(f"  {exp['skipped']}")
        else:
            n = exp["n_images"]
            print(f"  run_experiment, cold (renders {n['train']}+{n['val']}+{n['test']} images): "
                  f"{exp['run_experiment_s']:.2f} s wall")
            print(f"  split: data build {exp['data_build_s']:.2f} s | train {exp['train_s']:.2f} s "
                  f"({exp['train_steps']} steps, {exp['train_steps_per_s']:.1f} steps/s) | evaluate "
                  f"{exp['evaluate_s']:.2f} s | save {exp['save_s']:.2f} s | total {exp['split_total_s']:.2f} s")
            print(f"  data build again: {exp['data_build_disk_cache_s']:.2f} s from the disk cache, "
                  f"{exp['data_build_memory_cache_s']:.3f} s from the in-process cache")
            print(f"  (other processes used {_pct(exp['others_cpu_share'])} of the CPUs meanwhile)")

    kept = [x for t in trainers for x in rates[t.name]["others_cpu_share"] if not math.isnan(x)]
    kept_mean = statistics.mean(kept) if kept else float("nan")
    kept_max = max(kept) if kept else float("nan")
    report["others_cpu_share"] = {"timed_runs_mean": kept_mean, "timed_runs_max": kept_max,
                                  "throughput_section": others_throughput, "whole_run": run_monitor.others_share()}
    print(f"\nother processes used {_pct(kept_mean)} of the CPUs during the kept timed runs (worst run "
          f"{_pct(kept_max)}), {_pct(report['others_cpu_share']['whole_run'])} during the whole benchmark")
    exp_share = report.get("experiment", {}).get("others_cpu_share", 0.0)
    if kept_max > 0.05 or exp_share > 0.05:
        print("  note: the machine was shared; timings are slower and noisier than on an idle machine")

    if args.profile:
        text, table = profile_steps(ours, args.steps, args.profile_rows)
        report["profile"] = table
        print(f"\nprofile of {args.steps} training steps (torch.profiler, top ops by self CPU time)")
        print(text)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return report


class CpuMonitor:
    """Share of the machine's CPU time that *other* processes used since construction (Linux /proc/stat;
    NaN elsewhere): busy time of all CPUs minus this process's own CPU time, over wall time x CPUs."""

    def __init__(self):
        self.start = self._snapshot()

    @staticmethod
    def _snapshot():
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick     # all but idle and iowait
        own = sum(os.times()[:4])                                    # this process and its children
        return busy, own, time.perf_counter()

    def others_share(self) -> float:
        end = self._snapshot()
        if self.start is None or end is None:
            return float("nan")
        busy, own, wall = (e - s for e, s in zip(end, self.start))
        return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def wait_for_idle(limit_s: float, window_s: float = 3.0, threshold: float = 0.03) -> float:
    """Sleep until other processes used < threshold of the CPUs over a window, or limit_s passed."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        monitor = CpuMonitor()
        time.sleep(window_s)
        share = monitor.others_share()
        if math.isnan(share) or share < threshold:
            break
    return time.perf_counter() - start


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0%}"


def _load() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [float("nan")] * 3


def _fmt_load(load: list) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
