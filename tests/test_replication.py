"""A rerun against the committed rows: bitwise, consistent, or outside the measured spread."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dualenc.runs import provenance, replication
from dualenc.analysis import tables
from dualenc.runs.replication import METRICS, SPREAD_TABLE, replicate, spread_summary, tolerances

RUNS = [f"run{k}" for k in range(5)]


def _spread(step: float) -> pd.DataFrame:
    """Three sources of the same 5 runs: committed at 0.5, the others alternately +-step away."""
    rows = []
    for source, sign in (("committed", 0), ("native", 1), ("avx2", -1)):
        for k, run in enumerate(RUNS):
            value = 0.5 + sign * step * (-1) ** k
            rows.append({"source": source, "experiment": "exp", "seed": k, "run": run,
                         **{m: value for m in METRICS}})
    return pd.DataFrame(rows)


def _records(tmp_path: Path, values, training: dict) -> list:
    records = []
    for k, (run, value) in enumerate(zip(RUNS, values)):
        path = tmp_path / run
        path.mkdir(exist_ok=True)
        (path / "training.json").write_text(json.dumps(training))
        records.append(SimpleNamespace(path=path, metrics={m: value for m in METRICS},
                                       config=SimpleNamespace(train=SimpleNamespace(seed=k))))
    return records


def _committed(digest: str = provenance.UNRECORDED, kernels: str = provenance.UNRECORDED,
               trained_with: str = provenance.UNRECORDED, compiled=False, threads: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"run": RUNS, "code_digest": digest, "kernels": kernels, "trained_with": trained_with,
                         "compiled": compiled, "threads": threads, **{m: 0.5 for m in METRICS}})


def test_tolerances_follow_the_measured_spread():
    summary = spread_summary(_spread(0.01))
    # pairs native-committed and avx2-committed differ by 0.01, native-avx2 by 0.02
    assert summary.loc["worst_group_acc", "max_per_run"] == pytest.approx(0.02)
    assert summary.loc["worst_group_acc", "rms_per_run"] == pytest.approx(math.sqrt((0.01**2 * 2 + 0.02**2) / 3))
    tol = tolerances(_spread(0.01))
    assert tol.loc["worst_group_acc", "per_run"] == pytest.approx(
        replication.TOLERANCE_SDS * summary.loc["worst_group_acc", "rms_per_run"])
    assert (tolerances(_spread(0.03)) > tol).all().all()


def test_bitwise_equal_sources_measure_no_spread():
    spread = _spread(0.01)
    twin = spread[spread["source"] == "committed"].assign(source="twin")
    with_twin = pd.concat([spread, twin], ignore_index=True)
    assert replication.identical_sources(with_twin) == [("committed", "twin")]
    assert not any("twin" in pair for pair in replication.pair_differences(with_twin)["pair"])
    pd.testing.assert_frame_equal(spread_summary(with_twin), spread_summary(spread))


def test_a_rerun_inside_the_spread_is_consistent_and_one_outside_is_not(tmp_path):
    spread, committed = _spread(0.01), _committed()
    inside = replicate(_records(tmp_path, [0.51, 0.49, 0.5, 0.505, 0.5], {}), committed, spread)
    assert inside.outcome == "consistent" and not inside.bitwise_expected
    assert inside.differences["worst_group_acc"].tolist() == pytest.approx([0.01, -0.01, 0, 0.005, 0])
    # every run a little higher: each run within its tolerance, the seed mean not
    shifted = replicate(_records(tmp_path, [0.55] * 5, {}), committed, spread)
    per_run = tolerances(spread).loc["worst_group_acc", "per_run"]
    assert 0.05 < per_run and shifted.outcome == "outside the measured spread"
    # one run far off
    assert replicate(_records(tmp_path, [0.5, 0.5, 0.5, 0.5, 0.7], {}), committed, spread).outcome == \
        "outside the measured spread"
    assert "outside the measured spread" in tables.replication_sentence(shifted)
    assert list(tables.replication_table(shifted)["outcome"]) == ["outside the measured spread"] * len(METRICS)


def test_same_code_and_kernels_must_be_bitwise(tmp_path):
    here = {**provenance.provenance(), "trained_with": RUNS, "compile": False}
    committed = _committed(here["code_digest"], here["kernels"], " ".join(RUNS), threads=here["threads"])
    equal = replicate(_records(tmp_path, [0.5] * 5, here), committed, _spread(0.01))
    assert equal.bitwise_expected and equal.outcome == "bitwise equal"
    assert "bit for bit" in tables.replication_sentence(equal)
    tiny_change = replicate(_records(tmp_path, [0.5] * 4 + [0.5 + 1e-9], here), committed, _spread(0.01))
    assert tiny_change.outcome == "not bitwise (expected)"
    # trained in another batch (or on other kernels): the statistical test applies
    alone = replicate(_records(tmp_path, [0.5] * 4 + [0.5 + 1e-9], {**here, "trained_with": RUNS[:1]}),
                      committed, _spread(0.01))
    assert not alone.bitwise_expected and alone.outcome == "consistent"
    # another thread count: compiled steps and bf16 convolutions split their reductions by it
    other = _committed(here["code_digest"], here["kernels"], " ".join(RUNS), threads=here["threads"] + 1)
    assert not replicate(_records(tmp_path, [0.5] * 5, here), other, _spread(0.01)).bitwise_expected
    compiled = {**here, "compile": True}
    same_threads = _committed(here["code_digest"], here["kernels"], " ".join(RUNS), True, here["threads"])
    assert replicate(_records(tmp_path, [0.5] * 5, compiled), same_threads, _spread(0.01)).bitwise_expected
    other_threads = _committed(here["code_digest"], here["kernels"], " ".join(RUNS), True, here["threads"] + 1)
    assert not replicate(_records(tmp_path, [0.5] * 5, compiled), other_threads, _spread(0.01)).bitwise_expected


def test_a_setting_missing_from_the_table_gives_none(tmp_path):
    assert replicate(_records(tmp_path, [0.5] * 5, {}), _committed().iloc[:3], _spread(0.01)) is None


def test_the_committed_spread_table_covers_the_book_settings():
    spread = pd.read_csv(SPREAD_TABLE)
    assert {"committed", *replication.KERNEL_VARIANTS} == set(spread["source"])
    for source, rows in spread.groupby("source"):
        assert len(rows) == len(replication.settings()) * replication.SEEDS, source
        assert np.isfinite(rows[list(METRICS)].to_numpy(float)).all(), source
    measured = spread[spread["source"] != "committed"]
    assert (measured["code_digest"] != provenance.UNRECORDED).all()
    assert measured.groupby("source")["kernels"].nunique().eq(1).all()
    assert measured["kernels"].nunique() == len(replication.KERNEL_VARIANTS)  # the variants took other kernels
