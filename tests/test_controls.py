"""The size control's captions and labels, and the cue-conflict renderer (coat of the other animal)."""
import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from dualenc.config import ConfigError, DataConfig
from dualenc.data.captions import (SIZE_CODES, SIZES, caption_attributes, caption_for, consistency, size_class,
                                   training_captions)
from dualenc.data.datasets import build_dataset
from dualenc.data.render import animal_size_draw, render_image
from dualenc.model.batches import label_tensors

SMALL = dict(n_train_per_group=24, n_val_per_group=4, n_test_per_group=4, image_size=32)


def test_size_captions_state_the_animal_and_its_size_and_only_their_own_size_is_true():
    texts = [caption_for(a, "grass", True, "size", 0, s) for a in ("horse", "camel") for s in SIZES]
    assert texts == ["small horse", "large horse", "small camel", "large camel"]
    codes = np.array([caption_attributes(t, sizes=True) for t in texts])
    assert codes.tolist() == [[0, SIZE_CODES["small"]], [0, SIZE_CODES["large"]],
                              [1, SIZE_CODES["small"]], [1, SIZE_CODES["large"]]]
    assert caption_attributes("small horse") == (0, -1)          # read as a size only in the size mode
    image_animal = np.array([0, 0, 1])
    image_size = np.array([SIZE_CODES["small"], SIZE_CODES["large"], SIZE_CODES["large"]])
    true = consistency(image_animal, image_size, codes[:, 0], codes[:, 1])
    assert true.tolist() == [[True, False, False, False], [False, True, False, False], [False, False, False, True]]
    # a background caption is never true of an image labelled by its size, nor a size caption of one
    # labelled by its background (grass 0, desert 1)
    bg = np.array(caption_attributes("horse on the grass"))
    assert not consistency(image_animal, image_size, bg[None, 0], bg[None, 1]).any()
    assert not consistency(np.array([0]), np.array([0]), codes[:1, 0], codes[:1, 1]).any()
    with pytest.raises(ValueError, match="size=''"):
        caption_for("horse", "grass", True, "size", 0)


def test_the_size_is_the_renderers_draw_split_at_the_middle_and_it_is_visible():
    data = DataConfig(image_size=64)
    areas = {size: [] for size in SIZES}
    for seed in range(60):
        draw = animal_size_draw("camel", seed, data)
        assert data.animal_size[0] <= draw <= data.animal_size[1]
        _, mask = render_image("camel", "desert", seed, data, return_mask=True)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        areas[size_class(draw, data)].append((rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1))
    assert min(len(v) for v in areas.values()) >= 15                    # both sizes are common
    assert np.mean(areas["large"]) > 1.2 * np.mean(areas["small"])       # and large animals look larger


def test_a_size_dataset_labels_every_training_image_and_its_captions_agree():
    data = DataConfig(captions="size", bias=0.5, **SMALL)
    train = build_dataset(data).train
    assert train.size is not None and len(train.size) == len(train) and set(train.size) == set(SIZES)
    assert all(c.split()[0] == s and c.split()[1] == a for c, s, a in zip(train.captions, train.size, train.animal))
    animal, second = label_tensors(train, "cpu")
    assert set(second.tolist()) == set(SIZE_CODES.values())
    # no other mode carries sizes, so their labels and captions are as before
    assert build_dataset(DataConfig(captions="descriptive", **SMALL)).train.size is None
    with pytest.raises(ValueError, match="needs each image's size"):
        training_captions(train.animal, train.background, data, 0)


def test_the_size_control_refuses_a_users_images(tmp_path):
    from PIL import Image
    for group in ("horse_grass", "horse_desert", "camel_desert", "camel_grass"):
        (tmp_path / group).mkdir()
        for i in range(6):
            Image.new("RGB", (32, 32), (i * 40, 90, 30)).save(tmp_path / group / f"{i}.png")
    with pytest.raises(ConfigError, match="captions='size' needs generated images"):
        build_dataset(DataConfig(captions="size", data_dir=str(tmp_path), image_size=32))


def test_a_cue_conflict_image_is_the_same_animal_in_the_other_animals_coat():
    data = DataConfig(image_size=64)
    for seed in range(8):
        image, mask = render_image("horse", "desert", seed, data, return_mask=True)
        swapped, swapped_mask = render_image("horse", "desert", seed, data, return_mask=True, coat_of="camel")
        assert np.array_equal(mask, swapped_mask)                         # same shape, pose, size and place
        inside = np.abs(image.astype(int) - swapped).sum(-1)[mask]
        near = binary_dilation(mask, iterations=2)                       # the edge's partly covered pixels
        assert inside.mean() > 10 and np.array_equal(image[~near], swapped[~near])
        assert np.array_equal(render_image("horse", "desert", seed, data, coat_of="horse"), image)
    with pytest.raises(ValueError, match="coat_of='zebra'"):
        render_image("horse", "desert", 0, data, coat_of="zebra")
