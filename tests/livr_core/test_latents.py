"""Latent tokens: unused rows first, grow-only resizing, seeded init matching embedding stats."""

from __future__ import annotations

import torch

from livr_core.backbones import load_backbone
from livr_core.configs import LatentConfig
from livr_core.latents import add_latent_tokens


def test_latents_take_unused_rows_without_resizing(backbone_name: str) -> None:
    backbone = load_backbone(backbone_name)
    embedding = backbone.model.get_input_embeddings()
    rows, n_tokens = embedding.weight.shape[0], len(backbone.tokenizer)
    before = embedding.weight.detach().clone()
    latents = add_latent_tokens(backbone, LatentConfig(k=16))
    assert latents.ids == tuple(range(n_tokens, n_tokens + 16))
    assert backbone.model.get_input_embeddings().weight.shape[0] == rows  # not shrunk, not grown
    after = backbone.model.get_input_embeddings().weight
    changed = (after != before).any(-1).nonzero().flatten().tolist()
    assert changed == list(latents.ids)  # only the latent rows were written
    assert backbone.model.get_output_embeddings().weight is after  # still tied


def test_embedding_grows_only_when_latents_do_not_fit() -> None:
    backbone = load_backbone("tiny-qwen2.5-vl")
    rows = backbone.model.get_input_embeddings().weight.shape[0]
    k = rows - len(backbone.tokenizer) + 8  # 8 more than the spare rows
    latents = add_latent_tokens(backbone, LatentConfig(k=k))
    weight = backbone.model.get_input_embeddings().weight
    assert weight.shape[0] == max(latents.ids) + 1 == rows + 8
    assert backbone.model.get_output_embeddings().weight is weight
    assert backbone.model.config.get_text_config().vocab_size == rows + 8


def test_rows_match_the_trained_embedding_statistics() -> None:
    backbone = load_backbone("tiny-qwen2.5-vl")
    trained = backbone.model.get_input_embeddings().weight[: len(backbone.tokenizer)].detach()
    latents = add_latent_tokens(backbone, LatentConfig(k=32))
    rows = backbone.model.get_input_embeddings().weight[list(latents.ids)].detach()
    z = (rows - trained.mean(0)) / trained.std(0)  # standardised per dimension: ~N(0, 1)
    assert abs(z.mean().item()) < 0.1 and abs(z.std().item() - 1) < 0.1
    assert not torch.equal(rows[0], rows[1])


def test_init_is_seeded_and_idempotent() -> None:
    first, second = load_backbone("tiny-qwen3-vl"), load_backbone("tiny-qwen3-vl")
    ids = add_latent_tokens(first, LatentConfig(k=4)).ids
    assert add_latent_tokens(second, LatentConfig(k=4)).ids == ids
    rows = first.model.get_input_embeddings().weight[list(ids)].detach().clone()
    assert torch.equal(rows, second.model.get_input_embeddings().weight[list(ids)])
    assert add_latent_tokens(first, LatentConfig(k=4)).ids == ids  # again: same ids, same rows
    assert torch.equal(rows, first.model.get_input_embeddings().weight[list(ids)])
    other = load_backbone("tiny-qwen3-vl")
    add_latent_tokens(other, LatentConfig(k=4, seed=7))
    assert not torch.equal(rows, other.model.get_input_embeddings().weight[list(ids)])
