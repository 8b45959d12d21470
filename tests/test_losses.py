import math

import torch
import torch.nn.functional as F
import pytest

from dualenc.data.captions import DESCRIPTIVE
from dualenc.config import ANIMALS, BACKGROUNDS, GROUPS, group_name
from dualenc.model.losses import CONTRASTIVE_LOSSES, classifier_loss
from dualenc.model.towers import stack_models
from dualenc.data.tokenizer import Tokenizer
from dualenc.model.train import CaptionTable, batch_loss, build_model

# Four images, one per group; captions one per image (descriptive): targets = identity.
ANIMAL = torch.tensor([0, 1, 0, 1])
TARGETS = torch.eye(4)


def _embeddings(aligned: bool):
    torch.manual_seed(0)
    images = F.normalize(torch.randn(4, 8), dim=-1)
    texts = images.clone() if aligned else F.normalize(torch.randn(4, 8), dim=-1)
    return images, texts


def _loss(fn, images, texts, targets, scale, bias):
    """One model's loss through the K-model API (K = 1): inputs get a leading model dimension."""
    return fn(images[None], texts[None], targets[None], scale.reshape(1), bias.reshape(1))[0]


@pytest.mark.parametrize("name", sorted(CONTRASTIVE_LOSSES))
def test_loss_is_lowest_for_aligned_embeddings(name):
    fn, _ = CONTRASTIVE_LOSSES[name]
    scale, bias = torch.tensor(10.0), torch.tensor(-5.0)
    aligned = _loss(fn, *_embeddings(True), TARGETS, scale, bias)
    losses = [_loss(fn, *_embeddings(False), TARGETS, scale, bias)]
    images, texts = _embeddings(True)
    losses.append(_loss(fn, images, texts.roll(1, dims=0), TARGETS, scale, bias))  # wrong pairing
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
    assert _loss(fn, images, texts, targets, scale, bias).item() == pytest.approx(lower_bound, abs=1e-3)
    if name != "clip":  # treating the other horse's identical caption as a negative would be costly
        assert _loss(fn, images, texts, torch.eye(4), scale, bias).item() > 1.0


@pytest.mark.parametrize("name, uses_bias", [("pairwise", True), ("siglip", True), ("clip", False)])
def test_each_loss_reaches_its_scale_and_bias_on_its_own(name, uses_bias):
    images, texts = _embeddings(False)
    scale = torch.tensor(10.0, requires_grad=True)
    bias = torch.tensor(-5.0, requires_grad=True)
    fn, _ = CONTRASTIVE_LOSSES[name]
    _loss(fn, images, texts, TARGETS, scale, bias).backward()
    assert scale.grad is not None and scale.grad.abs() > 0
    assert (bias.grad is not None and bias.grad.abs() > 0) == uses_bias   # CLIP has no bias


@pytest.mark.parametrize("name", sorted(CONTRASTIVE_LOSSES))
def test_models_of_a_batch_get_their_own_losses(name):
    fn, _ = CONTRASTIVE_LOSSES[name]
    images, texts = _embeddings(False)
    other_images, other_texts = _embeddings(True)
    scale, bias = torch.tensor([10.0, 3.0]), torch.tensor([-5.0, 1.0])
    both = fn(torch.stack([images, other_images]), torch.stack([texts, other_texts]),
              torch.stack([TARGETS, TARGETS]), scale, bias)
    assert both.shape == (2,)
    alone = _loss(fn, images, texts, TARGETS, scale[0], bias[0])
    assert both[0].item() == pytest.approx(alone.item(), rel=1e-6)


def test_pairwise_counts_only_the_captions_present_in_the_batch():
    fn, _ = CONTRASTIVE_LOSSES["pairwise"]
    images, texts = _embeddings(False)
    scale, bias = torch.tensor([10.0]), torch.tensor([-5.0])
    present = torch.tensor([[True, True, False, False]])
    masked = fn(images[None], texts[None], TARGETS[None], scale, bias, present)
    subset = fn(images[None], texts[None, :2], TARGETS[None, :, :2], scale, bias)
    assert masked.item() == pytest.approx(subset.item(), rel=1e-6)


def test_classifier_loss_is_cross_entropy_per_model():
    logits = torch.randn(3, 5, 2)
    labels = torch.randint(0, 2, (3, 5))
    expected = torch.stack([F.cross_entropy(logits[k], labels[k]) for k in range(3)])
    assert torch.allclose(classifier_loss(logits, labels), expected)


def _stacked_model_and_batch(tiny, loss, k=2):
    """K tiny models of `loss` stacked, and one batch per model: 2 images of each group, each with
    its own descriptive caption (so every loss has positives and negatives)."""
    config = tiny(loss=loss, captions="descriptive")
    texts = sorted(DESCRIPTIVE.values())
    tokenizer = Tokenizer.from_texts(texts, config.model.text.context_length)
    table = CaptionTable.build(texts, tokenizer, torch.device("cpu"))
    models = [build_model(config.replace(seed=seed), len(tokenizer)) for seed in range(k)]
    model = stack_models(models)
    groups = [(a, b) for a, b in GROUPS for _ in range(2)]
    animal = torch.tensor([ANIMALS.index(a) for a, _ in groups]).expand(k, -1)
    background = torch.tensor([BACKGROUNDS.index(b) for _, b in groups]).expand(k, -1)
    caption_index = torch.tensor([texts.index(DESCRIPTIVE[group_name(a, b)]) for a, b in groups]).expand(k, -1)
    size = config.data.image_size
    images = torch.rand(k, len(groups), 3, size, size, generator=torch.Generator().manual_seed(0))
    return model, (images, animal, background, caption_index, table)


@pytest.mark.parametrize("name, uses_bias", [("pairwise", True), ("siglip", True), ("clip", False)])
def test_through_the_trainer_each_model_loss_reaches_only_its_own_scale_and_bias(tiny, name, uses_bias):
    """batch_loss (the trainer's path) with K = 2: model 0's loss alone sends a gradient to model 0's
    logit scale (and bias, where the loss has one) and none to model 1's."""
    model, batch = _stacked_model_and_batch(tiny, name)
    losses = batch_loss(model, name, *batch)
    assert losses.shape == (2,)
    losses[0].backward()
    scale_grad, bias_grad = model.log_logit_scale.grad, model.logit_bias.grad
    assert scale_grad[0] != 0 and scale_grad[1] == 0
    if uses_bias:
        assert bias_grad[0] != 0 and bias_grad[1] == 0
    else:   # CLIP's softmax is shift-invariant: the bias is not used at all
        assert bias_grad is None or not bias_grad.any()


def test_image_only_baseline_has_no_logit_scale_or_bias(tiny):
    model, (images, animal, *_) = _stacked_model_and_batch(tiny, "image_only")
    assert not hasattr(model, "log_logit_scale") and not hasattr(model, "logit_bias")
    losses = batch_loss(model, "image_only", images, animal, None, None, None)
    losses[0].backward()
    head = model.head.weight.grad
    assert head[0].abs().sum() > 0 and not head[1].any()   # its own head only, like the others
