"""Every livr_core configuration, importable without torch, transformers or peft.

Owns `SEED`, `MaskVariant` with `MaskRules` / `RULES` (what each variant bars; `livr_core.masks`
builds the masks), `LoadOptions`, `LatentConfig`, `EncodingConfig`, `FinetuneConfig`,
`TrainConfig`, `GenerationConfig`, `MirageConfig` and `RESUME_FREE`: the defaults of the whole
core in one visible place, each written once with its reason, and the one module to import them
from (or from `livr_core`, the public surface). The harness reads its training and decoding
defaults from here. Kept free of torch and peft, so planning a run or hashing a cell's settings
does not pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal

from livr_core.token_types import TokenType

if TYPE_CHECKING:
    import torch

SEED = 42  # paper: seed 42 for every run (training order, the latent rows, LoRA's init)


class MaskVariant(str, Enum):
    CAUSAL = "causal"
    BOTTLENECK = "bottleneck"
    ANSWER_ONLY = "answer_only"
    # Table 4(a) "+latent->prompt": latents barred from the question only (livr_core.masks)
    BOTTLENECK_LATENTS_NO_PROMPT = "bottleneck_latents_no_prompt"
    # a stricter reading of it: latents barred from every text key, scaffolding included
    BOTTLENECK_LATENTS_NO_TEXT = "bottleneck_latents_no_text"
    MASK_ONLY = "mask_only"


@dataclass(frozen=True)
class MaskRules:
    """Which query types may not attend to which key types, on top of causal + padding."""

    text_from_image: bool = False  # TEXT and PROMPT queries
    answer_from_image: bool = False
    latent_from_image: bool = False  # only for checks: seals the image off completely
    latent_from_prompt: bool = False  # the question only (paper's "+latent->prompt")
    latent_from_text: bool = False  # every text key: scaffolding and question
    answer_from_latent: bool = False  # only for checks: the answer cannot read the latents

    def barred_pairs(self) -> list[tuple[TokenType, TokenType]]:
        pairs = (
            ((TokenType.TEXT, TokenType.IMAGE), self.text_from_image),
            ((TokenType.PROMPT, TokenType.IMAGE), self.text_from_image),
            ((TokenType.ANSWER, TokenType.IMAGE), self.answer_from_image),
            ((TokenType.LATENT, TokenType.IMAGE), self.latent_from_image),
            ((TokenType.LATENT, TokenType.PROMPT), self.latent_from_prompt or self.latent_from_text),
            ((TokenType.LATENT, TokenType.TEXT), self.latent_from_text),
            ((TokenType.ANSWER, TokenType.LATENT), self.answer_from_latent),
        )
        return [pair for pair, barred in pairs if barred]


RULES: dict[MaskVariant, MaskRules] = {
    MaskVariant.CAUSAL: MaskRules(),
    MaskVariant.BOTTLENECK: MaskRules(text_from_image=True, answer_from_image=True),
    MaskVariant.ANSWER_ONLY: MaskRules(answer_from_image=True),
    MaskVariant.BOTTLENECK_LATENTS_NO_PROMPT: MaskRules(
        text_from_image=True, answer_from_image=True, latent_from_prompt=True
    ),
    MaskVariant.BOTTLENECK_LATENTS_NO_TEXT: MaskRules(
        text_from_image=True, answer_from_image=True, latent_from_text=True
    ),
    MaskVariant.MASK_ONLY: MaskRules(answer_from_image=True),
}


@dataclass(frozen=True)
class LoadOptions:
    """How to load a backbone. Defaults are the paper's single-GPU setting."""

    source: str | None = None  # Hub id or local directory; None = the backbone's default
    trust_remote_code: bool = False  # remote code is arbitrary Python: never enabled implicitly
    dtype: torch.dtype | str = "auto"  # checkpoint dtype (bf16 for the real ones); tiny = fp32
    attn_implementation: str = "sdpa"  # the LIVR masks are bool 4D masks, which sdpa takes
    min_pixels: int | None = None  # image budget in pixels; None keeps the processor's own
    max_pixels: int | None = None
    seed: int = 0  # tiny backbones only: their random weights come from this seed
    device: str | torch.device | None = None


@dataclass(frozen=True)
class LatentConfig:
    """How many latents and whether they share one embedding."""

    k: int = 16  # paper default (K ablation: 4, 8, 16, 32; Mirage comparison: 4)
    shared: bool = False  # ablation: one embedding repeated K times
    seed: int = SEED  # makes the random rows reproducible
    # Mirage's layout: the K latents sit between two marker tokens, <|latent_start|> ...
    # <|latent_end|> (Mirage src/main.py:36-38); LIVR has no markers.
    markers: bool = False

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"LatentConfig.k must be >= 1 (use no latents instead), got {self.k}")


