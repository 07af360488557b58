"""The question is typed PROMPT, exactly, and "+latent->prompt" bars exactly it from the latents.

Checked on the tiny backbones (with a forward pass) and on the REAL Qwen2.5-VL and Qwen3-VL
tokenizers, chat templates and image processors: the published `tokenizer_config.json`,
`chat_template.json` and `preprocessor_config.json` (copied byte for byte into
`livr_core/realconfig/data/`) plus the real Qwen vocabulary (`livr_core.realconfig.vocab`).
Qwen2.5-VL's template adds its default system prompt "You are a helpful assistant."; Qwen3-VL's
adds none. The truth (which characters are the question) comes from the sample text, the token
positions from the tokenizer run on the pieces by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tokenizers import AddedToken

from livr_core.backbones.base import Backbone, BackboneAdapter
from livr_core.backbones.qwen import load_pil_processor
from livr_core.configs import EncodingConfig, LoadOptions, MaskVariant
from livr_core.encoding import Encoder, Sample
from livr_core.latents import LATENT_TOKEN, LatentTokens
from livr_core.masks import allowed_attention
from livr_core.model_inputs import forward_inputs
from livr_core.realconfig.vocab import qwen_vocab_files
from livr_core.token_types import TokenType
from tests.livr_core.samples import random_image

DATA = Path(__file__).resolve().parents[2] / "livr_core" / "realconfig" / "data"
K = 4
# BLINK-like: several lines, options, a leading and a trailing space, non-ASCII characters.
QUESTION = (' Two points are annotated on the image, labeled by A and B. Which point is darker?\n'
            'Select from the following choices.\n(A) A is darker\n(B) B is darker\n'
            '(C) About the same — «même» 中文 ')
SYSTEM_25 = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"


def _sample(prompt: str = QUESTION, images: int = 2, seed: int = 0) -> Sample:
    return Sample([random_image(seed + i, 84 - 28 * i, 56) for i in range(images)], prompt, "(A)",
                  "ex")


def _real_encoder(family: str, tmp: Path, position: str = "after_prompt") -> Encoder:
    """An encoder on the real processor of `family`; the model is only asked its image token id."""
    folder = tmp / family
    if not folder.is_dir():
        folder.mkdir()
        for path in (*qwen_vocab_files(), *sorted((DATA / family).iterdir())):
            shutil.copyfile(path, folder / path.name)
    processor = load_pil_processor(str(folder), LoadOptions(max_pixels=28 * 28 * 16))
    tokenizer = processor.tokenizer
    tokens = tuple(LATENT_TOKEN.format(i) for i in range(K))
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
    latents = LatentTokens(tokens, tuple(tokenizer.convert_tokens_to_ids(list(tokens))), K)
    image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    model = SimpleNamespace(config=SimpleNamespace(image_token_id=image_id))
    backbone = Backbone(family, model, processor, BackboneAdapter())
    return Encoder(backbone, latents, EncodingConfig(latent_position=position))


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-processors")


def _positions(types: torch.Tensor, kind: TokenType) -> list[int]:
    return (types == kind).nonzero().flatten().tolist()


def _check_span(encoder: Encoder, sample: Sample, position: str) -> list[int]:
    """The PROMPT positions are one run holding exactly the question's tokens, next to the
    latents on the configured side; returns them."""
    encoded = encoder.encode(sample)
    types, ids = encoded.token_types, encoded.input_ids.tolist()
    prompt = _positions(types, TokenType.PROMPT)
    latent = _positions(types, TokenType.LATENT)
    assert prompt == list(range(prompt[0], prompt[0] + len(prompt)))
    question = encoder.tokenizer(sample.prompt, add_special_tokens=False)["input_ids"]
    assert [ids[i] for i in prompt] == question
    assert encoder.tokenizer.decode([ids[i] for i in prompt]) == sample.prompt
    if position == "after_prompt":
        assert latent[0] == prompt[-1] + 1
    else:
        assert prompt[0] == latent[-1] + 1
    return prompt


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
@pytest.mark.parametrize("position", ["after_prompt", "before_prompt"])
def test_real_templates_type_exactly_the_question_as_prompt(real_dir, family, position) -> None:
    encoder = _real_encoder(family, real_dir, position)
    sample = _sample()
    prompt = _check_span(encoder, sample, position)
    encoded = encoder.encode(sample)
    types, ids = encoded.token_types, encoded.input_ids
    tokenizer = encoder.tokenizer
    # everything before the first image is chat scaffolding, typed TEXT: with Qwen2.5-VL the
    # default system prompt, then "<|im_start|>user\n<|vision_start|>"
    head = SYSTEM_25 if family == "qwen2.5-vl" else ""
    first_image = _positions(types, TokenType.IMAGE)[0]
    assert tokenizer.decode(ids[:first_image]) == head + "<|im_start|>user\n<|vision_start|>"
    assert (types[:first_image] == TokenType.TEXT).all()
    text = _positions(types, TokenType.TEXT)
    assert tokenizer.decode(ids[[t for t in text if t < prompt[0]]]).count("<|vision_end|>") == 2
    # without images (the question right after "user\n") and without latents, the same holds
    assert _check_span(encoder, _sample(images=0), position)
    plain = encoder.without_latents().encode(sample)
    span = _positions(plain.token_types, TokenType.PROMPT)
    assert tokenizer.decode(plain.input_ids[span]) == QUESTION


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_real_template_latent_to_prompt_mask_bars_exactly_the_question(real_dir, family) -> None:
    encoder = _real_encoder(family, real_dir)
    encoded = encoder.encode(_sample())
    types = encoded.token_types[None]
    valid = torch.ones_like(types)
    ablation = allowed_attention(types, valid, MaskVariant.BOTTLENECK_LATENTS_NO_PROMPT)[0, 0]
    bottleneck = allowed_attention(types, valid, MaskVariant.BOTTLENECK)[0, 0]
    prompt = _positions(encoded.token_types, TokenType.PROMPT)
    latents = _positions(encoded.token_types, TokenType.LATENT)
    expected = torch.zeros_like(ablation)
    expected[torch.tensor(latents)[:, None], torch.tensor(prompt)[None]] = True
    assert torch.equal(bottleneck & ~ablation, expected)
    assert not bool((ablation & ~bottleneck).any())
    # a latent still sees the first token, the system prompt / user header, the vision markers,
    # the images and the latents before it
    last = latents[-1]
    seen = ablation[last].nonzero().flatten().tolist()
    assert seen == [k for k in range(last + 1) if k not in prompt]
    assert 0 in seen
    strict = allowed_attention(types, valid, MaskVariant.BOTTLENECK_LATENTS_NO_TEXT)[0, 0]
    kept = {TokenType.IMAGE, TokenType.LATENT}
    assert strict[last].nonzero().flatten().tolist() == [
        k for k in range(last + 1) if TokenType(int(types[0, k])) in kept]


def test_a_template_that_rewrites_the_prompt_is_an_error(real_dir) -> None:
    encoder = _real_encoder("qwen3-vl", real_dir)
    encoder.processor.chat_template = encoder.processor.chat_template.replace(
        "content.text", "content.text | upper")
    with pytest.raises(ValueError, match="does not reproduce the prompt text"):
        encoder.encode(_sample())


@pytest.mark.parametrize("position", ["after_prompt", "before_prompt"])
def test_tiny_backbones_type_exactly_the_question_as_prompt(
    prepare, backbone_name, position
) -> None:
    _, _, encoder = prepare(backbone_name, config=EncodingConfig(latent_position=position))
    _check_span(encoder, _sample(), position)
    _check_span(encoder, _sample(images=0), position)


def _latent_and_answer_logits(backbone, encoder, sample, variant):
    batch = encoder.collate([encoder.encode(sample)])
    with torch.no_grad():
        logits = backbone.model(**forward_inputs(backbone.model, backbone.adapter, batch,
                                                 variant)).logits[0]
    types = batch.token_types[0]
    return logits[types == TokenType.LATENT], logits[types == TokenType.ANSWER]


def test_latents_lose_the_question_but_keep_the_image_under_latent_to_prompt(
    prepare, backbone_name
) -> None:
    """Two questions of equal token length: under "+latent->prompt" the latents' logits are
    bit-identical (they cannot read the question), the answer's are not (it reads it); under the
    plain bottleneck the latents differ too. Another image still moves the latents."""
    backbone, _, encoder = prepare(backbone_name)
    red, blue = _sample("Which is red? (A) x (B) y"), _sample("Which is tan? (A) x (B) y")
    assert len(encoder.encode(red).input_ids) == len(encoder.encode(blue).input_ids)
    ablation = MaskVariant.BOTTLENECK_LATENTS_NO_PROMPT
    latent_red, answer_red = _latent_and_answer_logits(backbone, encoder, red, ablation)
    latent_blue, answer_blue = _latent_and_answer_logits(backbone, encoder, blue, ablation)
    assert torch.equal(latent_red, latent_blue)
    assert (answer_red - answer_blue).abs().max() > 1e-4
    plain_red, _ = _latent_and_answer_logits(backbone, encoder, red, MaskVariant.BOTTLENECK)
    plain_blue, _ = _latent_and_answer_logits(backbone, encoder, blue, MaskVariant.BOTTLENECK)
    assert (plain_red - plain_blue).abs().max() > 1e-4
    other_image = _sample("Which is red? (A) x (B) y", seed=5)
    latent_other, _ = _latent_and_answer_logits(backbone, encoder, other_image, ablation)
    assert (latent_red - latent_other).abs().max() > 1e-4
