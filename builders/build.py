"""The build driver: runs one task builder for one split and writes the split atomically.

A task builder (`builders/tasks/<task>.py`) is a generator `build(ctx) -> Iterator[Example]` that
yields examples (or finished `Record`s, for pass-through splits such as BLINK's) in a seeded
random order and calls `ctx.reject(reason)` for every candidate a filter drops (and
`ctx.skip_image(exc)` for an image it cannot decode: counted, and named in the log). The driver
keeps the first `n`, renders and encodes them, shows a progress bar, and writes shards + manifest
through `builders.io.SplitWriter` (one writer per split; the split's lock is taken before the
builder reads anything), then regenerates the dataset cards (`builders.card`). If the builder runs
dry first it stops with the per-filter rejection counts and writes nothing. Examples' helper
images (Mirage) go to the split's helper side file (`builders.helpers`), each one's sha256
into its manifest entry; a task's `image_format` param overrides the registry default (VSP's
maps stay lossless PNG, as the benchmark's are).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from tqdm import tqdm

from builders.card import write_cards
from builders.helpers import HELPERS_FILE, helper_record
from builders.imaging import UnreadableImage, load_image, sha256_bytes
from builders.io import SplitWriter, split_dir
from builders.manifest import SourceFingerprint, build_manifest
from builders.record import Example, Record, to_record
from builders.registry import SPLITS, Registry, TaskSpec, load_registry
from builders.splitting import assign_split, stable_int

EXCLUDED = "excluded_source_image"

log = logging.getLogger(__name__)


class InsufficientCandidates(RuntimeError):
    """The filters left fewer candidates than requested."""


class BuilderMissing(LookupError):
    """This version has no builder module for a (task, split)."""


class TaskBuilder(Protocol):
    def __call__(self, ctx: BuildContext) -> Iterator[Example | Record]: ...


class BuildContext:
    """What a task builder may use: its spec and params, seeded randomness, the source root,
    rejection counting, balanced answer placement and the source fingerprint."""

    def __init__(self, spec: TaskSpec, split: str, source_root: Path, seed: int) -> None:
        self.spec = spec
        self.split = split
        self.source_root = Path(source_root)
        self.seed = seed
        self.params: dict[str, Any] = spec.params
        self.rejections: Counter = Counter()
        self.warnings: Counter = Counter()
        self.fingerprint = SourceFingerprint(self.source_root)
        self._answer_rng = self.rng("answers")
        self._answer_block: list[int] = []
        self._last_slot: int | None = None

    def rng(self, *keys: object) -> np.random.Generator:
        """A generator fixed by (seed, task, split, keys), independent of every other stream."""
        return np.random.default_rng(stable_int(self.seed, self.spec.name, self.split, *keys))

    def shared_rng(self, *keys: object) -> np.random.Generator:
        """Like `rng` but the same for every split (for split assignment of source items)."""
        return np.random.default_rng(stable_int(self.seed, self.spec.name, "shared", *keys))

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejections[reason] += count

    def warn(self, reason: str, count: int = 1) -> None:
        """Count something odd about a KEPT candidate (e.g. a stale source checksum)."""
        self.warnings[reason] += count

    def owns(self, key: object) -> bool:
        """Whether source item `key` belongs to this split under `params.split_fractions`."""
        return assign_split(key, self.params["split_fractions"], self.seed) == self.split

    def answer_slot(self) -> int:
        """The option index for the correct answer, drawn from shuffled blocks of all indices so
        that letters stay balanced within one per letter. Call it only for an example that is
        yielded (after all filters), or the balance drifts."""
        if not self._answer_block:
            self._answer_block = list(self._answer_rng.permutation(self.spec.num_options))
        self._last_slot = int(self._answer_block.pop())
        return self._last_slot

    def _settle_answer_slot(self, used: bool) -> None:
        """Called by the driver per yielded example: a dropped example gives its slot back so the
        next one takes it and the letters stay balanced."""
        if not used and self._last_slot is not None:
            self._answer_block.append(self._last_slot)
        self._last_slot = None

    def letter(self, index: int) -> str:
        return f"({self.spec.letters[index]})"

    def note_source(self, path: Path, hash_content: bool = True) -> None:
        self.fingerprint.add(path, hash_content)

    def skip_image(self, exc: UnreadableImage) -> None:
        """Count an image that cannot be used under its reason and name it in the log."""
        self.reject(exc.reason)
        log.warning("%s/%s: skipped image %s (%s)", self.spec.name, self.split, exc.path, exc)

    def load_image(self, path: Path) -> Image.Image | None:
        """Decode an image, or count it under its reason (named in the log) and return None."""
        try:
            img = load_image(path)
        except UnreadableImage as exc:
            self.skip_image(exc)
            return None
        self.note_source(path, hash_content=False)
        return img


@dataclass
class BuildRequest:
    task: str
    split: str
    source_root: Path
    out: Path
    n: int | None = None
    seed: int | None = None
    overwrite: bool = False
    progress: bool = True
    # Raw source images (paths as in `source_images`) whose examples must not be built, e.g. the
    # `flagged_sources.json` of a dedup run, so a rebuild refills the split to full size.
    exclude: frozenset[str] = frozenset()


def task_builder(spec: TaskSpec, split: str) -> TaskBuilder:
    """The builder function for (task, split): BLINK pass-through for BLINK-tested test splits,
    the task's own module otherwise (`TaskSpec.builder_module`)."""
    name = spec.builder_module(split)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        path = name.replace(".", "/")
        raise BuilderMissing(f"no builder module {path}.py in this version") from exc
    return module.build


