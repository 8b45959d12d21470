"""The explorers without a browser: the live explorer's decisions (a stored setting shows without
training, Run is disabled while training), its widgets, the book's one-row static explorer and
the scratch copy that `make lab` opens."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

import ipywidgets as widgets  # noqa: E402  (a test dependency: conftest names it if missing)

from dualenc.book.explorer import explorer_views, run_summary_html, static_explorer  # noqa: E402
from dualenc.book.explorer_live import NOT_RUN, STORED, TRAINED, LiveController, live_explorer  # noqa: E402
from dualenc.config import GROUP_LABELS  # noqa: E402
from dualenc.runs.metric_registry import label_of, names  # noqa: E402
from dualenc.runs.study import is_done, run_dir, run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A tmp run store with one tiny finished run; returns (base config, store, record)."""
    from conftest import tiny_config

    store = tmp_path_factory.mktemp("runs")
    base = tiny_config(steps=5, n_train_per_group=8, n_val_per_group=4, n_test_per_group=4)
    record = run_experiment(base, root=store, progress=False)
    return base, store, record


def settings_of(config, **changes) -> dict:
    return {"bias": config.data.bias, "captions": config.data.captions, "seed": config.train.seed,
            "loss": config.train.loss, **changes}


def must_not_train(config):
    raise AssertionError(f"trained {config.name} although it is stored")


class Recorder:
    def __init__(self):
        self.drawn, self.said = [], []

    def draw(self, record):
        self.drawn.append(record)

    def say(self, text):
        self.said.append(text)


# ---------------------------------------------------------------- the controller (no widgets)


def test_a_stored_setting_shows_without_training(stored):
    base, store, record = stored
    seen = Recorder()
    ctl = LiveController(base, store, seen.draw, seen.say, train=must_not_train)
    assert ctl.select(settings_of(base)) == STORED
    assert [r.path for r in seen.drawn] == [record.path]
    assert ctl.run(settings_of(base)) == STORED          # Run on a stored setting: shown, not trained
    assert len(seen.drawn) == 2 and not any("Training" in s for s in seen.said)


def test_an_unstored_setting_waits_for_run(stored):
    base, store, _ = stored
    seen = Recorder()
    ctl = LiveController(base, store, seen.draw, seen.say, train=must_not_train)
    assert ctl.select(settings_of(base, seed=base.train.seed + 1)) == NOT_RUN
    assert seen.drawn == [None] and "press Run" in seen.said[-1]


def test_a_slider_bias_is_rounded_to_the_stored_run(stored):
    base, store, _ = stored
    ctl = LiveController(base, store, Recorder().draw, Recorder().say, train=must_not_train)
    assert ctl.config(settings_of(base, bias=0.15000000000000002)).data.bias == 0.15
    assert ctl.config(settings_of(base, bias=base.data.bias + 1e-12)) == base


def test_run_is_disabled_while_training_and_enabled_after(stored):
    base, store, record = stored
    button, seed_box = widgets.Button(), widgets.BoundedIntText()
    seen, during = Recorder(), []

    def train(config):
        during.append((button.disabled, seed_box.disabled, config.train.seed))
        assert ctl.run(settings_of(base, seed=7)) == "busy"   # a press while training does nothing
        return record

    ctl = LiveController(base, store, seen.draw, seen.say, busy=[button, seed_box], train=train)
    assert ctl.run(settings_of(base, seed=7)) == TRAINED
    assert during == [(True, True, 7)]
    assert not button.disabled and not seed_box.disabled and not ctl.training
    assert seen.drawn[-1] is record and any(s.startswith("Training (") for s in seen.said)


def test_run_is_enabled_again_when_training_fails(stored):
    base, store, _ = stored
    button = SimpleNamespace(disabled=False)

    def train(config):
        assert button.disabled
        raise RuntimeError("out of memory")

    seen = Recorder()
    ctl = LiveController(base, store, seen.draw, seen.say, busy=[button], train=train)
    with pytest.raises(RuntimeError, match="out of memory"):
        ctl.run(settings_of(base, seed=8))
    assert not button.disabled and not ctl.training and "failed" in seen.said[-1]


# ---------------------------------------------------------------- the live explorer's widgets


def test_live_explorer_shows_the_stored_run_at_once(stored):
    base, store, _ = stored
    box = live_explorer(base, store, train=must_not_train)
    image = box.children[-1].children[0]
    assert bytes(image.value).startswith(b"\x89PNG") and box.children[-1].layout.display is None
    assert "Stored run" in box.children[2].value and "Training" not in box.children[2].value
    assert box.widgets["seed"].continuous_update        # a typed seed counts without Enter
    box.widgets["colour_by"].value = "background"        # a view control only redraws
    assert box.controller.record is not None


