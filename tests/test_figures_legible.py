"""Every figure the book draws is legible at the size the page shows it: no text under 9 pt, no two
texts overlapping (dualenc.book.plots.legibility). The results figures are drawn from the committed
tables, as the book draws them; one run's figures from a tiny run store."""
import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dualenc import design  # noqa: E402
from dualenc.analysis import comparisons, curves, primary, results, tables, verdicts  # noqa: E402
from dualenc.book import plots  # noqa: E402
from dualenc.book.plots.legibility import legibility_problems  # noqa: E402
from dualenc.runs import calibration, cue_conflict, replication  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


@pytest.fixture(scope="module")
def study():
    df = results.tidy(pd.read_csv(RESULTS / "default.csv"))
    return {"df": df, "summary": results.summarise(df), "facts": verdicts.verdict(df).facts,
            "mech": pd.read_csv(RESULTS / "mechanism.csv"), "cues": pd.read_csv(RESULTS / "cue_conflict.csv"),
            "curves": pd.read_csv(RESULTS / "curves.csv") if (RESULTS / "curves.csv").is_file() else None,
            "calibration": pd.read_csv(RESULTS / "calibration.csv"),
            "spread": replication.read_spread(RESULTS / "replication.csv")}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from conftest import tiny_config
    from dualenc.runs.study import run_group

    root = tmp_path_factory.mktemp("runs")
    configs = {e.name: tiny_config(steps=5, name=e.name, bias=e.bias, **design.arm(e.arm).changes)
               for e in design.ORIGINAL}
    return {name: run_group([config], root=root, progress=False)[0] for name, config in configs.items()}


def _study_figures(s) -> dict:
    df, summary, study_budget = s["df"], s["summary"], 1000
    chosen = calibration.choose(s["calibration"])
    return {
        "primary": lambda: plots.plot_primary(primary.level_family(df), primary.averaged_effect(df),
                                              primary.interaction(df), design.PRIMARY),
        "headline": lambda: plots.plot_headline(summary),
        "control": lambda: plots.plot_vs_bias(summary, ["worst_group_acc"], arms=list(design.CURVE_ARMS)),
        "effect_by_budget": lambda: plots.plot_effect_by_budget(curves.effect_by_budget(s["curves"]), study_budget),
        "convergence": lambda: plots.plot_convergence(curves.validation_means(s["curves"]),
                                                      curves.own_budgets(s["curves"]), study_budget),
        "background_wins": lambda: plots.plot_background_wins(s["mech"], design.arm_tables()["captions"],
                                                              s["facts"]["base_n"]),
        "caption_similarity": lambda: plots.plot_caption_similarity(s["mech"], design.QUESTION[::-1],
                                                                    s["facts"]["orig_bias"]),
        "cue_conflict": lambda: plots.plot_cue_conflict(s["cues"], cue_conflict.scored_arms(), s["facts"]["orig_bias"]),
        "differences": lambda: plots.plot_differences(comparisons.caption_comparison(df), title="a title"),
        "prompt_sets": lambda: plots.plot_prompt_sets(summary),
        "probes": lambda: plots.plot_probes(summary),
        "silhouettes": lambda: plots.plot_silhouettes(summary),
        "data_size": lambda: plots.plot_data_size(summary),
        "losses": lambda: plots.plot_losses(summary),
        "variability": lambda: plots.plot_variability(summary),
        "calibration": lambda: plots.plot_calibration(s["calibration"], chosen=chosen, bar=calibration.AVERAGE_BAR),
        "rerun_differences": lambda: plots.plot_rerun_differences(replication.pair_differences(s["spread"])),
        "bias_levels": lambda: plots.plot_bias_levels(tables.bias_table(design.BIAS_LEVELS, n_per_group=48)),
    }


STUDY_FIGURES = ["primary", "headline", "control", "effect_by_budget", "convergence", "background_wins",
                 "caption_similarity", "cue_conflict", "differences", "prompt_sets", "probes", "silhouettes", "data_size",
                 "losses", "variability", "calibration", "rerun_differences", "bias_levels"]


@pytest.mark.parametrize("name", STUDY_FIGURES)
def test_results_figures_are_legible(study, name):
    fig = _study_figures(study)[name]()
    assert legibility_problems(fig) == []
    plt.close(fig)


def _run_figures(records) -> dict:
    record = records["exp4"]
    emb = record.embeddings()
    return {
        "training_curve": lambda: plots.plot_training_curve(record.history.to_dict("records")).figure,
        "zero_shot": lambda: plots.plot_zero_shot(record.metrics),
        "pca_train": lambda: plots.pca_figures(emb)["train"],
        "pca_test": lambda: plots.pca_figures(emb)["test"],
        "group_accuracy_comparison": lambda: plots.plot_group_accuracy_comparison(records),
        "pca_grid": lambda: plots.pca_grid(records, split="train"),
        "samples": lambda: plots.image_grid(*plots.sample_training_images(record.config.data, per_group=6), ncols=6),
    }


@pytest.mark.parametrize("name", ["training_curve", "zero_shot", "pca_train", "pca_test", "group_accuracy_comparison",
                                  "pca_grid", "samples"])
def test_run_figures_are_legible(records, name):
    fig = _run_figures(records)[name]()
    assert legibility_problems(fig) == []
    plt.close(fig)


@pytest.mark.parametrize("kind, split", [("image", "train"), ("image", "test"), ("text", "train"), ("text", "test")])
def test_the_explorer_views_are_legible_at_the_width_they_are_shown(records, kind, split):
    from dualenc.book import explorer

    record = records["exp4"]
    fig = explorer.explorer_pca_figure(record.embeddings(), kind, split, "group",
                                       title="bias 0.75, descriptive:\nthe four descriptive captions")
    assert legibility_problems(fig, column_px=explorer.PCA_VIEW_PX) == []
    bars = explorer.explorer_bars_figure(record.metrics)
    assert legibility_problems(bars, column_px=explorer.BARS_VIEW_PX) == []
    plt.close("all")


def test_the_check_finds_small_and_overlapping_text():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=110)
    ax.set_title("a title", fontsize=12)
    assert legibility_problems(fig) == []
    ax.text(0.5, 0.5, "tiny", fontsize=5)
    ax.text(0.5, 0.5, "on top of tiny", fontsize=12)
    problems = legibility_problems(fig)
    assert any("'tiny' is" in p for p in problems) and any("overlaps" in p for p in problems)
    wide, ax = plt.subplots(figsize=(20, 3), dpi=110)     # shown at a third of its size: 12 pt reads as ~4.5
    ax.set_title("a title", fontsize=12)
    assert any("'a title' is" in p for p in legibility_problems(wide))
    plt.close("all")
