"""dualenc.results on a hand-made results table (no training): summaries and intervals, claims
whose decision flips with the data, the verdict's phrases, and the figures' lines and bands."""
import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from scipy import stats  # noqa: E402

from dualenc import results as R  # noqa: E402
from dualenc.config import GROUPS, group_name  # noqa: E402
from dualenc.metrics import accuracy_summary  # noqa: E402
from dualenc.sweep import ci_grid  # noqa: E402

GROUP_NAMES = [group_name(a, b) for a, b in GROUPS]
LEVELS = (0.0, 0.75, 0.95)
SEEDS = (0, 1, 2)
NOISE = {0: -0.01, 1: 0.0, 2: 0.01}       # per seed: mean 0, sample sd 0.01


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def settings(levels=LEVELS):
    """(loss, captions, descriptive_share, caption_templates, bias) of the study's grid shape."""
    out = [("pairwise", c, s, 1, b) for b in levels
           for c, s in (("undescriptive", 1.0), ("descriptive", 1.0), ("descriptive", 0.5))]
    out += [(loss, c, 1.0, 1, b) for loss in ("clip", "siglip") for c in ("undescriptive", "descriptive")
            for b in levels if b in (0.0, 0.75, 0.95)]
    out += [("image_only", "undescriptive", 1.0, 1, b) for b in levels]
    out += [("pairwise", "descriptive", 1.0, 4, b) for b in levels if b in (0.0, 0.95)]
    return out


def minority(loss, captions, bias, help_=0.2):
    """Known minority-group accuracy: 0.9 without bias, falling with bias; descriptive captions
    add `help_` under bias."""
    value = 0.9 - 0.6 * bias
    return value + (help_ * bias if captions == "descriptive" and loss != "image_only" else 0.0)


def synthetic_table(seeds=SEEDS, levels=LEVELS, help_=0.2) -> pd.DataFrame:
    rows = []
    for (loss, captions, share, templates, bias), seed in itertools.product(settings(levels), seeds):
        noise = NOISE.get(seed, 0.0)
        low = minority(loss, captions, bias, help_) + noise
        acc = {"horse_grass": 0.9 + 0.05 * bias + noise, "camel_desert": 0.9 + 0.05 * bias + noise,
               "horse_desert": low, "camel_grass": low + 0.02}
        summary = accuracy_summary(acc)
        descriptive = captions == "descriptive"
        rows.append({
            "run": f"{loss}-{captions}-{share}-{templates}-{bias}-{seed}", "name": "synthetic", "loss": loss,
            "captions": captions, "descriptive_share": share, "caption_templates": templates, "bias": bias,
            "seed": seed, **{f"acc_{g}": v for g, v in acc.items()}, **summary,
            "probe_animal_acc": 0.95 - 0.2 * bias + noise, "probe_background_acc": 0.8 + 0.1 * bias + noise,
            "silhouette_animal_image": 0.3 - 0.2 * bias + noise,
            "silhouette_background_image": 0.05 + 0.2 * bias + (0.1 if descriptive else 0) + noise,
            "silhouette_group_image": 0.1 + noise,
            "silhouette_animal_text": math.nan if loss == "image_only" else 0.5 + noise,
            "silhouette_background_text": math.nan if loss == "image_only" else (0.6 if descriptive else -0.1) + noise,
            "silhouette_group_text": math.nan if loss == "image_only" else 0.2 + noise,
        })
    return pd.DataFrame(rows)


@pytest.fixture
def df():
    return R.tidy(synthetic_table())


def test_variants_and_derived_columns(df):
    assert set(df["variant"]) == {"undescriptive", "descriptive", "descriptive_share_0.5",
                                  "descriptive_templates_4", "image_only"}
    assert R.variant_of("pairwise", "descriptive", 0.5, 1) in R.CAPTION_VARIANTS   # the sweep's names
    row = R.select(df, loss="pairwise", variant="undescriptive", bias=0.75, seed=1).iloc[0]
    assert row["majority_acc"] == pytest.approx(0.9375)
    assert row["minority_acc"] == pytest.approx(0.46)
    assert row["gap"] == pytest.approx(row["majority_acc"] - row["minority_acc"])


def test_summary_has_the_mean_and_t_interval_over_seeds(df):
    s = R.summarise(df)
    assert len(s) == len(settings()) and (s["n_seeds"] == 3).all()
    row = s[(s["loss"] == "pairwise") & (s["variant"] == "undescriptive") & np.isclose(s["bias"], 0.75)].iloc[0]
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert row["majority_acc_mean"] == pytest.approx(0.9375)
    assert (row["majority_acc_low"], row["majority_acc_high"]) == pytest.approx((0.9375 - half, 0.9375 + half))
    image_only = s[s["variant"] == "image_only"]
    assert image_only["silhouette_background_text_mean"].isna().all()     # no text tower


