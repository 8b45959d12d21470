"""Training-speed benchmark of the default dual encoder and the trainer's speed levers (a measurement,
not a pass/fail test).

    python benchmarks/bench_train.py [--quick] [--threads 2] [--json out.json] [--profile]
                                     [--no-compile] [--skip-reference] [--skip-experiment]
    python benchmarks/bench_train.py --time-to-target [--json out.json]

In one run, on `ExperimentConfig()`'s model, batch and loss (see benchmarks/README.md):
  1. images/s and GFLOP/s of today's path (fp32, eager, K = 1) and of each lever alone and combined
     (bf16 autocast, torch.compile, K models batched into one loop), all timed interleaved in one
     process; `speedup` = images/s of the best path / today's path, and `study_path_speedup` = images/s
     of the path the study trains on (ExperimentConfig()'s precision and compile, K = the sweep's
     models per batch) / today's path;
  2. torch's matmul throughput at the model's own matmul shapes (fp32 and bf16) and the share of it
     each path reaches;
  3. today's path against open_clip's towers of the same size (and timm's ViT, when installed);
  4. the wall time of exp1 over 5 seeds (`dualenc.runs.study.run_group`), split into its parts.
With --time-to-target, instead: seconds until the slowest arm reaches the convergence bar on
bias-0 validation, old protocol against new (`time_to_target.py`), key `time_to_target_speedup`.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))      # the helper modules beside this file

from dualenc.config import ExperimentConfig  # noqa: E402
from dualenc.model.towers import count_parameters  # noqa: E402
from dualenc.runs.sweep import MAX_MODELS  # noqa: E402
from dualenc.model.train import compiles, train_group  # noqa: E402
from machine import CpuMonitor, environment, pct, wait_for_idle  # noqa: E402
from matmul_peak import matmul_peak  # noqa: E402
from references import reference_models  # noqa: E402
from time_to_target import print_time_to_target, time_to_target  # noqa: E402
from workload import Contender, Workload  # noqa: E402

FULL = {"steps": 30, "warmup": 10, "repeats": 5, "ks": "5,10,20", "combined_ks": "5,10,20",
        "replay_repeats": 5, "experiment_steps": None, "redo": 10}
QUICK = {"steps": 3, "warmup": 2, "repeats": 1, "ks": "2", "combined_ks": "2",
         "replay_repeats": 1, "experiment_steps": 20, "redo": 0}
# Layers whose input needs no gradient: their backward is one matmul (weight gradient), not two.
INPUT_FREE = ("image.patch_embed", "image.stem_conv0", "text.token_embed")


# ----------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class PathSpec:
    """One way to run the training step: precision, eager or compiled, K models batched."""

    precision: str = "fp32"
    compile: bool = False
    k: int = 1

    @property
    def name(self) -> str:
        levers = [("bf16", self.precision == "bf16"), ("compile", self.compile), (f"K={self.k}", self.k > 1)]
        return "+".join(name for name, on in levers if on) or "today"


def study_path(config: ExperimentConfig) -> PathSpec:
    """The path the study trains on: the config's precision, its compile choice for a group of the
    sweep's MAX_MODELS seeds, K = MAX_MODELS."""
    return PathSpec(config.train.precision, compiles(config, MAX_MODELS), MAX_MODELS)


def plan_paths(ks: tuple, combined_ks: tuple, with_compile: bool, study: PathSpec) -> list:
    """Today's path, each lever alone (bf16; compile; K in ks), bf16 with K and with compile + K,
    and the study's path."""
    paths = [PathSpec(), PathSpec("bf16"), PathSpec(compile=True), *(PathSpec(k=k) for k in ks)]
    for k in combined_ks:
        paths += [PathSpec("bf16", k=k), PathSpec("bf16", True, k)]
    return list(dict.fromkeys([*(p for p in paths if with_compile or not p.compile), study]))


def timed_steps(args, contender: Contender) -> int:
    """Steps per timed repeat: --steps / K (at least 5, or --steps if smaller), so that each repeat trains
    on about as many images whatever K."""
    return max(min(args.steps, 5), round(args.steps / contender.work.k))


def warmup_steps(args, contender: Contender) -> int:
    return max(min(args.warmup, 2), round(args.warmup / contender.work.k))


# ----------------------------------------------------------------------------- timing


