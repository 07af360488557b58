"""Inference: greedy generation (any mask, KV-cached) and choice scoring by log-likelihood.

Owns `GenerationConfig`, `Generation`, `generate`, `stop_token_ids`, `score_choices` and
`eval_mode`.

Generation encodes the prompts (latents inserted after the prompt by the encoder, exactly as in
training; `remove_latents=True` encodes them without) into left-padded batches and decodes
greedily. Latent ids are never emitted: their logits are set to -inf before the argmax (the model
never generates latents; they are inserted once with the prompt). A row stops at any end token
(`stop_token_ids`: the end-of-turn token, the tokenizer's end token and every `eos_token_id` of
the checkpoint's `generation_config.json`, which for Qwen lists `<|endoftext|>` as well as
`<|im_end|>`); every generated token is typed ANSWER, so under a non-causal mask
("bottleneck at test time") the generated answer is barred from the image exactly like the
answer in training.

With the cache, the prompt is run once through `forward_inputs` (4D mask for a non-causal mask,
the model's own 2D path for CAUSAL; always with the adapter's positions, which skip the left
padding), then each new token is fed alone
with its position (the adapter's positions of the grown sequence, last column) and, for a
non-causal mask, its mask row over all keys (`allowed_attention` with `query_start` = cache
length). `use_cache=False` instead re-runs `forward_inputs` on the whole sequence at every step:
the reference the cached path is tested against. The cache goes in and out under the model's own
keyword (`cache` in transformers >= 5.2x, which warns about `past_key_values`), and only the last
position's logits are computed (`logits_to_keep=1` where the model takes it): a prompt of L tokens
would otherwise materialise L x 151,936 logits on the real Qwen vocabulary.

A `prefill(model, inputs, seq)` (e.g. `livr_core.mirage.MirageLatents`) may replace what the
prompt's latent positions receive: it is called once with the first forward's inputs, and the
context manager it returns stays entered for the whole decoding (Mirage computes its latents
from the model's own hidden states, then overrides their input embeddings).

Choice scoring encodes the sample once per option as if the option were the answer and returns
the summed (or mean) log-probability of the option's tokens (the end-of-turn token excluded).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.configs import GenerationConfig, MaskRules, MaskVariant
from livr_core.encoding import IGNORE_INDEX, Batch, Encoder, Sample
from livr_core.masks import allowed_attention, to_attention_mask
from livr_core.model_inputs import forward_inputs, position_ids
from livr_core.token_types import TokenType

# (model, the first forward's kwargs, the left-padded prompt batch) -> a context entered while
# decoding; see the module docstring.
Prefill = Callable[[nn.Module, dict[str, Any], Batch], AbstractContextManager]


@dataclass
class Generation:
    id: str
    text: str  # decoded answer, special tokens skipped
    token_ids: list[int]  # generated ids up to (excluding) the stop token
    logits: np.ndarray | None = None  # [steps, vocab]; steps include the stop token's step


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients, restoring the model's mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def generate(
    model: nn.Module,
    adapter: BackboneAdapter,
    encoder: Encoder,
    samples: Sequence[Sample],
    config: GenerationConfig = GenerationConfig(),
    prefill: Prefill | None = None,
) -> list[Generation]:
    """Greedy answers for `samples`, in order."""
    suppress = encoder.reserved_ids.tolist()  # also when the latents are removed from the prompt
    if config.remove_latents:
        encoder = encoder.without_latents()
    tokenizer = encoder.tokenizer
    stop = stop_token_ids(model, encoder)
    results: list[Generation] = []
    with eval_mode(model):
        for start in range(0, len(samples), config.batch_size):
            chunk = samples[start : start + config.batch_size]
            tokens, logits = _greedy(
                model, adapter, encoder, chunk, config, suppress, stop, prefill
            )
            for row, sample in enumerate(chunk):
                ids = tokens[row].tolist()
                end = next((i for i, t in enumerate(ids) if t in stop), len(ids))
                steps = min(end + 1, len(ids))
                results.append(
                    Generation(
                        id=sample.id,
                        text=tokenizer.decode(ids[:end], skip_special_tokens=True),
                        token_ids=ids[:end],
                        logits=logits[row, :steps].numpy() if logits is not None else None,
                    )
                )
    return results


def stop_token_ids(model: nn.Module, encoder: Encoder) -> set[int]:
    """Ids that end an answer: end of turn, the tokenizer's end token and every end token of the
    model's generation config (an int or a list in `generation_config.json`)."""
    configured = getattr(unwrap(model).generation_config, "eos_token_id", None)
    if not isinstance(configured, list | tuple):
        configured = [configured]
    ids = {encoder.end_of_turn_id, encoder.tokenizer.eos_token_id, *configured}
    return {int(i) for i in ids if i is not None}


