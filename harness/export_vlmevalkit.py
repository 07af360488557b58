"""`harness export-vlmevalkit`: the built splits as VLMEvalKit TSV files, with a dataset class.

Owns `write_vlmevalkit_pack` and `tsv_rows`. Per task, `<out>/LIVR_<Task>.tsv` in VLMEvalKit's
layout: `index` (an integer, the row's position), `image` (base64 of the original image bytes;
a JSON list of them for a multi-image record), `image_path` (`<index>_<k>.<format>` names),
`question`, the option columns `A`.. (empty where an item has fewer options), `answer` (the bare
letter, or the count), `category` (the task), plus `prompt` (the full text the toolkit shows),
`idx` (our record id) and `source`. `livr_vlmeval.py` (`harness/packs/vlmevalkit_dataset.py`) is
the dataset class that keeps the prompt verbatim and the image bytes unchanged;
`livr_vlmevalkit.json` maps dataset names to the TSV files.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from builders.atomic import atomic_write_text, replace_dir, temp_sibling
from builders.io import iter_records, split_dir
from builders.record import Record
from builders.registry import LETTERS, load_registry
from harness.packs.vlmevalkit_dataset import INDEX_FILE, image_format

MODULE_SOURCE = Path(__file__).parent / "packs" / "vlmevalkit_dataset.py"
MODULE = "livr_vlmeval.py"


def dataset_name(task: str) -> str:
    return "LIVR_" + "_".join(part.capitalize() for part in task.split("_"))


def tsv_rows(records: Sequence[Record], max_options: int) -> Iterator[dict[str, Any]]:
    """VLMEvalKit rows of `records` (see the module docstring)."""
    for index, r in enumerate(records):
        encoded = [base64.b64encode(b).decode("ascii") for b in r.images]
        names = [f"{index}_{k}.{image_format(b)}" for k, b in enumerate(r.images, start=1)]
        row: dict[str, Any] = {
            "index": index,
            "image": encoded[0] if len(encoded) == 1 else json.dumps(encoded),
            "image_path": names[0] if len(names) == 1 else json.dumps(names),
            "question": r.question,
        }
        for k, letter in enumerate(LETTERS[:max_options]):
            row[letter] = r.choices[k] if k < len(r.choices) else ""
        row.update({
            "answer": r.answer.strip("()") if r.choices else r.answer,
            "category": r.task, "prompt": r.prompt, "idx": r.idx, "source": r.source,
        })
        yield row


def write_vlmevalkit_pack(built: Path, out: Path, tasks: Sequence[str], split: str = "test",
                          overwrite: bool = False) -> Path:
    built, out = Path(built).resolve(), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it")
    tmp = temp_sibling(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        listing = {}
        registry = load_registry()
        for task in tasks:
            records = list(iter_records(split_dir(built, task, split)))
            spec = registry.resolve(task)
            frame = pd.DataFrame(list(tsv_rows(records, max(spec.num_options, 1))))
            name = dataset_name(task)
            frame.to_csv(tmp / f"{name}.tsv", sep="\t", index=False)
            listing[name] = str(out.resolve() / f"{name}.tsv")
        atomic_write_text(tmp / INDEX_FILE, json.dumps(listing, indent=2, sort_keys=True) + "\n")
        shutil.copyfile(MODULE_SOURCE, tmp / MODULE)
        atomic_write_text(tmp / "README.md", _readme(sorted(listing), out.resolve()))
        return replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _readme(names: Sequence[str], where: Path) -> str:
    return (
        "# LIVR tasks for VLMEvalKit\n\n"
        "Written by `harness export-vlmevalkit`. One TSV per task in VLMEvalKit's MCQ layout, and "
        "`livr_vlmeval.LivrMCQDataset`, which keeps the toolkit's prompt verbatim, writes every "
        "image with its original bytes and scores with the toolkit's parser (no judge model). "
        "Needs the LIVR toolkit installed beside VLMEvalKit.\n\n"
        "```python\n"
        "import sys\n"
        f"sys.path.insert(0, {str(where)!r})\n"
        "from livr_vlmeval import LivrMCQDataset\n"
        f"dataset = LivrMCQDataset({names[0]!r})   # any of: {', '.join(names)}\n"
        "msgs = dataset.build_prompt(0)            # images + prompt, as the toolkit shows them\n"
        "# run VLMEvalKit's inference with this dataset object, then:\n"
        "print(dataset.evaluate('<predictions>.xlsx'))\n"
        "```\n\n"
        "Set `LIVR_EXPORT=<harness export folder>` to append a LIVR model's latent suffix to "
        "every prompt.\n"
    )
