import json

import pytest

from dualenc.config import (GROUP_LABELS, GROUP_NAMES, TOKEN_POOLS, ConfigError, DataConfig, ExperimentConfig,
                            config_hash, from_dict, to_json)


@pytest.mark.parametrize("field, value, words", [
    ("bias", 1.5, ["bias=1.5", "[0.0, 1.0]"]),
    ("bias", -0.1, ["bias=-0.1", "[0.0, 1.0]"]),
    ("captions", "foo", ["captions='foo'", "'undescriptive'", "'descriptive'"]),
    ("descriptive_share", 2, ["descriptive_share=2", "[0.0, 1.0]"]),
    ("loss", "mse", ["loss='mse'", "'pairwise'", "'clip'", "'siglip'"]),
    ("steps", 0, ["steps=0", ">= 1"]),
    ("image_size", 8, ["image_size=8", ">= 16"]),
])
def test_bad_value_names_field_and_allowed_range(field, value, words):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig().replace(**{field: value})
    for word in words:
        assert word in str(err.value)


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown key.*'colour'"):
        from_dict({"data": {"colour": "red"}})
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        ExperimentConfig().replace(colour="red")


def test_round_trip_and_stable_hash():
    config = ExperimentConfig(name="x").replace(bias=0.25, captions="descriptive", **{"model.vision.depth": 3})
    again = from_dict(json.loads(to_json(config)))
    assert again == config
    assert config_hash(again) == config_hash(config)
    assert config_hash(config) != config_hash(config.replace(seed=1))
    assert config_hash(config) == config_hash(config.replace(name="another label"))


def test_majority_share_and_minority_kept():
    assert DataConfig(bias=0.0).majority_share() == 0.5
    assert DataConfig(bias=1.0).majority_share() == 1.0
    assert DataConfig(bias=0.75).minority_kept() == 12
    assert DataConfig(bias=0.75).majority_share() == pytest.approx(48 / 60)


def test_token_pooling_is_cls_or_mean_and_every_group_has_a_label():
    for pool in TOKEN_POOLS:
        assert ExperimentConfig().replace(**{"model.vision.pool": pool}).model.vision.pool == pool
    with pytest.raises(ConfigError, match="model.vision.pool='max'.*'cls'.*'mean'"):
        ExperimentConfig().replace(**{"model.vision.pool": "max"})
    assert list(GROUP_LABELS) == list(GROUP_NAMES)
    assert len(set(GROUP_LABELS.values())) == len(GROUP_NAMES)


def test_heads_must_divide_width():
    with pytest.raises(ConfigError, match="model.vision.heads=3"):
        ExperimentConfig().replace(**{"model.vision.heads": 3})


def test_fields_added_later_keep_earlier_run_names_at_their_earlier_values():
    import hashlib
    import json

    from dualenc.config import ADDED_FIELDS, config_hash

    config = ExperimentConfig()
    body = config.to_dict()
    body.pop("name")
    del body["model"]["vision"]["stem"], body["train"]["schedule"], body["train"]["decay_frac"]
    earlier = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    assert config_hash(config.replace(**{"model.vision.stem": "patch"}, schedule="cosine")) == earlier
    assert config_hash(config.replace(**{"model.vision.stem": "conv"})) != earlier
    assert config_hash(config.replace(schedule="wsd")) != earlier
    assert len(ADDED_FIELDS) == 3
