"""The dedup configuration: the `[dedup]` table of `tasks.toml`, typed and validated.

Every threshold and option lives in `tasks.toml` (with the reason and the calibration numbers next
to it); this module only gives it types. There are deliberately no defaults here, so a value can
never silently differ between the file and the code: a missing key is an error naming it.
Command-line overrides (`--model`, `--pretrained`, `--device`) go through `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builders.registry import Places, Registry, RegistryError, load_registry
from builders.schema import typed_table

RULE_SET_NAMES = ("paper", "any")  # `[dedup] rule`: the confirmation rule sets of dedup.decide


@dataclass(frozen=True)
class PaperRule:
    """The paper's confirmation (App. A): pHash AND SSIM, on raw grayscale views, and for the
    `blur_tasks` (Localization, A.3) also on blurred grayscale views."""

    phash_max: int          # aligned pHash distance at most this ...
    ssim_min: float         # ... and raw SSIM at least this (rule phash_ssim_raw)
    ssim_blur_min: float    # ... or, blur tasks only, blurred SSIM at least this (phash_ssim_blur)


@dataclass(frozen=True)
class Rules:
    """Thresholds of the stricter "any" rule set (`[dedup.rules]`): a pair is a duplicate when
    any one of these rules fires, SSIM-only rules included (`dedup.decide`)."""

    ssim_raw_min: float         # rule ssim_raw: a near copy (resized, re-encoded, jittered)
    phash_max: int              # rule phash_ssim: pHash distance at most this ...
    phash_ssim_blur_min: float  # ... and blurred SSIM at least this
    ssim_blur_min: float        # rule ssim_blur: blurred SSIM alone (overlays flip pHash bits)
    ssim_median_min: float      # rule ssim_local: median SSIM (most of the image unchanged) ...
    ssim_local_blur_min: float  # ... and blurred SSIM at least this


@dataclass(frozen=True)
class Borderline:
    """A pair that is not a duplicate but this close to a rule is shown in the HTML report."""

    ssim_margin: float
    phash_margin: int
    cosine_min: float


@dataclass(frozen=True)
class Policy:
    """How one task's pairs are confirmed: the rule set, its thresholds, and (paper rule) whether
    the blurred grayscale views confirm too."""

    rule: str
    paper: PaperRule
    any: Rules
    blurred: bool


@dataclass(frozen=True)
class DedupConfig:
    model: str
    pretrained: str | None     # None: random weights (tests, benchmarks); "none" in the file
    device: str
    batch_size: int
    workers: int
    confirm_processes: int
    confirm_pool_min_pairs: int
    cache_dir: str             # "" means <built>/.dedup-cache
    seed: int
    top_k: int
    cosine_floor: float
    phash_candidate_max: int
    view_size: int
    blur_sigma: float
    structure_std: float
    structure_min_fraction: float
    align_scales: tuple[float, ...]
    pair_tasks: tuple[str, ...]
    raw_tasks: tuple[str, ...]
    unreadable_train: str      # "remove" or "keep"
    html_max_pairs: int
    thumb_px: int
    rule: str                  # "paper" (default) or "any" (stricter)
    blur_tasks: tuple[str, ...]
    paper_rule: PaperRule
    rules: Rules
    borderline: Borderline

    def policy(self, task: str) -> Policy:
        """The confirmation policy of `task`'s pairs."""
        return Policy(self.rule, self.paper_rule, self.rules, task in self.blur_tasks)

    def public(self) -> dict[str, Any]:
        """JSON-able form for reports."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def decision_params(self) -> dict[str, Any]:
        """The settings that change what gets removed (not how fast): recorded in each filtered
        split's manifest, and a re-run with other values rewrites the split's dedup section."""
        keep = ["model", "pretrained", "seed", "top_k", "cosine_floor", "phash_candidate_max",
                "view_size", "blur_sigma", "structure_std", "structure_min_fraction", "align_scales", "pair_tasks", "raw_tasks",
                "unreadable_train", "rule", "blur_tasks", "paper_rule", "rules"]
        if self.pretrained is not None:
            keep.remove("seed")  # only random weights depend on it
        pub = self.public()
        return {k: pub[k] for k in keep}


def load_config(registry: Registry | None = None) -> DedupConfig:
    """The `[dedup]` table of the registry file (`tasks.toml` or `$LIVR_TASKS_TOML`)."""
    registry = registry or load_registry()
    path: Path = registry.path
    text = path.read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    if "dedup" not in doc:
        raise RegistryError(f"{path} has no [dedup] table; the dedup stage reads its thresholds there")
    where = Places(path, text)
    table = dict(doc["dedup"])
    nested = {
        key: typed_table(cls, table.pop(key, {}), where.of(f"dedup.{key}"), RegistryError)
        for key, cls in (("rules", Rules), ("paper_rule", PaperRule), ("borderline", Borderline))
    }
    if isinstance(table.get("pretrained"), str):
        table["pretrained"] = parse_pretrained(table["pretrained"])
    cfg = typed_table(DedupConfig, table, where.of("dedup"), RegistryError, given=nested)
    if cfg.unreadable_train not in ("remove", "keep"):
        raise RegistryError(f"{where('dedup', 'unreadable_train')} must be 'remove' or 'keep'")
    if cfg.rule not in RULE_SET_NAMES:
        raise RegistryError(f"{where('dedup', 'rule')} must be one of {', '.join(RULE_SET_NAMES)} "
                            f"(\"paper\": pHash AND SSIM confirm, as the paper; \"any\": any "
                            f"rule of [dedup.rules] fires, stricter), not {cfg.rule!r}")
    return cfg


def parse_pretrained(tag: str | None) -> str | None:
    """`none`/empty means random weights (never downloads)."""
    if tag is None or str(tag).strip().lower() in ("", "none", "random"):
        return None
    return str(tag)