def run_build(req: BuildRequest, registry: Registry | None = None) -> Path:
    """Build one split; returns the split folder."""
    registry = registry or load_registry()
    spec = registry.resolve(req.task)
    if req.split not in SPLITS:
        raise ValueError(f"unknown split {req.split!r}; choose one of {', '.join(SPLITS)}")
    n = spec.size(req.split) if req.n is None else int(req.n)
    if n <= 0:
        raise ValueError(f"--n must be positive, got {n}")
    seed = registry.defaults.seed if req.seed is None else int(req.seed)
    d = registry.defaults
    target = split_dir(req.out, spec.name, req.split)
    builder = task_builder(spec, req.split)
    ctx = BuildContext(spec, req.split, req.source_root, seed)
    gen = builder(ctx)  # a generator: nothing is read before the first next()
    writer = SplitWriter(target, d.shard_rows, req.overwrite)
    image_format = str(spec.params.get("image_format", d.image_format))
    helpers: list[Record] = []
    try:
        bar = tqdm(total=n, desc=f"{spec.name}/{req.split}", unit="ex", disable=not req.progress)
        with bar:
            for example in gen:
                excluded = isinstance(example, Example) and not req.exclude.isdisjoint(
                    example.source.get("source_images", ()))
                ctx._settle_answer_slot(used=not excluded)
                if excluded:
                    ctx.reject(EXCLUDED)
                    continue
                built = len(writer)
                record = example if isinstance(example, Record) else to_record(
                    example, spec, req.split, built + 1, image_format, d.jpeg_quality
                )
                helper = None
                if isinstance(example, Example) and example.helper is not None:
                    helper = helper_record(record, example.helper, image_format,
                                           d.jpeg_quality)
                    helpers.append(helper)
                writer.add(record, None if helper is None else
                           {"helper_image": sha256_bytes(helper.images[0])})
                bar.update(1)
                if ctx.rejections:
                    bar.set_postfix(rejected=sum(ctx.rejections.values()), refresh=False)
                if built + 1 == n:
                    break
        gen.close()
        entries = writer.entries
        if len(entries) < n:
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(ctx.rejections.items())) or "none"
            hint = (f"Use --n {len(entries)} or add source data." if entries else
                    "Nothing could be built: check --source-root and the rejection counts.")
            raise InsufficientCandidates(
                f"{spec.name}/{req.split}: only {len(entries)} of {n} requested examples could be "
                f"built from {req.source_root}. Candidates rejected by filter: {detail}. {hint}"
            )
        if helpers:
            writer.add_side_file(HELPERS_FILE, helpers)
        extra = {"exclude": exclusion_digest(req.exclude)} if req.exclude else {}
        if helpers:
            extra["helper_file"] = HELPERS_FILE
        manifest = build_manifest(
            spec, registry, req.split, seed, entries, ctx.rejections, ctx.fingerprint.digest(),
            image_format, ctx.warnings, extra or None,
        )
    except BaseException:
        writer.abort()
        raise
    path = writer.commit(manifest)
    write_cards(req.out)
    return path


def exclusion_digest(exclude: frozenset[str]) -> dict[str, Any]:
    """What a manifest records of an exclusion list: its size and a hash of its sorted paths."""
    h = hashlib.sha256("\n".join(sorted(exclude)).encode())
    return {"source_images": len(exclude), "sha256": h.hexdigest()}
