"""Dataset cards: the `README.md` that makes a built root a ready Hugging Face dataset.

Owns `task_card`, `root_card` and `write_cards`. A card is YAML front matter plus a short text:

* `configs`: per task, its splits as `data_files` (`train`, `validation` <- our `val`, `test`),
  pointing at the data shards only, so `load_dataset("built/<task>")`,
  `load_dataset("built", "<task>")` and `push_to_hub` give exactly the kept rows;
* `dataset_info`: the features (in the YAML form `datasets` 3.x and 5.x both read) and each
  split's `num_examples` from its manifest (`datasets` checks the rows it loads against them);
* the text: rows per split, seed and the command that rebuilds each split, de-duplication
  status, the licence note of every source dataset (`LICENSE` of `builders/sources/<source>.py`)
  and the paper's citation.

Cards are a function of the manifests only (no time, no machine), so equal builds give equal
cards. `write_cards(root)` rewrites the root card and every task's card atomically under a lock;
the build and dedup call it after every split they write.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from builders.atomic import FileLock, atomic_write_text
from builders.io import DATA_PATTERN, MANIFEST, SplitDamagedError, read_manifest
from builders.manifest import HF_SPLITS
from builders.record import FEATURE_DICT
from builders.registry import SPLITS

log = logging.getLogger(__name__)

CARD = "README.md"
CARD_LOCK = ".card.lock"
CARD_LOCK_WAIT_S = 120.0  # cards take well under a second; a longer wait means a stuck writer
CITATION = """\
@inproceedings{li2026latent,
  title = {Latent Implicit Visual Reasoning},
  author = {Li, Kelvin and Shang, Chuyi and Karlinsky, Leonid and Feris, Rogerio and Darrell, Trevor and Herzig, Roei},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2026}
}"""
NO_LICENSE = "licence not recorded for this source: check the dataset's own terms"


def yaml_features() -> list[dict[str, str]]:
    """FEATURE_DICT as a card's `features` list (`sequence:` is read by `datasets` 3.x and 5.x)."""
    out = []
    for name, feat in FEATURE_DICT.items():
        if feat["_type"] == "Image":
            out.append({"name": name, "dtype": "image"})
        elif feat["_type"] == "Sequence":
            out.append({"name": name, "sequence": feat["feature"]["dtype"]})
        else:
            out.append({"name": name, "dtype": feat["dtype"]})
    return out


def _manifests(task_dir: Path) -> dict[str, dict[str, Any]]:
    """split -> manifest of every finished split of a task folder (damaged ones left out, said)."""
    out = {}
    for split in SPLITS:
        path = task_dir / split
        if not (path / MANIFEST).is_file():
            continue
        try:
            out[split] = read_manifest(path)
        except (SplitDamagedError, OSError) as exc:
            log.warning("dataset card: %s left out (%s)", path, exc)
    return out


