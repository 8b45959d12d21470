"""The machine a benchmark runs on: what it is, and how much of it other processes use.

Used by bench_train.py: a timed run that other processes disturbed is redone (two PyTorch threads on
a 2-core machine slow down many times over when anything else runs).
"""
from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path

import torch


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


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0%}"


def load_average() -> list:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [float("nan")] * 3


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def environment() -> dict:
    return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "cpu": cpu_name(), "mkldnn": torch.backends.mkldnn.is_available(),
            "bf16_matmul_hardware": _bf16_hardware(), "load_average_start": load_average()}


def _bf16_hardware() -> str:
    """The CPU flags that make bf16 matmuls fast (AVX512-BF16, AMX), as /proc/cpuinfo lists them."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    return ", ".join(found) or "none (bf16 matmuls are emulated)"
