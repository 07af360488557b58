"""The methods a table compares: zero-shot, direct SFT, LIVR and every ablation of the paper.

Owns `MethodSpec`, `METHODS` (every named method with its defaults, in one place), `get_method`
and `scale_epochs`. A method says WHAT is trained and how (latents, masks, schedule, fine-tuning
mode); HOW to train it is `livr_core`'s job (`harness.train_executor` reads these fields). Mask
variants are named by `livr_core.configs.MaskVariant` member names; the defaults (K, lr, the
(4, 6) schedule) are `livr_core.configs`' (torch-free, so this module needs no torch); the
total epochs every baseline trains and the Mirage comparison's setting are written once below.

Interpretations (the paper is short on some ablations; PROTOCOL.md section 1):
* latents only: LIVR without stage 1, i.e. schedule (0, 10); it is also Table 4(b)'s (0,10) row.
* +latent->prompt (Table 4(a)): the bottleneck plus the latents barred from the question (the
  `Sample.prompt` tokens: "latents need to see the question to determine what visual information
  to encode", Sec. 4.4.3); they keep the chat scaffolding before the images. The stricter reading
  (latents barred from every text token, seeing only images and latents) is
  `livr_mask_latent_no_text`, in no table.
* mask only: no latents; stage 1 trains under MASK_ONLY (answer -> image barred, the prompt keeps
  image access), stage 2 causal; LIVR's (4, 6) schedule.
* input image twice: direct SFT (LoRA, 10 epochs, causal, no latents) whose input gives each
  image's tokens twice in a row ("we concatenate two copies of the same image tokens at both
  training and inference", Sec. 4.4.2), a control for extra visual compute.
* prompt tuning: K = 16 soft tokens where LIVR puts its latents (after the prompt; Lester et al.
  prepend them, we keep LIVR's slot so that only the training differs), and ONLY their embedding
  rows are trained (no LoRA) with no bottleneck stage: 10 causal epochs at the paper's lr.
* Mirage comparison: full fine-tuning of the language model (latent rows trained too), K = 4,
  10 + 10 epochs, lr 1e-5; the paper names no checkpoint rule for it, so the general one ("for
  all runs, we select checkpoints by highest validation accuracy") applies. `livr_mirage` is
  LIVR in that setting; `mirage` is Mirage itself (`livr_core.mirage`): the same K, epochs, lr
  and trainable weights, its K latents opening the answer between marker tokens, stage 1
  supervising them with each training example's helper image (built with the split,
  `builders.helpers`), stage 2 and inference feeding the model's hidden states back into them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from builders.schema import check_keys
from harness.errors import MethodError
from livr_core.configs import LatentConfig, MaskVariant, MirageConfig, TrainConfig

Finetune = Literal["none", "lora", "full", "latent_rows"]
LatentPosition = Literal["after_prompt", "before_prompt", "answer_start"]
Objective = Literal["lm", "mirage"]
Checkpoint = Literal["best", "final"]

MASK_VARIANTS = tuple(MaskVariant.__members__)  # a method names its stage-1 mask by member name
FINETUNE_MODES, OBJECTIVES = get_args(Finetune), get_args(Objective)
# Every trained baseline gets as many epochs in all as LIVR's two stages (paper Table 1: direct
# SFT 10 = LIVR 4 + 6), so they compare at equal training.
TOTAL_EPOCHS = sum(TrainConfig.epochs)
# The Mirage comparison's setting (Sec. 4.3), shared by LIVR in it and Mirage itself: full LM
# fine-tuning, K = 4, 10 + 10 epochs, lr 1e-5.
MIRAGE_SETTING: dict[str, Any] = {"finetune": "full", "latents": 4, "epochs": (10, 10), "lr": 1e-5}


@dataclass(frozen=True)
class MethodSpec:
    """One method. Defaults are the paper's LIVR protocol (PROTOCOL.md section 1)."""

    name: str
    label: str  # row label in reports
    description: str
    finetune: Finetune = "lora"  # paper: LoRA r16/a32 on the LM only; "none" = zero-shot
    latents: int | None = None  # K latent tokens; None = no latents (SFT, baselines)
    latent_position: LatentPosition = "after_prompt"  # paper: Q' = Q + L
    shared_latents: bool = False  # ablation: one embedding repeated K times
    stage1_mask: str | None = None  # MaskVariant member name of stage 1; None = no stage 1
    epochs: tuple[int, int] = (0, TOTAL_EPOCHS)  # (stage 1, stage 2); stage 2 is always causal
    lr: float = TrainConfig.lr  # the paper's AdamW lr (Mirage comparison: MIRAGE_SETTING)
    image_twice: bool = False  # ablation: the images are given twice
    checkpoint: Checkpoint = "best"  # paper: best validation accuracy (Table 2: final, its config)
    # "lm": the answer loss under the stage's mask; "mirage": Mirage's objective (its stage 1 is
    # causal and supervised by helper images, so it has no stage1_mask)
    objective: Objective = "lm"
    mirage_ce_weight: float = MirageConfig().ce_weight  # Mirage's stage 1: the answer loss weight

    def __post_init__(self) -> None:
        where = f"method {self.name!r}"
        if self.finetune not in FINETUNE_MODES:
            raise MethodError(f"{where}: finetune must be one of {', '.join(FINETUNE_MODES)}")
        if self.stage1_mask is not None and self.stage1_mask not in MASK_VARIANTS:
            raise MethodError(f"{where}: stage1_mask must be one of {', '.join(MASK_VARIANTS)}")
        if self.latents is not None and self.latents < 1:
            raise MethodError(f"{where}: latents must be >= 1 or None")
        if len(self.epochs) != 2 or min(self.epochs) < 0:
            raise MethodError(f"{where}: epochs must be two integers >= 0 (stage 1, stage 2)")
        if self.finetune == "none" and sum(self.epochs):
            raise MethodError(f"{where}: an untrained method cannot have epochs")
        if self.finetune != "none" and not sum(self.epochs):
            raise MethodError(f"{where}: a trained method needs at least one epoch")
        if self.objective not in OBJECTIVES:
            raise MethodError(f"{where}: objective must be one of {', '.join(OBJECTIVES)}")
        if self.objective == "mirage":
            if self.stage1_mask is not None or self.latents is None or not self.trained:
                raise MethodError(f"{where}: Mirage trains latents and has no stage1_mask")
        elif (self.epochs[0] > 0) != (self.stage1_mask is not None):
            raise MethodError(f"{where}: stage-1 epochs need a stage1_mask and vice versa")
        if (self.latent_position == "answer_start") != (self.objective == "mirage"):
            raise MethodError(f"{where}: latents open the answer (answer_start) in Mirage only")
        if self.stage1_mask == "MASK_ONLY" and self.latents is not None:
            raise MethodError(f"{where}: MASK_ONLY is the no-latent ablation")
        if self.finetune == "latent_rows" and self.latents is None:
            raise MethodError(f"{where}: latent_rows fine-tuning needs latents")

    @property
    def trained(self) -> bool:
        return self.finetune != "none"

    @property
    def total_epochs(self) -> int:
        return sum(self.epochs)

    def identity(self) -> dict[str, Any]:
        """The fields that change results (no name, label or description): part of a cell's hash."""
        cosmetic = {"name", "label", "description"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in cosmetic}
        out["epochs"] = list(self.epochs)
        if out["objective"] == "lm":  # added later: cells of the other methods keep their hashes
            del out["objective"], out["mirage_ce_weight"]
        return out

    def with_changes(self, **changes: Any) -> MethodSpec:
        """A copy with fields replaced; unknown field names list the valid ones."""
        valid = [f.name for f in fields(self) if f.name != "name"]
        check_keys(changes, valid, f"method {self.name!r}", MethodError, what="field")
        if "epochs" in changes:
            changes["epochs"] = tuple(int(e) for e in changes["epochs"])
        return replace(self, **changes)


