"""The experiment pages' committed runs (dualenc.book.page_runs): written without weights, copied
into a run store whole, then read there like any finished run."""
import pytest

from dualenc.book import page_runs
from dualenc.config import ConfigError
from dualenc.runs.seed_runs import seed_records
from dualenc.runs.study import DONE, MODEL, is_done, load_model, run_dir, run_experiment, run_status
from dualenc.runs.sweep import run_sweep


def test_committed_runs_seed_a_fresh_store_and_are_read_without_training(tiny, tmp_path):
    configs = [tiny(steps=20, seed=seed) for seed in (0, 1)]
    for config in configs:
        run_experiment(config, root=tmp_path / "made", progress=False)
    committed = tmp_path / "results" / "book_runs"
    assert page_runs.commit_runs(configs, tmp_path / "made", committed) == 2
    assert sorted(p.name for p in committed.iterdir()) == sorted(run_dir(c, committed).name for c in configs)
    assert not list(committed.glob(f"*/{MODEL}")) and len(list(committed.glob(f"*/{DONE}"))) == 2

    fresh = tmp_path / "fresh"
    assert page_runs.seed_store(configs[:1], fresh, committed) == 1
    assert page_runs.seed_store(configs, fresh, committed) == 1  # the first is there already
    assert not list(fresh.glob(".*")), "staging folders were left behind"
    marker = run_dir(configs[0], fresh) / DONE
    before = marker.stat().st_mtime_ns
    made = run_experiment(configs[0], root=tmp_path / "made", progress=False)
    read = run_experiment(configs[0], root=fresh, progress=False)
    assert marker.stat().st_mtime_ns == before, "a seeded run was trained again"
    assert read.metrics == made.metrics
    assert page_runs.copied_sentence([read]) and page_runs.copied_sentence([made]) is None
    assert run_status(run_dir(configs[0], fresh)) == "copied"
    with pytest.raises(ConfigError, match="book_runs"):
        load_model(run_dir(configs[0], fresh))
    # a page scoring other images needs the weights: the copied run is trained again, to the same run
    again = seed_records(configs[0], 1, fresh, with_weights=True)[0]
    assert (again.path / MODEL).is_file() and not page_runs.was_copied(again.path)
    assert again.metrics | {"train_seconds": 0} == made.metrics | {"train_seconds": 0}
    load_model(again.path)


def test_only_finished_runs_are_committed(tiny, tmp_path):
    done, missing = tiny(steps=20, seed=0), tiny(steps=20, seed=1)
    run_experiment(done, root=tmp_path / "made", progress=False)
    committed = tmp_path / "book_runs"
    with pytest.raises(FileNotFoundError, match=run_dir(missing, committed).name):
        page_runs.commit_runs([done, missing], tmp_path / "made", committed)
    assert not committed.exists() and is_done(run_dir(done, tmp_path / "made"))


def test_a_sweep_trains_copied_runs_again_unless_it_accepts_them(tiny, tmp_path):
    """A sweep's store must hold every run's weights (mechanism, cue conflict and curves read them);
    the book's build accepts the copies it made."""
    configs = [tiny(steps=20, seed=seed) for seed in (0, 1)]
    run_experiment(configs[0], root=tmp_path / "made", progress=False)
    committed = tmp_path / "book_runs"
    page_runs.commit_runs(configs[:1], tmp_path / "made", committed)
    store = tmp_path / "store"
    page_runs.seed_store(configs[:1], store, committed)
    report = run_sweep(configs, root=store, progress=False, accept_copies=True)
    assert (report.skipped, report.ran) == (1, 1) and run_status(run_dir(configs[0], store)) == "copied"
    report = run_sweep(configs, root=store, progress=False)
    assert (report.skipped, report.ran) == (1, 1)
    assert run_status(run_dir(configs[0], store)) == "done" and (run_dir(configs[0], store) / MODEL).is_file()
