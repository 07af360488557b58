"""What gets compared: the reference (test) images and the database (train/val) images of a task.

References are every image of every example of the built `test` split (BLINK's val or PixMo's
test, written there by `build-task <task> --split test`). The database is every image of every
example of the built train and val splits, plus, for tasks whose builder drew markers on the
source image (`raw_tasks`), the raw files named in `source["source_images"]` when a source root
is given: the drawn boxes and rings make the rendered image differ from a clean copy of it, the
raw image does not. Raw files are found tolerantly (`RawResolver`); missing ones are listed.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builders.io import SplitDamagedError, SplitNotFoundError, read_split, split_dir, verify_split
from builders.record import Record
from builders.registry import Registry, TaskSpec
from builders.sources import SourceLayoutError

REFERENCE_SPLIT = "test"


class DedupInputError(FileNotFoundError):
    """Built splits or the test copy are missing, or the task selection is invalid."""


@dataclass(frozen=True)
class ImageRef:
    """One image: `slot` is the 1-based image column (for a raw image: the column it was rendered
    into, 0 when that is unknown); raw images carry their `source_images` entry and file."""

    split: str
    idx: str
    slot: int
    kind: str = "rendered"  # or "raw"
    source_rel: str = ""
    path: str = ""

    @property
    def label(self) -> str:
        where = f"image_{self.slot}" if self.kind == "rendered" else f"raw:{self.source_rel}"
        return f"{self.split}/{self.idx}/{where}"


@dataclass
class ImageItem:
    ref: ImageRef
    load: Callable[[], bytes]  # called on a worker thread


@dataclass
class TaskData:
    spec: TaskSpec
    reference: list[Record]
    splits: dict[str, list[Record]]
    dirs: dict[str, Path]


@dataclass
class Database:
    items: list[ImageItem]
    raw_missing: list[dict] = field(default_factory=list)


def train_splits(spec: TaskSpec) -> list[str]:
    return [s for s in spec.sizes if s != REFERENCE_SPLIT]


def select_tasks(registry: Registry, against: str, built: Path, names: list[str] | None) -> list[TaskSpec]:
    """Tasks whose `dedup_against` is `against`: the named ones, else those with anything built."""
    eligible = [s for s in registry.tasks.values() if s.dedup_against == against]
    if names:
        chosen = [registry.resolve(n) for n in names]
        wrong = [s.name for s in chosen if s.dedup_against != against]
        if wrong:
            raise DedupInputError(
                f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not de-duplicated against "
                f"{against!r} (tasks.toml dedup_against); tasks that are: "
                f"{', '.join(s.name for s in eligible) or 'none'}")
        return chosen
    present = [s for s in eligible if (Path(built) / s.name).is_dir()]
    if not present:
        expected = "\n".join(f"  {split_dir(built, s.name, sp)}" for s in eligible
                             for sp in (*train_splits(s), REFERENCE_SPLIT))
        raise DedupInputError(
            f"no built split of any task de-duplicated against {against!r} under {built}; "
            f"expected (build them with build-task):\n{expected}")
    return present


def check_task(built: Path, spec: TaskSpec, against: str) -> dict[str, Path]:
    """The task's split folders, each checked whole against its manifest (every shard present,
    of its recorded size and sha256, nothing extra); a missing or damaged split is an error naming
    it and the fix, raised before anything is read for comparison or written."""
    problems = []
    dirs = {}
    for split in (*train_splits(spec), REFERENCE_SPLIT):
        d = split_dir(built, spec.name, split)
        try:
            verify_split(d, content=True)
        except SplitNotFoundError:
            how = (f"build-task {spec.name} --split {split}" if split != REFERENCE_SPLIT else
                   f"build-task {spec.name} --split test (the {against} copy the task is tested on)")
            problems.append(f"  {d}  missing ({how})")
        except SplitDamagedError as exc:
            problems.append(f"  {exc}")
        dirs[split] = d
    if problems:
        raise DedupInputError(f"{spec.name}: split(s) that cannot be read whole (nothing was "
                              f"compared or rewritten):\n" + "\n".join(problems))
    return dirs


def load_task(built: Path, spec: TaskSpec, against: str) -> TaskData:
    """The task's test and train/val records (every split checked first; reading checks each
    shard's sha256 and the record ids again)."""
    dirs = check_task(built, spec, against)
    try:
        return TaskData(
            spec=spec,
            reference=read_split(dirs[REFERENCE_SPLIT]),
            splits={s: read_split(dirs[s]) for s in train_splits(spec)},
            dirs=dirs,
        )
    except (SplitDamagedError, SplitNotFoundError) as exc:
        raise DedupInputError(f"{spec.name}: {exc}") from exc


def _bytes(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def rendered_items(records: list[Record], split: str) -> list[ImageItem]:
    return [ImageItem(ImageRef(split, r.idx, i + 1), _bytes(b))
            for r in records for i, b in enumerate(r.images)]


class RawResolver:
    """Finds `source_images` entries under a source root that is either a folder holding one
    folder per dataset or the dataset folder itself; the base that worked is remembered."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._bases: dict[str, list[Path]] = {}

    def _candidates(self, dataset: str) -> list[Path]:
        if dataset not in self._bases:
            bases = [self.root / dataset, self.root]
            try:  # the source reader knows its own layout (e.g. coco/ inside the folder given)
                reader = importlib.import_module(f"builders.sources.{dataset}")
                for b in (self.root / dataset, self.root):
                    try:
                        bases.append(reader.find_root(b))
                    except (SourceLayoutError, OSError):
                        pass
            except ModuleNotFoundError:
                pass
            self._bases[dataset] = list(dict.fromkeys(bases))
        return self._bases[dataset]

    def resolve(self, dataset: str, rel: str) -> Path | None:
        for base in self._candidates(dataset):
            p = base / rel
            if p.is_file():
                return p
        return None


def _read(path: Path) -> Callable[[], bytes]:
    return lambda: path.read_bytes()


def raw_items(records: list[Record], split: str, resolver: RawResolver) -> tuple[list[ImageItem], list[dict]]:
    """Raw source images of `records`; slot i+1 when there is one raw image per rendered one."""
    items, missing = [], []
    for r in records:
        try:
            src = json.loads(r.source)
        except json.JSONDecodeError:
            src = {}
        rels = src.get("source_images") or []
        dataset = str(src.get("dataset", ""))
        for k, rel in enumerate(rels):
            slot = k + 1 if len(rels) == len(r.images) else 0
            path = resolver.resolve(dataset, rel)
            if path is None:
                missing.append({"split": split, "idx": r.idx, "dataset": dataset, "source_image": rel})
                continue
            items.append(ImageItem(ImageRef(split, r.idx, slot, "raw", rel, str(path)), _read(path)))
    return items, missing


def database(task: TaskData, raw_tasks: tuple[str, ...], source_root: Path | None) -> Database:
    db = Database([])
    resolver = RawResolver(source_root) if source_root is not None else None
    for split, records in task.splits.items():
        db.items.extend(rendered_items(records, split))
        if resolver is not None and task.spec.name in raw_tasks:
            items, missing = raw_items(records, split, resolver)
            db.items.extend(items)
            db.raw_missing.extend(missing)
    return db
