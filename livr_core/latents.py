"""The K latent tokens: their vocabulary entries and the initialisation of their embedding rows.

Owns `LatentTokens` and `add_latent_tokens` (`LatentConfig` is in `livr_core.configs`).

* Tokens are new special tokens `<|latent_0|>` ... `<|latent_{K-1}|>` appended to the tokenizer.
  Shared mode (ablation) adds one token, `<|latent_0|>`, and inserts it K times: one embedding
  repeated K times (RoPE still tells the copies apart).
* With markers (Mirage's layout) two more tokens, `<|latent_start|>` and `<|latent_end|>`, wrap
  the K latents; their rows are trained with the latent rows (`trainable_ids`).
* Their ids land in unused embedding rows when the checkpoint has them (the real Qwen matrices
  have 151,936 rows for ~151.6k tokens); the matrix is resized only when it must grow and is
  never shrunk (`resize_token_embeddings(len(tokenizer))` would shrink it).
* Their rows are drawn at random to match the per-dimension mean and std of the trained rows
  (every row before the first latent id), from a seeded generator. This must happen before peft
  wraps the model, because peft's trainable-token delta starts as a copy of the current rows.
  With tied embeddings (both real 3B/4B backbones) the output-head rows are the same tensor.

Training exactly these K rows (and no weight decay on the others) is `livr_core.lora`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import AddedToken

from livr_core.backbones.base import Backbone, unwrap
from livr_core.configs import LatentConfig

LATENT_TOKEN = "<|latent_{}|>"
MARKER_TOKENS = ("<|latent_start|>", "<|latent_end|>")  # Mirage's names (src/main.py:36-38)


@dataclass(frozen=True)
class LatentTokens:
    """The latent tokens added to a backbone."""

    tokens: tuple[str, ...]  # distinct tokens: K, or 1 when shared
    ids: tuple[int, ...]  # their ids (the LATENT positions' tokens)
    k: int  # how many latent positions each prompt gets
    markers: tuple[str, ...] = ()  # (start, end) around the K latents, or none
    marker_ids: tuple[int, ...] = ()

    @property
    def sequence(self) -> str:
        """The text inserted into each prompt: the K latents, between the markers if any."""
        body = "".join(self.tokens[i % len(self.tokens)] for i in range(self.k))
        return self.markers[0] + body + self.markers[1] if self.markers else body

    @property
    def trainable_ids(self) -> tuple[int, ...]:
        """The embedding rows trained with the model: the latents' and the markers'."""
        return self.ids + self.marker_ids


def add_latent_tokens(backbone: Backbone, config: LatentConfig = LatentConfig()) -> LatentTokens:
    """Add the latent tokens to the backbone's tokenizer and initialise their embedding rows.

    Idempotent: calling it again on the same backbone returns the same ids and rewrites the same
    rows (the statistics exclude the latent rows themselves).
    """
    tokenizer = backbone.tokenizer
    tokens = tuple(LATENT_TOKEN.format(i) for i in range(1 if config.shared else config.k))
    markers = MARKER_TOKENS if config.markers else ()
    added = tokens + markers
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    all_ids = tuple(int(i) for i in tokenizer.convert_tokens_to_ids(list(added)))
    model = unwrap(backbone.model)
    rows = model.get_input_embeddings().weight.shape[0]
    if max(all_ids) >= rows:
        # Grow only; mean-resizing is skipped because the latent rows are drawn below.
        model.resize_token_embeddings(max(all_ids) + 1, mean_resizing=False)
    _init_rows(model.get_input_embeddings().weight, list(all_ids), config.seed)
    ids, marker_ids = all_ids[: len(tokens)], all_ids[len(tokens) :]
    return LatentTokens(tokens=tokens, ids=ids, k=config.k, markers=markers, marker_ids=marker_ids)


@torch.no_grad()
def _init_rows(weight: torch.Tensor, ids: list[int], seed: int) -> None:
    trained = weight[: min(ids)].float()
    mean, std = trained.mean(0), trained.std(0)
    generator = torch.Generator().manual_seed(seed)
    draw = torch.randn(len(ids), weight.shape[1], generator=generator)
    weight[ids] = (mean.cpu() + std.cpu() * draw).to(weight.device, weight.dtype)
