"""The metric registry: what `evaluate` writes is exactly what is registered, a new metric needs
only its function and its entry, and the entries say what readers see."""
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import tiny_config
from dualenc.runs import metric_registry as registry
from dualenc.cli import format_metrics
from dualenc.config import GROUP_LABELS, GROUP_NAMES
from dualenc.data.datasets import build_dataset
from dualenc.runs.evaluate import RunOutputs, evaluate
from dualenc.book.explorer import run_summary_html
from dualenc.data.export import export_dataset
from dualenc.runs.metric_registry import (Metric, compute_metrics, format_value, get_metric, label_of, model_measures,
                                     names, register)
from dualenc.model.train import train

SMALL = {"steps": 4, "n_train_per_group": 8, "n_val_per_group": 4, "n_test_per_group": 4}


def _trained(**changes):
    config = tiny_config(**SMALL, **changes)
    dataset = build_dataset(config.resolved_data())
    return config, dataset, train(config, dataset, progress=False)


@pytest.fixture(scope="module")
def dual():
    return _trained(captions="descriptive", bias=0.5)


@pytest.fixture(scope="module")
def image_only():
    return _trained(loss="image_only", bias=0.5)


def test_evaluate_writes_every_registered_metric_and_nothing_else(dual, image_only):
    written = evaluate(*dual).metrics
    assert list(written) == names()                  # all of them, in the registry's order
    for name, value in written.items():              # a format says whether the value is a number
        assert get_metric(name).is_number == (not isinstance(value, str)), name
    assert {type(written[n]) for n in model_measures()} == {float}
    assert not {"worst_group", "headline_prompts", "n_train", "majority_share", "final_loss"} & set(model_measures())
    written = evaluate(*image_only).metrics
    assert list(written) == names(needs_text=False)  # an image-only model has no text tower
    assert set(names()) - set(names(needs_text=False)) == \
        {n for n in names() if n.startswith(("zs_class_", "zs_pooled_")) or n.endswith("_text")}
    families = {f"{prefix}{key}" for prefix in ("", "zs_class_", "zs_pooled_")   # what the book reads
                for key in ["average_acc", "worst_group_acc", "worst_group", "gap", "majority_acc", "minority_acc",
                            *[f"acc_{g}" for g in GROUP_NAMES]]}
    families |= {f"probe_{t}_acc{f}" for t in ("animal", "background") for f in ("", "_pixels", "_random")}
    families |= {f"silhouette_{b}_{e}" for b in ("animal", "background", "group") for e in ("image", "text")}
    families |= {f"n_train_{g}" for g in GROUP_NAMES} | {"n_train", "majority_share", "headline_prompts"}
    assert families <= set(names())


def test_calibration_metrics_are_computed_on_the_validation_split(dual):
    config, dataset, result = dual
    outputs = RunOutputs.of(config, dataset, result)
    values = compute_metrics(outputs, stored_in="calibration")
    assert list(values) == names(stored_in="calibration") == ["val_average_acc", "val_worst_group_acc"]
    predicted = outputs.predicted("headline", "val")
    truth = np.array([["horse", "camel"].index(a) for a in dataset.val.animal])
    by_group = [np.mean((predicted == truth)[dataset.val.group == g]) for g in GROUP_NAMES]
    assert values["val_average_acc"] == pytest.approx(np.mean(by_group))
    assert values["val_worst_group_acc"] == pytest.approx(min(by_group))


def test_a_new_metric_is_its_function_and_its_entry(dual, monkeypatch):
    """Adding a metric touches the registry only: evaluate computes it, the CLI and the panel show it."""
    monkeypatch.setattr(registry, "METRIC_REGISTRY", dict(registry.METRIC_REGISTRY))

    def mean_test_image_norm(run) -> float:  # the metric's function
        return float(np.linalg.norm(run.image_embeddings("test"), axis=1).mean())

    register(Metric("dummy_image_norm", "mean norm of the test image embeddings", "silhouettes",
                    mean_test_image_norm, fmt=".4f", shown_in=("cli", "panel")))  # its entry

    evaluation = evaluate(*dual)
    expected = float(np.linalg.norm(evaluation.embeddings["image_test"], axis=1).mean())
    assert evaluation.metrics["dummy_image_norm"] == pytest.approx(expected)
    assert list(evaluation.metrics).index("dummy_image_norm") == names().index("dummy_image_norm")
    assert re.search(rf"^dummy_image_norm +{expected:.4f}$", format_metrics(evaluation.metrics), re.M)
    html = run_summary_html(SimpleNamespace(metrics=evaluation.metrics))
    assert "mean norm of the test image embeddings" in html and f"{expected:.4f}" in html


