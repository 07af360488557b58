"""Chat encoding of one sample (images + prompt + answer) with latent tokens, and batch collation.

Owns `Sample`, `Encoded`, `Batch` and `Encoder` (`EncodingConfig` is in `livr_core.configs`).

A sample becomes one user turn holding its images first, in order, then the prompt text (as
BLINK does), with the K latent tokens at the end of the user turn, right after the prompt (or,
as an ablation, right before it); then the assistant turn holding the answer and the end-of-turn
token (a system turn comes first when `Sample.system` is set). A prompt holding one `<image>`
placeholder per image (Mirage's data does) gets each image at its placeholder instead of
first. Mirage's layout (`latent_position="answer_start"`) opens the assistant turn with the
latents between their markers, `<|latent_start|>` K latents `<|latent_end|>`, before the
answer; they belong to the prompt (inference forces them), and in training the two markers
are supervised like the answer (Mirage's labels cover them). The backbone's own processor
renders the chat template and expands each image
placeholder into the image's tokens (Qwen: one per 2x2 patch merge of the resized image; LLaVA:
one per patch); images over the processor's pixel budget are resized by its rules.

Per position the encoder records:
* `labels`: -100 everywhere except the answer tokens and the end-of-turn token after them;
* `token_types` (`TokenType`): IMAGE for image placeholders, LATENT for latents, ANSWER for the
  supervised answer part, PROMPT for the tokens of `Sample.prompt` (the question and its options),
  TEXT for the rest (chat scaffolding, system prompt, vision markers, assistant header);
and the processor's image tensors (`pixel_values`, `image_grid_thw` for Qwen).

`Encoder.collate` pads a list of encodings to a `Batch` (right padding by default; the 2D
padding mask is `attention_mask`) and concatenates the image tensors along dim 0, which is the
batch layout of both Qwen (patches x features, one grid row per image) and LLaVA (images x C x
H x W). A sequence longer than `max_length` raises a ValueError naming the example.

Finding the prompt's tokens (`Encoder._prompt_span`): the rendered chat holds the user's text item
(prompt and latents) verbatim; the tokens whose characters overlap the prompt's are PROMPT. They
are found by tokenizing the rendered text alone (with character offsets) and counting from the
end, which the processor's image expansion does not change because every image comes before the
text. The tokens after the prompt are checked to equal the processor's, so a template or
processor that breaks either assumption is an error, never a silently wrong span.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from PIL import Image

from livr_core.backbones.base import Backbone
from livr_core.configs import EncodingConfig
from livr_core.latents import LatentTokens
from livr_core.token_types import TokenType

IGNORE_INDEX = -100  # label value the cross-entropy skips
IMAGE_PLACEHOLDER = "<image>"  # where a prompt places an image inline (Mirage's data format)


@dataclass
class Sample:
    """One example: images in prompt order, the prompt text, the answer text (None at inference)."""

    images: list[Image.Image]
    prompt: str
    answer: str | None = None
    id: str = ""
    # A system turn before the user turn; None leaves the chat template's own default (Qwen2.5
    # inserts "You are a helpful assistant."), "" gives an empty system turn.
    system: str | None = None


@dataclass
class Encoded:
    """One encoded sample (1D tensors of length L)."""

    id: str
    input_ids: torch.Tensor
    labels: torch.Tensor
    token_types: torch.Tensor
    vision: dict[str, torch.Tensor]  # the processor's image tensors for this sample
    prompt_length: int  # tokens up to and including the assistant-turn header (and latents
    # opening the answer, if any)


@dataclass
class Batch:
    """A padded batch ([B, L] tensors) plus the concatenated image tensors."""

    ids: list[str]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor  # 2D padding mask, 1 = real token
    labels: torch.Tensor
    token_types: torch.Tensor
    vision: dict[str, torch.Tensor]  # image tensors of all rows, concatenated along dim 0
    prompt_lengths: torch.Tensor  # [B] real (unpadded) prompt tokens per row

    def to(self, device: torch.device | str) -> Batch:
        move = {
            name: getattr(self, name).to(device)
            for name in ("input_ids", "attention_mask", "labels", "token_types", "prompt_lengths")
        }
        vision = {k: v.to(device) for k, v in self.vision.items()}
        return replace(self, vision=vision, **move)


class Encoder:
    """Encodes samples for one backbone and one set of latent tokens (None: no latents)."""

    def __init__(
        self,
        backbone: Backbone,
        latents: LatentTokens | None = None,
        config: EncodingConfig = EncodingConfig(),
    ) -> None:
        self.processor = backbone.processor
        self.tokenizer = backbone.tokenizer
        self.latents = latents
        self.config = config
        self.image_ids = torch.tensor(backbone.adapter.image_token_ids(backbone.model))
        self.latent_ids = torch.tensor(latents.ids if latents else [], dtype=torch.long)
        self.marker_ids = torch.tensor(latents.marker_ids if latents else [], dtype=torch.long)
        self.end_of_turn_id = int(
            self.tokenizer.convert_tokens_to_ids(backbone.adapter.end_of_turn)
        )

    def without_latents(self) -> Encoder:
        """The same encoder inserting no latents ("latents removed" evaluation, direct SFT)."""
        plain = copy.copy(self)
        plain.latents = None
        plain.latent_ids = torch.tensor([], dtype=torch.long)
        plain.marker_ids = torch.tensor([], dtype=torch.long)
        return plain

    @property
    def reserved_ids(self) -> torch.Tensor:
        """Ids a model never generates: the latents and their markers."""
        return torch.cat([self.latent_ids, self.marker_ids])

    @property
    def latents_open_answer(self) -> bool:
        return self.latents is not None and self.config.latent_position == "answer_start"

    def _latents_first(self) -> bool:
        return self.latents is not None and self.config.latent_position == "before_prompt"

    def _user_text(self, sample: Sample) -> str:
        """The prompt with the latents placed as configured (none here when they open the
        answer)."""
        if self.latents is None or self.latents_open_answer:
            return sample.prompt
        if self._latents_first():
            return self.latents.sequence + sample.prompt
        return sample.prompt + self.latents.sequence

    def _inline(self, sample: Sample) -> bool:
        """Whether the prompt places its images itself, one `<image>` per image."""
        return bool(sample.images) and sample.prompt.count(IMAGE_PLACEHOLDER) == len(sample.images)

    def messages(self, sample: Sample) -> list[dict[str, Any]]:
        """The user turn: images in order, then the prompt with the latents placed as configured
        (or each image at its `<image>` placeholder, when the prompt has one per image)."""
        text = self._user_text(sample)
        content: list[dict[str, Any]] = []
        if not self._inline(sample):
            content = [{"type": "image"} for _ in sample.images] + [{"type": "text", "text": text}]
        else:
            pieces = text.split(IMAGE_PLACEHOLDER)
            for piece in pieces[:-1]:
                content += [{"type": "text", "text": piece}] if piece else []
                content.append({"type": "image"})
            content += [{"type": "text", "text": pieces[-1]}] if pieces[-1] else []
        system = [] if sample.system is None else [
            {"role": "system", "content": [{"type": "text", "text": sample.system}]}
        ]
        return [*system, {"role": "user", "content": content}]

    def _prompt_span(self, sample: Sample, rendered: str, prompt_ids: torch.Tensor) -> slice:
        """Positions (in `prompt_ids`, the processor's ids) of the tokens of `sample.prompt`.

        With inline images only the text after the last image is located (the tokens after it
        are never expanded); the text between images stays TEXT."""
        prompt = sample.prompt
        user_text = self._user_text(sample)
        if self._inline(sample):
            prompt = prompt.split(IMAGE_PLACEHOLDER)[-1]
            user_text = user_text.split(IMAGE_PLACEHOLDER)[-1]
        where = rendered.rfind(user_text)
        if where < 0:
            raise ValueError(
                f"example {sample.id!r}: the chat template does not reproduce the prompt text "
                "verbatim, so its tokens cannot be typed PROMPT (the +latent->prompt mask needs them)"
            )
        start = where + (len(self.latents.sequence) if self._latents_first() else 0)
        end = start + len(prompt)
        plain = self.tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = plain["input_ids"], plain["offset_mapping"]
        inside = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        first, last = (inside[0], inside[-1] + 1) if inside else (len(ids), len(ids))
        tail = len(ids) - first  # tokens from the prompt's first to the end: never expanded
        if tail > len(prompt_ids) or prompt_ids[len(prompt_ids) - tail :].tolist() != ids[first:]:
            raise ValueError(
                f"example {sample.id!r}: the processor's tokens after the prompt differ from the "
                "tokenizer's, so the prompt's tokens cannot be located (an image after the text?)"
            )
        return slice(len(prompt_ids) - tail, len(prompt_ids) - (len(ids) - last))

    def encode(self, sample: Sample, with_answer: bool = True) -> Encoded:
        """Ids, labels and token types of one sample; `with_answer=False` stops at the prompt."""
        rendered = self.processor.apply_chat_template(
            self.messages(sample), tokenize=False, add_generation_prompt=True
        )
        if self.latents_open_answer:
            rendered += self.latents.sequence  # type: ignore[union-attr]
        prompt = self.processor(
            text=[rendered],
            images=list(sample.images) or None,
            return_tensors="pt",
            add_special_tokens=False,  # the template already holds every special token
        )
        prompt_ids = prompt["input_ids"][0]
        vision = {
            k: v
            for k, v in prompt.items()
            if k not in ("input_ids", "attention_mask", "mm_token_type_ids")
        }
        answer_ids = torch.empty(0, dtype=torch.long)
        if with_answer:
            if sample.answer is None:
                raise ValueError(f"example {sample.id!r} has no answer to encode")
            tokens = self.tokenizer(sample.answer, add_special_tokens=False)["input_ids"]
            answer_ids = torch.tensor([*tokens, self.end_of_turn_id], dtype=torch.long)
        input_ids = torch.cat([prompt_ids, answer_ids])
        if len(input_ids) > self.config.max_length:
            raise ValueError(
                f"example {sample.id!r} encodes to {len(input_ids)} tokens, more than "
                f"max_length={self.config.max_length}; lower the image pixel budget or raise "
                "max_length"
            )
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        labels[len(prompt_ids) :] = answer_ids
        if with_answer and self.latents_open_answer:
            markers = torch.isin(input_ids, self.marker_ids)
            labels[markers] = input_ids[markers]
        token_types = torch.full_like(input_ids, int(TokenType.TEXT))
        token_types[self._prompt_span(sample, rendered, prompt_ids)] = int(TokenType.PROMPT)
        token_types[torch.isin(input_ids, self.image_ids)] = int(TokenType.IMAGE)
        token_types[torch.isin(input_ids, self.latent_ids)] = int(TokenType.LATENT)
        token_types[len(prompt_ids) :] = int(TokenType.ANSWER)
        return Encoded(
            id=sample.id,
            input_ids=input_ids,
            labels=labels,
            token_types=token_types,
            vision=vision,
            prompt_length=len(prompt_ids),
        )

    def collate(
        self, items: Sequence[Encoded], padding_side: Literal["right", "left"] = "right"
    ) -> Batch:
        """Pad encodings to one batch; image tensors are concatenated in sample order."""
        length = max(len(e.input_ids) for e in items)

        def pad(values: list[torch.Tensor], fill: int) -> torch.Tensor:
            out = torch.full((len(values), length), fill, dtype=torch.long)
            for row, v in zip(out, values):
                if padding_side == "right":
                    row[: len(v)] = v
                else:
                    row[length - len(v) :] = v
            return out

        vision_keys = dict.fromkeys(k for e in items for k in e.vision)
        return Batch(
            ids=[e.id for e in items],
            input_ids=pad([e.input_ids for e in items], self.tokenizer.pad_token_id),
            attention_mask=pad([torch.ones_like(e.input_ids) for e in items], 0),
            labels=pad([e.labels for e in items], IGNORE_INDEX),
            token_types=pad([e.token_types for e in items], int(TokenType.TEXT)),
            vision={
                k: torch.cat([e.vision[k] for e in items if k in e.vision]) for k in vision_keys
            },
            prompt_lengths=torch.tensor([e.prompt_length for e in items]),
        )

    def __call__(self, samples: Sequence[Sample], with_answer: bool = True) -> Batch:
        return self.collate([self.encode(s, with_answer) for s in samples])
