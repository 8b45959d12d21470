"""The study declared in one place (`dualenc.design`): an arm added there reaches the grid, the
results table, the figures and the verdict, with nothing else edited."""
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dualenc import design  # noqa: E402
from dualenc.book import plots  # noqa: E402
from dualenc.analysis import results, verdicts  # noqa: E402
from dualenc.config import config_hash  # noqa: E402
from dualenc.runs.study import REGISTRY  # noqa: E402
from dualenc.runs.sweep import default_grid, group_configs  # noqa: E402
from test_results import synthetic_table  # noqa: E402

DUMMY = design.Arm("pairwise_dummy", "a quarter descriptive", "pairwise", "descriptive", 0.25, colour="#000000",
                   core=True, curve=True)


@pytest.fixture
def dummy_arm(monkeypatch):
    """The one declaration: the arm, its place in the captions block, and a comparison."""
    monkeypatch.setitem(design.ARMS, DUMMY.name, DUMMY)
    monkeypatch.setattr(design, "BLOCKS", tuple(replace(b, arms=(*b.arms, DUMMY.name)) if b.family == "captions"
                                                else b for b in design.BLOCKS))
    monkeypatch.setattr(design, "COMPARISONS", (*design.COMPARISONS, design.ArmComparison(
        "dummy", DUMMY.name, "pairwise_undescriptive", "worst_group", arm_words="a quarter descriptive")))
    yield DUMMY
    plt.close("all")


def test_every_declared_arm_names_one_setting():
    names = [design.arm_of(a.loss, a.captions, a.descriptive_share, a.caption_templates) for a in design.ARMS.values()]
    assert names == list(design.ARMS)
    assert len({a.variant for a in design.ARMS.values() if a.loss == "pairwise"}) == \
        len([a for a in design.ARMS.values() if a.loss == "pairwise"])       # variants name the glue keys
    for block in design.BLOCKS:
        assert set(block.arms) <= set(design.ARMS) and block.levels in design.LEVEL_SETS, block
    assert design.role_levels() == {"unbiased": 0.0, "orig": 0.75, "strong": 0.9}
    assert [e.name for e in design.ORIGINAL] == list(REGISTRY)[:4]
    with pytest.raises(Exception, match="arm='nope' is not declared"):
        design.arm("nope")


def test_an_arm_is_one_declaration(dummy_arm):
    grid = default_grid()
    mine = [c for c in grid if design.arm_of_config(c) == dummy_arm.name]
    assert len(mine) == len(design.BIAS_LEVELS) * len(design.SEEDS)
    assert {c.data.descriptive_share for c in mine} == {0.25} and {c.name for c in mine} == {"captions"}
    # a core arm: trained with the others at the key levels, before the rest of the grid
    key_levels = {lv.bias for lv in design.LEVELS if lv.tier == 0}
    first = grid[:len(key_levels) * len(design.SEEDS) * 5]
    assert {config_hash(c) for c in mine if c.data.bias in key_levels} <= {config_hash(c) for c in first}
    assert sum(len(g) for g in group_configs(grid)) == len(grid)

    base = synthetic_table()
    extra = base[(base["name"] == "captions") & (base["descriptive_share"] == 0.5)].assign(
        descriptive_share=0.25, run=lambda t: t["run"] + "-dummy")
    df = results.tidy(results.pd.concat([base, extra], ignore_index=True))
    assert (df["arm"] == dummy_arm.name).sum() == len(extra)

    summary = results.summarise(df)
    table = results.wide_table(summary, "worst_group_acc", design.arm_tables()["captions"])
    assert "pairwise, a quarter descriptive" in table.index
    labels = [line.get_label() for line in plots.plot_headline(summary).axes[0].get_lines()]
    assert "a quarter descriptive" in labels

    glue = verdicts.verdict(df).glue_values()
    assert {"wga_descriptive_share_025_orig", "dummy_orig_wga", "dummy_strong_wga_outcome",
            "dummy_orig_sentence"} <= set(glue)
    assert glue["dummy_orig_wga_outcome"] in ("supported", "contradicted", "inconclusive", "uninformative")


def test_the_table_of_contents_lists_the_original_experiments_of_the_design():
    import yaml
    from pathlib import Path
    toc = yaml.safe_load((Path(__file__).resolve().parents[1] / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    generated = [f.rsplit("/", 1)[-1] for f in files if f.startswith("book/generated/")]
    assert generated == [e.name for e in design.ORIGINAL]
    titles = [c.get("title") for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("book/generated/")]
    assert titles == [e.title for e in design.ORIGINAL]       # the navigation says what the page's own title says
