import csv

import numpy as np
import pytest
from PIL import Image

from dualenc.config import ConfigError, DataConfig, ExperimentConfig, GROUP_NAMES
from dualenc.data.datasets import SPLITS, build_dataset, list_image_entries, read_image_entries, load_user_splits


def load_image_entries(root, size, on_error="raise"):
    """A folder or manifest of images as one Split (what `dualenc.data.datasets` reads user images with)."""
    return read_image_entries(list_image_entries(root), size, on_error)[0]
from dualenc.data.export import MANIFEST, MANIFEST_COLUMNS, export_dataset

SMALL = {"image_size": 32, "n_train_per_group": 8, "n_val_per_group": 4, "n_test_per_group": 6}


def small_config(**changes) -> ExperimentConfig:
    return ExperimentConfig().replace(**{**SMALL, "bias": 0.75, "seed": 3, **changes})


def assert_same_split(loaded, expected):
    assert np.array_equal(loaded.images, expected.images)
    assert loaded.animal.tolist() == expected.animal.tolist()
    assert loaded.background.tolist() == expected.background.tolist()
    assert loaded.group_counts() == expected.group_counts()


def test_export_round_trips_through_the_loader(tmp_path):
    config = small_config(captions="descriptive", descriptive_share=0.5)
    report = export_dataset(config, tmp_path / "out", progress=False)
    expected = build_dataset(config.resolved_data())
    assert report.counts["train"] == {"horse_grass": 8, "camel_desert": 8, "horse_desert": 2, "camel_grass": 2}
    assert (tmp_path / "out" / "train" / "horse_grass" / "000.png").is_file()
    for split in SPLITS:  # each split folder alone, as --data-dir or --test-dir reads it
        assert_same_split(load_image_entries(tmp_path / "out" / split, size=32), getattr(expected, split))

    with open(report.manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert [r["split"] for r in rows] == [s for s in SPLITS for _ in range(len(getattr(expected, s)))]
    assert [r["caption"] for r in rows if r["split"] == "train"] == expected.train.captions
    assert [r["source"] for r in rows if r["split"] == "test"] == expected.test.source.tolist()

    # the exported root and its manifest train, validate and test on exactly the exported splits
    for data_dir in (tmp_path / "out", report.manifest):
        loaded = build_dataset(DataConfig(data_dir=str(data_dir), image_size=32, captions="descriptive"))
        for split in SPLITS:
            assert_same_split(getattr(loaded, split), getattr(expected, split))
    from_manifest = build_dataset(DataConfig(data_dir=str(report.manifest), image_size=32))
    assert from_manifest.train.captions == expected.train.captions  # the manifest's captions are kept


def test_a_split_folder_is_split_again_like_any_user_folder(tmp_path):
    export_dataset(small_config(bias=0.0), tmp_path / "out", progress=False)
    parts = load_user_splits(DataConfig(data_dir=str(tmp_path / "out" / "train"), image_size=32))
    assert sum(len(p) for p in parts.values()) == 4 * 8
    assert all(n > 0 for p in parts.values() for n in p.group_counts().values())


def test_full_bias_exports_empty_minority_training_folders(tmp_path):
    export_dataset(small_config(bias=1.0), tmp_path / "out", progress=False)
    assert not list((tmp_path / "out" / "train" / "camel_grass").iterdir())
    loaded = load_user_splits(DataConfig(data_dir=str(tmp_path / "out"), image_size=32))
    assert loaded["train"].group_counts()["camel_grass"] == 0
    assert loaded["test"].group_counts() == {g: 6 for g in GROUP_NAMES}
    with pytest.raises(FileNotFoundError, match="horse_desert.*has no"):  # alone it cannot be split three ways
        load_image_entries(tmp_path / "out" / "train", size=32)


def test_export_refuses_a_non_empty_folder_unless_force(tmp_path):
    out = tmp_path / "out"
    export_dataset(small_config(), out, progress=False)
    with pytest.raises(ConfigError, match="not empty.*--force"):
        export_dataset(small_config(), out, progress=False)
    (out / "extra.txt").write_text("an old file")
    export_dataset(small_config(seed=4), out, force=True, progress=False)
    assert not (out / "extra.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"

    other = tmp_path / "mine"
    other.mkdir()
    (other / "photo.png").write_bytes(b"")
    with pytest.raises(ConfigError, match=f"holds no {MANIFEST}"):
        export_dataset(small_config(), other, force=True, progress=False)
    assert (other / "photo.png").exists()


def test_declared_splits_need_every_group_in_val_and_test(tmp_path):
    export_dataset(small_config(), tmp_path / "out", progress=False)
    manifest = (tmp_path / "out" / MANIFEST).read_text().splitlines()
    kept = [line for line in manifest if not line.startswith("val/camel_grass/")]
    (tmp_path / "out" / "m.csv").write_text("\n".join(kept))
    with pytest.raises(ValueError, match="val split.*camel_grass"):
        load_user_splits(DataConfig(data_dir=str(tmp_path / "out" / "m.csv"), image_size=32))
    bad = [manifest[0], manifest[1].replace(",train,", ",training,")]
    (tmp_path / "out" / "bad.csv").write_text("\n".join(bad))
    with pytest.raises(ValueError, match="line 2: split='training'"):
        load_image_entries(tmp_path / "out" / "bad.csv", size=32)


def test_loader_resizes_only_images_of_another_size(tmp_path):
    export_dataset(small_config(), tmp_path / "out", progress=False)
    path = tmp_path / "out" / "test" / "horse_grass" / "000.png"
    Image.fromarray(np.zeros((48, 40, 3), np.uint8)).save(path)
    split = load_image_entries(tmp_path / "out" / "test", size=32)
    assert split.images.shape == (24, 32, 32, 3) and not split.images[0].any()
