import json

import pandas as pd
import pytest
from conftest import tiny_config

from dualenc.config import ConfigError, GROUP_NAMES
from dualenc.data.export import export_dataset
from dualenc.runs.study import DONE, TOKENIZER, load_model, run_experiment
from dualenc.runs.metric_registry import get_metric, names
from dualenc.runs.transfer import TRANSFER_DIR, TRANSFER_SECTIONS, evaluate_on_folder, transfer_table

# metrics.json keys a transfer on the run's own test split must reproduce
COMPARED = [f"{prefix}{key}" for prefix in ("", "zs_class_", "zs_pooled_")
            for key in [f"acc_{g}" for g in GROUP_NAMES] + ["average_acc", "worst_group_acc", "worst_group", "gap"]]


def trained(tmp_path_factory, **changes):
    """A tiny finished run in a temporary store, and its own data exported beside it."""
    config = tiny_config(steps=60, bias=0.75, **changes)
    store = tmp_path_factory.mktemp("runs")
    record = run_experiment(config, root=store, progress=False)
    export = tmp_path_factory.mktemp("export") / "data"
    export_dataset(config, export, progress=False)
    return record, export


@pytest.fixture(scope="module")
def dual(tmp_path_factory):
    return trained(tmp_path_factory, captions="descriptive")


@pytest.fixture(scope="module")
def image_only(tmp_path_factory):
    return trained(tmp_path_factory, loss="image_only")


def assert_reproduces_own_test_metrics(record, test_dir):
    result = evaluate_on_folder(record.path, test_dir)
    compared = [k for k in COMPARED if k in record.metrics]
    assert len(compared) >= 8
    assert {k: result.metrics[k] for k in compared} == pytest.approx({k: record.metrics[k] for k in compared})
    own = record.predictions()
    stored = pd.read_csv(result.path.removesuffix(".json") + ".csv")
    for name in result.prompt_sets:
        assert stored[f"pred_{name}"].tolist() == own[f"pred_{name}"].tolist()
    return result


def test_transfer_to_the_runs_own_test_split_reproduces_its_metrics(dual):
    record, export = dual
    metrics_before = (record.path / "metrics.json").read_bytes()
    result = assert_reproduces_own_test_metrics(record, export / "test")
    assert result.prompt_sets == ["class", "pooled"] and result.headline_prompts == "pooled"
    assert list(result.metrics) == [n for n in names() if get_metric(n).section in TRANSFER_SECTIONS]
    assert result.counts == {g: record.config.data.n_test_per_group for g in GROUP_NAMES}
    assert (record.path / "metrics.json").read_bytes() == metrics_before

    stored = json.loads(open(result.path).read())
    assert result.path.startswith(str(record.path / TRANSFER_DIR / "test-"))
    assert stored["test_dir"] == str(export / "test") and stored["n_images"] == 4 * 16
    assert stored["created"] and stored["metrics"] == result.metrics


def test_image_only_runs_are_scored_with_their_classifier(image_only):
    record, export = image_only
    result = assert_reproduces_own_test_metrics(record, export / "test")
    assert result.prompt_sets == ["classifier"]
    assert list(result.metrics) == names(section="accuracy")     # no zero-shot sections without a text tower


def test_a_run_trained_on_a_user_folder_transfers_too(dual, tmp_path):
    _, export = dual
    config = tiny_config(steps=20, data_dir=str(export))  # the exported dataset, its own splits
    record = run_experiment(config, root=tmp_path, progress=False)
    assert record.metrics["n_train"] == 2 * 48 + 2 * 12
    assert_reproduces_own_test_metrics(record, export / "test")
    (record.path / TOKENIZER).unlink()  # a run stored before tokenizer.json: the vocabulary is rebuilt
    model, tokenizer = load_model(record.path)
    assert "desert" in tokenizer.vocab


def test_table_for_notebooks(dual):
    record, export = dual
    table = transfer_table(record.path, export / "manifest.csv")
    assert list(table.index) == [*GROUP_NAMES, "average", "worst group"]
    assert list(table.columns) == ["images", "class", "pooled"]
    assert table.loc["average", "images"] == 2 * 48 + 2 * 12 + 4 * 12 + 4 * 16
    assert table.loc["worst group", "pooled"] == table["pooled"].iloc[:4].min()


def test_bad_folders_are_named(dual, tmp_path):
    record, export = dual
    with pytest.raises(ConfigError, match="test_dir .*nowhere.* does not exist"):
        evaluate_on_folder(record.path, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="000.png' is a file but not a .csv manifest"):
        evaluate_on_folder(record.path, export / "test" / "horse_grass" / "000.png")
    (tmp_path / "imgs").mkdir()
    for group in GROUP_NAMES:
        with pytest.raises(FileNotFoundError, match=f"missing group folder .*{group}"):
            evaluate_on_folder(record.path, tmp_path / "imgs")
        (tmp_path / "imgs" / group).mkdir(parents=True)
        for source in sorted((export / "test" / group).iterdir())[:2]:
            (tmp_path / "imgs" / group / source.name).write_bytes(source.read_bytes())
    (tmp_path / "imgs" / "camel_grass" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        evaluate_on_folder(record.path, tmp_path / "imgs")
    with pytest.warns(UserWarning, match="broken.png"):
        result = evaluate_on_folder(record.path, tmp_path / "imgs", on_error="warn")
    assert result.n_images == 8 and result.skipped == [str(tmp_path / "imgs" / "camel_grass" / "broken.png")]
    with pytest.raises(ConfigError, match="on_error='skip'.*'raise' or 'warn'"):
        evaluate_on_folder(record.path, tmp_path / "imgs", on_error="skip")


def test_bad_run_directories_are_named(dual, tmp_path):
    record, export = dual
    with pytest.raises(ConfigError, match="not a finished run"):
        evaluate_on_folder(tmp_path, export / "test")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "metrics.json", "history.csv", DONE):
        (copy / name).write_bytes((record.path / name).read_bytes())
    with pytest.raises(ConfigError, match="has no model.pt"):
        evaluate_on_folder(copy, export / "test")
