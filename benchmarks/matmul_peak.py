"""torch's matmul throughput at the exact matmuls of one training step ("matmul peak").

One step runs under a dispatch mode that records every mm / addmm / bmm / baddbmm with its shapes,
strides (transposed operands included), scalars and how often it occurs; each distinct call is then
replayed alone with fresh tensors of the same layout, in fp32 and in bf16, and timed. The aggregate
(total FLOPs / total time, weighted by count) is the matmul peak a step of that shape could reach.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
MM_OPS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class MatmulRecorder(TorchDispatchMode):
    """Counts every matmul of the code run under it, by (op, tensor shapes and strides, other args)."""

    def __init__(self):
        super().__init__()
        self.calls: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in MM_OPS:
            spec = tuple(("T", tuple(a.shape), tuple(a.stride())) if isinstance(a, torch.Tensor) else ("S", a)
                         for a in args)
            key = (func.__name__, spec, tuple(sorted(kwargs.items())))
            self.calls[key] = self.calls.get(key, 0) + 1
        return func(*args, **kwargs)


def matmul_flops(name: str, spec) -> int:
    """2 x multiply-adds of one call (the bias add of addmm / baddbmm not counted)."""
    a, b = [s[1] for s in spec if s[0] == "T"][-2:]
    if name.startswith("bmm") or name.startswith("baddbmm"):
        return 2 * a[0] * a[1] * a[2] * b[2]
    return 2 * a[0] * a[1] * b[1]


def _replay(name: str, spec, kwargs, dtype: torch.dtype) -> Callable:
    args = []
    for item in spec:
        if item[0] == "T":
            t = torch.empty_strided(item[1], item[2], dtype=dtype)
            t.normal_()  # fills the whole storage, stride-0 broadcasts included
            args.append(t)
        else:
            args.append(item[1])
    op = getattr(aten, name.split(".")[0]).default
    return lambda: op(*args, **dict(kwargs))


def time_call(fn: Callable, min_seconds: float = 0.01, repeats: int = 5) -> float:
    """Median seconds per call over `repeats` timed loops of >= min_seconds each, after warm-up."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    fn()
    n = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-7)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times)


def _shape_text(spec) -> str:
    def dense(item):
        return torch.empty_strided(item[1], item[2]).is_contiguous()
    return " x ".join("(" + ",".join(map(str, s[1])) + ")" + ("" if dense(s) else "T")
                      for s in spec if s[0] == "T" and len(s[1]) > 1)


def aggregate(rows: list, dtype: str) -> dict:
    flops = sum(r["count"] * r["flops"] for r in rows)
    seconds = sum(r["count"] * r["seconds"][dtype] for r in rows)
    return {"flops": flops, "seconds": seconds, "gflops": flops / seconds / 1e9 if seconds else float("nan")}


def record(step: Callable) -> dict:
    """The matmuls one call of `step` does: {(op, spec, kwargs): count}."""
    recorder = MatmulRecorder()
    with recorder:
        step()
    return recorder.calls


def matmul_peak(step: Callable, dtypes=("fp32", "bf16"), repeats: int = 5) -> dict:
    """Record one call of `step`, replay each distinct matmul in each dtype; the aggregate per dtype
    and the rows (slowest first by fp32 time x count)."""
    rows = []
    for (name, spec, kwargs), count in record(step).items():
        seconds = {d: time_call(_replay(name, spec, kwargs, DTYPES[d]), repeats=repeats) for d in dtypes}
        flops = matmul_flops(name, spec)
        rows.append({"op": name, "shapes": _shape_text(spec), "count": count, "flops": flops, "seconds": seconds,
                     "gflops": {d: flops / s / 1e9 for d, s in seconds.items()}})
    rows.sort(key=lambda r: -r["count"] * r["seconds"][dtypes[0]])
    return {**{d: aggregate(rows, d) for d in dtypes}, "shapes": rows}
