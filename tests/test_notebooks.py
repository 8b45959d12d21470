"""The notebooks: the papermill template's parameters, validation and outputs, and every notebook
run end to end at a debug size (a few seconds each; runs are shared through one run store)."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import papermill  # with myst_nb and ipywidgets (which the notebooks import): the `test` extra
from papermill.exceptions import PapermillExecutionError  # noqa: E402

from dualenc.book import notebook_helpers as nh  # noqa: E402
from dualenc.book.notebook_params import assigned_names  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TEMPLATE = NOTEBOOKS / "experiment.ipynb"
ALL = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
# Debug size: tiny images, few images and epochs (the numbers mean nothing, the plumbing is tested).
SMALL = {"steps": 5, "image_size": 32, "n_train_per_group": 12, "n_val_per_group": 6, "n_test_per_group": 6}
GLUE_ROLE = re.compile(r"\{glue:(?:text|figure|any|md|math)\}`([^`]+)`")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One run store for the module, so notebooks after the first load the same runs."""
    return tmp_path_factory.mktemp("runs")


def execute(name: str, out_dir: Path, **parameters) -> nbformat.NotebookNode:
    out = out_dir / f"{name}.executed.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters,
                               kernel_name="python3", progress_bar=False, cwd=str(out_dir),
                               execution_timeout=600)  # a hung cell fails instead of stalling CI
    return nbformat.read(out, as_version=4)


def glued(nb) -> dict:
    """name -> (plain-text value as a Python object where it parses, mime types) of every glue output."""
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            data = {k.removeprefix(meta.get("mime_prefix", "")): v for k, v in output["data"].items()}
            try:
                value = ast.literal_eval(data.get("text/plain", ""))
            except (ValueError, SyntaxError):
                value = data.get("text/plain")
            out[meta["name"]] = (value, set(data))
    return out


def used_parameters(nb) -> dict:
    """The parameters the run used, as the template glued them (exp_<name>)."""
    glue = glued(nb)
    used = {name: glue[f"exp_{name}"][0] for name in (*nh.PARAMETERS, "config_hash") if f"exp_{name}" in glue}
    assert set(nh.PARAMETERS) <= set(used), f"parameters not glued: {set(nh.PARAMETERS) - set(used)}"
    return used


def referenced_glue_keys(nb) -> set:
    keys = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            keys |= {m.rsplit(":", 1)[0] if re.search(r":[^:]*[a-zA-Z%]$", m) else m
                     for m in GLUE_ROLE.findall(cell.source)}
    return keys


def parameters_cell(nb) -> str:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged `parameters`"
    return cells[0].source


# ---------------------------------------------------------------- static checks (no kernel)


