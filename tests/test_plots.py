"""dualenc.book.plots: each figure has the expected points, bars, lines and colours."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from dualenc.config import GROUPS, group_name  # noqa: E402
from dualenc.book.plots import (GROUP_COLOURS, GROUP_LABELS, image_grid, pca_2d, plot_embeddings,  # noqa: E402
                           plot_group_accuracy, plot_pca, plot_training_curve)

GROUP_NAMES = [group_name(a, b) for a, b in GROUPS]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labels(n_per_group=(5, 5, 3, 3)):
    rows = [(a, b) for (a, b), n in zip(GROUPS, n_per_group) for _ in range(n)]
    return pd.DataFrame(rows, columns=["animal", "background"])


def rgb(coll):
    return tuple(np.round(coll.get_facecolor()[0][:3], 3))


def test_group_colours_and_labels():
    from matplotlib.colors import to_rgb
    from dualenc.config import GROUP_NAMES
    assert set(GROUP_COLOURS) == set(GROUP_LABELS) == set(GROUP_NAMES)
    assert len({to_rgb(c) for c in GROUP_COLOURS.values()}) == len(GROUP_NAMES)  # four distinct colours
    for name, label in GROUP_LABELS.items():  # "horse_grass" -> "horse on grass"
        animal, background = name.split("_")
        assert label.startswith(animal) and label.endswith(background)


def test_pca_is_deterministic_and_reports_variance():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 6)) * np.array([5, 2, 1, 1, 1, 1])
    coords, ratio = pca_2d(emb)
    coords2, _ = pca_2d(emb.copy())
    np.testing.assert_array_equal(coords, coords2)
    assert coords.shape == (30, 2) and ratio[0] > ratio[1] > 0 and ratio.sum() < 1
    np.testing.assert_allclose(coords.mean(axis=0), 0, atol=1e-9)
    coords_flipped, _ = pca_2d(-emb)       # sign is fixed by the loadings, not the data's sign
    np.testing.assert_allclose(np.abs(coords_flipped), np.abs(coords), atol=1e-9)


def test_plot_pca_points_colours_and_labels():
    rng = np.random.default_rng(0)
    lab = labels()
    ax = plot_pca(rng.normal(size=(16, 8)), lab, title="images")
    assert len(ax.collections) == 4                       # one scatter per group present
    assert sum(len(c.get_offsets()) for c in ax.collections) == 16
    for coll, g in zip(ax.collections, GROUP_NAMES):
        assert rgb(coll) == tuple(np.round(to_rgb(GROUP_COLOURS[g]), 3))
    assert ax.get_xlabel().startswith("PC1 (") and "% of variance" in ax.get_ylabel()
    assert ax.get_title() == "images"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["horse on grass (n=5)", "camel in desert (n=5)", "horse in desert (n=3)", "camel on grass (n=3)"]


def test_plot_pca_shows_how_many_identical_points():
    lab = labels((6, 6, 2, 2))
    caption = {"horse": [1.0, 0.0, 0.0], "camel": [0.0, 1.0, 0.0]}     # undescriptive: 2 captions
    emb = np.array([caption[a] for a in lab["animal"]])
    ax = plot_pca(emb, lab)
    counts = sorted(int(c) for coll in ax.collections for c in coll.counts)
    assert counts == [2, 2, 6, 6]                         # one marker per group, sized by count
    sizes = {int(c): s for coll in ax.collections for c, s in zip(coll.counts, coll.get_sizes())}
    assert sizes[6] > sizes[2]
    notes = sorted(t.get_text() for t in ax.texts)
    assert notes == ["\u00d72", "\u00d72", "\u00d76", "\u00d76"]
    # groups sharing a caption are set apart, not hidden under each other
    positions = np.concatenate([coll.get_offsets() for coll in ax.collections])
    assert len(np.unique(np.round(positions, 9), axis=0)) == 4


def test_plot_pca_colour_by_animal_and_bad_value():
    rng = np.random.default_rng(1)
    lab = labels()
    ax = plot_pca(rng.normal(size=(16, 4)), {"animal": lab["animal"].tolist(),
                                            "background": lab["background"].tolist()}, colour_by="animal")
    assert len(ax.collections) == 2
    with pytest.raises(ValueError, match="colour_by='colour'.*group"):
        plot_pca(rng.normal(size=(16, 4)), lab, colour_by="colour")
    with pytest.raises(ValueError, match="animal"):
        plot_pca(rng.normal(size=(16, 4)), {"background": lab["background"]})


def test_plot_embeddings_two_panels_one_legend():
    rng = np.random.default_rng(2)
    lab = labels()
    text = np.repeat(np.eye(4), [5, 5, 3, 3], axis=0)
    fig = plot_embeddings(rng.normal(size=(16, 8)), lab, text, lab, title="run")
    assert len(fig.axes) == 2 and len(fig.legends) == 1
    assert [ax.get_title() for ax in fig.axes] == ["Image embeddings", "Text embeddings"]
    assert sum(len(c.get_offsets()) for c in fig.axes[1].collections) == 4   # 4 unique captions
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [GROUP_LABELS[g] for g in GROUP_NAMES]


def test_plot_training_curve():
    history = [{"epoch": e, "loss": 1.0 / e, "lr": 0.001 * e} for e in range(1, 11)]
    ax = plot_training_curve(history)
    assert ax.get_yscale() == "log" and len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0 / e for e in range(1, 11)])
    assert len(ax.figure.axes) == 2                       # the learning rate on a twin axis
    ax2 = plot_training_curve([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}])
    assert len(ax2.figure.axes) == 1
    with pytest.raises(ValueError, match="loss"):
        plot_training_curve([{"epoch": 1}])


def test_plot_group_accuracy_bars_chance_and_worst():
    acc = {"horse_grass": 1.0, "camel_desert": 0.75, "horse_desert": 0.5, "camel_grass": 0.25}
    ax = plot_group_accuracy(acc, title="zero-shot")
    bars = ax.patches
    assert len(bars) == 4
    assert [b.get_height() for b in bars] == [1.0, 0.75, 0.5, 0.25]
    for bar, g in zip(bars, GROUP_NAMES):
        assert tuple(np.round(bar.get_facecolor()[:3], 3)) == tuple(np.round(to_rgb(GROUP_COLOURS[g]), 3))
    chance = [ln for ln in ax.lines if list(ln.get_ydata()) == [0.5, 0.5]]
    assert len(chance) == 1
    worst = [t.get_text() for t in ax.texts if "worst" in t.get_text()]
    assert worst == ["0.25\nworst"]
    assert bars[3].get_linewidth() > bars[0].get_linewidth()
    with pytest.raises(ValueError, match="horse_beach"):
        plot_group_accuracy({"horse_beach": 0.5})


def test_image_grid():
    images = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    fig = image_grid(images, [f"image {i}" for i in range(10)], ncols=4)
    assert len(fig.axes) == 10                            # 3 x 4 grid, 2 empty cells removed
    ax = fig.axes[0]
    assert ax.images[0].get_interpolation() == "nearest" and not ax.axison
    assert ax.get_title() == "image 0"
    np.testing.assert_array_equal(ax.images[0].get_array(), images[0])
    with pytest.raises(ValueError, match="titles"):
        image_grid(images, ["a"])
    with pytest.raises(ValueError, match="shape"):
        image_grid(images[..., 0], [])
