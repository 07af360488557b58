"""The manifest of a built split: what was built, from what, and a hash of every image; and the
Hugging Face `dataset_info` each manifest yields.

Everything in it is a function of (registry, sources, seed, n, package version), never of the time
or the machine, so two builds with one seed have byte-identical manifests. `builders.io.SplitWriter`
adds what it wrote (`n`, `records`, `shards`, `files` with each shard's size, rows and sha256).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from builders import package_version
from builders.imaging import sha256_bytes
from builders.record import FEATURE_DICT, Record
from builders.registry import Registry, TaskSpec


class SourceFingerprint:
    """Accumulates the source files a build read: content hashes for metadata, sizes for images."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._entries: dict[str, str] = {}
        self._seen: set[str] = set()

    def add(self, path: Path, hash_content: bool) -> None:
        key = str(path)
        if key in self._seen:  # builders note the same file once per use; resolve() is slow
            return
        self._seen.add(key)
        path = Path(path)
        try:
            rel = str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            rel = path.name
        if rel in self._entries:
            return
        if hash_content:
            self._entries[rel] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            self._entries[rel] = f"size:{path.stat().st_size}"

    def digest(self) -> dict[str, Any]:
        h = hashlib.sha256()
        for rel in sorted(self._entries):
            h.update(f"{rel}\t{self._entries[rel]}\n".encode())
        return {"sha256": h.hexdigest(), "files": len(self._entries)}


# Our split folder names -> the split names of Hugging Face datasets (and of the dataset card).
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def record_entry(r: Record) -> dict[str, Any]:
    return {"idx": r.idx, "answer": r.answer, "images": [sha256_bytes(b) for b in r.images]}


def build_manifest(
    spec: TaskSpec,
    registry: Registry,
    split: str,
    seed: int,
    entries: list[dict[str, Any]],
    rejected: Counter,
    fingerprint: dict[str, Any],
    image_format: str,
    warnings: Counter | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    answers = Counter(e["answer"] for e in entries)
    return {
        "task": spec.name,
        "split": split,
        "n": len(entries),
        "seed": seed,
        "source": spec.source_for(split),
        "tasks_toml_sha256": registry.sha256,
        "package_version": package_version(),
        "params": spec.params,
        "image_format": image_format,
        "source_fingerprint": fingerprint,
        "rejected": dict(sorted(rejected.items())),
        "warnings": dict(sorted((warnings or Counter()).items())),
        "answer_counts": dict(sorted(answers.items())),
        "records": entries,
        **(extra or {}),
    }


def dataset_info(manifest: dict[str, Any]) -> dict[str, Any]:
    """The split as a Hugging Face `DatasetInfo` dict (`datasets.DatasetInfo.from_dict` reads it):
    features, the split with `num_examples`, and `download_checksums` of its shards (paths
    relative to the task folder, e.g. `train/data-00000-of-00001.parquet`)."""
    split = str(manifest.get("split", ""))
    files = manifest.get("files") or {}
    size = sum(int(f["num_bytes"]) for f in files.values())
    name = HF_SPLITS.get(split, split)
    return {
        "config_name": manifest.get("task"),
        "features": FEATURE_DICT,
        "splits": {name: {"name": name, "num_examples": int(manifest.get("n", 0)),
                          "num_bytes": size, "dataset_name": manifest.get("task")}},
        "download_checksums": {f"{split}/{k}": {"num_bytes": int(v["num_bytes"]),
                                                "checksum": v["sha256"]}
                               for k, v in files.items()},
        "download_size": size,
        "dataset_size": size,
    }
