"""The dual encoder's contract: output shapes, unit-norm embeddings, the padding mask, the clamped
logit scale, and K stacked models that share nothing."""
import math

import pytest
import torch

from dualenc.model.towers import DualEncoder, ImageClassifier, member, stack_models

VOCAB = 12


def _model(tiny, k=1, **changes):
    config = tiny(**changes)
    torch.manual_seed(0)
    return DualEncoder(config.model, config.data.image_size, VOCAB, k=k), config


def _images(k, b, size):
    return torch.rand(k, b, 3, size, size, generator=torch.Generator().manual_seed(1))


def _captions(k, u, length):
    ids = torch.randint(2, VOCAB, (k, u, length), generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(k, u, length, dtype=torch.bool)
    for row, n in enumerate([1, 3, length, 2][:u]):
        mask[:, row, :n] = True
    return ids.masked_fill(~mask, 0), mask


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_encoders_give_unit_vectors_of_embed_dim(tiny, pool):
    model, config = _model(tiny, k=3, **{"model.vision.pool": pool})
    dim, size, length = config.model.embed_dim, config.data.image_size, config.model.text.context_length
    image_emb = model.encode_image(_images(3, 5, size))
    text_emb = model.encode_text(*_captions(3, 4, length))
    assert image_emb.shape == (3, 5, dim) and text_emb.shape == (3, 4, dim)
    for emb in (image_emb, text_emb):
        assert torch.allclose(emb.norm(dim=-1), torch.ones(emb.shape[:2]), atol=1e-5)
    # the towers themselves are not normalised: the norm comes from encode_*
    assert not torch.allclose(model.visual(_images(3, 5, size)).norm(dim=-1), torch.ones(3, 5), atol=1e-2)


def test_padding_tokens_do_not_change_a_caption(tiny):
    model, config = _model(tiny)
    ids, mask = _captions(1, 4, config.model.text.context_length)
    junk = torch.randint(2, VOCAB, ids.shape, generator=torch.Generator().manual_seed(3))
    noisy = torch.where(mask, ids, junk)                                 # junk where the mask is False
    assert not torch.equal(ids, noisy)
    assert torch.allclose(model.encode_text(ids, mask), model.encode_text(noisy, mask), atol=1e-6)
    longer = mask.clone()
    longer[0, 0, 1] = True                                               # one more real token changes it
    assert not torch.allclose(model.encode_text(ids, mask)[0, 0], model.encode_text(noisy, longer)[0, 0])


def test_logit_scale_starts_at_its_init_and_is_clamped_to_the_max(tiny):
    model, config = _model(tiny, k=3, **{"model.init_logit_scale": 10.0, "model.max_logit_scale": 50.0})
    assert torch.allclose(model.logit_scale(), torch.full((3,), 10.0))
    assert torch.equal(model.logit_bias.detach(), torch.full((3,), config.model.init_logit_bias))
    with torch.no_grad():
        model.log_logit_scale.copy_(torch.tensor([math.log(20.0), math.log(50.0), math.log(5000.0)]))
    scale = model.logit_scale()
    assert scale.tolist() == pytest.approx([20.0, 50.0, 50.0], rel=1e-5)
    scale.sum().backward()   # a clamped scale stops learning upwards; the others still learn
    grad = model.log_logit_scale.grad
    assert grad[0] == pytest.approx(20.0, rel=1e-5) and grad[2] == 0


def test_image_size_must_be_a_multiple_of_the_patch(tiny):
    config = tiny()
    with pytest.raises(ValueError, match="model.vision.patch_size=8"):
        DualEncoder(config.model, 36, VOCAB)


def test_stacked_models_share_nothing(tiny):
    """Model k of a stack gives what it gives alone, and changing model 1's weights leaves model 0's
    embeddings unchanged."""
    config = tiny()
    singles = []
    for seed in range(2):
        torch.manual_seed(seed)
        singles.append(DualEncoder(config.model, config.data.image_size, VOCAB))
    stacked = stack_models(singles)
    images = _images(2, 3, config.data.image_size)
    together = stacked.encode_image(images)
    assert torch.allclose(together[1], singles[1].encode_image(images[1:2])[0], atol=1e-5)
    assert torch.allclose(member(stacked, 0).encode_image(images[:1])[0], together[0], atol=1e-6)
    with torch.no_grad():
        stacked.visual.proj.weight[1].mul_(-3.0)
    assert torch.equal(stacked.encode_image(images)[0], together[0])


def test_image_classifier_gives_logits_per_class(tiny):
    config = tiny(loss="image_only")
    model = ImageClassifier(config.model, config.data.image_size, n_classes=2, k=2)
    images = _images(2, 5, config.data.image_size)
    assert model(images).shape == (2, 5, 2)
    assert torch.allclose(model.encode_image(images).norm(dim=-1), torch.ones(2, 5), atol=1e-5)
