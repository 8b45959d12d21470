"""bf16 against fp32 on the study's protocol: the original's four experiments, 5 seeds each, trained
once in each precision (everything else the default), and the test metrics compared paired by seed.

    python benchmarks/precision.py [--seeds 5] [--json out.json] [--runs STORE]

A measurement, not a test: bf16 changes the numerics (bf16 matrix products, fp32 master weights),
and this says by how much the study's headline measures move. Runs go to a temporary run store, or
to `--runs` (a sweep's store already holds the bf16 runs: they are loaded, and only fp32 trains;
its times then count only what was trained).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from dualenc.runs.metrics import mean_ci  # noqa: E402
from dualenc.design import ORIGINAL_EXPERIMENTS  # noqa: E402
from dualenc.runs.study import get_experiment, run_group  # noqa: E402

MEASURES = ("average_acc", "worst_group_acc")


def compare(seeds: int, root: Path) -> dict:
    out = {}
    for name in ORIGINAL_EXPERIMENTS:
        metrics, seconds = {}, {}
        for precision in ("bf16", "fp32"):
            configs = [get_experiment(name).replace(seed=s, precision=precision) for s in range(seeds)]
            start = time.perf_counter()
            records = run_group(configs, root=root, progress=False)
            seconds[precision] = time.perf_counter() - start
            metrics[precision] = {m: np.array([r.metrics[m] for r in records]) for m in MEASURES}
        out[name] = {"seconds": seconds}
        for m in MEASURES:
            diff = metrics["bf16"][m] - metrics["fp32"][m]
            mean, low, high = mean_ci(diff)
            out[name][m] = {"bf16_mean": float(metrics["bf16"][m].mean()), "fp32_mean": float(metrics["fp32"][m].mean()),
                            "difference_mean": float(mean), "difference_low": float(low), "difference_high": float(high),
                            "largest_seed_difference": float(np.abs(diff).max())}
        print(f"{name}: " + "; ".join(
            f"{m} bf16 {out[name][m]['bf16_mean']:.3f} vs fp32 {out[name][m]['fp32_mean']:.3f}, difference "
            f"{out[name][m]['difference_mean']:+.3f} [{out[name][m]['difference_low']:+.3f}, "
            f"{out[name][m]['difference_high']:+.3f}] (largest per seed {out[name][m]['largest_seed_difference']:.3f})"
            for m in MEASURES) + f"; train+evaluate {seconds['bf16']:.0f} s bf16, {seconds['fp32']:.0f} s fp32",
            flush=True)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runs", type=Path, help="a run store to use and keep (default: a temporary one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.runs:
        report = compare(args.seeds, args.runs)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_precision_") as tmp:
            report = compare(args.seeds, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
