"""Attention read-outs: masses are distributions, masks show up exactly, maps fit the image grids."""

from __future__ import annotations

import numpy as np
import torch

from livr_core.attention import (
    answer_latent_mass,
    key_type_mass,
    last_hidden_states,
    latent_image_maps,
    mean_attention,
)
from livr_core.backbones.base import unwrap
from livr_core.configs import MaskRules, MaskVariant
from livr_core.encoding import Sample
from livr_core.model_inputs import forward_inputs
from livr_core.token_types import TEXT_TYPES, TokenType
from tests.livr_core.samples import random_image, two_image_sample

NO_LATENTS_FOR_ANSWERS = MaskRules(answer_from_latent=True)


def _batch(encoder):
    """A 112x56 single-image sample and a two-image one (84x56, 56x56), right-padded."""
    return encoder(
        [Sample([random_image(3, 112, 56)], "Count the dots.", "7", "one"), two_image_sample(0)]
    )


def test_attention_masses_are_distributions_and_respect_the_mask(prepare, backbone_name) -> None:
    backbone, _, encoder = prepare(backbone_name)
    model, adapter, batch = backbone.model, backbone.adapter, _batch(encoder)
    attention = mean_attention(model, adapter, batch)
    # the read-out switched to eager and back
    assert unwrap(model).config.get_text_config()._attn_implementation == "sdpa"
    real = batch.attention_mask.bool()
    rows = attention.sum(-1)[real]
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
    assert attention.min() >= 0 and attention.max() <= 1
    # the hooks average exactly what the model reports with output_attentions
    model.set_attn_implementation({"text_config": "eager"})
    with torch.no_grad():
        out = model(**forward_inputs(model, adapter, batch), output_attentions=True)
    model.set_attn_implementation({"text_config": "sdpa"})
    reference = torch.stack([a.mean(1) for a in out.attentions]).mean(0)
    assert (attention - reference).abs().max() <= 1e-6

    mass = key_type_mass(attention, batch, TokenType.ANSWER)
    assert mass.shape == (2, len(TokenType)) and ((mass >= 0) & (mass <= 1)).all()
    np.testing.assert_allclose(mass.sum(1), 1.0, atol=1e-5)
    latent = answer_latent_mass(model, adapter, batch)
    assert (latent > 1e-3).all() and np.allclose(latent, mass[:, TokenType.LATENT])
    barred = answer_latent_mass(model, adapter, batch, NO_LATENTS_FOR_ANSWERS)
    assert (barred == 0.0).all()
    # under the LIVR bottleneck the answer's mass on image keys is exactly 0 as well
    bottleneck = key_type_mass(
        mean_attention(model, adapter, batch, MaskVariant.BOTTLENECK), batch, TokenType.ANSWER
    )
    assert (bottleneck[:, TokenType.IMAGE] == 0.0).all()
    assert (mass[:, TokenType.IMAGE] > 0).all()


def test_latent_image_maps_have_the_image_grids(prepare, backbone_name) -> None:
    backbone, _, encoder = prepare(backbone_name)
    model, adapter, batch = backbone.model, backbone.adapter, _batch(encoder)
    maps = latent_image_maps(model, adapter, batch)
    expected = {  # (rows, columns) of LLM image tokens
        "tiny-qwen2.5-vl": [[(2, 4)], [(2, 3), (2, 2)]],  # 28-pixel tokens (14-px patches, 2x2)
        "tiny-qwen3-vl": [[(2, 4)], [(2, 3), (2, 2)]],  # 32-pixel tokens, resized to multiples
        "tiny-llava": [[(4, 4)], [(4, 4), (4, 4)]],  # every image a 56x56 square of 14-px patches
    }[backbone_name]
    assert [[m.shape for m in row] for row in maps] == expected
    # all images' maps together hold the latents' whole image mass
    image_mass = key_type_mass(mean_attention(model, adapter, batch), batch, TokenType.LATENT)
    for row, row_maps in enumerate(maps):
        assert all((m >= 0).all() for m in row_maps)
        total = sum(float(m.sum()) for m in row_maps)
        assert abs(total - image_mass[row, TokenType.IMAGE]) <= 1e-5


def test_last_hidden_states_see_the_image_only_where_the_mask_lets_them(
    prepare, backbone_name
) -> None:
    """Two images, same text: under the bottleneck the final states of the prompt (the text
    between the image and the latents) are bit-identical and the latents' differ; under the
    causal mask the prompt's differ too."""
    backbone, _, encoder = prepare(backbone_name)
    model, adapter = backbone.model, backbone.adapter
    batch = encoder([Sample([random_image(seed, 56, 56)], "Which quadrant?", "(A)", str(seed))
                     for seed in (1, 2)])
    types = batch.token_types[0]
    assert torch.equal(types, batch.token_types[1])
    latent = types == TokenType.LATENT
    position = torch.arange(len(types))
    first_image, first_latent = (int((types == t).nonzero()[0])
                                 for t in (TokenType.IMAGE, TokenType.LATENT))
    text = (torch.isin(types, torch.tensor(TEXT_TYPES)) & (position > first_image)
            & (position < first_latent))
    assert int(text.sum()) >= len("Which quadrant?") // 4  # the prompt is in the selection
    states = last_hidden_states(model, adapter, batch, MaskVariant.BOTTLENECK)
    assert states.dtype == torch.float32 and states.shape[:2] == batch.input_ids.shape
    assert not states.requires_grad
    assert torch.equal(states[0, text], states[1, text])
    assert not torch.equal(states[0, latent], states[1, latent])
    causal = last_hidden_states(model, adapter, batch)
    assert not torch.equal(causal[0, text], causal[1, text])
