"""The paper's numbers (PROTOCOL.md section 3; paper Tables 1-4, Sec. 4.3 and 4.4.1) as data.

Owns `PAPER` (accuracy rows keyed by (paper table, backbone, method) with our method and task
names; "mean" where the paper prints a Mean), `DIAGNOSTICS` (Sec. 4.4.1), `paper_scores` and
`RANDOM_CHOICE`. Numbers are kept exactly as printed, oddities included (Table 2's zero-shot row
repeats the single-task numbers; 61.16 and 66.40 are not k/139 or k/146). Method "mirage" is the
Mirage method itself (`harness.methods`, `livr_core.mirage`); 48.60 on BLINK's 150 Jigsaw items
is not k/150 (perhaps a mean over runs).

The two comparison tables of the project page and the paper (Tables 3 and 4 there, our "spatial"
and "broad"; issue 15): every row but LIVR's is quoted by LIVR from ViGoRL (spatial) or LVR
(broad); the rows this toolkit cannot run (RL methods) are the tables' `[reported]` rows.
"""

from __future__ import annotations

from collections.abc import Mapping

T1 = (
    "counting", "jigsaw", "localization", "visual_correspondence", "art_style",
    "semantic_correspondence", "functional_correspondence", "relative_reflectance",
    "visual_similarity", "mean",
)
T2 = (
    "counting", "localization", "visual_correspondence", "semantic_correspondence",
    "functional_correspondence", "relative_reflectance", "mean",
)
T34 = ("localization", "semantic_correspondence", "functional_correspondence")  # no Mean printed
MIRAGE = ("jigsaw", "vsp")  # VSP: Visual Spatial Planning in Mirage's format (tasks.toml [vsp])
SPATIAL = ("sat", "blink3", "robospatial")  # SAT Val, BLINK-3, RoboSpatial
BROAD = ("mmvp", "vstar", "blink5")  # MMVP, V*, BLINK-5

Q25, Q3, LV = "qwen2.5-vl-3b", "qwen3-vl-4b", "llava-onevision-1.5-4b"
Q25_7B = "qwen2.5-vl-7b"
ZS, SFT = "zero_shot", "direct_sft"