# --- the method table ---------------------------------------------------------------------------

ZERO_SHOT = MethodSpec(
    "zero_shot", "Zero-shot", "the backbone as released, standard mask",
    finetune="none", epochs=(0, 0),
)
DIRECT_SFT = MethodSpec(
    "direct_sft", "Direct SFT", "LoRA on question-answer pairs, causal mask",
)
LIVR = MethodSpec(  # livr_core's defaults: K latents, the bottleneck stage, the (4, 6) schedule
    "livr", "LIVR", f"K={LatentConfig.k} latents after the prompt; stage 1 bottleneck, stage 2 "
    "causal",
    latents=LatentConfig.k,
    stage1_mask=TrainConfig.stage1_mask.name,  # answer and prompt cannot see the image
    epochs=TrainConfig.epochs,
)


def _livr(name: str, label: str, description: str, **changes: Any) -> MethodSpec:
    return replace(LIVR, name=name, label=label, description=description, **changes)


METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        ZERO_SHOT,
        DIRECT_SFT,
        LIVR,
        # Table 3 ablations.
        _livr("latents_only", "Latents only", f"LIVR without stage 1: schedule (0,{TOTAL_EPOCHS})",
              stage1_mask=None, epochs=(0, TOTAL_EPOCHS)),
        MethodSpec("mask_only", "Mask only",
                   "no latents; stage 1 bars answer->image only (prompt keeps image access)",
                   stage1_mask="MASK_ONLY", epochs=TrainConfig.epochs),
        MethodSpec("image_twice", "Image twice", "direct SFT with the images given twice",
                   image_twice=True),
        _livr("prompt_tuning", "Prompt tuning",
              f"K={LatentConfig.k} soft tokens after the prompt; only their rows train (no LoRA, "
              "no bottleneck)", finetune="latent_rows", stage1_mask=None, epochs=(0, TOTAL_EPOCHS)),
        # Table 4(a): stage-1 mask variants (the default ans+prompt->vis is `livr`).
        _livr("livr_mask_answer_only", "ans->vis only", "stage 1 bars answer->image only",
              stage1_mask="ANSWER_ONLY"),
        _livr("livr_mask_latent_no_prompt", "+latent->prompt",
              "stage 1 bottleneck plus latent->question barred (chat scaffolding kept)",
              stage1_mask="BOTTLENECK_LATENTS_NO_PROMPT"),
        # Not in the paper's table: the stricter reading, latents see only images and latents.
        _livr("livr_mask_latent_no_text", "+latent->text (strict)",
              "stage 1 bottleneck plus latent->every text token barred",
              stage1_mask="BOTTLENECK_LATENTS_NO_TEXT"),
        # Table 4(b): stage splits (S1, S2); (0,10) is `latents_only`, (4,6) is `livr`.
        *(_livr(f"livr_s{s1}_{s2}", f"({s1},{s2})", f"LIVR with {s1} + {s2} epochs",
                epochs=(s1, s2)) for s1, s2 in ((2, 8), (6, 4), (8, 2))),
        # Table 4(c): number of latents; K=16 is `livr`.
        *(_livr(f"livr_k{k}", f"K={k}", f"LIVR with {k} latents", latents=k) for k in (4, 8, 32)),
        # Table 4, further rows.
        _livr("livr_latents_before_prompt", "Latents before prompt",
              "latents inserted before the prompt text", latent_position="before_prompt"),
        _livr("livr_shared", "Shared embeddings", "one latent embedding repeated K times",
              shared_latents=True),
        # Sec. 4.3 Mirage comparison (Qwen2.5-VL-3B).
        _livr("livr_mirage", "LIVR (Mirage setting)",
              "full LM fine-tuning, K=4, 10 + 10 epochs, lr 1e-5", **MIRAGE_SETTING),
        MethodSpec("mirage", "Mirage",
                   "K=4 latents opening the answer; stage 1 helper-image supervision, stage 2 "
                   "answer only; full LM fine-tuning, 10 + 10 epochs, lr 1e-5",
                   shared_latents=True, latent_position="answer_start", objective="mirage",
                   **MIRAGE_SETTING),
    )
}


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}") from None


def scale_epochs(method: MethodSpec, total: int) -> MethodSpec:
    """`method` trained for `total` epochs in all, its stage split kept in proportion.

    Stage 1 gets round(total * S1 / (S1 + S2)) epochs (halves round up), but a stage the method
    has keeps at least one epoch, so a short run still exercises both stages and the stage-split
    ablations stay distinct: LIVR (4,6) at 5 -> (2,3) (Table 2's split), (8,2) at 5 -> (4,1).
    Untrained methods are returned unchanged.
    """
    if not method.trained:
        return method
    s1, s2 = method.epochs
    stages = (s1 > 0) + (s2 > 0)
    if total < stages:
        raise MethodError(
            f"--epochs {total} is too few for {method.name!r}, which has {stages} stages; "
            f"use at least {stages}"
        )
    new1 = int(total * s1 / (s1 + s2) + 0.5)
    if s1 > 0:
        new1 = max(new1, 1)
    if s2 > 0:
        new1 = min(new1, total - 1)
    return replace(method, epochs=(new1, total - new1))