def _cache_keywords(model: nn.Module) -> dict[str, Any]:
    """The model's name for the KV cache argument/output, and whether it takes `logits_to_keep`."""
    parameters = inspect.signature(unwrap(model).forward).parameters
    return {
        "cache": "cache" if "cache" in parameters else "past_key_values",
        "last_logits_only": "logits_to_keep" in parameters,
    }


def _greedy(
    model: nn.Module,
    adapter: BackboneAdapter,
    encoder: Encoder,
    samples: Sequence[Sample],
    config: GenerationConfig,
    suppress: list[int],
    stop: set[int],
    prefill: Prefill | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Generated ids [B, steps] (rows run on past their stop token) and optional logits."""
    device = next(model.parameters()).device
    encoded = [encoder.encode(sample, with_answer=False) for sample in samples]
    seq = encoder.collate(encoded, padding_side="left").to(device)
    cache = None
    tokens: list[torch.Tensor] = []
    logits_steps: list[torch.Tensor] = []
    finished = torch.zeros(len(samples), dtype=torch.bool, device=device)
    stop_ids = torch.tensor(sorted(stop), device=device)
    keywords = _cache_keywords(model)
    last_only = {"logits_to_keep": 1} if keywords["last_logits_only"] else {}
    with ExitStack() as prefilled:
        for step in range(config.max_new_tokens):
            if step == 0 or not config.use_cache:
                inputs = forward_inputs(model, adapter, seq, config.mask)
                # Left padding: models with 1D positions would count the pads on their 2D path.
                inputs.setdefault("position_ids", position_ids(model, adapter, seq))
                if step == 0 and prefill is not None:
                    prefilled.enter_context(prefill(model, inputs, seq))
            else:
                inputs = _next_token_inputs(model, adapter, seq, config.mask)
            inputs[keywords["cache"]] = cache
            out = model(**inputs, **last_only, use_cache=config.use_cache)
            cache = getattr(out, keywords["cache"]) if config.use_cache else None
            logits = out.logits[:, -1].float()
            logits[:, suppress] = float("-inf")
            token = logits.argmax(-1)
            tokens.append(token)
            if config.return_logits:
                logits_steps.append(logits.cpu())
            finished |= torch.isin(token, stop_ids)
            if bool(finished.all()):
                break
            seq = _append(seq, token)
    all_logits = torch.stack(logits_steps, 1) if config.return_logits else None
    return torch.stack(tokens, 1).cpu(), all_logits


def _next_token_inputs(
    model: nn.Module, adapter: BackboneAdapter, seq: Batch, mask: MaskVariant | MaskRules
) -> dict[str, torch.Tensor]:
    """Inputs for the last token of `seq` on top of a cache holding all earlier positions."""
    inputs = {
        "input_ids": seq.input_ids[:, -1:],
        "position_ids": position_ids(model, adapter, seq)[..., -1:],
    }
    if mask is MaskVariant.CAUSAL:
        inputs["attention_mask"] = seq.attention_mask  # 2D: the model builds the causal row
    else:
        kv = seq.input_ids.shape[1]
        allowed = allowed_attention(seq.token_types, seq.attention_mask, mask, query_start=kv - 1)
        base = unwrap(model)
        implementation = base.config.get_text_config()._attn_implementation
        inputs["attention_mask"] = to_attention_mask(allowed, implementation, base.dtype)
    return inputs


def _append(seq: Batch, token: torch.Tensor) -> Batch:
    """`seq` with one generated (ANSWER-typed, unlabelled) token per row appended."""
    column = token[:, None]
    return replace(
        seq,
        input_ids=torch.cat([seq.input_ids, column], 1),
        attention_mask=torch.cat([seq.attention_mask, torch.ones_like(column)], 1),
        labels=torch.cat([seq.labels, torch.full_like(column, IGNORE_INDEX)], 1),
        token_types=torch.cat([seq.token_types, torch.full_like(column, int(TokenType.ANSWER))], 1),
    )


def score_choices(
    model: nn.Module,
    adapter: BackboneAdapter,
    encoder: Encoder,
    sample: Sample,
    choices: Sequence[str],
    mask: MaskVariant | MaskRules = MaskVariant.CAUSAL,
    normalize: bool = False,
) -> np.ndarray:
    """Log-likelihood of each option string as the answer (`normalize`: per token), [choices]."""
    device = next(model.parameters()).device
    encoded = [encoder.encode(replace(sample, answer=choice)) for choice in choices]
    batch = encoder.collate(encoded).to(device)
    with eval_mode(model):
        logits = model(**forward_inputs(model, adapter, batch, mask)).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], -1)
    targets = batch.labels[:, 1:]
    option = (targets != IGNORE_INDEX) & (targets != encoder.end_of_turn_id)
    picked = logprobs.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * option
    total = picked.sum(-1)
    if normalize:
        total = total / option.sum(-1).clamp(min=1)
    return total.cpu().numpy()
