import subprocess
import sys

import pytest

from types import SimpleNamespace

from dualenc.cli import format_metrics, format_seed_summary, main
from dualenc.runs.metric_registry import names


def test_run_prints_metrics_table_and_directory(tmp_path, capsys):
    args = ["run", "exp3", "--runs", str(tmp_path), "--quiet", "--steps", "5", "--image-size", "32",
            "--set", "n_train_per_group=8", "--set", "n_val_per_group=4", "--set", "n_test_per_group=4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "worst_group_acc" in out and "probe_background_acc" in out
    assert f"run directory: {tmp_path}" in out


def test_metrics_table_shows_the_registrys_cli_rows_in_its_order():
    metrics = {name: 0.5 for name in names()} | {"worst_group": "camel_grass", "headline_prompts": "class",
                                                 "n_train": 120, "not_a_metric": 7.0}
    rows = [line.split()[0] for line in format_metrics(metrics).splitlines()[2:]]
    assert rows == names(shown_in="cli")
    table = format_metrics(metrics)
    assert "camel on grass" in table and "not_a_metric" not in table and "zs_class_gap" not in table
    del metrics["zs_pooled_average_acc"]            # an older run without it: the row is left out
    assert "zs_pooled_average_acc" not in format_metrics(metrics)


def test_seed_summary_measures_the_model_only():
    text = {"worst_group": "camel_grass", "headline_prompts": "class"}
    records = [SimpleNamespace(metrics={name: 0.1 * seed for name in names()} | text) for seed in (1, 2, 3)]
    rows = {line.split()[0]: line.split()[1] for line in format_seed_summary(records).splitlines()[2:]}
    assert rows["worst_group_acc"] == "0.200" and "probe_background_acc" in rows
    assert not {"n_train", "train_seconds", "majority_share", "worst_group", "headline_prompts"} & set(rows)


@pytest.mark.parametrize("flags, words", [
    (["--bias", "1.5"], ["bias=1.5", "[0.0, 1.0]"]),
    (["--captions", "foo"], ["captions='foo'", "undescriptive"]),
    (["--set", "model.vision.colour=3"], ["model.vision.colour"]),
    (["exp7"], ["exp7", "exp1"]),
])
def test_bad_input_exits_2_with_a_clear_message(flags, words, capsys, tmp_path):
    assert main(["run", *flags, "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err


def test_help_everywhere():
    for args in ([], ["run"], ["preview"], ["list"], ["collect"], ["sweep"]):
        out = subprocess.run([sys.executable, "-m", "dualenc.cli", *args, "--help"],
                             capture_output=True, text=True, check=True).stdout
        assert "usage: dualenc" in out


def test_list_shows_the_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(f"exp{i}" in out for i in range(1, 5))


def test_help_of_the_data_and_transfer_commands():
    for command in ("evaluate", "export-data"):
        out = subprocess.run([sys.executable, "-m", "dualenc.cli", command, "--help"],
                             capture_output=True, text=True, check=True).stdout
        assert f"usage: dualenc {command}" in out


TINY = ["--image-size", "32", "--set", "n_train_per_group=8", "--set", "n_val_per_group=4",
        "--set", "n_test_per_group=4"]


def test_export_data_then_evaluate_a_run_on_it(tmp_path, capsys):
    out = tmp_path / "procedural"
    assert main(["export-data", str(out), "--bias", "0.75", "--seed", "0", "--quiet", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "train  horse_grass 8  camel_desert 8  horse_desert 2  camel_grass 2" in printed
    assert (out / "test" / "camel_grass" / "003.png").is_file() and (out / "manifest.csv").is_file()
    assert main(["export-data", str(out), "--quiet", *TINY]) == 2
    assert "not empty" in capsys.readouterr().err

    runs = tmp_path / "runs"
    assert main(["run", "exp3", "--runs", str(runs), "--quiet", "--steps", "5", *TINY,
                 "--test-dir", str(out / "test")]) == 0
    printed = capsys.readouterr().out
    assert "worst_group_acc" in printed and "worst group" in printed and f"stored: {runs}" in printed
    run = next(p for p in runs.iterdir() if not p.name.startswith("."))
    assert main(["evaluate", run.name, "--runs", str(runs), "--test-dir", str(out / "manifest.csv")]) == 0
    printed = capsys.readouterr().out
    assert "manifest.csv: 52 images" in printed and "pooled" in printed
    assert len(list((run / "transfer").glob("*.json"))) == 2


@pytest.mark.parametrize("marker_files, test_dir, words", [
    ([], "", ["is not a finished run (no DONE marker)"]),
    (["DONE"], "", ["has no model.pt"]),
    (["DONE", "model.pt"], "nowhere", ["test_dir 'nowhere' does not exist"]),
])
def test_evaluate_bad_input_exits_2_with_one_line(marker_files, test_dir, words, tmp_path, capsys):
    for name in marker_files:  # a folder that looks more and more like a finished run
        (tmp_path / name).write_text("")
    assert main(["evaluate", str(tmp_path), "--test-dir", test_dir or str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err
    assert main(["evaluate", "nowhere", "--test-dir", str(tmp_path)]) == 2
    assert "run directory 'nowhere' does not exist" in capsys.readouterr().err
