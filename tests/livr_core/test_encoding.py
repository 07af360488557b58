"""Chat encoding: latent placement, labels, token types, padding, pixel budget, over-length."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from livr_core.configs import EncodingConfig
from livr_core.encoding import IGNORE_INDEX, Sample
from livr_core.token_types import TokenType
from tests.livr_core.samples import PROMPT, K, random_image, two_image_sample


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_labels_cover_exactly_the_answer_and_end_of_turn(prepare, backbone_name: str) -> None:
    backbone, _, encoder = prepare(backbone_name)
    encoded = encoder.encode(two_image_sample(0, answer="(B) right"))
    tokenizer = backbone.tokenizer
    expected = [*_ids(tokenizer, "(B) right"), tokenizer.convert_tokens_to_ids("<|im_end|>")]
    supervised = encoded.labels != IGNORE_INDEX
    assert encoded.labels[supervised].tolist() == expected
    # the supervised span is the tail of the sequence, right after the assistant header
    assert supervised.nonzero().flatten().tolist() == list(
        range(len(encoded.input_ids) - len(expected), len(encoded.input_ids))
    )
    assert encoded.input_ids[supervised].tolist() == expected
    header = _ids(tokenizer, "<|im_start|>assistant\n")
    assert (
        encoded.input_ids[encoded.prompt_length - len(header) : encoded.prompt_length].tolist()
        == header
    )
    assert ((encoded.token_types == TokenType.ANSWER) == supervised).all()


def test_latents_sit_at_the_end_of_the_user_turn(prepare, backbone_name: str) -> None:
    backbone, latents, encoder = prepare(backbone_name)
    encoded = encoder.encode(two_image_sample(0))
    ids = encoded.input_ids.tolist()
    tokenizer = backbone.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    where = (encoded.token_types == TokenType.LATENT).nonzero().flatten().tolist()
    assert len(where) == K and where == list(range(where[0], where[0] + K))
    assert [ids[i] for i in where] == list(latents.ids)
    assert ids[where[-1] + 1] == end and ids.index(end) == where[-1] + 1  # closes the user turn
    prompt = _ids(tokenizer, PROMPT)
    assert ids[where[0] - len(prompt) : where[0]] == prompt  # right after the prompt text
    assert (encoded.token_types[: where[0]] == TokenType.IMAGE).sum() > 0  # images come first


def test_latents_before_the_prompt_option(prepare, backbone_name: str) -> None:
    backbone, _, encoder = prepare(
        backbone_name, config=EncodingConfig(latent_position="before_prompt")
    )
    encoded = encoder.encode(two_image_sample(0))
    ids = encoded.input_ids.tolist()
    where = (encoded.token_types == TokenType.LATENT).nonzero().flatten().tolist()
    prompt = _ids(backbone.tokenizer, PROMPT)
    assert ids[where[-1] + 1 : where[-1] + 1 + len(prompt)] == prompt
    last_image = (encoded.token_types == TokenType.IMAGE).nonzero().max().item()
    assert last_image < where[0]


def test_shared_latents_repeat_one_token(prepare) -> None:
    _, latents, encoder = prepare("tiny-qwen2.5-vl", k=6, shared=True)
    encoded = encoder.encode(two_image_sample(0))
    assert len(latents.ids) == 1
    assert (
        encoded.input_ids[encoded.token_types == TokenType.LATENT].tolist() == [latents.ids[0]] * 6
    )


def test_image_token_types_match_the_image_features(prepare, backbone_name: str) -> None:
    backbone, _, encoder = prepare(backbone_name)
    batch = encoder([two_image_sample(0)])
    image_positions = int((batch.token_types == TokenType.IMAGE).sum())
    config = backbone.model.config
    if "image_grid_thw" in batch.vision:  # Qwen: one token per 2x2 merge of patches
        merge = config.vision_config.spatial_merge_size
        expected = int((batch.vision["image_grid_thw"].prod(-1) // merge**2).sum())
    else:  # LLaVA: a fixed number of tokens per image
        expected = 2 * config.image_seq_length
    assert image_positions == expected


def test_right_padded_collation(prepare, backbone_name: str) -> None:
    _, _, encoder = prepare(backbone_name)
    short = Sample([random_image(5)], "Count?", "3", "short")
    long = two_image_sample(0, sample_id="long")
    singles = [encoder.encode(s) for s in (short, long)]
    batch = encoder.collate(singles)
    assert batch.ids == ["short", "long"]
    for row, single in enumerate(singles):
        n = len(single.input_ids)
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (batch.input_ids.shape[1] - n)
        assert torch.equal(batch.input_ids[row, :n], single.input_ids)
        assert (batch.labels[row, n:] == IGNORE_INDEX).all()
    for key, value in batch.vision.items():
        assert torch.equal(value, torch.cat([s.vision[key] for s in singles]))


def test_images_over_the_pixel_budget_are_resized(prepare) -> None:
    for name in ("tiny-qwen2.5-vl", "tiny-qwen3-vl"):
        backbone, _, encoder = prepare(name)
        big = Sample([random_image(0, width=640, height=480)], "Count?", "3", "big")
        encoded = encoder.encode(big)
        processor = backbone.processor.image_processor
        budget_tokens = processor.size["longest_edge"] // (processor.patch_size * 2) ** 2
        image_tokens = int((encoded.token_types == TokenType.IMAGE).sum())
        _, h, w = encoded.vision["image_grid_thw"][0].tolist()
        assert 4 <= image_tokens <= budget_tokens == 16
        assert image_tokens == h * w // 4
        assert abs(w / h - 640 / 480) < 0.5  # aspect ratio kept approximately


def test_over_length_sequence_is_an_error_naming_the_example(prepare) -> None:
    _, _, encoder = prepare("tiny-qwen2.5-vl", config=EncodingConfig(max_length=40))
    with pytest.raises(
        ValueError, match=r"example 'too-long' encodes to \d+ tokens.*max_length=40"
    ):
        encoder.encode(two_image_sample(0, sample_id="too-long"))


def test_prompt_only_encoding_stops_at_the_assistant_header(prepare) -> None:
    _, _, encoder = prepare("tiny-qwen2.5-vl")
    full = encoder.encode(two_image_sample(0))
    prompt = encoder.encode(two_image_sample(0), with_answer=False)
    assert torch.equal(prompt.input_ids, full.input_ids[: full.prompt_length])
    assert (prompt.labels == IGNORE_INDEX).all()


def test_system_turn_only_when_asked(prepare, backbone_name: str) -> None:
    backbone, _, encoder = prepare(backbone_name)
    tokenizer = backbone.tokenizer
    plain = encoder.encode(two_image_sample(0), with_answer=False).input_ids.tolist()
    sample = replace(two_image_sample(0), system="Answer briefly.")
    ids = encoder.encode(sample, with_answer=False).input_ids.tolist()
    system = _ids(tokenizer, "<|im_start|>system\nAnswer briefly.<|im_end|>\n")
    assert ids == system + plain  # the system turn comes first; the rest is unchanged
    empty = encoder.encode(replace(sample, system=""), with_answer=False).input_ids.tolist()
    assert empty == _ids(tokenizer, "<|im_start|>system\n<|im_end|>\n") + plain
