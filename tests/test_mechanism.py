"""The "why" tables from stored runs: caption similarities and nearest captions (dualenc.runs.mechanism)
and the cue-conflict read-out (dualenc.runs.cue_conflict); and the command that writes both."""
import numpy as np
import pandas as pd
import pytest

from dualenc.cli import main
from dualenc.data.captions import SIZES
from dualenc.runs import cue_conflict, mechanism
from dualenc.runs.study import run_group


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from conftest import tiny_config
    root = tmp_path_factory.mktemp("runs")
    for changes in ({"captions": "descriptive"}, {"captions": "undescriptive"}, {"loss": "image_only"}):
        run_group([tiny_config(steps=60, seed=s, **changes) for s in (0, 1)], root=root, progress=False)
    return root


def test_similarities_and_nearest_captions(store):
    table = mechanism.collect_mechanism(store)
    assert len(table) == 4 and set(table["arm"]) == {"pairwise_descriptive", "pairwise_undescriptive"}  # no image-only
    matches = table[[f"match_{k}" for k in mechanism.MATCH_KINDS]]
    assert np.allclose(matches.sum(axis=1), 1.0) and matches.stack().between(0, 1).all()
    cos = table.filter(like="cos_")
    assert cos.stack().between(-1.0001, 1.0001).all()
    # the averages are the means of their pairs
    row = table.iloc[0]
    assert row["cos_same_animal"] == pytest.approx(
        (row["cos_horse_grass__horse_desert"] + row["cos_camel_grass__camel_desert"]) / 2)


def test_nearest_captions_count_the_kinds():
    captions = np.eye(4)                      # CAPTION_GROUPS order: horse_grass, horse_desert, camel_grass, camel_desert
    images = np.eye(4)[[1, 2, 3, 0]]          # nearest: horse_desert, camel_grass, camel_desert, horse_grass
    animal = np.array(["horse", "camel", "camel", "horse"])
    background = np.array(["desert", "grass", "desert", "grass"])    # minority: the first two
    out = mechanism.caption_matches(images, captions, animal, background)
    assert out == {"match_exact": 1.0, "match_animal": 0.0, "match_background": 0.0, "match_neither": 0.0}
    background = np.array(["desert", "grass", "grass", "grass"])
    images = np.eye(4)[[3, 0, 3, 0]]          # the other animal on its background twice, its own animal once
    out = mechanism.caption_matches(images, captions, np.array(["horse", "camel", "camel", "horse"]), background)
    assert out["match_background"] == pytest.approx(2 / 3) and out["match_animal"] == pytest.approx(1 / 3)


def test_cue_conflict_asks_every_scored_run_on_altered_images(store):
    table = cue_conflict.collect_cue_conflict(store)
    assert set(table["arm"]) == {"pairwise_descriptive", "pairwise_undescriptive", "image_only"} and len(table) == 6
    assert table[list(cue_conflict.MEASURES)].stack().between(0, 1).all()
    grey = cue_conflict.greyscale(np.array([[[[255, 0, 0], [10, 200, 30]]]], dtype=np.uint8))
    assert grey.shape == (1, 1, 2, 3) and (grey[..., 0] == grey[..., 2]).all() and grey[0, 0, 0, 0] == 76
    assert "pairwise_background" not in cue_conflict.scored_arms() and "pairwise_size" in cue_conflict.scored_arms()


def test_the_mechanism_command_writes_both_tables(store, tmp_path, capsys):
    out, cues = tmp_path / "mechanism.csv", tmp_path / "cue_conflict.csv"
    assert main(["mechanism", "--runs", str(store), "--out", str(out), "--cue-conflict-out", str(cues)]) == 0
    assert len(pd.read_csv(out)) == 4 and len(pd.read_csv(cues)) == 6
    assert "-> " in capsys.readouterr().out
    assert SIZES == ("small", "large")
