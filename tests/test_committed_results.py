"""The committed results table (results/default.csv) is what the code produces."""
from pathlib import Path

import pandas as pd
import pytest

from dualenc.config import config_hash
from dualenc.study import run_experiment
from dualenc.sweep import default_grid

TABLE = Path(__file__).resolve().parents[1] / "results" / "default.csv"


def test_committed_table_covers_the_default_grid():
    table = pd.read_csv(TABLE)
    assert sorted(table["run"]) == sorted(config_hash(c) for c in default_grid())
    assert table["worst_group_acc"].between(0, 1).all()


@pytest.mark.slow
def test_a_committed_row_is_reproduced_by_training_again(tmp_path):
    # Sweep workers train with one torch thread, as this test does (tests/conftest.py).
    table = pd.read_csv(TABLE).set_index("run")
    config = next(c for c in default_grid()
                  if c.name == "captions" and c.data.bias == 0.75 and c.data.captions == "descriptive"
                  and c.data.descriptive_share == 1.0 and c.train.seed == 1)
    metrics = run_experiment(config, root=tmp_path, progress=False).metrics
    row = table.loc[config_hash(config)]
    for key in ("average_acc", "worst_group_acc", "gap", "probe_animal_acc", "probe_background_acc",
                "silhouette_background_image", "final_loss"):
        assert metrics[key] == pytest.approx(row[key], abs=1e-6), key
