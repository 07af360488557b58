"""LLaVA-OneVision-1.5 as a native transformers 5.x model: RiceViT + patch merger + Qwen3.

Owns the configuration classes (`RiceVisionConfig`, `LlavaOnevision15Config`), the modules
(`RiceVisionModel`, `LlavaOnevision15Model`, `LlavaOnevision15ForConditionalGeneration`) and the
key map of the published checkpoint (`CHECKPOINT_KEY_MAP`).

Architecture (read from the project's public modeling code and its paper, written here on
transformers' own building blocks so that sdpa / eager / 4D masks and attention read-outs behave
as in the Qwen backbones):

* Vision tower (RiceViT, a ViT with 2D rotary positions): a bias-free 14x14 `Conv2d` patch
  embedding (the processor's `temporal_patch_size` is 1), one learned class token prepended to
  every image, whose rotary angles are a learned vector (`class_pos_emb`) instead of a position,
  a pre-LayerNorm, pre-norm blocks (LayerNorm, Qwen2-VL's
  `VisionAttention` with one fused qkv and attention confined to each image, fc1/GELU/fc2), the
  class tokens dropped again, then the patch merger: LayerNorm per patch, the 2x2 neighbours
  concatenated, Linear/GELU/Linear into the language model's width. Patch rotary angles are
  Qwen2-VL's axial 2D ones (theta 10000, head_dim / 4 frequencies per axis, rows then columns).
* Language model: transformers' `Qwen3Model` (1D RoPE positions, q/k RMSNorm); `lm_head` is tied to
  the input embedding only when the configuration says so (the 4B checkpoint ships an untied one).
* Merging: the image features replace the `<|image_pad|>` embeddings in order; a count mismatch
  is an error. Videos are not supported (the toolkit's tasks are images).

One known difference, kept as an option: the published remote code hands the second and later
images of a vision batch features shifted by one row per earlier image (it removes the class
tokens at offsets that ignore those inserted before); by default each image gets its own patches
as in the training code, and `"remote_code_feature_shift": true` in `vision_config` reproduces
the remote code. Single images are unaffected.

The published checkpoint stores `visual.*`, `model.*` (the Qwen3 text model) and `lm_head.*`;
`CHECKPOINT_KEY_MAP` maps them onto `model.visual.*`, `model.language_model.*`, `lm_head.*`.
Its `config.json` (`model_type` "llavaonevision1_5", an `auto_map` naming the remote code) is
read by `LlavaOnevision15Config` as data; no code from the checkpoint is imported or executed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from transformers import AutoConfig, GenerationMixin, PreTrainedConfig, PreTrainedModel, Qwen3Config
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.models.qwen2_vl.modeling_qwen2_vl import VisionAttention, VisionMlp
from transformers.models.qwen3.modeling_qwen3 import Qwen3Model
from transformers.utils.deprecation import deprecate_kwarg
from transformers.vision_utils import get_vision_position_ids

MODEL_TYPE = "llavaonevision1_5"  # the published config.json's model_type
# The remote text config's model_type; its fields are Qwen3's, so it is read as a Qwen3Config.
REMOTE_TEXT_MODEL_TYPE = "LLaVAOneVision1_5_text"
VISION_ROPE_THETA = 10000.0  # fixed in RiceViT's rotary embedding (not a config field)

# Published checkpoint key -> native key (regex, first match wins). The checkpoint keeps the
# layout of its Megatron export: the vision tower at the top (`visual.`), the Qwen3 text model
# under `model.`, the untied head as `lm_head.`.
CHECKPOINT_KEY_MAP = {
    r"^visual\.": "model.visual.",
    r"^model\.(?!language_model\.|visual\.)": "model.language_model.",
}
# Native key -> published key: the inverse, used to save checkpoints under the real names.
NATIVE_KEY_MAP = {
    r"^model\.visual\.": "visual.",
    r"^model\.language_model\.": "model.",
}


class RiceVisionConfig(PreTrainedConfig):
    """RiceViT's configuration; field names and defaults as in the published `vision_config`."""

    model_type = "rice_vit"
    base_config_key = "vision_config"
    attribute_map: ClassVar[dict[str, str]] = {
        "num_attention_heads": "num_heads", "num_hidden_layers": "depth"
    }

    depth: int = 24
    embed_dim: int = 1024
    hidden_size: int = 1024
    hidden_act: str = "gelu"
    intermediate_size: int = 4096
    num_heads: int = 16
    in_channels: int = 3
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    text_hidden_size: int = 2560
    # Not a published field. False: each image's features are its own patches, as in the
    # training code (the Megatron RiceViT). True: as the published remote code, which removes the
    # class tokens at offsets that ignore the ones inserted before, so the features of image i
    # (from 0) of a vision batch start i rows early (class tokens / last patches of the images
    # before it) and its own last i patches are dropped.
    remote_code_feature_shift: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        # The remote code sizes every layer with hidden_size; transformers' VisionAttention reads
        # embed_dim. The published configs set both to the same width.
        if self.embed_dim != self.hidden_size:
            raise ValueError(
                f"vision_config: embed_dim ({self.embed_dim}) must equal hidden_size "
                f"({self.hidden_size}) in RiceViT; fix the checkpoint's config.json"
            )
        if self.temporal_patch_size != 1:
            raise ValueError(
                f"vision_config.temporal_patch_size is {self.temporal_patch_size}; RiceViT embeds "
                "single frames (2D patches), so it must be 1"
            )


