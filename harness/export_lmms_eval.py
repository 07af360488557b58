"""`harness export-lmms-eval`: an lmms-eval task pack over the built splits.

Owns `write_lmms_eval_pack`. The pack is a folder lmms-eval reads with `--include_path`:

    <out>/_livr_template_yaml   what every task shares (output type, functions, metric, decoding)
    <out>/livr_<task>.yaml      one task per built task: its Parquet shards and split
    <out>/livr.yaml             the group `livr` of them all
    <out>/utils.py              `harness/packs/lmms_eval_utils.py`, copied verbatim
    <out>/README.md             how to run it

Data is read from the built split's Parquet shards (`dataset_path: parquet`, `data_files` with
their absolute paths), so the rows, images and prompts are exactly the toolkit's. Decoding is
greedy with the toolkit's answer budget (`harness.options.ModelOptions.max_new_tokens`).
`export` writes a LIVR export's latent suffix into every task (also settable at run time with
the environment variable `LIVR_EXPORT`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from builders.atomic import atomic_write_text, replace_dir, temp_sibling
from builders.io import read_manifest, split_dir
from harness.options import ModelOptions

TEMPLATE = "_livr_template_yaml"
GROUP = "livr"
UTILS_SOURCE = Path(__file__).parent / "packs" / "lmms_eval_utils.py"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _template(max_new_tokens: int, latent_sequence: str) -> str:
    return "\n".join([
        "# Shared by every livr_* task (written by `harness export-lmms-eval`).",
        "dataset_path: parquet",
        "output_type: generate_until",
        "doc_to_visual: !function utils.livr_doc_to_visual",
        "doc_to_text: !function utils.livr_doc_to_text",
        "doc_to_target: answer",
        "process_results: !function utils.livr_process_results",
        "metric_list:",
        "  - metric: livr_acc",
        "    aggregation: !function utils.livr_aggregate",
        "    higher_is_better: true",
        "generation_kwargs:",
        f"  max_new_tokens: {max_new_tokens}",
        "  temperature: 0",
        "  do_sample: false",
        "lmms_eval_specific_kwargs:",
        "  default:",
        '    pre_prompt: ""',
        '    post_prompt: ""',
        f"    latent_sequence: {_q(latent_sequence)}",
        "metadata:",
        "  version: 1",
        "",
    ])


def _task_yaml(task: str, split: str, shards: Sequence[Path]) -> str:
    files = "\n".join(f"      - {_q(str(p))}" for p in shards)
    return (f"task: {GROUP}_{task}\ninclude: {TEMPLATE}\ntest_split: {split}\n"
            f"dataset_kwargs:\n  data_files:\n    {split}:\n{files}\n")


def write_lmms_eval_pack(
    built: Path,
    out: Path,
    tasks: Sequence[str],
    split: str = "test",
    export: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the pack for `tasks` (each must have a finished `split`) into `out`."""
    built, out = Path(built).resolve(), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    suffix = ""
    if export is not None:
        info = json.loads((Path(export) / "livr.json").read_text(encoding="utf-8"))
        suffix = str(info.get("latent_sequence", ""))
    tmp = temp_sibling(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        names = []
        for task in tasks:
            folder = split_dir(built, task, split)
            manifest = read_manifest(folder)
            shards = [folder / name for name in manifest["shards"]]
            atomic_write_text(tmp / f"{GROUP}_{task}.yaml", _task_yaml(task, split, shards))
            names.append(f"{GROUP}_{task}")
        atomic_write_text(tmp / TEMPLATE, _template(ModelOptions().max_new_tokens, suffix))
        atomic_write_text(tmp / f"{GROUP}.yaml", f"group: {GROUP}\ntask:\n"
                          + "".join(f"  - {n}\n" for n in names))
        shutil.copyfile(UTILS_SOURCE, tmp / "utils.py")
        atomic_write_text(tmp / "README.md", _readme(names, export, out.resolve()))
        return replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _readme(names: Sequence[str], export: Path | None, where: Path) -> str:
    latents = (f"Every prompt gets the latent suffix of `{export}`." if export else
               "Prompts carry no latents; set `LIVR_EXPORT=<harness export folder>` to append "
               "an export's latent suffix at run time.")
    return (
        "# LIVR tasks for lmms-eval\n\n"
        "Written by `harness export-lmms-eval`. Needs the LIVR toolkit installed in the same "
        "environment (scoring uses its parser).\n\n"
        "```bash\n"
        "lmms-eval --model qwen2_5_vl --model_args pretrained=<model or export> \\\n"
        f"    --include_path {where} --tasks {GROUP}\n"
        "```\n\n"
        f"Tasks: {', '.join(names)} (group `{GROUP}`). {latents}\n"
    )