class Redo:
    """Times a run; redoes it (after a wait for quiet) when other processes used more than `busy` of the
    CPUs meanwhile, at most `limit` times in all."""

    def __init__(self, limit: int, busy: float = 0.05):
        self.limit, self.busy, self.used = limit, busy, 0

    def timed(self, contender: Contender, steps: int) -> tuple:
        while True:
            monitor = CpuMonitor()
            seconds = contender.run(steps) / steps
            others = monitor.others_share()
            if not others > self.busy or self.used >= self.limit:
                return seconds, others
            self.used += 1
            wait_for_idle(60)


def throughput(contenders: list, args) -> dict:
    """Seconds per step of each contender: the first step (a compiled path's cold compile) and warm-up,
    then `repeats` timed runs, interleaved across contenders (A B C A B C ...) so that drift of the
    machine hits all of them alike."""
    out = {}
    for c in contenders:
        first = c.run(1)
        c.run(warmup_steps(args, c) - 1)
        out[c.name] = {"first_step_s": first, "warmup_steps": warmup_steps(args, c),
                       "timed_steps": timed_steps(args, c), "seconds_per_step": [], "others_cpu_share": []}
    redo = Redo(args.redo)
    for _ in range(args.repeats):
        for c in contenders:
            seconds, others = redo.timed(c, timed_steps(args, c))
            out[c.name]["seconds_per_step"].append(seconds)
            out[c.name]["others_cpu_share"].append(others)
    for c in contenders:
        secs = out[c.name]["seconds_per_step"]
        med = statistics.median(secs)
        out[c.name].update({"images_per_step": c.images_per_step, "steps_per_s": 1 / med,
                            "images_per_s": c.images_per_step / med,
                            "images_per_s_min": c.images_per_step / max(secs),
                            "images_per_s_max": c.images_per_step / min(secs)})
    return {"contenders": out, "runs_redone": redo.used}


def trainer_check(work: Workload, args) -> dict:
    """train_group itself on today's path and the same datasets: per-step time of its own loop, from
    the difference of two calls (warm-up steps, and warm-up + timed steps)."""
    def loop_seconds(steps):
        configs = [c.replace(steps=steps, precision="fp32", compile=False) for c in work.configs]
        return train_group(configs, work.datasets, progress=False)[0].seconds

    short, long = loop_seconds(args.warmup), loop_seconds(args.warmup + args.steps)
    per_step = max(long - short, 1e-9) / args.steps
    return {"steps": args.steps, "seconds_per_step": per_step, "images_per_s": work.k * work.batch / per_step}


# ----------------------------------------------------------------------------- FLOPs


