"""Reading papermill's injected parameters and showing paths on published pages (no kernel)."""
from __future__ import annotations

from pathlib import Path

import pytest

from dualenc.config import ConfigError
from dualenc.book.notebook_params import assigned_names, display_path, injected_parameters, reject_unknown_parameters

TEMPLATE_CELL = 'bias: float = 0.0  # share removed\ncaptions: str = "undescriptive"\nseeds = 5\n'


def test_assigned_names_reads_plain_and_annotated_assignments_only():
    assert assigned_names(TEMPLATE_CELL + "print(bias)\nx.y = 3\n") == ["bias", "captions", "seeds"]


def test_an_injected_name_the_template_does_not_declare_is_named_with_the_allowed_ones():
    history = ["", "import x", TEMPLATE_CELL, "# Parameters\nbias = 0.5\nbiass = 0.5\n", "check()"]
    assert injected_parameters(history) == (["bias", "captions", "seeds"], ["bias", "biass"])
    with pytest.raises(ConfigError, match=r"\['biass'\]: this notebook takes \['bias', 'captions', 'seeds'\]"):
        reject_unknown_parameters(history)


def test_declared_names_pass_and_a_run_without_papermill_is_not_checked():
    reject_unknown_parameters(["", TEMPLATE_CELL, "# Parameters\ncaptions = 'descriptive'\n", "check()"])
    reject_unknown_parameters(["", "import x", TEMPLATE_CELL, "check()"])   # JupyterLab: nothing injected
    assert injected_parameters(["", TEMPLATE_CELL]) == ([], [])


def test_the_newest_injection_is_the_one_checked():
    """A kernel that ran an earlier papermill injection (with a misspelt name) and then a new one:
    the new one is read and passes; the other way round it is the misspelt one that is read."""
    old = ["", TEMPLATE_CELL, "# Parameters\nbiass = 1\n"]
    new = [TEMPLATE_CELL, "# Parameters\nbias = 1\n", "check()"]
    assert injected_parameters(old + new) == (["bias", "captions", "seeds"], ["bias"])
    reject_unknown_parameters(old + new)
    assert injected_parameters(new[:2] + old[1:] + ["check()"])[1] == ["biass"]
    with pytest.raises(ConfigError, match="biass"):
        reject_unknown_parameters(new[:2] + old[1:] + ["check()"])


def test_paths_inside_the_project_are_shown_relative_and_others_as_given(tmp_path):
    root = tmp_path / "project"
    assert display_path(root / "runs", root=root) == "runs"
    assert display_path(root / "_build" / "quick" / "runs", root=root) == "_build/quick/runs"
    assert display_path("runs/abc", root=root) == "runs/abc"
    outside = tmp_path / "elsewhere" / "runs"
    assert display_path(outside, root=root) == str(outside)
    assert display_path(Path("/x/y"), root=None) == "/x/y"
