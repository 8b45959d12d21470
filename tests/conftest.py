import pytest
import torch

from dualenc.config import ExperimentConfig

torch.set_num_threads(1)


def tiny_config(**changes) -> ExperimentConfig:
    """A debug-size experiment (DomainBed-style tiny dataset) that trains in a second or two."""
    base = ExperimentConfig(name="tiny").replace(**{
        "image_size": 32, "n_train_per_group": 48, "n_val_per_group": 12, "n_test_per_group": 16,
        "steps": 240, "batch_size": 32, "model.vision.patch_size": 8, "model.vision.width": 32,
        "model.text.width": 32, "model.embed_dim": 16,
    })
    return base.replace(**changes) if changes else base


@pytest.fixture
def tiny():
    return tiny_config