def test_live_explorer_trains_an_unstored_seed_with_run_disabled(stored, tmp_path):
    base, _, _ = stored
    store = tmp_path / "runs"
    run_experiment(base, root=store, progress=False)
    calls = []

    def train(config):
        calls.append((box.button.disabled, box.widgets["seed"].disabled, box.widgets["bias"].disabled))
        return run_experiment(config, root=store, progress=False)

    box = live_explorer(base, store, train=train)
    box.widgets["seed"].value = base.train.seed + 1
    assert "press Run" in box.children[2].value and box.children[-1].layout.display == "none"
    box.button.click()
    assert calls == [(True, True, True)] and not box.button.disabled and not box.widgets["seed"].disabled
    assert is_done(run_dir(base.replace(seed=base.train.seed + 1), store))
    assert "Trained and stored" in box.children[2].value and box.children[-1].layout.display is None
    box.button.click()                                   # now stored: shown again, not trained
    assert len(calls) == 1 and "Stored run" in box.children[2].value


def test_live_explorer_survives_a_failed_training(stored):
    base, store, _ = stored

    def train(config):
        raise RuntimeError("boom")

    box = live_explorer(base, store, train=train)
    box.widgets["seed"].value = 99
    box.button.click()                                   # the error is shown, not raised into the kernel
    assert "Training failed" in box.children[2].value and "boom" in box.children[2].value
    assert not box.button.disabled and not box.widgets["seed"].disabled


# ---------------------------------------------------------------- the book's static explorer


def test_static_explorer_has_one_row_of_menus_linked_to_the_views(stored):
    _, _, record = stored
    controls, figures, panels = explorer_views({(record.config.data.bias, record.config.data.captions): record})
    assert len(figures) == 2 * 2 * 3
    box = static_explorer(controls, figures, panels)
    row, views = box.children                          # one row of menus, each under its name
    assert [type(c.children[1]) for c in row.children] == [widgets.Dropdown] * len(controls)
    assert [c.children[0].value for c in row.children] == [f"<b>{name}</b>" for name, _ in controls]
    assert isinstance(views, widgets.HBox) and len(views.children) == 2       # figure and its panel
    # every Stack of a level follows its menu (one run: 1 + 1 + 1 + 2 + 4 figure stacks, 1 + 1 panel stacks)
    assert len(box.links) == (1 + 1 + 1 + 2 + 4) + (1 + 1)
    assert all(link.source[1] == "index" and link.target[1] == "selected_index" for link in box.links)


# ---------------------------------------------------------------- make lab


def load_lab():
    spec = importlib.util.spec_from_file_location("lab_tool", ROOT / "tools" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_summary_shows_the_registrys_panel_rows_with_labels(stored):
    _, _, record = stored
    html = run_summary_html(record)
    shown = [label_of(n) for n in names(shown_in="panel")]
    assert html.count("<tr>") == len(shown) and all(f">{label}<" in html for label in shown)
    assert [html.index(f">{label}<") for label in shown] == sorted(html.index(f">{label}<") for label in shown)
    m = record.metrics
    assert f">{m['worst_group_acc']:.3f}<" in html and f">{m['n_train']}<" in html
    assert f">{GROUP_LABELS[m['worst_group']]}<" in html          # a group by its label, not its key
    assert "font-size:0.8em" in run_summary_html(record, compact=True) and "font-size" not in html
    older = SimpleNamespace(metrics={k: v for k, v in m.items() if k != "probe_background_acc"})
    assert run_summary_html(older).count("<tr>") == len(shown) - 1      # a run without a metric: no row


def test_make_lab_opens_a_scratch_copy_that_finds_the_run_store(tmp_path, monkeypatch):
    from dualenc.runs.study import runs_root

    lab = load_lab()
    project = tmp_path / "project"                       # a stand-in project tree
    (project / "dualenc").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    folder = project / lab.SCRATCH.relative_to(lab.ROOT)
    copy = lab.prepare_copy(lab.NOTEBOOK, folder)
    assert copy.read_bytes() == lab.NOTEBOOK.read_bytes() and copy.parent == folder
    monkeypatch.chdir(folder)                            # where the kernel starts
    monkeypatch.delenv("DUALENC_RUNS", raising=False)
    assert runs_root() == project / "runs"
    cmd = lab.lab_command(copy, no_browser=True, is_root=True)
    assert f"--ServerApp.root_dir={folder}" in cmd and "--allow-root" in cmd and "--no-browser" in cmd
    assert "--allow-root" not in lab.lab_command(copy, is_root=False)
    assert lab.SCRATCH.relative_to(lab.ROOT).parts[0] == "_build"   # git-ignored already
