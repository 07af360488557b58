"""Display names shared by table configs, paper numbers and reports.

Owns `BACKBONES` (every backbone name `livr_core.backbones` can load, with its report label) and
`TASK_LABELS` (the paper's short column names). The backbone names are repeated here rather than
imported because `livr_core.backbones` imports transformers' model classes (~20 s), and a config
error or a `--dry-run` must answer in a second; `tests/harness/test_names.py` keeps the two lists
equal.
"""

from __future__ import annotations

BACKBONES: dict[str, str] = {
    "qwen2.5-vl-3b": "Qwen2.5-VL-3B",
    "qwen2.5-vl-7b": "Qwen2.5-VL-7B",
    "qwen3-vl-4b": "Qwen3-VL-4B",
    "llava-onevision-1.5-4b": "LLaVA-OV-1.5-4B",
    # Tiny random-initialised backbones built in code: tests and the demo.
    "tiny-qwen2.5-vl": "tiny-Qwen2.5-VL",
    "tiny-qwen3-vl": "tiny-Qwen3-VL",
    "tiny-llava": "tiny-LLaVA",
}

# Column names of PROTOCOL.md section 3, in the paper's order, then those of the comparison tables.
TASK_LABELS: dict[str, str] = {
    "counting": "Count",
    "jigsaw": "Jigsaw",
    "localization": "Loc",
    "visual_correspondence": "VisCorr",
    "art_style": "Art",
    "semantic_correspondence": "SemCorr",
    "functional_correspondence": "FuncCorr",
    "relative_reflectance": "RelRefl",
    "visual_similarity": "VisSim",
    "vsp": "VSP",  # Mirage comparison (Sec. 4.3)
    # The generalisation benchmarks and training sets (the comparison tables' column names).
    "sat": "SAT Val",
    "blink3": "BLINK-3",
    "robospatial": "RoboSpatial",
    "robospatial_context": "RoboSpatial-Ctx",
    "mmvp": "MMVP",
    "vstar": "V*",
    "blink5": "BLINK-5",
    "visualcot": "Visual-CoT",
}


def backbone_label(name: str) -> str:
    return BACKBONES.get(name, name)


def task_label(name: str) -> str:
    return TASK_LABELS.get(name, name)
