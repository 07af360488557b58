"""How a backbone is loaded and decoded: `ModelOptions`, the executor's `--executor-opt` keys.

Owns `ModelOptions` and the parsing of its `KEY=VALUE` strings. Kept free of torch, peft and
transformers (imported only inside the methods that need them) so that `harness run --dry-run`
can hash cells with the `livr` executor's fingerprint without loading the model stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from builders.schema import check_keys
from harness.errors import ConfigError
from livr_core.configs import GenerationConfig, LoadOptions, TrainConfig

if TYPE_CHECKING:
    import torch

# torch dtype names a checkpoint may be loaded in (`getattr(torch, name)` in harness.modeling).
_DTYPES = ("auto", "bfloat16", "float16", "float32", "half", "float")
# sdpa and eager take LIVR's 4D masks (livr_core.masks); flash attention only the causal ones
# (zero-shot, direct SFT, stage 2), and refuses a 4D mask with an error saying so.
_ATTENTION = ("sdpa", "eager", "flash_attention_2")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class ModelOptions:
    """How backbones are loaded and decoded; every field is an `--executor-opt KEY=VALUE`.

    RUN_SETTINGS change results and enter the cell hash (`LivrExecutor.fingerprint`); the other
    fields say where and how fast a run executes.
    """

    source: str | None = None  # local dir or Hub id of the backbone (runs of one backbone)
    # several backbones: <models_dir>/<name>, /<Hub repo name> or /<org>/<repo> when it exists
    models_dir: str | None = None
    device: str | None = None  # default: cuda when available, else cpu
    trust_remote_code: bool = False  # run a checkpoint's own modeling code: opt in only
    # Decoding, loading and training defaults are livr_core's (`livr_core.configs`).
    batch_size: int = GenerationConfig.batch_size  # prompts per generation forward
    progress: bool = TrainConfig.progress_bar  # training progress bars
    dtype: str = LoadOptions.dtype  # checkpoint dtype (bf16 for the real backbones)
    min_pixels: int | None = LoadOptions.min_pixels  # image pixel budget; None: the processor's
    max_pixels: int | None = LoadOptions.max_pixels
    max_new_tokens: int = GenerationConfig.max_new_tokens
    precision: str = TrainConfig.precision  # autocast: auto = bf16 on GPU, fp32 on CPU
    attn_implementation: str = LoadOptions.attn_implementation  # sdpa and eager round apart
    # Training examples per forward pass; gradient accumulation makes up the rest of the paper's
    # effective batch (TrainConfig: 1 x 8), so it must divide it. Larger is several times faster
    # for small models on a CPU (harness demo uses 8). A run setting: the loss is then the mean
    # over the micro-batch's answer tokens, which weighs answers of unequal length differently.
    train_batch_size: int = TrainConfig.per_device_batch_size

    RUN_SETTINGS: ClassVar[tuple[str, ...]] = (
        "dtype", "min_pixels", "max_pixels", "max_new_tokens", "precision", "attn_implementation",
        "train_batch_size",
    )
    # Run settings added after run stores existed: left out of the hash at their default.
    LATER_SETTINGS: ClassVar[tuple[str, ...]] = ("train_batch_size",)

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> ModelOptions:
        """Options from `--executor-opt` strings (or typed values); errors list the valid keys."""
        kinds = {f.name: f.type for f in fields(cls)}
        check_keys(values, kinds, "", ConfigError, what="executor option")
        options = cls(**{k: _coerce(k, v, kinds[k]) for k, v in values.items()})
        effective = effective_batch()
        if options.train_batch_size < 1 or effective % options.train_batch_size:
            raise ConfigError(f"executor option train_batch_size={options.train_batch_size}: "
                              f"must divide the effective batch of {effective}")
        return options

    @property
    def grad_accumulation(self) -> int:
        """Micro-batches per optimizer update, so every update sees `effective_batch()`."""
        return effective_batch() // self.train_batch_size

    def source_for(self, backbone: str) -> str | None:
        """Where backbone `backbone` loads from (None: its Hub id, or built in code).

        A local directory is returned absolute, so a run records where it can be found again
        from any working directory."""
        if self.source is not None:
            path = Path(self.source).expanduser()
            return str(path.resolve()) if path.is_dir() else self.source
        if self.models_dir is None:
            return None
        for name in local_names(backbone):
            if (Path(self.models_dir) / name).is_dir():
                return str((Path(self.models_dir) / name).resolve())
        return None

    def recorded(self, recorded: Mapping[str, Any]) -> ModelOptions:
        """These options with a run's recorded `source` as the default: what the user did not
        set explicitly (neither `source` nor `models_dir`) comes from the run."""
        if self.source is None and self.models_dir is None and recorded.get("source"):
            return replace(self, source=str(recorded["source"]))
        return self

    def resolved_device(self) -> torch.device:
        import torch  # here, not at the top: planning a run must not pay torch's import

        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def run_settings(self) -> dict[str, Any]:
        """The RUN_SETTINGS; one added after run stores existed is left out at its default, so
        their cells keep their hashes."""
        defaults = ModelOptions()
        return {k: getattr(self, k) for k in self.RUN_SETTINGS
                if not (k in self.LATER_SETTINGS and getattr(self, k) == getattr(defaults, k))}

    def with_run_settings(self, settings: Mapping[str, Any]) -> ModelOptions:
        """These options with a stored run's settings (so a run is evaluated as it was made)."""
        return replace(self, **{k: settings[k] for k in self.RUN_SETTINGS if k in settings})

    def autocast(self) -> AbstractContextManager:
        """The autocast the trainer uses, so validation, test and diagnostics decode alike."""
        from livr_core.trainer import autocast_for

        return autocast_for(self.precision, self.resolved_device())


def effective_batch() -> int:
    """The paper's examples per optimizer update (livr_core's TrainConfig defaults)."""
    default = TrainConfig()
    return default.per_device_batch_size * default.grad_accumulation


def local_names(backbone: str) -> tuple[str, ...]:
    """Folder names a local copy of `backbone` may have (`BackboneSpec.local_names`)."""
    from livr_core.backbones import BACKBONES  # only when a model is about to be loaded

    spec = BACKBONES.get(backbone)
    return spec.local_names() if spec is not None else (backbone,)


def _coerce(key: str, value: Any, kind: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if "bool" in kind:
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        if "int" in kind:
            optional = "None" in kind and value.lower() in ("", "none")
            return None if optional else int(value)
    except ValueError:
        raise ConfigError(f"executor option {key}={value!r}: expected {kind}") from None
    if key == "precision" and value not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"executor option precision={value!r}: use auto, bf16 or fp32")
    if key == "attn_implementation" and value not in _ATTENTION:
        raise ConfigError(f"executor option attn_implementation={value!r}: use "
                          f"{', '.join(_ATTENTION)}")
    if key == "dtype" and value not in _DTYPES:
        raise ConfigError(f"executor option dtype={value!r}: use auto or a torch dtype name "
                          "(bfloat16, float16, float32)")
    return value or None if "None" in kind else value


def answer_budget(options: ModelOptions, tasks: tuple[str, ...]) -> ModelOptions:
    """`options` with max_new_tokens raised to the largest `max_new_tokens` param of `tasks`
    (tasks.toml: VSP's plans need more than a letter's 16 tokens). Training, `harness run`,
    `eval` and `diagnose` all apply it, so a run is always answered with the same budget."""
    from builders.registry import load_registry

    registry = load_registry()
    budget = max([options.max_new_tokens, *(
        int(registry.resolve(t).params.get("max_new_tokens", 0)) for t in tasks
    )])
    return replace(options, max_new_tokens=budget)