class LlavaOnevision15Config(PreTrainedConfig):
    """The checkpoint's `config.json`: a Qwen3 `text_config`, a RiceViT `vision_config`."""

    model_type = MODEL_TYPE
    sub_configs_defaults: ClassVar[dict[str, type]] = {
        "text_config": Qwen3Config, "vision_config": RiceVisionConfig
    }

    text_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    image_token_id: int = 151655
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        text = self.text_config
        if isinstance(text, dict) and text.get("model_type") == REMOTE_TEXT_MODEL_TYPE:
            self.text_config = {k: v for k, v in text.items() if k != "model_type"}
        super().__post_init__(**kwargs)
        # Tie the head only when the text model says so (the remote code's rule as well).
        if not self.tie_word_embeddings and getattr(self.text_config, "tie_word_embeddings", False):
            self.tie_word_embeddings = True
        text_width, merger_width = self.text_config.hidden_size, self.vision_config.text_hidden_size
        if text_width != merger_width:
            raise ValueError(
                f"vision_config.text_hidden_size ({merger_width}) must equal "
                f"text_config.hidden_size ({text_width}): the merger projects into the text width"
            )


# Registered so that transformers' Auto* loaders (the processor's tokenizer looks up the model's
# config) resolve the checkpoint's config.json to this class, as local code, instead of asking
# whether to run the remote code its auto_map names.
AutoConfig.register(MODEL_TYPE, LlavaOnevision15Config, exist_ok=True)


