"""Small built splits with real PNG images, written through `builders.io.write_records`, and the
faults the integrity tests plant in them."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from builders.io import MANIFEST, split_dir, write_records
from builders.manifest import build_manifest
from builders.record import Record, canonical_json, make_idx
from builders.registry import load_registry

SHARD_ROWS = 4  # 10 rows -> three shards, so one of them can go missing


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def records(task: str, split: str, n: int, seed: int = 0) -> list[Record]:
    spec = load_registry().resolve(task)
    answer = "(A)" if spec.answer_type == "mcq" else "3"
    return [Record(
        idx=make_idx(spec, split, i), question=spec.question, sub_task=spec.sub_task,
        images=[png(1000 * seed + 10 * i + k) for k in range(2)], choices=list(spec.choices),
        answer=answer, prompt=spec.prompt, explanation="", task=spec.name, split=split,
        source=canonical_json({"dataset": "synthetic",
                               "source_images": [f"{split}/{seed}/{i}.png"]}),
    ) for i in range(1, n + 1)]


def write(built: Path, task: str, split: str, n: int = 10, seed: int = 0,
          overwrite: bool = False) -> Path:
    reg = load_registry()
    rows = records(task, split, n, seed)
    manifest = build_manifest(reg.resolve(task), reg, split, 42, [], Counter(),
                              {"sha256": "0" * 64, "files": 0}, "png")
    return write_records(rows, split_dir(built, task, split), manifest, SHARD_ROWS, overwrite)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (bytes by relative path): what a refused command must not change."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---- faults -------------------------------------------------------------------------------------

def shards(path: Path) -> list[Path]:
    return sorted(path.glob("data-*.parquet"))


def missing(path: Path, other: Path) -> str:
    shards(path)[1].unlink()
    return "missing shard data-00001-of-00003.parquet"


def truncated(path: Path, other: Path) -> str:
    shard = shards(path)[2]
    shard.write_bytes(shard.read_bytes()[:-100])
    return "data-00002-of-00003.parquet has"


def extra(path: Path, other: Path) -> str:
    shutil.copy(shards(other)[0], path / "data-00003-of-00004.parquet")
    return "extra file data-00003-of-00004.parquet"


def foreign(path: Path, other: Path) -> str:
    """A shard of another split under this split's name."""
    shutil.copy(shards(other)[0], shards(path)[0])
    return "data-00000-of-00003.parquet"


def modified(path: Path, other: Path) -> str:
    """One byte of a shard changed, size kept: only its sha256 tells."""
    shard = shards(path)[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    return "data-00000-of-00003.parquet is not the file that was written"


def legacy(path: Path, other: Path) -> str:
    """The layout of earlier versions: manifest.json beside the shards."""
    (path / MANIFEST).rename(path / "manifest.json")
    return "older version of the toolkit"


FAULTS = {"missing": missing, "truncated": truncated, "extra": extra, "foreign": foreign,
          "modified": modified}
