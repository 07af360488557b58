"""Fixtures for the livr_core tests: fresh tiny offline backbones with latents and an encoder."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tiny backbones are built in code; never download

from collections.abc import Callable, Iterator

import pytest
import torch

from livr_core.backbones import TINY_BACKBONES, load_backbone
from livr_core.backbones.base import Backbone
from livr_core.configs import EncodingConfig, LatentConfig
from livr_core.encoding import Encoder
from livr_core.latents import LatentTokens, add_latent_tokens
from tests.livr_core.samples import K

Prepared = tuple[Backbone, LatentTokens, Encoder]


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the thread
    hand-offs make each forward ~10x slower; restored after the test for other suites."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=TINY_BACKBONES)
def backbone_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def prepare() -> Callable[..., Prepared]:
    """Builds a fresh tiny backbone + latent tokens + encoder (tests may mutate the model)."""

    def _prepare(
        name: str, k: int = K, shared: bool = False, config: EncodingConfig | None = None
    ) -> Prepared:
        backbone = load_backbone(name)
        latents = add_latent_tokens(backbone, LatentConfig(k=k, shared=shared))
        return backbone, latents, Encoder(backbone, latents, config or EncodingConfig())

    return _prepare
