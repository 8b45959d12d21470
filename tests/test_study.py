import json

import pytest

from dualenc.config import ConfigError, config_hash
from dualenc.design import ORIGINAL_EXPERIMENTS
from dualenc.runs.study import (DESCRIPTIONS, DONE, MODEL, REGISTRY, check_stored_model, collect,
                           get_experiment, is_done, load_model, run_dir, run_experiment)


def test_registry_holds_the_original_four():
    assert sorted(REGISTRY) == ["exp1", "exp2", "exp3", "exp4"]
    assert [REGISTRY[e].data.bias for e in sorted(REGISTRY)] == [0.0, 0.0, 0.75, 0.75]
    assert REGISTRY["exp3"].data.minority_kept() == 12
    assert [REGISTRY[e].data.captions for e in sorted(REGISTRY)] == ["undescriptive", "descriptive"] * 2
    with pytest.raises(ConfigError, match="exp9.*exp1"):
        get_experiment("exp9")
    assert ORIGINAL_EXPERIMENTS == tuple(sorted(REGISTRY)) and set(DESCRIPTIONS) == set(REGISTRY)
    for name in ("exp3", "exp4"):  # the description says what the config keeps
        data = REGISTRY[name].data
        assert f"bias {data.bias:g} ({data.minority_kept()} of {data.n_train_per_group} minority" in DESCRIPTIONS[name]


def test_run_store_writes_every_file_and_reuses_finished_runs(tiny, tmp_path, monkeypatch):
    config = tiny(steps=18)
    record = run_experiment(config, root=tmp_path, progress=False)
    path = run_dir(config, tmp_path)
    assert path.name == config_hash(config) and is_done(path)
    for name in ("config.json", "metrics.json", "history.csv", "embeddings.npz", "predictions.csv", DONE):
        assert (path / name).is_file(), name
    assert json.loads((path / "config.json").read_text())["data"]["image_size"] == 32
    assert len(record.predictions()) == 4 * config.data.n_test_per_group
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr("dualenc.model.train.train", no_training)
    again = run_experiment(config, root=tmp_path, progress=False)
    assert again.metrics == record.metrics


def test_unfinished_run_directory_is_redone_and_not_collected(tiny, tmp_path):
    config = tiny(steps=12)
    path = run_dir(config, tmp_path)
    path.mkdir(parents=True)
    (path / "metrics.json").write_text("{half")
    assert collect(tmp_path).empty
    run_experiment(config, root=tmp_path, progress=False)
    table = collect(tmp_path)
    assert len(table) == 1 and table.loc[0, "run"] == path.name
    assert table.loc[0, "image_size"] == 32 and "worst_group_acc" in table


def test_a_run_without_weights_is_named_before_anything_is_read(tmp_path):
    with pytest.raises(ConfigError, match="run directory .* does not exist"):
        check_stored_model(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="not a finished run"):
        load_model(tmp_path)
    (tmp_path / DONE).write_text("")                 # no config.json either: the missing weights are named first
    with pytest.raises(ConfigError, match=f"has no {MODEL}"):
        load_model(tmp_path)
