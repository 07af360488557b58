"""The offline tiny tokenizer: deterministic ids, Qwen special tokens, chat template, round trip."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from livr_core.tokenizer import QWEN_SPECIAL_TOKENS, build_tiny_tokenizer


def test_special_tokens_follow_the_bytes_in_qwen_order() -> None:
    tokenizer = build_tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    assert ids == list(range(256, 256 + len(QWEN_SPECIAL_TOKENS)))
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    # special tokens are atomic inside text
    encoded = tokenizer("a<|image_pad|>b", add_special_tokens=False)["input_ids"]
    assert len(encoded) == 3 and encoded[1] == tokenizer.convert_tokens_to_ids("<|image_pad|>")


def test_build_is_deterministic_and_lossless() -> None:
    first, second = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert first.get_vocab() == second.get_vocab()
    text = "Héllo, wörld! 12 (A)"
    ids = first(text, add_special_tokens=False)["input_ids"]
    assert ids == second(text, add_special_tokens=False)["input_ids"]
    assert first.decode(ids) == text


def test_chat_template_renders_images_first_then_text() -> None:
    tokenizer = build_tiny_tokenizer()
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Q?"}],
        }
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    assert rendered == f"<|im_start|>user\n{image}{image}Q?<|im_end|>\n<|im_start|>assistant\n"


def test_round_trip_through_save_pretrained_offline(tmp_path: Path) -> None:
    tokenizer = build_tiny_tokenizer(image_markup="<image>", extra_special_tokens=("<image>",))
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert reloaded.chat_template == tokenizer.chat_template