class LlavaOnevision15PreTrainedModel(PreTrainedModel):
    config: LlavaOnevision15Config
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["RiceVisionBlock", "Qwen3DecoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_attention_backend = True


class RicePatchEmbed(nn.Module):
    """Flattened 14x14 RGB patches (the processor's rows) -> vectors of the vision width."""

    def __init__(self, config: RiceVisionConfig) -> None:
        super().__init__()
        self.shape = (config.in_channels, config.patch_size, config.patch_size)
        size = config.patch_size
        self.proj = nn.Conv2d(config.in_channels, config.hidden_size, size, stride=size, bias=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = pixel_values.view(-1, *self.shape).to(self.proj.weight.dtype)
        return self.proj(patches).flatten(1)


class RiceVisionBlock(GradientCheckpointingLayer):
    """Pre-norm ViT block; attention is transformers' dispatching `VisionAttention`."""

    def __init__(self, config: RiceVisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = VisionAttention(config)
        self.mlp = VisionMlp(config.hidden_size, config.intermediate_size, config.hidden_act)

    def forward(
        self,
        hidden_states: torch.Tensor,
        cu_seqlens: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(
            self.norm1(hidden_states), cu_seqlens=cu_seqlens, position_embeddings=position_embeddings
        )
        return hidden_states + self.mlp(self.norm2(hidden_states))


class RicePatchMerger(nn.Module):
    """LayerNorm per patch, 2x2 neighbours concatenated, MLP into the language model's width."""

    def __init__(self, config: RiceVisionConfig) -> None:
        super().__init__()
        self.merged = config.hidden_size * config.spatial_merge_size**2
        self.ln_q = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(self.merged, self.merged),
            nn.GELU(),
            nn.Linear(self.merged, config.text_hidden_size),
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(hidden_states).view(-1, self.merged))


class RiceRotaryAngles(nn.Module):
    """Axial 2D rotary angles: head_dim / 4 frequencies for rows, the same for columns."""

    def __init__(self, config: RiceVisionConfig) -> None:
        super().__init__()
        self.dim = config.hidden_size // config.num_heads // 2
        self.inv_freq = nn.Buffer(self.compute_inv_freq(), persistent=False)

    def compute_inv_freq(self) -> torch.Tensor:
        exponents = torch.arange(0, self.dim, 2, dtype=torch.float) / self.dim
        return 1.0 / (VISION_ROPE_THETA**exponents)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """(N, 2) row / column positions -> (N, head_dim / 2) angles."""
        angles = positions[..., None].float() * self.inv_freq.to(positions.device)
        return angles.flatten(1)


class RiceVisionModel(LlavaOnevision15PreTrainedModel):
    """RiceViT + patch merger: pixel patches of a batch of images -> language-model embeddings."""

    config: RiceVisionConfig
    base_model_prefix = ""
    input_modalities = ("image",)
    _no_split_modules: ClassVar[list[str]] = ["RiceVisionBlock"]

    def __init__(self, config: RiceVisionConfig) -> None:
        super().__init__(config)
        head_dim = config.hidden_size // config.num_heads
        self.spatial_merge_size = config.spatial_merge_size
        self.patch_embed = RicePatchEmbed(config)
        self.rotary_pos_emb = RiceRotaryAngles(config)
        self.class_embedding = nn.Parameter(torch.empty(config.hidden_size))
        self.class_pos_emb = nn.Parameter(torch.empty(1, head_dim // 2))
        self.pre_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.blocks = nn.ModuleList(RiceVisionBlock(config) for _ in range(config.depth))
        self.merger = RicePatchMerger(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RiceVisionModel):
            # As the remote code draws them: N(0, width^-1/2) and N(0, 1).
            init.normal_(module.class_embedding, std=module.config.hidden_size**-0.5)
            init.normal_(module.class_pos_emb, std=1.0)
        elif isinstance(module, RiceRotaryAngles):
            # Non-persistent: never in a checkpoint, so it must be rebuilt after meta-device loading.
            init.copy_(module.inv_freq, module.compute_inv_freq())

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embed.proj.weight.dtype

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """Merged features, one row per 2x2 patch group, images in order: (N / 4, text width)."""
        patches = self.patch_embed(pixel_values)
        angles = self.rotary_pos_emb(get_vision_position_ids(grid_thw, self.spatial_merge_size))
        # One segment per grid frame (t is 1 for a still image), each with a class token in front.
        lengths = torch.repeat_interleave(grid_thw[:, 1] * grid_thw[:, 2], grid_thw[:, 0])
        offsets = torch.arange(1, len(lengths) + 1, device=lengths.device)
        cls_rows = torch.cumsum(lengths + 1, 0) - lengths - 1
        patch_rows = torch.arange(len(patches), device=patches.device) + torch.repeat_interleave(
            offsets, lengths
        )
        total = len(patches) + len(lengths)
        hidden = patches.new_empty(total, patches.shape[1])
        hidden[cls_rows] = self.class_embedding.to(patches.dtype)
        hidden[patch_rows] = patches
        rotary = angles.new_empty(total, angles.shape[1])
        rotary[cls_rows] = self.class_pos_emb.to(angles.dtype)
        rotary[patch_rows] = angles
        cu_seqlens = nn.functional.pad(torch.cumsum(lengths + 1, 0), (1, 0)).to(torch.int32)

        hidden = self.pre_layernorm(hidden)
        emb = torch.cat((rotary, rotary), dim=-1)
        position_embeddings = (emb.cos(), emb.sin())
        for block in self.blocks:
            hidden = block(hidden, cu_seqlens, position_embeddings)
        if self.config.remote_code_feature_shift:
            patch_rows = torch.arange(1, len(patches) + 1, device=patches.device)
        return self.merger(hidden[patch_rows])


class LlavaOnevision15Model(LlavaOnevision15PreTrainedModel):
    """Vision tower + Qwen3 text model; image features replace the image placeholder tokens."""

    base_model_prefix = ""

    def __init__(self, config: LlavaOnevision15Config) -> None:
        super().__init__(config)
        self.visual = RiceVisionModel._from_config(config.vision_config)
        self.language_model = Qwen3Model._from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_image_features(
        self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor
    ) -> torch.Tensor:
        """Merged image features, (image tokens of all images, text width)."""
        return self.visual(pixel_values.to(self.visual.dtype), grid_thw=image_grid_thw)

    def _scatter_images(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        slots = input_ids == self.config.image_token_id
        if int(slots.sum()) != len(features):
            raise ValueError(
                f"image features and image tokens do not match: {int(slots.sum())} tokens, "
                f"{len(features)} features (were the prompts and images processed together?)"
            )
        slots = slots[..., None].expand_as(inputs_embeds)
        return inputs_embeds.masked_scatter(slots, features.to(inputs_embeds))

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        """Image features scattered into the embeddings; `kwargs` go to `Qwen3Model.forward`
        (attention_mask 2D or 4D, position_ids, cache, use_cache, ...)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            if pixel_values is not None:
                inputs_embeds = self._scatter_images(
                    input_ids, inputs_embeds, self.get_image_features(pixel_values, image_grid_thw)
                )
        return self.language_model(inputs_embeds=inputs_embeds, **kwargs)


class LlavaOnevision15ForConditionalGeneration(LlavaOnevision15PreTrainedModel, GenerationMixin):
    """The published model: `model` (vision + text) and the language-model head."""

    _tied_weights_keys: ClassVar[dict[str, str]] = {
        "lm_head.weight": "model.language_model.embed_tokens.weight"
    }

    def __init__(self, config: LlavaOnevision15Config) -> None:
        super().__init__(config)
        self.model = LlavaOnevision15Model(config)
        text = config.text_config
        self.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    @property
    def visual(self) -> RiceVisionModel:
        return self.model.visual

    @property
    def language_model(self) -> Qwen3Model:
        return self.model.language_model

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        mm_token_type_ids: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """`LlavaOnevision15Model.forward`'s inputs (spelled out: `generate` checks them) plus
        `labels` (a loss) and `logits_to_keep`."""
        # The Qwen processor's per-token modality ids (so `generate(**processor(...))` works);
        # they only matter for M-RoPE, and the Qwen3 text model uses 1D positions.
        del mm_token_type_ids
        outputs = self.model(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def prepare_inputs_for_generation(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """`generate`: the images enter with the prompt only, never again on cached steps."""
        inputs = super().prepare_inputs_for_generation(*args, **kwargs)
        if inputs.get("cache") is not None and inputs["cache"].get_seq_length() > 0:
            inputs["pixel_values"] = None
        return inputs