def _tasks(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    tasks = {}
    if root.is_dir():
        for task_dir in sorted(p for p in root.iterdir() if p.is_dir() and not
                               p.name.startswith((".", "_"))):
            found = _manifests(task_dir)
            if found:
                tasks[task_dir.name] = found
    return tasks


def _config(name: str, splits: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    return {"config_name": name, "data_files": [
        {"split": HF_SPLITS[s], "path": f"{prefix}{s}/{DATA_PATTERN}"} for s in splits]}


def _info(name: str | None, splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for s, m in splits.items():
        size = sum(int(f["num_bytes"]) for f in (m.get("files") or {}).values())
        entries.append({"name": HF_SPLITS[s], "num_bytes": size, "num_examples": int(m["n"])})
    info: dict[str, Any] = {"config_name": name} if name else {}
    total = sum(e["num_bytes"] for e in entries)
    return {**info, "features": yaml_features(), "splits": entries, "download_size": total,
            "dataset_size": total}


def _front(configs: list[dict[str, Any]], infos: list[dict[str, Any]] | dict[str, Any],
           title: str) -> str:
    meta = {
        "pretty_name": title,
        "license": "other",
        "language": ["en"],
        "task_categories": ["visual-question-answering"],
        "tags": ["livr", "blink", "multiple-choice", "visual-reasoning"],
        "configs": configs,
        "dataset_info": infos,
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100) + "---\n"


def _license(source: str) -> str:
    try:
        module = importlib.import_module(f"builders.sources.{source}")
    except ModuleNotFoundError:
        return NO_LICENSE
    return getattr(module, "LICENSE", NO_LICENSE)


def _command(task: str, split: str, m: dict[str, Any]) -> str:
    dedup = m.get("dedup") or {}
    built = int(m["n"]) + int(dedup.get("n_removed", 0))
    cmd = (f"build-task {task} --split {split} --seed {m.get('seed')} --n {built} "
           f"--source-root <your {m.get('source', 'source')} copy>")
    if m.get("exclude"):
        cmd += " --exclude <dedup flagged_sources.json>"
    if dedup:
        cmd += f"; then dedup --against {dedup.get('against')}"
    return cmd


def _task_text(task: str, splits: dict[str, dict[str, Any]], level: int) -> list[str]:
    h = "#" * level
    lines = [f"{h} {task}", "", "| split | rows | removed by dedup | seed | rebuild with |",
             "|---|---|---|---|---|"]
    for s, m in splits.items():
        removed = (m.get("dedup") or {}).get("n_removed", "-")
        lines.append(f"| {HF_SPLITS[s]} | {m['n']} | {removed} | {m.get('seed')} | "
                     f"`{_command(task, s, m)}` |")
    sources = sorted({str(m.get("source", "")) for m in splits.values()} - {""})
    lines += ["", "Sources and their licences:", ""]
    lines += [f"- **{src}**: {_license(src)}" for src in sources]
    return lines + [""]


_USAGE = """\
Each split folder holds the kept rows as `data-*.parquet`. Everything else (the manifest with every
shard's sha256, the rows de-duplication removed, the Hugging Face `dataset_info`) lives in its
hidden `.livr/` folder, which `datasets`, pyarrow and pandas do not read. Ids (`idx`) are unique
across all splits and BLINK's own rows (ours start with `livr_`); the BLINK-sourced test splits keep
BLINK's ids.
"""


def _citation() -> list[str]:
    return ["## Citation", "", "```bibtex", CITATION, "```", ""]


def task_card(task: str, splits: dict[str, dict[str, Any]]) -> str:
    """The card of one task folder (`load_dataset("<root>/<task>")`)."""
    front = _front([_config("default", splits, "")], _info(None, splits),
                   f"LIVR training data: {task}")
    body = [f"# LIVR training data: {task}", "",
            "BLINK-style multiple-choice data built by the LIVR toolkit (`build-task`).", "",
            "```python", "from datasets import load_dataset",
            ('ds = load_dataset("path/to/this/folder")   # '
             + ", ".join(HF_SPLITS[s] for s in splits)),
            "```", "", _USAGE, *_task_text(task, splits, 2), *_citation()]
    return front + "\n" + "\n".join(body)


def root_card(tasks: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The card of a built root: one config per task (`load_dataset("<root>", "<task>")`)."""
    front = _front([_config(t, s, f"{t}/") for t, s in tasks.items()],
                   [_info(t, s) for t, s in tasks.items()], "LIVR training data")
    first = next(iter(tasks), "<task>")
    intro = ("BLINK-style multiple-choice data for the tasks of *Latent Implicit Visual "
             "Reasoning* (CVPR 2026), built by the LIVR toolkit (`build-task`, `dedup`). One "
             "configuration per task:")
    body = ["# LIVR training data", "", intro, "", "```python", "from datasets import load_dataset",
            f'ds = load_dataset("path/to/this/folder", "{first}")', "```", "", _USAGE]
    for task, splits in tasks.items():
        body += _task_text(task, splits, 2)
    return front + "\n" + "\n".join(body + _citation())


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def write_cards(root: str | os.PathLike) -> list[Path]:
    """Regenerate the root card and every task card under `root` from the manifests on disk;
    returns the cards that changed. Serialised by a lock so the last writer has seen every split
    published before it."""
    root = Path(root)
    if not root.is_dir():
        return []
    changed = []
    with FileLock(root / CARD_LOCK, f"writing the dataset cards of {root}",
                  wait=CARD_LOCK_WAIT_S):
        tasks = _tasks(root)
        for task, splits in tasks.items():
            if _write_if_changed(root / task / CARD, task_card(task, splits)):
                changed.append(root / task / CARD)
        if tasks and _write_if_changed(root / CARD, root_card(tasks)):
            changed.append(root / CARD)
    return changed
