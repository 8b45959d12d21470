"""One training step: the batch gather with flips and shifts, the schedules, the convolutional stem,
groups of models with other data, and the compiled step."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dualenc.model.batches import augment, batch_images
from dualenc.config import ConfigError, ExperimentConfig
from dualenc.data.datasets import build_dataset
from dualenc.model.towers import DualEncoder, member, stack_models
from dualenc.runs.study import run_group
from dualenc.model.train import AUTO_COMPILE_MODEL_STEPS, compiles, group_key, lr_factor, train_group

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from conftest import tiny_config  # noqa: E402


def _flip_then_shift(images, flip, shift):
    """The augmentation written the slow, obvious way: flip, then shift with edge pixels repeated."""
    out = torch.empty_like(images)
    size = images.shape[-1]
    for b in range(len(images)):
        image = images[b].flip(-1) if flip[b] else images[b]
        for r in range(size):
            for c in range(size):
                rr = min(max(r - int(shift[b, 0]), 0), size - 1)
                cc = min(max(c - int(shift[b, 1]), 0), size - 1)
                out[b, :, r, c] = image[:, rr, cc]
    return out


def test_one_gather_flips_then_shifts_each_image():
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(6, 8, 8, 3, generator=generator)
    index = torch.tensor([5, 0, 0, 3])
    flip = torch.tensor([True, False, True, False])
    shift = torch.tensor([[1, -2], [0, 0], [-1, 3], [2, 1]])
    expected = _flip_then_shift(pixels[index].permute(0, 3, 1, 2), flip, shift)
    assert torch.equal(batch_images(pixels, index, flip, shift), expected)
    assert torch.equal(augment(pixels[index].permute(0, 3, 1, 2), flip, shift), expected)
    assert torch.equal(batch_images(pixels, index), pixels[index].permute(0, 3, 1, 2))


def test_warmup_stable_decay_holds_then_decays_linearly():
    total, warmup, decay = 100, 10, 20
    factors = [lr_factor(s, total, warmup, "wsd", decay) for s in range(total)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0
    assert all(f == 1.0 for f in factors[10:80])                     # stable
    assert factors[80] == 1.0 and factors[90] == pytest.approx(0.5) and factors[99] == pytest.approx(0.05)
    cosine = [lr_factor(s, total, warmup) for s in range(total)]
    assert cosine[50] < 1.0 and cosine[99] < 0.01


def test_schedule_and_stem_values_are_checked():
    with pytest.raises(ConfigError, match="schedule='linear'"):
        ExperimentConfig().replace(schedule="linear")
    with pytest.raises(ConfigError, match="decay_frac"):
        ExperimentConfig().replace(schedule="wsd", warmup_frac=0.5, decay_frac=0.6)
    with pytest.raises(ConfigError, match="model.vision.stem='resnet'"):
        ExperimentConfig().replace(**{"model.vision.stem": "resnet"})
    with pytest.raises(ConfigError, match="power of 2"):
        ExperimentConfig().replace(**{"model.vision.stem": "conv", "model.vision.patch_size": 6})
    with pytest.raises(ConfigError, match="compile='yes'"):
        ExperimentConfig().replace(compile="yes")


def test_conv_stem_models_stacked_are_the_models_alone(tiny):
    config = tiny(**{"model.vision.stem": "conv"})
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(DualEncoder(config.model, config.data.image_size, 20))
    stacked = stack_models(models)
    images = torch.randn(3, 4, 3, 32, 32)
    together = stacked.visual(images)
    for k, model in enumerate(models):
        alone = model.visual(images[k:k + 1])
        assert torch.allclose(together[k:k + 1], alone, atol=1e-5)
        assert torch.equal(member(stacked, k).visual(images[k:k + 1]), alone)
    # a different seed is a different stem
    assert not torch.equal(models[0].visual.stem.weights[0], models[1].visual.stem.weights[0])


def test_compile_auto_compiles_groups_long_enough_to_repay_it():
    config = ExperimentConfig().replace(compile="auto")
    steps = AUTO_COMPILE_MODEL_STEPS // 5
    assert compiles(config.replace(steps=steps), 5) == bool(__import__("shutil").which("g++"))
    assert not compiles(config.replace(steps=steps - 1), 5)
    assert compiles(config.replace(compile=True, steps=1), 1)
    assert not compiles(config.replace(compile=False, steps=10 ** 6), 20)


def test_models_with_other_data_and_captions_train_together_as_they_would_alone(tiny):
    settings = [{"bias": 0.0, "captions": "undescriptive"}, {"bias": 0.75, "captions": "descriptive"},
                {"bias": 1.0, "captions": "descriptive", "caption_templates": 4}]
    for loss in ("pairwise", "clip"):
        configs = [tiny(loss=loss, steps=20, precision="fp32", seed=i, **s) for i, s in enumerate(settings)]
        assert len({group_key(c) for c in configs}) == 1
        assert group_key(configs[0]) != group_key(configs[0].replace(lr=0.01))
        datasets = [build_dataset(c.resolved_data()) for c in configs]
        together = train_group(configs, datasets, progress=False)
        for config, dataset, batched in zip(configs, datasets, together):
            alone = train_group([config], [dataset], progress=False)[0]
            a = np.array([row["loss"] for row in alone.history])
            b = np.array([row["loss"] for row in batched.history])
            assert np.max(np.abs(a - b) / np.abs(a)) < 1e-3, (loss, config.data, a, b)


COMPILED_IN_A_SUBPROCESS = """
import sys, torch
sys.path.insert(0, {tests!r})
from conftest import tiny_config
torch.set_num_threads(1)
from dualenc.runs.study import run_group
configs = [tiny_config(steps=12, compile=True, seed=s) for s in (0, 1)]
records = run_group(configs, root={root!r}, progress=False)
print(records[1].path)
"""


@pytest.mark.skipif(not __import__("shutil").which("g++"), reason="torch.compile needs a C++ compiler on the CPU")
def test_a_compiled_step_is_bitwise_reproducible_across_processes_and_close_to_eager(tmp_path):
    # two processes at once (each compiles on its own; inductor's disk cache may serve the second)
    processes = [subprocess.Popen([sys.executable, "-c", COMPILED_IN_A_SUBPROCESS.format(
        tests=str(TESTS), root=str(tmp_path / name))], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        for name in ("a", "b")]
    outputs = [p.communicate()[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    runs = [Path(out.strip().splitlines()[-1]) for out in outputs]
    assert json.loads((runs[0] / "training.json").read_text())["compile"] is True
    weights = [torch.load(r / "model.pt") for r in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    losses = [pd.read_csv(r / "history.csv")["loss"].to_numpy() for r in runs]
    assert np.array_equal(losses[0], losses[1])
    eager = run_group([tiny_config(steps=12, compile=False, seed=s) for s in (0, 1)], root=tmp_path / "eager",
                      progress=False)[1]
    assert json.loads((eager.path / "training.json").read_text())["compile"] is False
    eager_losses = pd.read_csv(eager.path / "history.csv")["loss"].to_numpy()
    assert np.max(np.abs(eager_losses - losses[0]) / eager_losses) < 0.05, (eager_losses, losses[0])


def test_compiled_steps_are_cached_apart_per_cpu_kernel_setting(tmp_path):
    """A compiled step cached under one CPU kernel setting must not be reused under another (reused
    under ATEN_CPU_CAPABILITY=avx2 it gave NaN losses): importing dualenc picks a cache folder per
    setting, and leaves a folder the user chose alone."""
    import os
    import subprocess
    import sys

    code = "import os, dualenc; print(os.environ['TORCHINDUCTOR_CACHE_DIR'])"
    env = {k: v for k, v in os.environ.items()
           if k not in ("TORCHINDUCTOR_CACHE_DIR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    folders = [subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                              check=True).stdout.strip()
               for extra in ({}, {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
                             {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path)})]
    assert folders[0] != folders[1] and folders[1].endswith("cpu-avx2-AVX2")
    assert folders[2] == str(tmp_path)
