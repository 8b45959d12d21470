"""dualenc.runs.equivalence: a code change is declared to train like the stored runs only after they are
trained again bitwise; then they stay done. A run that differs stops the declaration."""
import pandas as pd
import pytest
import torch

from dualenc.runs import equivalence, provenance
from dualenc.config import ConfigError
from dualenc.runs.study import MODEL, run_dir, run_group, run_status

NEW_CODE = "0123456789ab"


@pytest.fixture
def stored(tiny, tmp_path, monkeypatch):
    """Two tiny runs trained together, then today's code changes (another digest)."""
    configs = [tiny(steps=12, seed=s) for s in (0, 1)]
    root = tmp_path / "runs"
    run_group(configs, root=root, progress=False)
    monkeypatch.setattr(provenance, "EQUIVALENCE_FILE", tmp_path / "equivalent_code.csv")
    old = provenance.code_digest()
    monkeypatch.setattr("dualenc.runs.provenance.code_digest", lambda: NEW_CODE)
    return root, configs, old


def test_code_that_trains_alike_is_declared_and_its_runs_stay_done(stored):
    root, configs, old = stored
    path = run_dir(configs[0], root)
    assert run_status(path) == "stale"
    assert equivalence.stored_batches(root) == [[run_dir(c, root).name for c in configs]]   # one batch, its order
    table = equivalence.check(root)
    assert len(table) == 2 and (table["outcome"] == "bitwise equal").all()
    row = equivalence.declare(table, command="dualenc equivalence")
    assert (row["code_digest"], row["trains_like"]) == (NEW_CODE, old)
    assert pd.read_csv(provenance.EQUIVALENCE_FILE)["code_digest"].astype(str).tolist() == [NEW_CODE]
    assert run_status(path) == "done" and provenance.training_digest(NEW_CODE) == old
    assert provenance.same_training(NEW_CODE, old) and not provenance.same_training(NEW_CODE, "feedfacecafe")
    with pytest.raises(ConfigError, match="nothing to check"):      # every stored run is today's now
        equivalence.check(root)


def test_a_run_that_differs_is_named_and_nothing_is_declared(stored):
    root, configs, _ = stored
    weights_file = run_dir(configs[1], root) / MODEL
    weights = torch.load(weights_file, weights_only=True)
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name] + 1e-3
    torch.save(weights, weights_file)
    table = equivalence.check(root)
    assert table.set_index("run")["outcome"].to_dict() == {
        run_dir(configs[0], root).name: "bitwise equal", run_dir(configs[1], root).name: "differs"}
    with pytest.raises(ConfigError, match=f"1 of 2 runs differ \\({run_dir(configs[1], root).name}\\)"):
        equivalence.declare(table)
    assert not provenance.EQUIVALENCE_FILE.exists()
    assert run_status(run_dir(configs[0], root)) == "stale"


def test_declarations_chain_and_a_cycle_ends():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "eq.csv"
        file.write_text("code_digest,trains_like\nc,b\nb,a\nx,y\ny,x\n")
        assert provenance.training_digest("c", file) == "a" and provenance.training_digest("a", file) == "a"
        assert provenance.training_digest("x", file) in ("x", "y")
