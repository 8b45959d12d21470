from collections import Counter

import numpy as np
import pytest
from PIL import Image

from dualenc.data.captions import DESCRIPTIVE, caption_attributes, consistency
from dualenc.config import DataConfig, GROUP_NAMES, GROUPS, group_name
from dualenc.data.datasets import build_dataset, list_image_entries, read_image_entries, split_user_entries


def load_image_entries(root, size, on_error="raise"):
    """A folder or manifest of images as one Split (what `dualenc.data.datasets` reads user images with)."""
    return read_image_entries(list_image_entries(root), size, on_error)[0]
from dualenc.data.tokenizer import Tokenizer

SMALL = dict(n_train_per_group=48, n_val_per_group=4, n_test_per_group=4, image_size=32)


@pytest.mark.parametrize("bias, minority", [(0.0, 48), (0.25, 36), (0.75, 12), (1.0, 0)])
def test_bias_gives_expected_group_counts(bias, minority):
    data = build_dataset(DataConfig(bias=bias, **SMALL))
    assert data.train.group_counts() == {"horse_grass": 48, "camel_desert": 48,
                                         "horse_desert": minority, "camel_grass": minority}
    assert data.val.group_counts() == {g: 4 for g in GROUP_NAMES}
    assert data.test.group_counts() == {g: 4 for g in GROUP_NAMES}


def test_no_image_in_two_splits():
    data = build_dataset(DataConfig(n_train_per_group=20, n_val_per_group=20, n_test_per_group=20, image_size=32))
    seen = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        for image, source in zip(split.images, split.source):
            key = image.tobytes()
            assert seen.setdefault(key, name) == name, f"an image of {name} is also in {seen[key]}"
            assert seen.setdefault(source, name) == name


def test_same_seed_same_images_and_captions():
    config = DataConfig(captions="descriptive", descriptive_share=0.5, caption_templates=3, **SMALL)
    a, b = build_dataset(config), build_dataset(config)
    assert np.array_equal(a.train.images, b.train.images)
    assert a.train.captions == b.train.captions
    other = build_dataset(DataConfig(data_seed=1, **SMALL))
    assert not np.array_equal(a.train.images, other.train.images)


def test_caption_modes_use_the_original_strings():
    # the original study's strings, typed from its text (DESIGN.md), not read from captions.DESCRIPTIVE
    original = {"horse_grass": "horse on the grass", "horse_desert": "horse in the desert",
                "camel_desert": "a camel in the desert", "camel_grass": "camel on the grass"}
    data = build_dataset(DataConfig(captions="descriptive", **SMALL))
    assert [original[group] for group in data.train.group] == data.train.captions
    data = build_dataset(DataConfig(captions="undescriptive", **SMALL))
    assert Counter(data.train.captions) == {"horse": 2 * 48, "camel": 2 * 48}   # bias 0: both backgrounds
    assert all(c == a for c, a in zip(data.train.captions, data.train.animal))


def test_descriptive_share_splits_each_group():
    data = build_dataset(DataConfig(captions="descriptive", descriptive_share=0.25, **SMALL))
    for a, b in GROUPS:
        mask = (data.train.animal == a) & (data.train.background == b)
        captions = [c for c, m in zip(data.train.captions, mask) if m]
        assert sum(c == DESCRIPTIVE[group_name(a, b)] for c in captions) == 12
        assert sum(c == a for c in captions) == 36


def test_consistency_never_makes_identical_captions_negative():
    captions = ["horse", "camel", "horse in the desert", "on the grass", "a camel in the desert"]
    attrs = np.array([caption_attributes(c) for c in captions])
    animal = np.array([0, 1, 0, 1])      # horse, camel, horse, camel
    background = np.array([0, 1, 1, 0])  # grass, desert, desert, grass
    truth = consistency(animal, background, attrs[:, 0], attrs[:, 1])
    assert truth.tolist() == [
        [True, False, False, True, False],
        [False, True, False, False, True],
        [True, False, True, False, False],
        [False, True, False, True, False],
    ]


def test_tokenizer_pads_and_masks():
    tok = Tokenizer.from_texts(["Horse on the grass", "camel"], context_length=6)
    ids, mask = tok.encode(["horse on the GRASS", "camel", "zebra"])
    assert mask.sum(1).tolist() == [4, 1, 1]
    assert ids[2, 0] == 1  # unknown word
    assert (ids[~mask] == 0).all()


def _write_folder(root, n=4, size=20):
    for a, b in GROUPS:
        folder = root / group_name(a, b)
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((size, size + 3, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")


def test_loader_reads_and_resizes_folders(tmp_path):
    _write_folder(tmp_path)
    split = load_image_entries(tmp_path, size=16)
    assert split.images.shape == (16, 16, 16, 3)
    parts = split_user_entries(split, seed=0)
    assert sum(len(p) for p in parts.values()) == 16


def test_loader_names_a_corrupt_file(tmp_path):
    _write_folder(tmp_path)
    bad = tmp_path / "camel_grass" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_image_entries(tmp_path, size=16)
    with pytest.warns(UserWarning, match="broken.png"):
        split = load_image_entries(tmp_path, size=16, on_error="warn")
    assert len(split) == 16


def test_loader_names_a_missing_group(tmp_path):
    _write_folder(tmp_path)
    for f in (tmp_path / "horse_desert").iterdir():
        f.unlink()
    (tmp_path / "horse_desert").rmdir()
    with pytest.raises(FileNotFoundError, match="horse_desert"):
        load_image_entries(tmp_path, size=16)


def test_manifest_with_captions(tmp_path):
    _write_folder(tmp_path)
    rows = ["path,animal,background,caption"]
    for a, b in GROUPS:
        rows += [f"{group_name(a, b)}/{i}.png,{a},{b},a {a} somewhere" for i in range(4)]
    (tmp_path / "m.csv").write_text("\n".join(rows))
    data = build_dataset(DataConfig(data_dir=str(tmp_path / "m.csv"), image_size=16))
    assert all(c.endswith("somewhere") for c in data.train.captions)
    (tmp_path / "m2.csv").write_text("\n".join(r for r in rows if "camel_grass" not in r))
    with pytest.raises(ValueError, match="camel_grass"):
        load_image_entries(tmp_path / "m2.csv", size=16)