def test_tidy_with_a_grid_needs_every_run_of_it():
    grid = ci_grid()
    with pytest.raises(ValueError, match=f"{len(grid)} of the grid's {len(grid)} runs"):
        R.tidy(synthetic_table(), grid)


def test_paired_difference_is_taken_seed_by_seed(df):
    a = {"loss": "pairwise", "variant": "descriptive", "bias": 0.75}
    b = {"loss": "pairwise", "variant": "undescriptive", "bias": 0.75}
    d = R.paired_difference(df, "acc_horse_desert", a, b)
    # the seed noise cancels in each pair: the difference is exactly 0.2 * 0.75 with no spread
    assert d["mean"] == pytest.approx(0.15) and d["low"] == pytest.approx(0.15) and d["n"] == 3
    with pytest.raises(ValueError, match="cannot pair"):
        R.paired_difference(df[~((df["seed"] == 2) & (df["variant"] == "undescriptive"))], "gap", a, b)
    with pytest.raises(ValueError, match="no runs"):
        R.interval(df, "gap", loss="pairwise", variant="descriptive", bias=0.5)


def test_change_phrase_follows_the_interval():
    assert R.change_phrase(0.01, 0.2) == "raised"
    assert R.change_phrase(-0.2, -0.01) == "lowered"
    assert R.change_phrase(-0.1, 0.2) == "did not measurably change"
    assert R.change_phrase(math.nan, math.nan) == "did not measurably change"
    assert R.interval_text(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]"
    assert R.interval_text(0.5, math.nan, math.nan) == "0.500" and R.interval_text(math.nan, 0, 0) == "n/a"


def test_claims_are_decided_by_the_interval(df):
    table = R.claims(df)
    assert list(table["test"]) == [t[1] for t in R.TESTS]
    decisions = dict(zip(table["test"], table["decision"]))
    assert decisions["1a"] == "confirmed" and decisions["4a"] == "confirmed"
    assert decisions["3a"] == "confirmed" and decisions["3b"] == "confirmed"
    assert decisions["2a"] == "confirmed" and decisions["2b"] == "confirmed"
    assert decisions["1c"] == "not confirmed"   # at bias 0 the minority groups are not worse (gap -0.01)
    values = R.claim_values(table)
    assert [values[f"claim_{c}"] for c in (1, 2, 3, 4)] == ["not confirmed", "confirmed", "confirmed", "confirmed"]
    assert values["test_4a"] == pytest.approx(0.15) and values["test_1c_decision"] == "not confirmed"
    row = table.set_index("test").loc["4a"]
    assert row["estimate"] == pytest.approx(0.15) and row["n_seeds"] == 3
    shown = R.claims_display(table)
    assert shown.loc["4a", "estimate [95% CI]"] == "0.150 [0.150, 0.150]"
    assert shown.loc["1b", "claim"] == "" and shown.loc["1a", "claim"] == "exp1: " + R.CLAIMS[1][1]


def test_a_claim_flips_when_the_data_flips():
    hurt = R.tidy(synthetic_table(help_=-0.2))
    none = R.tidy(synthetic_table(help_=0.0))
    assert dict(zip(R.claims(hurt)["test"], R.claims(hurt)["decision"]))["4a"] == "not confirmed"
    assert R.claim_values(R.claims(none))["claim_4"] == "not confirmed"
    assert R.verdict(hurt)["desc_wga_b095_phrase"] == "lowered"
    assert R.verdict(hurt)["answer"] == "no"
    assert R.verdict(none)["answer"] == "not measurably"


def test_verdict_numbers_and_phrases(df):
    v = R.verdict(df)
    assert v["n_runs"] == len(df) and v["n_seeds"] == 3 and v["bias_levels"] == "0, 0.75, 0.95"
    assert v["desc_wga_b095"] == pytest.approx(0.2 * 0.95) and v["desc_wga_b095_phrase"] == "raised"
    assert v["desc_wga_b000_phrase"] == "did not measurably change"
    assert v["answer"] == "yes" and v["xue_phrase"] == "agrees with"
    assert v["bias_wga_image_only_phrase"] == "fell"
    assert v["desc_vs_image_only_b095_phrase"] == "above"
    assert v["wga_undescriptive_b075"] == pytest.approx(0.45)
    assert set(v) >= {"templates_wga_b000", "templates_wga_b095", "clip_desc_wga_b095", "siglip_desc_wga_b095"}