@dataclass(frozen=True)
class EncodingConfig:
    max_length: int = 8192  # tokens; longer sequences are an error, never silently truncated
    # paper: after the prompt; "answer_start" opens the assistant turn with them (Mirage)
    latent_position: Literal["after_prompt", "before_prompt", "answer_start"] = "after_prompt"


@dataclass(frozen=True)
class FinetuneConfig:
    # paper: LoRA; "full" = Mirage comparison (lr 1e-5); "latent_rows" = prompt tuning (ablation)
    mode: Literal["lora", "full", "latent_rows"] = "lora"
    r: int = 16  # paper
    alpha: int = 32  # paper
    dropout: float = 0.05  # paper
    seed: int = SEED  # LoRA's random A matrices are drawn from it, whatever the global RNG

    def __post_init__(self) -> None:
        if self.mode not in ("lora", "full", "latent_rows"):
            raise ValueError(f"FinetuneConfig.mode must be lora, full or latent_rows, not "
                             f"{self.mode!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; the defaults are the paper's single-task LIVR run."""

    epochs: tuple[int, int] = (4, 6)  # (stage 1, stage 2); paper single-task LIVR
    # paper: answer + prompt barred from image. CAUSAL in stage 1 only with an objective of its
    # own (Mirage); without one it would be stage 2 (the Trainer refuses it).
    stage1_mask: MaskVariant = MaskVariant.BOTTLENECK
    lr: float = 1e-4  # paper, LoRA (Mirage full fine-tuning: 1e-5)
    weight_decay: float = 0.01  # paper; LoRA and latent rows only (lora.param_groups)
    betas: tuple[float, float] = (0.9, 0.999)  # paper
    eps: float = 1e-8  # paper
    warmup_ratio: float = 0.05  # paper: 5% linear warm-up then cosine, restarted per stage
    per_device_batch_size: int = 1  # paper
    grad_accumulation: int = 8  # paper: effective batch 8 on one GPU
    max_grad_norm: float | None = 1.0  # Hugging Face Trainer default; the paper names none
    seed: int = SEED  # the order of the training examples (livr_core.trainer.epoch_order)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    gradient_checkpointing: bool = False  # trades compute for memory on long prompts; same math
    select: Literal["best", "final"] = "best"  # paper: best val accuracy (multi-task: final)
    save_every: int = 50  # optimizer updates between mid-epoch checkpoints (plus epoch ends)
    keep_last: int = 2  # rolling checkpoints kept for resuming; best/ and final/ are separate
    progress_bar: bool = True
    dataloader_workers: int = 0  # >0 encodes images in worker processes

    def __post_init__(self) -> None:
        if len(self.epochs) != 2 or min(self.epochs) < 0 or sum(self.epochs) == 0:
            raise ValueError(f"epochs must be (stage 1, stage 2) >= 0, not all 0: {self.epochs}")
        if min(self.per_device_batch_size, self.grad_accumulation, self.save_every) < 1:
            raise ValueError("batch size, accumulation and save_every must be >= 1")
        if self.keep_last < 1:
            raise ValueError("keep_last must be >= 1 (a resume needs a checkpoint)")

    def stage_mask(self, stage: int) -> MaskVariant:
        return self.stage1_mask if stage == 0 else MaskVariant.CAUSAL


@dataclass(frozen=True)
class GenerationConfig:
    """Greedy decoding at validation and test (the paper names no decoding settings)."""

    max_new_tokens: int = 16  # answers are "(A)".."(D)" or a count: a few tokens
    batch_size: int = 8  # prompts per forward; results do not depend on it
    mask: MaskVariant | MaskRules = MaskVariant.CAUSAL  # paper inference; others: diagnostics
    remove_latents: bool = False  # diagnostic "latents removed at evaluation"
    use_cache: bool = True  # False recomputes the whole sequence each step (reference path)
    return_logits: bool = False  # keep each step's next-token logits (float32, latents -inf)


@dataclass(frozen=True)
class MirageConfig:
    """Mirage's objective (`livr_core.mirage`), as its public code computes it.

    Stage 1: `ce_weight` x answer cross-entropy + (1 - mean cosine) between the hidden state
    before each latent and the helper image's pooled embedding (Mirage src/trainer.py:22-25:
    `loss = 0.1 * ce_loss + sim_loss`). Stage 2: the answer cross-entropy alone.
    """

    ce_weight: float = 0.1  # Mirage src/trainer.py:25

    def __post_init__(self) -> None:
        if self.ce_weight < 0:
            raise ValueError(f"MirageConfig.ce_weight must be >= 0, got {self.ce_weight}")


# Fields that change nothing in the trajectory: a resume may alter them.
RESUME_FREE = ("progress_bar", "save_every", "keep_last", "dataloader_workers")