def test_majority_share_comes_from_the_images_loaded(tmp_path):
    """A user folder with other counts than the configured 48 per group: the share is the loaded one."""
    folder = tmp_path / "data"
    export_dataset(tiny_config(**SMALL), folder, progress=False)
    for group, keep in (("horse_desert", 2), ("camel_grass", 4)):  # minority groups made smaller by hand
        for extra in sorted((folder / "train" / group).iterdir())[keep:]:
            extra.unlink()
    config = tiny_config(steps=2, data_dir=str(folder))           # n_train_per_group stays 48
    dataset = build_dataset(config.resolved_data())
    counts = dataset.train.group_counts()
    assert counts == {"horse_grass": 8, "camel_desert": 8, "horse_desert": 2, "camel_grass": 4}
    written = evaluate(config, dataset, train(config, dataset, progress=False)).metrics
    assert written["majority_share"] == pytest.approx(16 / 22)
    assert config.data.majority_share() == 0.5                      # what the config alone would say
    assert {g: written[f"n_train_{g}"] for g in GROUP_NAMES} == counts


def test_every_entry_is_well_formed():
    entries = list(registry.METRIC_REGISTRY.values())
    sections = [m.section for m in entries]
    assert sections == sorted(sections, key=list(registry.SECTIONS).index)   # grouped, in SECTIONS order
    assert set(sections) == set(registry.SECTIONS)                           # no empty section
    stored = [m for m in entries if m.stored_in == "run"]
    assert len({m.label for m in stored}) == len(stored)                     # a label names one metric
    for m in entries:
        if m.name.endswith("_acc") or "_acc_" in m.name:
            assert m.higher_is_better is not False, m.name
    assert get_metric("gap").higher_is_better is False
    assert get_metric("worst_group_acc").higher_is_better is True
    for group in GROUP_NAMES:
        assert label_of(f"acc_{group}") == f"accuracy on {GROUP_LABELS[group]}"


def test_values_are_shown_by_their_entry():
    assert format_value("worst_group", "horse_desert") == "horse in desert"
    assert format_value("average_acc", 0.81234) == "0.812"
    assert {format_value("n_train", n) for n in (120, 120.0, np.int64(120))} == {"120"}
    assert format_value("n_train", 119.5) == "119.5"                  # a mean over seeds
    assert format_value("average_acc", np.float32(0.5)) == "0.500"
    assert format_value("silhouette_animal_image", math.nan) == "-"
    assert format_value("headline_prompts", "pooled") == "pooled"


def test_short_tables_and_lookups():
    cli = names(shown_in="cli")
    assert {"average_acc", "worst_group_acc", "probe_background_acc", "n_train", "majority_share"} <= set(cli)
    assert set(names(shown_in="panel")) < set(cli)
    assert names(section="zs_class")[0].startswith("zs_class_")
    assert all(n.startswith("zs_pooled_") for n in names(section="zs_pooled"))
    with pytest.raises(KeyError, match="no_such_metric"):
        label_of("no_such_metric")
    with pytest.raises(ValueError, match="registered twice"):
        register(get_metric("gap"))
    with pytest.raises(ValueError, match="section='nowhere'"):
        Metric("x", "x", "nowhere", lambda run: 0)


def test_every_measure_declares_its_range_and_the_analysis_reads_it(monkeypatch):
    from dualenc.analysis import results
    for name in model_measures():
        assert results.bounds(name) == get_metric(name).range, name
    assert get_metric("gap").range == (-1.0, 1.0) and get_metric("silhouette_animal_image").range == (-1.0, 1.0)
    assert registry.chance_of("worst_group_acc") == 0.5 and registry.chance_of("silhouette_animal_image") is None
    # a new measure with another range is read from its entry, not from its name
    odd = Metric("odd_acc_gap", "a measure whose name says nothing", "probes", lambda run: 0.0, range=(0.0, 5.0))
    monkeypatch.setitem(registry.METRIC_REGISTRY, odd.name, odd)
    assert results.bounds("odd_acc_gap") == (0.0, 5.0) and registry.chance_of("odd_acc_gap") is None
    with pytest.raises(KeyError, match="declares no range"):
        results.bounds("n_train")
    with pytest.raises(ValueError, match="range=\\(1.0, 0.0\\)"):
        Metric("x", "x", "probes", lambda run: 0, range=(1.0, 0.0))
