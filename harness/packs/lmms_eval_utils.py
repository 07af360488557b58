"""lmms-eval task functions for the LIVR toolkit's built splits (the `utils.py` of the pack that
`harness export-lmms-eval` writes; the task YAML files point here with `!function utils.<name>`).

* `livr_doc_to_visual`: the record's images (image_1..image_4), in prompt order, as RGB.
* `livr_doc_to_text`: the record's `prompt` verbatim (exactly what the toolkit's own evaluation
  shows), with the YAML's `pre_prompt` / `post_prompt`, and the latent suffix of a LIVR export
  appended right after the prompt: the export named by the environment variable `LIVR_EXPORT`
  (its `livr.json`), or the `latent_sequence` written into the YAML by `--export`.
* `livr_process_results` / `livr_aggregate`: the toolkit's own scorer (`harness.metrics.score`:
  the MCQ letter parser with the item's valid letters, counts for Counting, which lmms-eval's BLINK
  utils cannot score, plans walked on the map for VSP); accuracy in %, as the paper reports it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from builders.record import IMAGE_COLUMNS
from builders.registry import LETTERS, load_registry
from harness.items import Item
from harness.metrics import score

METRIC = "livr_acc"
EXPORT_ENV = "LIVR_EXPORT"  # a `harness export` folder whose latents the prompts get


@lru_cache(maxsize=8)
def _export_suffix(folder: str) -> str:
    info = json.loads((Path(folder) / "livr.json").read_text(encoding="utf-8"))
    return str(info.get("latent_sequence", ""))


def livr_doc_to_visual(doc: dict[str, Any]) -> list:
    return [doc[c].convert("RGB") for c in IMAGE_COLUMNS if doc.get(c) is not None]


def livr_doc_to_text(doc: dict[str, Any],
                     lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    folder = os.environ.get(EXPORT_ENV)
    suffix = _export_suffix(folder) if folder else str(kwargs.get("latent_sequence", ""))
    return (str(kwargs.get("pre_prompt", "")) + doc["prompt"] + suffix
            + str(kwargs.get("post_prompt", "")))


def _item(doc: dict[str, Any]) -> Item:
    spec = load_registry().resolve(doc["task"])
    n = len(doc["choices"]) or spec.num_options
    return Item(idx=doc["idx"], task=spec.name, gold=doc["answer"],
                answer_type=spec.answer_type,
                letters=LETTERS[:n] if spec.answer_type == "mcq" else "",
                choices=tuple(doc["choices"]),
                source=doc["source"] if spec.answer_type == "plan" else "{}")


def livr_process_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict[str, Any]]:
    scored = score(_item(doc), results[0] if results else "")
    return {METRIC: {"idx": scored.idx, "task": scored.task, "raw": scored.raw,
                     "parsed": scored.parsed, "gold": scored.gold, "correct": scored.correct}}


def livr_aggregate(results: list[dict[str, Any]]) -> float:
    """Accuracy in %; an unparseable answer counts as wrong (never skipped)."""
    return 100.0 * sum(bool(r["correct"]) for r in results) / len(results) if results else 0.0