def analytic_flops(config: ExperimentConfig, n_captions: int, vocab_size: int) -> dict:
    """Forward FLOPs (2 x multiply-adds) of one model's matmuls in one step, by part."""
    m, B = config.model, config.train.batch_size
    v, t, S = m.vision, m.text, config.data.image_size
    out = {}

    def tower(prefix, n_seq, T, C, hidden, depth):
        per = {"qkv": 2 * T * C * 3 * C, "attn_scores": 2 * T * T * C, "attn_weighted_sum": 2 * T * T * C,
               "attn_out_proj": 2 * T * C * C, "mlp": 2 * 2 * T * C * hidden}
        for name, f in per.items():
            out[f"{prefix}.{name}"] = n_seq * depth * f

    n_patches = (S // v.patch_size) ** 2
    if v.stem == "conv":   # 3x3 stride-2 convolutions, then 1x1 (dualenc.model.towers.StackedConvStem)
        halvings = int(math.log2(v.patch_size))
        channels = [3] + [max(8, v.width >> (halvings - 1 - i)) for i in range(halvings)] + [v.width]
        side = S
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            last = i == len(channels) - 2
            side = side if last else side // 2
            out[f"image.stem_conv{i}"] = 2 * B * side * side * c_out * c_in * (1 if last else 9)
    else:
        out["image.patch_embed"] = 2 * B * n_patches * 3 * v.patch_size ** 2 * v.width
    tower("image", B, n_patches + (1 if v.pool == "cls" else 0), v.width, int(round(v.width * v.mlp_ratio)),
          v.depth)
    out["image.projection"] = 2 * B * v.width * m.embed_dim
    out["text.token_embed"] = 2 * n_captions * t.context_length * vocab_size * t.width   # one-hot matmul
    tower("text", n_captions, t.context_length, t.width, int(round(t.width * t.mlp_ratio)), t.depth)
    out["text.projection"] = 2 * n_captions * t.width * m.embed_dim
    out["similarity"] = 2 * B * n_captions * m.embed_dim
    return out


def training_flops(forward_parts: dict) -> int:
    """Forward + backward: 3 x forward, 2 x for the layers whose input needs no gradient."""
    return sum(f * (2 if name in INPUT_FREE else 3) for name, f in forward_parts.items())


def flop_counter_step(contender: Contender) -> dict:
    """torch's FlopCounterMode on one training step."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        contender.step()
    by_op = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    return {"total": counter.get_total_flops(), "by_op": by_op}


def flops_report(today: Contender) -> dict:
    """Per-model FLOPs of one step: the analytic count by part, cross-checked with FlopCounterMode."""
    work = today.work
    parts = analytic_flops(work.config, len(work.captions.texts), len(work.tokenizer))
    counted = flop_counter_step(today)
    per_model = training_flops(parts)
    return {"forward_by_part": parts, "forward": sum(parts.values()), "training_per_model": per_model,
            "flop_counter_per_model": counted["total"] / work.k, "flop_counter_by_op": counted["by_op"],
            "n_captions": len(work.captions.texts), "vocab_size": len(work.tokenizer)}


def matmul_peaks(workloads: dict, repeats: int) -> dict:
    """For each K: the matmuls of one eager step recorded on a fresh K-model contender, replayed in fp32
    and bf16 (matmul_peak.py)."""
    peaks = {}
    for k, work in sorted(workloads.items()):
        recording = Contender(f"record K={k}", work)
        recording.step()                     # the optimizer's state exists: record a steady step
        peaks[k] = matmul_peak(recording.step, repeats=repeats)
    return peaks


def summarize_paths(paths: list, rates: dict, flops_per_model: int, peaks: dict) -> dict:
    """Per path: images/s, GFLOP/s, share of the matmul peak at its K and precision, x today."""
    today = rates[PathSpec().name]["images_per_s"]
    out = {}
    for p in paths:
        r = rates[p.name]
        flops = flops_per_model * p.k
        gflops = flops * r["steps_per_s"] / 1e9
        peak = peaks[p.k][p.precision]["gflops"]
        out[p.name] = {**asdict(p), **r, "gflops": gflops, "matmul_peak_gflops": peak,
                       "share_of_matmul_peak": gflops / peak, "x_today": r["images_per_s"] / today,
                       "matmul_only_step_s": peaks[p.k][p.precision]["seconds"],
                       "compile_s": r["first_step_s"] if p.compile else None}
    return out


# ----------------------------------------------------------------------------- whole experiment

EXPERIMENT_PARTS = {"data build": ("dualenc.data.datasets", "build_dataset"), "train": ("dualenc.model.train", "train_group"),
                    "evaluate": ("dualenc.runs.evaluate", "evaluate"), "save": ("dualenc.runs.study", "save_run"),
                    "load": ("dualenc.runs.study", "load_run")}


@contextlib.contextmanager
def timing_calls(targets: dict):
    """Wall seconds spent in each named module function while the block runs: {label: seconds}. Each
    function is wrapped for the block (run_group looks them up in their modules at call time)."""
    seconds, saved = {label: 0.0 for label in targets}, []
    for label, (module_name, attr) in targets.items():
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def wrapper(*a, _f=original, _label=label, **kw):
            start = time.perf_counter()
            try:
                return _f(*a, **kw)
            finally:
                seconds[_label] += time.perf_counter() - start

        setattr(module, attr, wrapper)
        saved.append((module, attr, original))
    try:
        yield seconds
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)


@contextlib.contextmanager
def data_cache(folder):
    """With a folder: $DUALENC_DATA_CACHE there and the in-process image cache emptied (images rendered)."""
    import dualenc.data.datasets as data_module

    saved = os.environ.get("DUALENC_DATA_CACHE")
    if folder:
        os.environ["DUALENC_DATA_CACHE"] = str(folder)
        data_module._MEMORY_CACHE.clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DUALENC_DATA_CACHE", None)
        else:
            os.environ["DUALENC_DATA_CACHE"] = saved


def time_experiment(name: str, seeds: int, steps, cold_data: bool) -> dict:
    """Wall time of `run_group` on the experiment over seeds 0..seeds-1 in a fresh temporary run store,
    split into data build, train (train_group), evaluate, save and load."""
    from dualenc.runs.study import get_experiment, run_group

    configs = [get_experiment(name).replace(seed=s, **({"steps": steps} if steps else {})) for s in range(seeds)]
    with tempfile.TemporaryDirectory(prefix="bench_exp_") as tmp, data_cache(f"{tmp}/data" if cold_data else None), \
            timing_calls(EXPERIMENT_PARTS) as parts:
        start = time.perf_counter()
        run_group(configs, root=f"{tmp}/runs", progress=False)
        wall = time.perf_counter() - start
    tc = configs[0].train
    return {"experiment": name, "seeds": seeds, "steps": tc.steps, "batch_size": tc.batch_size,
            "precision": tc.precision, "compile": tc.compile, "cold_data": cold_data, "wall_s": wall,
            "parts_s": dict(parts), "other_s": wall - sum(parts.values()),
            "train_images_per_s": seeds * tc.batch_size * tc.steps / parts["train"]}


# ----------------------------------------------------------------------------- profile


def profile_steps(contender: Contender, steps: int, rows: int) -> tuple:
    """torch.profiler's top ops by self CPU time over `steps` steps (after 2 untimed ones)."""
    from torch.profiler import ProfilerActivity, profile

    contender.run(2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        contender.run(steps)
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages)
    top = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:rows]
    table = [{"op": e.key, "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
              "share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps} for e in top]
    return averages.table(sort_by="self_cpu_time_total", row_limit=rows), table


# ----------------------------------------------------------------------------- printing


def print_header(report: dict, config: ExperimentConfig) -> None:
    env, m, mo = report["env"], config.model, report["model"]
    print(f"dualenc training benchmark | torch {env['torch']} | {env['threads']} thread(s) of {env['cpus']} CPUs "
          f"| {env['cpu']} | bf16 hardware: {env['bf16_matmul_hardware']}")
    print(f"model: ViT w{m.vision.width} d{m.vision.depth} h{m.vision.heads} p{m.vision.patch_size} "
          f"mlp{m.vision.mlp_ratio:g} on {config.data.image_size}px; text w{m.text.width} d{m.text.depth} "
          f"h{m.text.heads} L{m.text.context_length}; embed {m.embed_dim}; {mo['parameters'] / 1e6:.3f} M params "
          f"per model; batch {config.train.batch_size} per model; loss {config.train.loss}; "
          f"captions {config.data.captions}")


def print_paths(report: dict, args) -> None:
    paths, best = report["paths"], report["best_path"]
    print(f"\n1. training throughput, {len(paths)} paths timed interleaved: median of {args.repeats} repeat(s) "
          f"of ~{args.steps}/K steps after warm-up (min..max); images/s counts all K models' images")
    print(f"  {'path':<20} {'prec':<5} {'step':<8} {'K':>3} {'images/s (min..max)':>24} {'x today':>8} "
          f"{'GFLOP/s':>8} {'of mm peak':>11}  first step")
    for name, p in paths.items():
        rate = f"{p['images_per_s']:.0f} ({p['images_per_s_min']:.0f}..{p['images_per_s_max']:.0f})"
        first = f"{p['first_step_s']:.2f} s" + (" (compile)" if p["compile"] else "")
        print(f"  {name:<20} {p['precision']:<5} {'compiled' if p['compile'] else 'eager':<8} {p['k']:>3} "
              f"{rate:>24} {p['x_today']:>7.2f}x {p['gflops']:>8.1f} {p['share_of_matmul_peak']:>10.0%}  {first}")
    print(f"  best: {best} at {paths[best]['images_per_s']:.0f} images/s: speedup {report['speedup']:.2f}x over "
          f"today's path (same process, same run)")
    study = report["study_path"]
    print(f"  the study's path: {study} at {paths[study]['images_per_s']:.0f} images/s: study_path_speedup "
          f"{report['study_path_speedup']:.2f}x over today's path")
    if any(p["compile"] for p in paths.values()):
        cache = "a fresh one (--cold-compile)" if args.cold_compile else "as found (--cold-compile: a fresh one)"
        print(f"  first step of a compiled path = its compile; inductor's disk cache: {cache}")
    d = ExperimentConfig().train
    print(f"  (ExperimentConfig() trains with precision={d.precision}, compile={d.compile}; run_group trains a "
          f"setting's seeds together, K = number of seeds)")
    check = report.get("trainer_check")
    if check:
        print(f"  check: train_group's own loop on today's path: {check['images_per_s']:.0f} images/s "
              f"({check['images_per_s'] / paths['today']['images_per_s']:.2f}x the benchmark's loop, one run)")


def print_flops(report: dict) -> None:
    f = report["flops"]
    fwd = f["forward"]
    print(f"  FLOPs per model and step: analytic {f['training_per_model'] / 1e9:.4f} GFLOP (forward "
          f"{fwd / 1e9:.4f}; x3, x2 for the first image layer and the token embedding); FlopCounterMode "
          f"{f['flop_counter_per_model'] / 1e9:.4f} GFLOP ({f['flop_counter_per_model'] / f['training_per_model']:.3f}"
          f" of analytic)")
    print("    forward by part: " + ", ".join(f"{k} {v / fwd:.1%}" for k, v in f["forward_by_part"].items()
                                              if v / fwd >= 0.005))


def print_peaks(report: dict, shapes: int) -> None:
    peaks, paths = report["matmul_peak"], report["paths"]
    print("\n2. torch's matmul throughput at the model's own matmuls (one eager step recorded per K; each "
          "distinct matmul replayed alone in fp32 and bf16, weighted by count)")
    for k, peak in peaks.items():
        print(f"  K={k:<3} fp32 {peak['fp32']['gflops']:7.1f} GFLOP/s   bf16 {peak['bf16']['gflops']:7.1f} GFLOP/s   "
              f"({peak['fp32']['flops'] / 1e9:.3f} GFLOP of matmuls per step, {len(peak['shapes'])} distinct calls)")
    for name in dict.fromkeys(["today", report["best_path"]]):
        p = paths[name]
        print(f"  {name}: {p['gflops']:.1f} / {p['matmul_peak_gflops']:.1f} GFLOP/s ({p['precision']} peak at "
              f"K={p['k']}) = {p['share_of_matmul_peak']:.0%}; its matmuls alone would take "
              f"{p['matmul_only_step_s'] * 1e3:.1f} ms of the {1e3 / p['steps_per_s']:.1f} ms step")
    print("  slowest matmuls at K=1 (count x ms, fp32 / bf16):")
    for row in peaks[1]["shapes"][:shapes]:
        s, g = row["seconds"], row["gflops"]
        print(f"    {row['count']:3d} x {s['fp32'] * 1e3:6.3f} / {s['bf16'] * 1e3:6.3f} ms  "
              f"{g['fp32']:6.1f} / {g['bf16']:6.1f} GFLOP/s  {row['op'].split('.')[0]:<8} {row['shapes']}")


def print_reference(report: dict) -> None:
    print("\n3. reference towers of the same sizes (K = 1, fp32, eager), same batch, loss and optimizer")
    for note in report["reference_notes"]:
        print(f"  {note}")
    today = report["paths"]["today"]["images_per_s"]
    for name, ratio in report.get("ours_over_reference", {}).items():
        rate = report["throughput"]["contenders"][name]["images_per_s"]
        print(f"  ours (today's path) / {name}: {ratio:.2f}x images/s ({today:.0f} vs {rate:.0f})")
    if not report.get("ours_over_reference"):
        print("  no reference measured")


def print_experiment(exp: dict) -> None:
    parts = exp["parts_s"]
    print(f"\n4. {exp['experiment']} over {exp['seeds']} seed(s): dualenc.runs.study.run_group in a fresh run store "
          f"(data cache {'cold' if exp['cold_data'] else 'as found'}): {exp['wall_s']:.2f} s wall")
    print(f"  data build {parts['data build']:.2f} s | train {parts['train']:.2f} s ({exp['seeds']} models x "
          f"{exp['steps']} steps, {exp['precision']}, {'compiled' if exp['compile'] else 'eager'}: "
          f"{exp['train_images_per_s']:.0f} images/s) | evaluate {parts['evaluate']:.2f} s | save "
          f"{parts['save']:.2f} s | load {parts['load']:.2f} s | other {exp['other_s']:.2f} s")
    print(f"  (other processes used {pct(exp['others_cpu_share'])} of the CPUs meanwhile)")


def print_load(report: dict) -> None:
    share = report["others_cpu_share"]
    print(f"\nother processes used {pct(share['timed_runs_mean'])} of the CPUs during the kept timed runs (worst "
          f"run {pct(share['timed_runs_max'])}), {pct(share['whole_run'])} during the whole benchmark")
    if share["timed_runs_max"] > 0.05 or report.get("experiment", {}).get("others_cpu_share", 0.0) > 0.05:
        print("  note: the machine was shared; the timings are slower and noisier than on an idle machine")


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke test: 3 steps, 1 repeat, K = 2, 20 experiment steps")
    add("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    add("--steps", type=int, help="timed steps per repeat at K = 1; --steps / K (at least 5) at K (default 30)")
    add("--warmup", type=int, help="untimed steps first at K = 1, --warmup / K at K (default 10)")
    add("--repeats", type=int, help="timed repeats per path; the median is reported (default 5)")
    add("--ks", help="K of the batched paths alone, fp32 eager (default 5,10,20)")
    add("--combined-ks", help="K of the bf16 + K and bf16 + compile + K paths (default 10,20)")
    add("--no-compile", action="store_true", help="leave out the torch.compile paths (cold compile ~30-60 s each)")
    add("--cold-compile", action="store_true",
        help="compile into a fresh inductor cache: cold even when an earlier process compiled the same graphs")
    add("--batch-size", type=int, default=None, help="per model (default: ExperimentConfig().train.batch_size)")
    add("--json", type=Path, default=None, help="also write every number to this JSON file")
    add("--skip-reference", action="store_true", help="leave out the open_clip / timm towers")
    add("--skip-experiment", action="store_true", help="leave out the experiment's wall time")
    add("--experiment", default="exp1", help="registry experiment to time (default exp1)")
    add("--experiment-seeds", type=int, default=5, help="seeds 0..N-1 trained as one group (default 5)")
    add("--experiment-steps", type=int, help="override the experiment's steps (default: its own; --quick: 20)")
    add("--cold-data", action="store_true", help="render the experiment's images into a fresh data cache")
    add("--profile", action="store_true", help="also print torch.profiler's top ops of the best path")
    add("--profile-rows", type=int, default=20)
    add("--shapes", type=int, default=8, help="slowest matmul shapes to list (default 8)")
    add("--time-to-target", action="store_true",
        help="only this: seconds to the convergence bar, old protocol vs new (time_to_target.py; ~10-20 min)")
    add("--calibration", type=Path, default=Path(__file__).resolve().parents[1] / "results" / "calibration.csv",
        help="the calibration table naming each protocol's slowest arm (--time-to-target)")
    add("--wait-idle", type=float, default=0.0, metavar="SECONDS",
        help="first wait up to this long for other processes to leave the CPUs idle")
    add("--redo", type=int, help="redo a timed run that other processes disturbed (>5%% of the CPUs), at most "
                                 "this many times in all (default 10; --quick: 0)")
    args = parser.parse_args(argv)
    args.replay_repeats = None
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.ks, args.combined_ks = (tuple(int(k) for k in s.split(",") if k.strip()) for s in (args.ks, args.combined_ks))
    return args


def base_config(batch_size) -> ExperimentConfig:
    config = ExperimentConfig().replace(device="cpu")
    return config if batch_size is None else config.replace(batch_size=batch_size)


def build_contenders(config: ExperimentConfig, paths: list, skip_reference: bool) -> tuple:
    """Workloads by K, a contender per path, and the reference contenders (on the K = 1 workload)."""
    workloads = {k: Workload(config, k) for k in sorted({p.k for p in paths})}
    contenders = [Contender(p.name, workloads[p.k], p.precision, p.compile) for p in paths]
    models, notes = ({}, []) if skip_reference else reference_models(config, len(workloads[1].tokenizer))
    references = [Contender(name, workloads[1], model=model) for name, model in models.items()]
    return workloads, contenders, references, notes


def measure_paths(report: dict, args, paths, workloads, contenders, references) -> None:
    """Section 1-3's numbers into the report."""
    monitor = CpuMonitor()
    report["throughput"] = throughput(contenders + references, args)
    report["throughput"]["others_cpu_share"] = monitor.others_share()
    rates = report["throughput"]["contenders"]
    report["trainer_check"] = trainer_check(workloads[1], args)
    report["flops"] = flops_report(contenders[0])
    report["matmul_peak"] = matmul_peaks(workloads, args.replay_repeats)
    report["paths"] = summarize_paths(paths, rates, report["flops"]["training_per_model"], report["matmul_peak"])
    report["images_per_s"] = {name: p["images_per_s"] for name, p in report["paths"].items()}
    report["best_path"] = max(report["images_per_s"], key=report["images_per_s"].get)
    report["speedup"] = report["paths"][report["best_path"]]["x_today"]
    report["study_path"] = args.study_path.name
    report["study_path_speedup"] = report["paths"][args.study_path.name]["x_today"]
    report["ours_over_reference"] = {c.name: rates["today"]["images_per_s"] / rates[c.name]["images_per_s"]
                                     for c in references}


def cpu_share_report(report: dict, run_monitor: CpuMonitor) -> dict:
    kept = [x for c in report["throughput"]["contenders"].values() for x in c["others_cpu_share"] if not math.isnan(x)]
    return {"timed_runs_mean": statistics.mean(kept) if kept else float("nan"),
            "timed_runs_max": max(kept) if kept else float("nan"),
            "throughput_section": report["throughput"]["others_cpu_share"], "whole_run": run_monitor.others_share()}


def prepare(args) -> None:
    """Wait for quiet (--wait-idle), set the threads, point inductor at a fresh cache (--cold-compile)."""
    if args.wait_idle > 0:
        print(f"waited {wait_for_idle(args.wait_idle):.0f} s for an idle machine")
    torch.set_num_threads(args.threads)
    if args.cold_compile:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_inductor_")
        atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], True)


def start_report(args, config: ExperimentConfig, today: Contender, notes: list) -> dict:
    return {"env": environment(), "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "model": {"config": asdict(config.model), "batch_size": config.train.batch_size,
                      "image_size": config.data.image_size, "loss": config.train.loss,
                      "captions": config.data.captions, "parameters": count_parameters(today.model)},
            "reference_notes": notes}


