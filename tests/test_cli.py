import subprocess
import sys

import pytest

from dualenc.cli import main


def test_run_prints_metrics_table_and_directory(tmp_path, capsys):
    args = ["run", "exp3", "--runs", str(tmp_path), "--quiet", "--steps", "5", "--image-size", "32",
            "--set", "n_train_per_group=8", "--set", "n_val_per_group=4", "--set", "n_test_per_group=4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "worst_group_acc" in out and "probe_background_acc" in out
    assert f"run directory: {tmp_path}" in out


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