# (paper table, backbone, method, columns, values as printed)
_ROWS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("table1", Q25, ZS, T1, "46.78 49.33 56.56 29.86 55.56 32.37 26.71 45.52 50.37 43.67"),
    ("table1", Q25, SFT, T1, "60.04 53.33 75.41 88.00 83.76 41.01 18.49 44.78 89.63 61.61"),
    ("table1", Q25, "livr", T1, "63.64 65.33 79.51 90.43 87.18 46.76 31.51 51.49 94.82 67.85"),
    ("table1", Q3, ZS, T1, "58.52 84.67 59.02 55.43 77.78 39.57 31.51 47.76 82.22 59.61"),
    ("table1", Q3, SFT, T1, "66.86 83.33 79.51 90.86 78.63 61.15 58.90 56.72 91.11 74.12"),
    ("table1", Q3, "livr", T1, "66.67 85.33 83.61 93.29 81.20 64.75 67.81 62.69 92.59 77.55"),
    ("table1", LV, ZS, T1, "53.98 56.00 56.56 36.86 56.41 29.50 21.92 35.82 51.11 44.24"),
    ("table1", LV, SFT, T1, "60.42 65.33 68.85 86.86 76.92 46.76 23.29 52.24 92.59 63.70"),
    ("table1", LV, "livr", T1, "63.64 70.67 72.95 88.71 80.34 51.08 50.69 53.73 91.85 69.30"),
    ("table2", Q3, ZS, T2, "58.52 59.02 55.43 39.57 31.51 47.76 48.64"),
    ("table2", Q3, SFT, T2, "66.10 77.87 91.29 62.59 63.01 56.72 69.60"),
    ("table2", Q3, "livr", T2, "67.80 81.97 92.00 67.63 64.38 60.45 72.37"),
    ("table3", Q3, ZS, T34, "59.02 39.57 31.51"),
    ("table3", Q3, SFT, T34, "79.51 61.15 58.90"),
    ("table3", Q3, "livr", T34, "83.61 64.75 67.81"),
    ("table3", Q3, "latents_only", T34, "79.51 61.15 58.22"),
    ("table3", Q3, "mask_only", T34, "80.33 61.16 59.59"),
    ("table3", Q3, "image_twice", T34, "78.69 61.16 58.22"),
    ("table3", Q3, "prompt_tuning", T34, "71.31 49.64 36.30"),
    # Table 4: (a) masking, (b) stage split, (c) K, then placement and sharing. The default LIVR
    # row is the same in (a), (b) and (c), and (0,10) is the latents-only row.
    ("table4", Q3, "livr_mask_answer_only", T34, "77.87 60.43 60.27"),
    ("table4", Q3, "livr", T34, "83.61 64.75 67.81"),
    ("table4", Q3, "livr_mask_latent_no_prompt", T34, "81.15 62.59 63.01"),
    ("table4", Q3, "latents_only", T34, "79.51 61.15 58.22"),
    ("table4", Q3, "livr_s2_8", T34, "80.33 58.27 65.75"),
    ("table4", Q3, "livr_s6_4", T34, "81.15 61.87 66.44"),
    ("table4", Q3, "livr_s8_2", T34, "77.87 59.71 60.27"),
    ("table4", Q3, "livr_k4", T34, "81.15 62.59 66.40"),
    ("table4", Q3, "livr_k8", T34, "80.33 63.31 67.12"),
    ("table4", Q3, "livr_k32", T34, "80.33 62.59 63.01"),
    ("table4", Q3, "livr_latents_before_prompt", T34, "80.33 61.87 63.70"),
    ("table4", Q3, "livr_shared", T34, "81.15 61.87 63.70"),
    # Sec. 4.3, Mirage comparison on Qwen2.5-VL-3B (K=4, full fine-tuning).
    ("mirage", Q25, "zero_shot", MIRAGE, "49.33 6.00"),
    ("mirage", Q25, "mirage", MIRAGE, "48.60 46.00"),
    ("mirage", Q25, "livr_mirage", MIRAGE, "68.00 66.00"),
    # Spatial reasoning generalisation (paper Table 3), Qwen2.5-VL-3B trained on SAT-32k; all rows
    # but LIVR's from ViGoRL (its Table 2; Text-CoT = its "- Grounded" ablation, no RoboSpatial).
    ("spatial", Q25, ZS, SPATIAL, "46.1 44.4 54.4"),
    ("spatial", Q25, SFT, SPATIAL, "58.3 46.4 62.3"),
    ("spatial", Q25, "vanilla_grpo", SPATIAL, "50.0 46.5 69.7"),
    ("spatial", Q25, "text_cot_grpo", SPATIAL, "58.7 45.4 -"),
    ("spatial", Q25, "vigorl", SPATIAL, "62.9 48.5 67.1"),
    ("spatial", Q25, "livr", SPATIAL, "85.6 59.5 66.7"),
    # Broader visual reasoning (paper Table 4), Qwen2.5-VL-7B trained on Visual-CoT; all rows but
    # LIVR's from LVR (its Table 1; LVR-7B is its 16-step row).
    ("broad", Q25_7B, ZS, BROAD, "66.7 78.5 53.66"),
    ("broad", Q25_7B, "papo", BROAD, "54.3 36.1 54.81"),
    ("broad", Q25_7B, "vision_r1", BROAD, "46.7 70.2 42.76"),
    ("broad", Q25_7B, "pixelreasoner", BROAD, "67.0 80.1 54.52"),
    ("broad", Q25_7B, "lvr", BROAD, "71.7 80.6 55.37"),
    ("broad", Q25_7B, "livr", BROAD, "75.3 80.1 54.28"),
)

PAPER: dict[tuple[str, str, str], dict[str, float]] = {
    (table, backbone, method): {
        c: float(v) for c, v in zip(columns, values.split(), strict=True) if v != "-"
    }
    for table, backbone, method, columns, values in _ROWS
}

# Sec. 4.4.1, Localization on Qwen3-VL-4B: accuracy (%) under each evaluation condition, and the
# mean answer->latent attention (heads, layers and positions averaged). The paper states the
# bottleneck-without-latents number once, as a sanity check on LIVR.
DIAGNOSTICS: dict[tuple[str, str, str], dict[str, float]] = {
    (Q3, "localization", "livr"): {
        "standard": 83.61, "no_latents": 76.23, "bottleneck": 70.49,
        "bottleneck_no_latents": 43.44, "answer_to_latent_attention": 0.076,
    },
    (Q3, "localization", "latents_only"): {
        "standard": 79.51, "no_latents": 79.51, "bottleneck": 43.44,
        "answer_to_latent_attention": 0.028,
    },
}

# Random-choice accuracy (%) the paper quotes; harness.metrics derives ours from tasks.toml.
RANDOM_CHOICE: dict[str, float] = {"open": 11.11, "2": 50.0, "3": 33.33, "4": 25.0}


def paper_scores(table: str, backbone: str, method: str) -> Mapping[str, float] | None:
    """The paper's row for (table, backbone, method), task -> accuracy (+ "mean"), or None."""
    return PAPER.get((table, backbone, method))
