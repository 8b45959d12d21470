"""A run records the code and the machine that made it; the store and collect act on it."""
import json
import shutil

import pandas as pd
import pytest
import torch

from dualenc.runs import provenance
from dualenc.config import ConfigError
from dualenc.runs.study import collect, run_dir, run_experiment, run_group, run_status, write_results
from dualenc.runs.sweep import run_sweep


def test_the_code_digest_covers_what_training_data_and_evaluation_import():
    names = {f.relative_to(provenance.PACKAGE).as_posix() for f in provenance.code_files()}
    assert {"model/train.py", "data/datasets.py", "runs/evaluate.py", "model/losses.py", "model/towers.py",
            "runs/metrics.py", "runs/metric_registry.py", "data/captions.py", "data/tokenizer.py", "config.py",
            "data/render.py", "data/render_animals.py", "data/__init__.py", "__init__.py"} <= names
    assert not {n.rsplit("/", 1)[-1] for n in names} & {"cli.py", "study.py", "replication.py", "tables.py",
                                                          "explorer.py", "design.py", "equivalence.py"}


def test_the_code_digest_changes_with_one_byte_of_a_loss(tmp_path):
    copy = tmp_path / "dualenc"
    shutil.copytree(provenance.PACKAGE, copy)
    files = [copy / f.relative_to(provenance.PACKAGE) for f in provenance.code_files()]
    assert provenance.files_digest(files, copy)[:12] == provenance.code_digest()
    losses = copy / "model" / "losses.py"
    losses.write_text(losses.read_text().replace("def ", "def  ", 1))
    assert provenance.files_digest(files, copy)[:12] != provenance.code_digest()


def test_a_run_records_its_code_and_machine_and_collect_keeps_them(tiny, tmp_path):
    record = run_experiment(tiny(steps=12), root=tmp_path, progress=False)
    training = json.loads((record.path / "training.json").read_text())
    assert training["code_digest"] == provenance.code_digest()
    assert training["threads"] == torch.get_num_threads()
    assert training["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert training["kernels"] == provenance.kernel_fingerprint(training) != provenance.UNRECORDED
    assert training["cpu_model"] and training["torch"] == torch.__version__
    row = collect(tmp_path).iloc[0]
    assert row["code_digest"] == training["code_digest"] and row["kernels"] == training["kernels"]
    assert row["threads"] == training["threads"] and row["trained_on"] == "cpu"
    assert row["trained_with"] == record.path.name  # trained alone


def test_another_kernel_choice_is_another_fingerprint(monkeypatch):
    here = provenance.provenance()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert provenance.provenance()["kernels"] != here["kernels"]
    assert provenance.kernel_fingerprint({"torch": "2.13.0"}) == provenance.UNRECORDED  # an older run


def _no_training(*args, **kwargs):
    raise AssertionError("a run was trained")


def test_a_run_of_other_code_is_stale_and_trained_again(tiny, tmp_path, monkeypatch):
    config = tiny(steps=12)
    first = run_experiment(config, root=tmp_path, progress=False)
    path = run_dir(config, tmp_path)
    assert run_status(path) == "done"
    monkeypatch.setattr("dualenc.model.train.train_group", _no_training)
    assert run_experiment(config, root=tmp_path, progress=False).metrics == first.metrics  # reused

    monkeypatch.setattr("dualenc.runs.provenance.code_digest", lambda: "0123456789ab")  # the code changed
    assert run_status(path) == "stale"
    kept = run_group([config], root=tmp_path, progress=False, retrain_stale=False)[0]
    assert kept.metrics == first.metrics
    report = run_sweep([config], root=tmp_path, progress=False)  # a sweep keeps it, and says so
    assert (report.ran, report.stale) == (0, 1)
    with pytest.raises(AssertionError, match="a run was trained"), pytest.warns(UserWarning, match="other code"):
        run_experiment(config, root=tmp_path, progress=False)
    monkeypatch.undo()
    monkeypatch.setattr("dualenc.runs.provenance.code_digest", lambda: "0123456789ab")
    with pytest.warns(UserWarning, match="made by other code"):
        again = run_experiment(config, root=tmp_path, progress=False)
    assert json.loads((again.path / "training.json").read_text())["code_digest"] == "0123456789ab"
    assert run_status(path) == "done"


def test_collect_refuses_to_mix_code_digests_and_names_them(tiny, tmp_path):
    runs = [run_experiment(tiny(steps=12, seed=s), root=tmp_path, progress=False) for s in (0, 1)]
    training = runs[1].path / "training.json"
    training.write_text(json.dumps({**json.loads(training.read_text()), "code_digest": "feedfacecafe"}))
    out = tmp_path / "table.csv"
    with pytest.raises(ConfigError, match=f"feedfacecafe \\(1 runs\\).*{provenance.code_digest()} \\(1 runs\\)"
                       f"|{provenance.code_digest()} \\(1 runs\\).*feedfacecafe \\(1 runs\\)"):
        write_results(tmp_path, out)
    assert not out.exists()  # nothing written
    table, _ = write_results(tmp_path, out, mixed_code=True)
    assert set(pd.read_csv(out)["code_digest"]) == {"feedfacecafe", provenance.code_digest()}
    # a committed table of older runs (no digest) and today's runs: refused too
    pd.DataFrame({"run": ["old"], "worst_group_acc": [0.5]}).to_csv(out, index=False)
    training.write_text(json.dumps({**json.loads(training.read_text()), "code_digest": provenance.code_digest()}))
    with pytest.raises(ConfigError, match=provenance.UNRECORDED):
        write_results(tmp_path, out, merge=True)
