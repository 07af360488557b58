"""The K latent tokens: their vocabulary entries and the initialisation of their embedding rows.

Owns `LatentTokens` and `add_latent_tokens` (`LatentConfig` is in `livr_core.configs`).

* Tokens are new special tokens `<|latent_0|>` ... `<|latent_{K-1}|>` appended to the tokenizer.
  Shared mode (ablation) adds one token, `<|latent_0|>`, and inserts it K times: one embedding
  repeated K times (RoPE still tells the copies apart).
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


@dataclass(frozen=True)
class LatentTokens:
    """The latent tokens added to a backbone."""

    tokens: tuple[str, ...]  # distinct tokens: K, or 1 when shared
    ids: tuple[int, ...]  # their ids, i.e. the trainable embedding rows
    k: int  # how many latent positions each prompt gets

    @property
    def sequence(self) -> str:
        """The K-token text inserted into each prompt."""
        return "".join(self.tokens[i % len(self.tokens)] for i in range(self.k))


def add_latent_tokens(backbone: Backbone, config: LatentConfig = LatentConfig()) -> LatentTokens:
    """Add the latent tokens to the backbone's tokenizer and initialise their embedding rows.

    Idempotent: calling it again on the same backbone returns the same ids and rewrites the same
    rows (the statistics exclude the latent rows themselves).
    """
    tokenizer = backbone.tokenizer
    tokens = tuple(LATENT_TOKEN.format(i) for i in range(1 if config.shared else config.k))
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
    ids = tuple(int(i) for i in tokenizer.convert_tokens_to_ids(list(tokens)))
    model = unwrap(backbone.model)
    rows = model.get_input_embeddings().weight.shape[0]
    if max(ids) >= rows:
        # Grow only; mean-resizing is skipped because the latent rows are drawn below.
        model.resize_token_embeddings(max(ids) + 1, mean_resizing=False)
    _init_rows(model.get_input_embeddings().weight, list(ids), config.seed)
    return LatentTokens(tokens=tokens, ids=ids, k=config.k)


@torch.no_grad()
def _init_rows(weight: torch.Tensor, ids: list[int], seed: int) -> None:
    trained = weight[: min(ids)].float()
    mean, std = trained.mean(0), trained.std(0)
    generator = torch.Generator().manual_seed(seed)
    draw = torch.randn(len(ids), weight.shape[1], generator=generator)
    weight[ids] = (mean.cpu() + std.cpu() * draw).to(weight.device, weight.dtype)