def test_tables_hold_one_cell_per_method_and_bias(df):
    s = R.summarise(df)
    t = R.wide_table(s, "worst_group_acc", R.LOSS_METHODS, digits=3)
    assert t.shape == (7, 3) and list(t.columns) == ["bias 0", "bias 0.75", "bias 0.95"]
    assert t.loc['pairwise, "horse" / "camel"', "bias 0.75"].startswith("0.450 [")
    var = R.wide_table(s, "worst_group_acc", R.VARIABILITY_METHODS)     # where every method was run
    assert list(var.columns) == ["bias 0", "bias 0.95"]
    var = R.wide_table(s, "worst_group_acc", R.VARIABILITY_METHODS, levels=LEVELS)
    assert var.loc["pairwise, descriptive, 4 templates"].tolist()[1] == "not run"
    assert var.loc["pairwise, descriptive", "bias 0.75"].startswith("0.60 [")         # 0.45 + 0.2 * 0.75


def lines_and_bands(ax):
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    return labels, bands


def test_headline_figure_has_a_line_and_band_per_variant(df):
    fig = R.plot_headline(R.summarise(df))
    assert len(fig.axes) == 3
    expected = [R.VARIANTS[v][0] for v in (*R.CAPTION_VARIANTS, "image_only")]
    for ax in fig.axes:
        labels, bands = lines_and_bands(ax)
        assert [lab for lab in labels if lab != "chance"] == expected and len(bands) == 4
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.75", "0.95"]
    worst = fig.axes[0].get_lines()[0]
    assert np.allclose(worst.get_ydata(), [0.9, 0.45, 0.33])    # undescriptive minority: 0.9 - 0.6 b


def test_probe_and_silhouette_figures(df):
    s = R.summarise(df)
    probes = R.plot_probes(s)
    assert len(probes.axes) == 2 and all(len(lines_and_bands(ax)[1]) == 4 for ax in probes.axes)
    sil = R.plot_silhouettes(s)
    titles = [ax.get_title() for ax in sil.axes]
    assert titles == ["silhouette by background, image", "silhouette by background, text",
                      "silhouette by animal, image", "silhouette by animal, text"]
    # the image-only baseline has no text embeddings: no line in the text panels
    assert len(lines_and_bands(sil.axes[1])[1]) == 3 and len(lines_and_bands(sil.axes[0])[1]) == 4


def test_interval_figures_have_an_errorbar_per_method(df):
    s = R.summarise(df)
    fig = R.plot_losses(s)
    assert len(fig.axes) == 1 and len(fig.axes[0].containers) == len(R.LOSS_METHODS)
    assert all(len(c.lines[0].get_xdata()) == 3 for c in fig.axes[0].containers)
    var = R.plot_variability(s)
    assert len(var.axes) == 2
    assert [len(c.lines[0].get_xdata()) for c in var.axes[0].containers] == [2, 2, 2]   # bias 0 and 0.95


@pytest.mark.slow
def test_sweep_notebook_runs_on_the_ci_grid(tmp_path):
    """The results page end to end on the tiny grid (about half a minute): every glue the prose
    names exists, the figures are images, and a second run trains nothing."""
    papermill = pytest.importorskip("papermill")
    import nbformat
    from test_notebooks import NOTEBOOKS, glued, referenced_glue_keys

    def run(name):
        papermill.execute_notebook(str(NOTEBOOKS / "sweep.ipynb"), str(tmp_path / name), kernel_name="python3",
                                   parameters={"grid": "ci", "runs_dir": str(tmp_path / "runs"), "jobs": 2},
                                   progress_bar=False, cwd=str(tmp_path), execution_timeout=600)
        return glued(nbformat.read(tmp_path / name, as_version=4))

    glue = run("first.ipynb")
    assert referenced_glue_keys(nbformat.read(tmp_path / "first.ipynb", as_version=4)) <= set(glue)
    assert glue["sw_n_runs"][0] == glue["sw_n_grid"][0] == len(ci_grid())
    for fig in ("headline", "probes", "silhouettes", "losses", "variability"):
        assert "image/png" in glue[f"sw_fig_{fig}"][1]
    assert glue["sw_answer"][0] in ("yes", "partly", "no", "not measurably")
    assert (tmp_path / "results" / "ci.csv").is_file()  # the grid's table, read as is next time
    assert run("second.ipynb")["sw_sweep_ran"][0] == 0