def experiment_section(report: dict, args) -> None:
    monitor = CpuMonitor()
    report["experiment"] = time_experiment(args.experiment, args.experiment_seeds, args.experiment_steps,
                                           args.cold_data)
    report["experiment"]["others_cpu_share"] = monitor.others_share()
    print_experiment(report["experiment"])


def profile_section(report: dict, args, contenders: list) -> None:
    best = next(c for c in contenders if c.name == report["best_path"])
    steps = timed_steps(args, best)
    text, report["profile"] = profile_steps(best, steps, args.profile_rows)
    print(f"\nprofile of the best path ({best.name}), {steps} steps (torch.profiler, top ops by self CPU time)\n{text}")


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ("time_to_target_speedup", "speedup", "study_path_speedup", "best_path", "images_per_s")
    first = {key: report[key] for key in keys if key in report}
    path.write_text(json.dumps({**first, **report}, indent=2, default=str))
    print(f"\nwrote {path}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    prepare(args)
    if args.time_to_target:
        return time_to_target_main(args)
    run_monitor = CpuMonitor()
    config = base_config(args.batch_size)
    args.study_path = study_path(config)
    paths = plan_paths(args.ks, args.combined_ks, not args.no_compile, args.study_path)
    workloads, contenders, references, notes = build_contenders(config, paths, args.skip_reference)
    report = start_report(args, config, contenders[0], notes)
    print_header(report, config)
    measure_paths(report, args, paths, workloads, contenders, references)
    print_paths(report, args)
    print_flops(report)
    print_peaks(report, args.shapes)
    print_reference(report)
    if not args.skip_experiment:
        experiment_section(report, args)
    report["others_cpu_share"] = cpu_share_report(report, run_monitor)
    print_load(report)
    if args.profile:
        profile_section(report, args, contenders)
    if args.json:
        write_json(report, args.json)
    return report


def time_to_target_main(args) -> dict:
    import pandas as pd

    monitor = CpuMonitor()
    print(f"time to a converged model (bias-0 validation), {args.threads} thread(s); calibration table "
          f"{args.calibration}")
    result = time_to_target(pd.read_csv(args.calibration))
    print_time_to_target(result)
    report = {"env": environment(), "args": {k: str(v) for k, v in vars(args).items()},
              "time_to_target": result, "time_to_target_speedup": result["time_to_target_speedup"],
              "others_cpu_share": monitor.others_share()}
    print(f"  (other processes used {pct(report['others_cpu_share'])} of the CPUs meanwhile)")
    if args.json:
        write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
