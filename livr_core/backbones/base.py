"""The backbone-adapter abstraction: the few model-specific answers the rest of livr_core needs.

Owns:
* `LoadOptions` (defined in `livr_core.configs`): where a backbone comes from and how it is
  loaded (source, remote-code opt-in, dtype, attention implementation, image pixel budget, seed
  for the tiny ones).
* `BackboneAdapter`: a stateless strategy per model family answering
  - which token ids are image tokens (`image_token_ids`),
  - which processor outputs the model's `forward` takes besides ids and mask (`model_input_names`),
  - how to compute position ids from the 2D padding mask (`position_ids`; M-RoPE for Qwen),
  - which modules get LoRA (`lora_target_regex`, anchored on `language_model` so no vision module
    matches) and which module is the input embedding (`embedding_module`),
  - which token ends a chat turn (`end_of_turn`; latents go right before it in the user turn),
  - which modules are the language model's self-attention (`attention_module_regex`; under eager
    attention their second output is the attention weights the read-outs average),
  - the token grid (rows, columns) of each image in a batch (`image_grids`, for attention maps).
  The defaults describe a LLaVA-style model with 1D positions; families override what differs.
* `Backbone`: a loaded model + processor + adapter, what every other module works with.
* `unwrap`: the Hugging Face model under a peft wrapper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# The seven linear maps of each decoder layer, only under the language model: Qwen2.5-VL's vision
# MLP reuses gate/up/down_proj, so a bare name list would put LoRA on the vision tower too.
LANGUAGE_MODEL_LORA_REGEX = (
    r".*\blanguage_model\.layers\.\d+\."
    r"(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"
)

LANGUAGE_MODEL_ATTENTION_REGEX = r".*\blanguage_model\.layers\.\d+\.self_attn"


class BackboneAdapter:
    """Family-specific answers; the defaults fit LLaVA-style models with 1D positions."""

    lora_target_regex: str = LANGUAGE_MODEL_LORA_REGEX
    embedding_module: str = "embed_tokens"
    model_input_names: tuple[str, ...] = ("pixel_values",)
    end_of_turn: str = "<|im_end|>"
    attention_module_regex: str = LANGUAGE_MODEL_ATTENTION_REGEX
    # The `architectures` name the published checkpoint's config.json carries, where the model
    # class that loads it here has another name (a native reimplementation); an export writes
    # it back so other tools (vLLM's registry) recognise the model. None: the class name.
    published_architecture: str | None = None

    def image_token_ids(self, model: nn.Module) -> tuple[int, ...]:
        """Ids whose positions hold image features (the keys the bottleneck hides)."""
        return (int(unwrap(model).config.image_token_id),)

    def position_ids(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        model_inputs: Mapping[str, Any],
    ) -> torch.Tensor:
        """Position ids from the 2D padding mask; 1D: 0, 1, ... over the real tokens."""
        del model, input_ids, model_inputs  # 1D positions depend on the padding only
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def image_grids(self, model: nn.Module, vision: Mapping[str, Any]) -> list[tuple[int, int]]:
        """(rows, columns) of image tokens per image of a batch, in batch order.

        LLaVA style: every image is one fixed square of patches (image_size / patch_size a side).
        """
        config = unwrap(model).config.vision_config
        side = config.image_size // config.patch_size
        return [(side, side)] * int(vision["pixel_values"].shape[0])


@dataclass
class Backbone:
    """A loaded backbone: what encoding, latents, masks and LoRA work on."""

    name: str
    model: nn.Module
    processor: Any  # a transformers ProcessorMixin (tokenizer + image processor + template)
    adapter: BackboneAdapter

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
