"""Mirage (Yang et al. 2025, "Machine Mental Imagery"): latent visual tokens supervised by a
helper image, as a training objective beside LIVR's masks, and its latent feedback at inference.

Owns `MirageObjective` (the trainer's `objective` for both stages), `MirageLatents` (the
inference `prefill`), `latent_positions`, `pool_to_k`, `helper_targets` and `EmbeddingOverride`.
`MirageConfig` is in `livr_core.configs`. What follows is Mirage's public code (commit 53f26de of
UMass-Embodied-AGI/Mirage; "M" below), not its paper, wherever the two differ:

Layout (`LatentConfig(k=4, shared=True, markers=True)`, `EncodingConfig(latent_position=
"answer_start")`): the assistant turn opens with `<|latent_start|>`, K copies of one latent
token, `<|latent_end|>`, then the answer. The latent token's own embedding is never used: stage
1 writes the helper image's pooled embedding into those positions, stage 2 and inference the
model's own hidden states.

Stage 1 (M src/trainer.py:6-26, modeling_qwen2_5_vl.py:2103-2143): the helper image goes
through the frozen vision tower (projector included) to N tokens of the language model's width;
the last N mod K are dropped and K contiguous groups averaged (`pool_to_k`, per image, so a batch
may mix image sizes). Those K vectors z_k are the input embeddings of the K latent positions
(teacher forcing) and the targets of the final-layer, post-norm hidden state one position
earlier: loss = ce_weight x answer cross-entropy + (1 - mean_k cos(h_{p_k - 1}, z_k)).

Stage 2 (M modeling_qwen2_5_vl.py:2248-2290) and inference: latent k's input embedding is the
post-norm hidden state of the position before it (x_{p_1} = h_{p_1 - 1}, x_{p_k} = h_{p_{k-1}}),
gradients flowing through the chain; the loss is the answer cross-entropy alone, and no helper
image is read. M computes the chain with a KV cache, one latent at a time; here K truncated
forward passes compute it (pass k runs the prefix up to latent k and reads h_{p_k - 1}), then
one full pass overrides all K inputs. Causality makes the values, and so the gradients, the same
as M's, for any padding and batch layout; a stage-2 step costs about K + 1 forwards of the
prompt instead of one.

Inference: M's `generate` lets the model sample `<|latent_start|>`, then feeds back up to eight
latents until it samples `<|latent_end|>`; issue #18 of M reports this loop is never reached with
the released scripts. Here the K latents and both markers are part of the prompt (forced), the
K hidden states are fed back as above, and the answer is decoded greedily (LIVR's decoding).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from typing import Any, Self

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.configs import MirageConfig
from livr_core.encoding import Batch
from livr_core.token_types import TokenType


def _base(model: nn.Module) -> nn.Module:
    """The transformers model under DDP and peft wrappers."""
    return unwrap(getattr(model, "module", model))


def latent_positions(token_types: torch.Tensor) -> torch.Tensor:
    """[B, K] column of each row's K latent positions (every row must have K of them)."""
    is_latent = token_types == int(TokenType.LATENT)
    counts = is_latent.sum(1)
    if len(counts) == 0 or int(counts.min()) != int(counts.max()) or int(counts[0]) == 0:
        raise ValueError(f"Mirage needs the same number (>= 1) of latents in every row, got "
                         f"{counts.tolist()}: encode with the Mirage latent layout")
    return is_latent.nonzero()[:, 1].view(len(counts), -1)


