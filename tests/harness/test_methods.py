"""The method table holds the paper's settings; ablations differ from LIVR in one field each;
epoch scaling keeps stage splits; mask names are livr_core's."""

from __future__ import annotations

from dataclasses import fields

import pytest

from harness.errors import MethodError
from harness.methods import LIVR, METHODS, MethodSpec, get_method, scale_epochs


def _diff(name: str) -> dict:
    m = METHODS[name]
    cosmetic = {"name", "label", "description"}
    return {f.name: getattr(m, f.name) for f in fields(m)
            if f.name not in cosmetic and getattr(m, f.name) != getattr(LIVR, f.name)}


def test_paper_defaults():
    assert (LIVR.latents, LIVR.epochs, LIVR.stage1_mask, LIVR.finetune, LIVR.lr) == (
        16, (4, 6), "BOTTLENECK", "lora", 1e-4)
    assert LIVR.latent_position == "after_prompt" and not LIVR.shared_latents
    sft, zs = METHODS["direct_sft"], METHODS["zero_shot"]
    assert (sft.latents, sft.epochs, sft.stage1_mask, sft.finetune) == (None, (0, 10), None, "lora")
    assert not zs.trained and zs.epochs == (0, 0)


@pytest.mark.parametrize(("name", "diff"), [
    ("latents_only", {"stage1_mask": None, "epochs": (0, 10)}),
    ("livr_mask_answer_only", {"stage1_mask": "ANSWER_ONLY"}),
    ("livr_mask_latent_no_prompt", {"stage1_mask": "BOTTLENECK_LATENTS_NO_PROMPT"}),
    ("livr_mask_latent_no_text", {"stage1_mask": "BOTTLENECK_LATENTS_NO_TEXT"}),
    ("livr_s2_8", {"epochs": (2, 8)}),
    ("livr_s6_4", {"epochs": (6, 4)}),
    ("livr_s8_2", {"epochs": (8, 2)}),
    ("livr_k4", {"latents": 4}),
    ("livr_k8", {"latents": 8}),
    ("livr_k32", {"latents": 32}),
    ("livr_latents_before_prompt", {"latent_position": "before_prompt"}),
    ("livr_shared", {"shared_latents": True}),
    ("prompt_tuning", {"finetune": "latent_rows", "stage1_mask": None, "epochs": (0, 10)}),
    ("mask_only", {"latents": None, "stage1_mask": "MASK_ONLY"}),
    ("image_twice", {"latents": None, "stage1_mask": None, "epochs": (0, 10), "image_twice": True}),
    ("livr_mirage", {"finetune": "full", "latents": 4, "epochs": (10, 10), "lr": 1e-5}),
])
def test_each_ablation_changes_only_its_fields(name: str, diff: dict):
    assert _diff(name) == diff


def test_mask_names_are_livr_core_members():
    from livr_core.configs import MaskVariant  # torch-free, like the harness's method table

    used = {m.stage1_mask for m in METHODS.values()} - {None}
    assert used and used <= set(MaskVariant.__members__)


@pytest.mark.parametrize(("name", "total", "epochs"), [
    ("livr", 5, (2, 3)),  # Table 2's split
    ("livr", 2, (1, 1)),
    ("livr_s8_2", 5, (4, 1)),
    ("livr_s2_8", 2, (1, 1)),  # both stages keep an epoch
    ("direct_sft", 3, (0, 3)),
    ("latents_only", 1, (0, 1)),
    ("livr_mirage", 4, (2, 2)),
    ("zero_shot", 7, (0, 0)),
])
def test_scale_epochs(name: str, total: int, epochs: tuple[int, int]):
    assert scale_epochs(METHODS[name], total).epochs == epochs


def test_scale_epochs_refuses_too_few_for_two_stages():
    with pytest.raises(MethodError, match="at least 2"):
        scale_epochs(LIVR, 1)


def test_invalid_methods_are_refused():
    with pytest.raises(MethodError, match="stage-1 epochs need a stage1_mask"):
        MethodSpec("x", "x", "x", stage1_mask=None, epochs=(2, 3))
    with pytest.raises(MethodError, match="stage1_mask must be one of"):
        MethodSpec("x", "x", "x", stage1_mask="BOTTLE", epochs=(2, 3))
    with pytest.raises(MethodError, match="valid fields: .*latents"):
        LIVR.with_changes(latent=8)
    with pytest.raises(MethodError, match="valid methods: zero_shot, direct_sft, livr"):
        get_method("livrr")


def test_identity_ignores_names():
    renamed = LIVR.with_changes(label="other")
    assert renamed.identity() == LIVR.identity()
    assert LIVR.with_changes(latents=8).identity() != LIVR.identity()
