import math

import torch
import torch.nn.functional as F
import pytest

from dualenc.losses import CONTRASTIVE_LOSSES

# Four images, one per group; captions one per image (descriptive): targets = identity.
ANIMAL = torch.tensor([0, 1, 0, 1])
TARGETS = torch.eye(4)


def _embeddings(aligned: bool):
    torch.manual_seed(0)
    images = F.normalize(torch.randn(4, 8), dim=-1)
    texts = images.clone() if aligned else F.normalize(torch.randn(4, 8), dim=-1)
    return images, texts


@pytest.mark.parametrize("name", sorted(CONTRASTIVE_LOSSES))
def test_loss_is_lowest_for_aligned_embeddings(name):
    fn, _ = CONTRASTIVE_LOSSES[name]
    scale, bias = torch.tensor(10.0), torch.tensor(-5.0)
    aligned = fn(*_embeddings(True), TARGETS, scale, bias)
    losses = [fn(*_embeddings(False), TARGETS, scale, bias)]
    images, texts = _embeddings(True)
    losses.append(fn(images, texts.roll(1, dims=0), TARGETS, scale, bias))  # wrong pairing
    assert all(aligned < other for other in losses)


@pytest.mark.parametrize("name, lower_bound", [("pairwise", 0.0), ("siglip", 0.0), ("clip", math.log(2))])
def test_identical_captions_are_not_penalised_as_negatives(name, lower_bound):
    # Undescriptive: images 0 and 2 are horses sharing the caption "horse". With label-aware targets
    # the perfect embedding (each horse image on the "horse" text) reaches the loss's lower bound
    # (for CLIP: the entropy of the uniform target over the two horse captions, log 2).
    fn, _ = CONTRASTIVE_LOSSES[name]
    horse, camel = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    images = torch.cat([horse, camel, horse, camel])
    texts = images.clone()
    targets = (ANIMAL[:, None] == ANIMAL[None, :]).float()
    scale, bias = torch.tensor(40.0), torch.tensor(-20.0)
    assert fn(images, texts, targets, scale, bias).item() == pytest.approx(lower_bound, abs=1e-3)
    if name != "clip":  # treating the other horse's identical caption as a negative would be costly
        assert fn(images, texts, torch.eye(4), scale, bias).item() > 1.0


def test_gradients_flow_to_scale_and_bias():
    images, texts = _embeddings(False)
    scale = torch.tensor(10.0, requires_grad=True)
    bias = torch.tensor(-5.0, requires_grad=True)
    for name in ("pairwise", "siglip"):
        fn, _ = CONTRASTIVE_LOSSES[name]
        fn(images, texts, TARGETS, scale, bias).backward()
    assert scale.grad is not None and bias.grad is not None