def pool_to_k(features: torch.Tensor, k: int) -> torch.Tensor:
    """[N, d] image tokens -> [k, d]: drop the last N mod k, average k contiguous groups (M)."""
    n = features.shape[0]
    if n < k:
        raise ValueError(f"a helper image of {n} tokens cannot be pooled to {k} latents; "
                         "raise the image pixel budget")
    return features[: n - n % k].reshape(k, n // k, -1).mean(1)


def _image_tokens(model: nn.Module, vision: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    """Each image's tokens after the vision tower and projector, at the LM's width."""
    base = _base(model)
    out = base.get_image_features(**vision)
    features = getattr(out, "pooler_output", out)  # transformers 5: per-image tuple or a tensor
    return list(features)


@torch.no_grad()
def helper_targets(
    model: nn.Module, processor: Any, images: Sequence[Image.Image], k: int
) -> torch.Tensor:
    """[B, k, d] pooled embeddings of the helper images (the vision tower is frozen in every
    Mirage variant, so no gradient could reach it; none is recorded)."""
    device = next(_base(model).parameters()).device
    vision = processor.image_processor(images=list(images), return_tensors="pt")
    vision = {key: value.to(device) for key, value in vision.items()
              if key in ("pixel_values", "image_grid_thw")}
    return torch.stack([pool_to_k(f, k) for f in _image_tokens(model, vision)])


class EmbeddingOverride:
    """While entered, the input embeddings at `mask` (a [B, P] bool mask over the first P columns)
    are replaced by `values` ([mask.sum(), d], row-major) in every forward whose input spans at
    least P columns; shorter inputs (KV-cached decoding steps) pass unchanged."""

    def __init__(self, model: nn.Module, mask: torch.Tensor, values: torch.Tensor) -> None:
        self.module = _base(model).get_input_embeddings()
        self.mask, self.values = mask, values
        self._handle: Any = None

    def _hook(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        width = self.mask.shape[1]
        if output.ndim != 3 or output.shape[1] < width or output.shape[0] != self.mask.shape[0]:
            return output
        mask = torch.zeros(output.shape[:2], dtype=torch.bool, device=output.device)
        mask[:, :width] = self.mask.to(output.device)
        out = output.clone()
        out[mask] = self.values.to(out.device, out.dtype)
        return out

    def __enter__(self) -> Self:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


@contextmanager
def _final_hidden(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Captures the post-norm final hidden states: the output head's input, any architecture."""
    captured: list[torch.Tensor] = []
    handle = _base(model).get_output_embeddings().register_forward_pre_hook(
        lambda module, args: captured.append(args[0])
    )
    try:
        yield captured
    finally:
        handle.remove()


def _truncate(inputs: Mapping[str, Any], length: int, seq_len: int) -> dict[str, Any]:
    """The forward kwargs cut to the first `length` columns (image tensors kept whole: every image
    precedes the latents, so the prefix holds them all)."""
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 2 and value.shape[-1] == seq_len \
                and key != "pixel_values":
            value = value[..., :length]
            if key == "attention_mask" and value.ndim == 4:
                value = value[..., :length, :]
        out[key] = value
    return out


def feedback_values(
    model: nn.Module, inputs: Mapping[str, Any], positions: torch.Tensor
) -> torch.Tensor:
    """[B*K, d] the latents' fed-back inputs, x_{p_k} = h_{p_k - 1}, row-major (see module doc).

    `inputs` must hold explicit `position_ids`; gradients are kept when grad mode is on.
    """
    seq_len = inputs["input_ids"].shape[1]
    rows, k = positions.shape
    values: list[torch.Tensor] = []  # per latent index: [B, d]
    for j in range(k):
        length = int(positions[:, j].max())
        # Latents are contiguous and increasing, so a row's latents before j lie in the prefix.
        override = (
            EmbeddingOverride(model, _latent_mask(positions[:, :j], length),
                              torch.stack(values, 1).flatten(0, 1))
            if j else nullcontext()
        )
        with override, _final_hidden(model) as hidden:
            model(**_truncate(inputs, length, seq_len), use_cache=False)
        values.append(hidden[-1][torch.arange(rows), positions[:, j] - 1])
    return torch.stack(values, 1).flatten(0, 1)


def _latent_mask(positions: torch.Tensor, length: int) -> torch.Tensor:
    mask = torch.zeros(positions.shape[0], length, dtype=torch.bool, device=positions.device)
    mask.scatter_(1, positions, True)
    return mask


def _with_positions(
    model: nn.Module, adapter: BackboneAdapter, inputs: Mapping[str, Any], batch: Batch
) -> dict[str, Any]:
    out = dict(inputs)
    if "position_ids" not in out:
        out["position_ids"] = adapter.position_ids(
            model, batch.input_ids, batch.attention_mask, inputs
        )
    return out


class MirageObjective:
    """The trainer objective: Mirage's stage-1 loss with `helpers`, then stage 2's answer loss.

    `helpers` maps a sample id to its helper image (the caller's data; read in stage 1 only).
    """

    def __init__(
        self,
        adapter: BackboneAdapter,
        processor: Any,
        helpers: Mapping[str, Image.Image],
        config: MirageConfig = MirageConfig(),
    ) -> None:
        self.adapter, self.processor, self.helpers, self.config = adapter, processor, helpers, config

    def fingerprint(self) -> dict[str, Any]:
        return {"mirage": asdict(self.config)}

    def helper_images(self, ids: Sequence[str]) -> list[Image.Image]:
        missing = [i for i in ids if i not in self.helpers]
        if missing:
            raise KeyError(f"Mirage stage 1 needs a helper image for every training example; "
                           f"none for {', '.join(missing[:5])}")
        return [self.helpers[i] for i in ids]

    def __call__(
        self, model: nn.Module, inputs: dict[str, Any], batch: Batch, stage: int
    ) -> torch.Tensor:
        positions = latent_positions(batch.token_types)
        inputs = _with_positions(model, self.adapter, inputs, batch)
        mask = _latent_mask(positions, batch.input_ids.shape[1])
        if stage == 0:
            targets = helper_targets(
                model, self.processor, self.helper_images(batch.ids), positions.shape[1]
            ).flatten(0, 1)
            with EmbeddingOverride(model, mask, targets), _final_hidden(model) as hidden:
                out = model(**inputs, labels=batch.labels, use_cache=False)
            before = hidden[-1][:, :-1][mask[:, 1:]]  # h_{p_k - 1}, row-major like targets
            cosine = F.cosine_similarity(before.float(), targets.float(), dim=-1).mean()
            return self.config.ce_weight * out.loss + (1 - cosine)
        values = feedback_values(model, inputs, positions)
        with EmbeddingOverride(model, mask, values):
            return model(**inputs, labels=batch.labels, use_cache=False).loss


class MirageLatents:
    """The inference `prefill` (`livr_core.inference.generate(..., prefill=MirageLatents())`):
    feeds the model's hidden states back into the prompt's latent positions. Needs no helper."""

    def __call__(
        self, model: nn.Module, inputs: dict[str, Any], seq: Batch
    ) -> EmbeddingOverride:
        positions = latent_positions(seq.token_types)
        with torch.no_grad():
            values = feedback_values(model, inputs, positions)
        return EmbeddingOverride(model, _latent_mask(positions, seq.input_ids.shape[1]), values)
