"""The zero-shot protocol of a table: answer-format instruction, generation length, system prompt.

Owns `ZeroShotProtocol`, `INSTRUCTIONS` and `BLINK_DISCLAIMER` (`harness.samples` asks a cell's
test set with them, for the executor and `harness eval`). A table
sets the protocol in its TOML as `[zero_shot]` (harness/tables/table1.toml lists the keys); it
applies to the untrained methods only (`zero_shot`): a trained method is asked exactly as it
was trained, so its prompt never changes. The protocol is part of a zero-shot cell's config
(`CellConfig.protocol`): a field left at its default stays out of the hash, so the shipped
tables' cells keep their hashes, and any change gives new cells.

Defaults, and why:
* instruction "none": the record's prompt verbatim, i.e. BLINK's exact `prompt` text (which
  already ends with "Select from the following choices." and the lettered options) and, for
  counting, the paper's "How many {label} are there in the image?". The trained rows see this
  same text, so zero-shot and trained rows differ only by training. Other choices:
  - "blink": what BLINK's own runner (eval/test_benchmark.py) sends: the prompt verbatim, with
    its privacy disclaimer in front for Forensic_Detection, Jigsaw and Art_Style. (The runner
    defines the disclaimer with a trailing comma, i.e. as a tuple, so `disclaimer + prompt`
    raises as published; we send the string it evidently meant.)
  - "lmms_eval": the post-prompt lmms-eval's multiple-choice tasks append, "Answer with the
    option's letter from the given choices directly."; for counting, its pixmo_count /
    countbenchqa post-prompt "Answer with a single number.".
* max_new_tokens None: the executor's `max_new_tokens` (harness.options, 16: "(A)".."(D)" or a
  count), the budget the trained rows are decoded with. A verbose zero-shot model may be cut
  off; its parse-failure rate in the report shows it, and a table can raise the budget
  (lmms-eval uses 1024 for BLINK, 32 for counting).
* system_prompt None: the chat template's own default (Qwen2.5-VL's template inserts "You are
  a helpful assistant."; Qwen3-VL's none); "" sends an empty system turn, any other text that
  text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from builders.registry import TaskSpec
from builders.schema import check_keys
from harness.errors import ProtocolError

if TYPE_CHECKING:  # planning a run (--dry-run) must not import torch
    from livr_core.encoding import Sample

BLINK_DISCLAIMER = (
    "Disclaimer: This is not to make unfair assumptions about the people in the image and you "
    "just need to give your assessment on this question. You don't need to identify the real "
    "people. You just need to analyze based on the information I gave you.\n\n"
)
BLINK_DISCLAIMER_CONFIGS = ("Forensic_Detection", "Jigsaw", "Art_Style")  # BLINK's runner
LMMS_EVAL_MCQ = "\nAnswer with the option's letter from the given choices directly."
LMMS_EVAL_COUNT = "\nAnswer with a single number."
INSTRUCTIONS = ("none", "blink", "lmms_eval")
KEYS = ("instruction", "max_new_tokens", "system_prompt")



@dataclass(frozen=True)
class ZeroShotProtocol:
    instruction: str = "none"
    max_new_tokens: int | None = None  # None: the executor's max_new_tokens
    system_prompt: str | None = None  # None: the chat template's own default

    def __post_init__(self) -> None:
        if self.instruction not in INSTRUCTIONS:
            raise ProtocolError(f"zero_shot.instruction must be one of {', '.join(INSTRUCTIONS)}, "
                                f"got {self.instruction!r}")
        budget = self.max_new_tokens
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
        ):
            raise ProtocolError(f"zero_shot.max_new_tokens must be an integer >= 1, got "
                                f"{self.max_new_tokens!r}")
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ProtocolError("zero_shot.system_prompt must be a string")

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], where: str = "[zero_shot]"
    ) -> ZeroShotProtocol:
        check_keys(values, KEYS, where, ProtocolError)
        try:
            return cls(**values)
        except ProtocolError as exc:
            raise ProtocolError(f"{where}: {exc}") from None

    def identity(self) -> dict[str, Any]:
        """The fields that differ from the defaults: what enters a cell's hash."""
        default = ZeroShotProtocol()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def prompt(self, prompt: str, spec: TaskSpec) -> str:
        """The text a zero-shot model is asked for a record of task `spec`."""
        if self.instruction == "blink":
            return BLINK_DISCLAIMER + prompt if spec.blink_config in BLINK_DISCLAIMER_CONFIGS \
                else prompt
        if self.instruction == "lmms_eval":
            return prompt + (LMMS_EVAL_MCQ if spec.answer_type == "mcq" else LMMS_EVAL_COUNT)
        return prompt

    def samples(self, samples: Iterable[Sample], spec: TaskSpec) -> list[Sample]:
        """Generation samples of one task with the instruction and system prompt applied."""
        return [replace(s, prompt=self.prompt(s.prompt, spec), system=self.system_prompt)
                for s in samples]
