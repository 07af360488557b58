"""An offline Qwen-style byte-level tokenizer and chat template for the tiny test backbones.

Owns: `build_tiny_tokenizer`, which makes a `Qwen2Tokenizer` from a vocabulary built in code (the
256 byte-level symbols, no merges, so every UTF-8 byte is one token), adds the real Qwen special
tokens in Qwen's order, and sets a minimal Qwen chat template. The result is deterministic and
needs no Hub access. Real backbones use their own tokenizer and template (backbones/).

The template renders a message list the way Qwen's does for our use: one `<|im_start|>role\n ...
<|im_end|>\n` block per message, image content items replaced by `image_markup`, no default
system prompt (Qwen2.5-VL's real template injects one; Qwen3-VL's does not).
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import AddedToken
from tokenizers.pre_tokenizers import ByteLevel
from transformers import Qwen2Tokenizer

# Qwen's order: <|endoftext|>, <|im_start|>, <|im_end|> come first, then the vision markers.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
QWEN_IMAGE_MARKUP = "<|vision_start|><|image_pad|><|vision_end|>"

_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '__IMAGE__' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def chat_template(image_markup: str = QWEN_IMAGE_MARKUP) -> str:
    """The minimal Qwen chat template with `image_markup` standing for each image item."""
    return _CHAT_TEMPLATE.replace("__IMAGE__", image_markup)


def build_tiny_tokenizer(
    image_markup: str = QWEN_IMAGE_MARKUP, extra_special_tokens: Sequence[str] = ()
) -> Qwen2Tokenizer:
    """A byte-level Qwen2Tokenizer with Qwen's special tokens, plus `extra_special_tokens`.

    Ids: bytes 0..255, then the Qwen special tokens in `QWEN_SPECIAL_TOKENS` order, then the extras.
    """
    vocab = {symbol: i for i, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=[], unk_token=None, eos_token=None, pad_token=None
    )
    tokenizer.add_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t in (*QWEN_SPECIAL_TOKENS, *extra_special_tokens)
        ]
    )
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.chat_template = chat_template(image_markup)
    return tokenizer