def _prose_lines(markdown: str) -> list:
    """The lines of a markdown cell outside fenced code blocks (a shell comment there is no heading)."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_committed_clean_and_follows_the_outline(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs must be cleared"
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in _prose_lines(c.source)
                if line.startswith("#")]
    assert sum(h.startswith("# ") for h in headings) == 1 and headings[0].startswith("# ")
    sections = [h for h in headings if h.startswith("## ")]
    # a page, not a notebook: the set-up cells run first, hidden and without headings of their own
    assert not {"## Imports", "## Parameters"} & set(sections), f"{name}: set-up cells must not have headings"
    assert sections[-1] == "## Reproduce this page" and len(sections) > 3
    assert f"papermill notebooks/{name}.ipynb" in "".join(
        c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Reproduce"))
    parameters_cell(nb)


def test_template_defaults_are_the_dualenc_defaults():
    source = parameters_cell(nbformat.read(TEMPLATE, as_version=4))
    namespace: dict = {}
    exec(source, {}, namespace)  # noqa: S102 - our own committed notebook
    values = {k: v for k, v in namespace.items() if not k.startswith("__")}
    assert set(values) == set(nh.PARAMETERS)
    assert values == nh.parameter_defaults()


def test_help_notebook_explains_every_parameter():
    source = parameters_cell(nbformat.read(TEMPLATE, as_version=4))
    result = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(TEMPLATE)],
                            capture_output=True, text=True, check=True)
    text = " ".join(result.stdout.split())
    for line in source.splitlines():
        name, comment = line.split(":", 1)[0], line.split("#", 1)[1].strip()
        assert f"{name}:" in text, f"--help-notebook does not list {name}"
        assert " ".join(comment.split()) in text, f"--help-notebook lacks the comment of {name}"


# ---------------------------------------------------------------- the template, executed


@pytest.mark.slow
def test_template_runs_with_the_parameters_it_was_given(tmp_path, runs):
    given = {"bias": 0.5, "captions": "descriptive", "seed": 1, **SMALL, "runs_dir": str(runs)}
    nb = execute("experiment", tmp_path, **given)
    used = used_parameters(nb)
    assert {k: used[k] for k in given} == given
    glue = glued(nb)
    assert {k: glue[f"exp_{k}"][0] for k in given} == given
    assert 0.0 <= glue["exp_worst_group_acc"][0] <= glue["exp_average_acc"][0] <= 1.0
    assert glue["exp_n_train"][0] == 2 * 12 + 2 * 6          # bias 0.5 keeps 6 of 12 minority images
    for fig in ("exp_fig_samples", "exp_fig_curve", "exp_fig_pca_train", "exp_fig_pca_test", "exp_fig_group_acc"):
        assert "image/png" in glue[fig][1]
    assert referenced_glue_keys(nb) <= set(glue)             # every {glue:...} in the prose resolves
    assert (runs / used["config_hash"] / "DONE").is_file()


@pytest.mark.slow
def test_template_with_a_registry_experiment_keeps_its_settings(tmp_path, runs):
    nb = execute("experiment", tmp_path, experiment="exp3", **SMALL, runs_dir=str(runs))
    used = used_parameters(nb)
    assert (used["experiment"], used["bias"], used["captions"]) == ("exp3", 0.75, "undescriptive")
    assert {k: used[k] for k in SMALL} == SMALL


@pytest.mark.slow
@pytest.mark.parametrize("bad, words", [
    ({"bias": 1.5}, ["bias=1.5", "[0.0, 1.0]"]),
    ({"captions": "foo"}, ["captions='foo'", "'undescriptive'", "'descriptive'", "'background'"]),
    ({"experiment": "exp3", "bias": 0.5}, ["bias=0.5", "experiment='exp3'"]),
    ({"experiment": "exp9"}, ["experiment='exp9'", "exp1"]),
    ({"test_dir": "no/such/folder"}, ["test_dir", "no/such/folder"]),
])
def test_a_bad_parameter_fails_at_once_naming_it(tmp_path, bad, words):
    store = tmp_path / "runs"
    with pytest.raises(PapermillExecutionError) as err:
        execute("experiment", tmp_path, **bad, runs_dir=str(store))
    assert err.value.ename == "ConfigError"
    for word in words:
        assert word in str(err.value)
    assert not store.exists(), "validation must fail before anything is trained"


@pytest.mark.slow
def test_template_scores_its_models_on_another_folder(tmp_path, runs):
    from dualenc.config import ExperimentConfig
    from dualenc.data.export import export_dataset

    folder = tmp_path / "other"
    export_dataset(ExperimentConfig().replace(image_size=32, n_train_per_group=4, n_val_per_group=4,
                                              n_test_per_group=3, seed=7), folder, progress=False)
    nb = execute("experiment", tmp_path, **SMALL, seeds=2, runs_dir=str(runs), test_dir=str(folder / "test"))
    assert used_parameters(nb)["test_dir"] == str(folder / "test")
    value, mimes = glued(nb)["exp_transfer_table"]
    assert "text/html" in mimes and "horse on grass" in value
    stored = {p.parent.parent.name for p in runs.glob("*/transfer/*.json")}
    assert {used_parameters(nb)["config_hash"]} <= stored and len(stored) >= 2, "each seed's result is stored"


TAKES_PARAMETERS = [name for name in ALL if any("parameters" in c.metadata.get("tags", [])
                                                for c in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells)]


@pytest.mark.slow
@pytest.mark.parametrize("name", TAKES_PARAMETERS)
def test_an_unknown_parameter_fails_at_once_naming_it(tmp_path, name):
    """papermill itself only warns about a name the template does not declare; ours fail on it."""
    declared = assigned_names(parameters_cell(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)))
    store = tmp_path / "runs"
    given = {"biass": 0.5, **({"runs_dir": str(store)} if "runs_dir" in declared else {})}
    with pytest.raises(PapermillExecutionError) as err:
        execute(name, tmp_path, **given)
    assert err.value.ename == "ConfigError"
    unknown, allowed = err.value.evalue.split("this notebook takes", 1)
    assert "'biass'" in unknown and "runs_dir" not in unknown
    assert all(f"'{n}'" in allowed for n in declared), f"the message does not list all of {declared}"
    assert not store.exists(), "the check must fail before anything is trained"


# ---------------------------------------------------------------- the other notebooks, executed


@pytest.mark.slow
@pytest.mark.parametrize("name, expected", [
    ("dataset", ["ds_contact_sheet", "ds_fig_bias", "ds_kept_75", "ds_caption_table", "ds_easier_feature"]),
    ("comparison", ["cmp_table", "cmp_fig_group_acc", "cmp_fig_pca_train", "cmp_exp4_worst_group_acc",
                    "cmp_effect_captions_biased"]),
    ("explorer", ["expl_n_views", "expl_n_runs", "expl_n_levels"]),
])
def test_notebook_runs_end_to_end(tmp_path, runs, name, expected):
    nb = execute(name, tmp_path, **SMALL, runs_dir=str(runs))
    glue = glued(nb)
    assert set(expected) <= set(glue)
    assert referenced_glue_keys(nb) <= set(glue)
    if name == "explorer":  # the book's kernel-free view: saved widget state with browser-side links
        state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        models = [m["model_name"] for m in state.values()]
        assert models.count("ImageModel") >= glue["expl_n_views"][0] == 48
        assert models.count("LinkModel") > 0 and models.count("StackModel") > 0
