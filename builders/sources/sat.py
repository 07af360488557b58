"""Reader of SAT (Spatial Aptitude Training, Ray et al.) in its two public releases.

- array/SAT (HF): `SAT_{train,static,val,test}.parquet`, columns `image_bytes` (list of encoded
  images: raw binary in the original upload, `{bytes, path}` structs once re-saved with the
  declared Image feature), `question`, `answers` (option texts), `question_type`,
  `correct_answer`. array/SAT-v2 stores the same rows as `data/<split>-*.parquet` with the images
  in `images` (Sequence(Image)).
- ViGoRL's copy (HF gsarch/vigorl_datasets, `spatial_reasoning.tar`, paths relative to its
  DATA_ROOT): `spatial_reasoning/vigorl_sat2_{train,val}_RL.jsonl` (EasyR1 rows: `problem`,
  `answer`, `images` or `image_paths`) and `spatial_reasoning/sat2_test/sat2_test.jsonl` (rows
  `id`, `image`, `conversations` = [human prompt, gpt answer]). ViGoRL's prompts read
  "<image>\\nQuestion: {q}\\nAnswer Choices:\\nA. {c1}\\nB. {c2}\\nAnswer with the text of the option."
  (third-party readers of these files agree; the files themselves could not be opened offline).

Rows come back as `SatRow`s in file order; a row that cannot be used is returned as a reason
string for the builder to count. SAT's generator removed " in the first frame" from option texts
but not always from `correct_answer` (SAT's own dataloader notes the bug): a gold answer equal to
an option once that phrase is removed is matched to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from builders.sources import SourceLayoutError
from builders.sources.hub import candidates

NAME = "sat"
TOP_FOLDERS = ("SAT", "SAT-v2", "sat", "vigorl_datasets", "vigorl")
HUB_REPOS = ("array/SAT", "array/SAT-v2", "gsarch/vigorl_datasets")
VIGORL_DIR = "spatial_reasoning"
VIGORL_FILES = {
    "train": "vigorl_sat2_train_RL.jsonl",
    "val": "vigorl_sat2_val_RL.jsonl",
    "test": "sat2_test/sat2_test.jsonl",
}
TEXT_COLUMNS = ("question", "answers", "correct_answer", "question_type")
IMAGE_COLUMNS = ("image_bytes", "images")  # array/SAT, array/SAT-v2
FIRST_FRAME_BUG = " in the first frame"
LAYOUT = """\
<sat_root>/                        array/SAT:     SAT_train.parquet, SAT_val.parquet, ...
                                     (image_bytes, question, answers, question_type, correct_answer)
                                   array/SAT-v2:  data/train-*.parquet, data/val-*.parquet (images, ...)
                                   ViGoRL (gsarch/vigorl_datasets, DATA_ROOT after extraction):
  spatial_reasoning/vigorl_sat2_train_RL.jsonl, vigorl_sat2_val_RL.jsonl,
  spatial_reasoning/sat2_test/sat2_test.jsonl and the images they name
"""

_CHOICES = re.compile(r"\n\s*Answer Choices:\s*\n", re.IGNORECASE)
_CHOICE_LINE = re.compile(r"^\s*([A-Z])[.)]\s*(.*?)\s*$")
_INSTRUCTION = re.compile(r"\s*Answer with the text of the option\.?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SatRow:
    key: str  # "<file>#<row>": where the row is, for provenance and split bookkeeping
    images: tuple[bytes, ...]
    question: str
    choices: tuple[str, ...]
    correct: int  # index into choices
    answer: str  # the gold text as released (before the first-frame fix)
    question_type: str


def _holds_sat(folder: Path) -> bool:
    if (folder / VIGORL_DIR).is_dir() or any(folder.glob("SAT_*.parquet")):
        return True
    shards = sorted((folder / "data").glob("*.parquet"))  # array/SAT-v2, told apart by columns
    return bool(shards) and "question_type" in pq.ParquetFile(shards[0]).schema_arrow.names


def find_root(path: Path) -> Path:
    """The folder holding SAT's parquet files or ViGoRL's spatial_reasoning/ folder."""
    for cand in candidates(path, TOP_FOLDERS, HUB_REPOS):
        if _holds_sat(cand):
            return cand
    raise SourceLayoutError(NAME, path, "no SAT parquet file or ViGoRL spatial_reasoning/", LAYOUT)


def vigorl_file(root: Path, split: str) -> Path | None:
    """ViGoRL's file for our split ("train", "val" or "test"), when the root holds it."""
    path = Path(root) / VIGORL_DIR / VIGORL_FILES[split]
    return path if path.is_file() else None


def parquet_files(root: Path, split: str) -> list[Path]:
    """array/SAT's `SAT_<split>.parquet`, or array/SAT-v2's `data/<split>-*.parquet` shards."""
    root = Path(root)
    files = [root / f"SAT_{split}.parquet"] if (root / f"SAT_{split}.parquet").is_file() else []
    files = files or sorted((root / "data").glob(f"{split}-*.parquet"))
    if not files:
        raise SourceLayoutError(
            NAME, root, f"no SAT_{split}.parquet or data/{split}-*.parquet (SAT split {split!r})",
            LAYOUT,
        )
    return files


def count_rows(files: list[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _image_column(path: Path, names: list[str]) -> str:
    found = [c for c in IMAGE_COLUMNS if c in names]
    missing = [c for c in TEXT_COLUMNS if c not in names]
    if missing or not found:
        raise ValueError(
            f"{path}: no column {', '.join(missing or ['image_bytes/images'])}; a SAT parquet "
            f"file has {', '.join(TEXT_COLUMNS)} and image_bytes (array/SAT) or images "
            f"(array/SAT-v2): re-download it"
        )
    return found[0]


def _encoded(item: object) -> bytes | None:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, dict):
        return item.get("bytes")
    return None


def match_choice(answer: str, choices: tuple[str, ...]) -> int | None:
    """The index of the option `answer` names: exact (case and outer spaces ignored), else after
    SAT's " in the first frame" bug is undone."""
    norm = [c.strip().lower() for c in choices]
    for text in (answer, answer.replace(FIRST_FRAME_BUG, "")):
        key = text.strip().lower()
        if key in norm and norm.count(key) == 1:
            return norm.index(key)
    return None


def _row(key: str, images: list[bytes | None], question: str, choices: tuple[str, ...],
         answer: str, question_type: str) -> SatRow | str:
    if not images or any(not b for b in images):
        return "no_image_bytes"
    if len(choices) < 2 or len({c.strip().lower() for c in choices}) != len(choices):
        return "bad_options"
    correct = match_choice(answer, choices)
    if correct is None:
        return "answer_not_in_options"
    return SatRow(key, tuple(images), question.strip(), choices, correct, answer,
                  question_type or "")


def iter_parquet(files: list[Path], wanted: set[int] | None = None,
                 batch_rows: int = 64) -> Iterator[tuple[int, SatRow | str]]:
    """(row number over all files, row or reason) in file order; only `wanted` rows if given,
    without decoding the others' images."""
    start = 0
    for path in files:
        pf = pq.ParquetFile(path)
        column = _image_column(path, pf.schema_arrow.names)
        n = pf.metadata.num_rows
        if wanted is not None and not any(start <= i < start + n for i in wanted):
            start += n
            continue
        i = start
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[*TEXT_COLUMNS, column]):
            for row in batch.to_pylist():
                if wanted is None or i in wanted:
                    images = [_encoded(x) for x in row[column] or []]
                    yield i, _row(f"{path.name}#{i - start}", images, row["question"] or "",
                                  tuple(row["answers"] or ()), row["correct_answer"] or "",
                                  row["question_type"] or "")
                i += 1
        start += n


def parse_vigorl_prompt(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(question, options) of a ViGoRL prompt, or None when it is not in that layout."""
    body = text.replace("<image>", "").strip()
    parts = _CHOICES.split(body)
    if len(parts) != 2:
        return None
    question = re.sub(r"^\s*Question:\s*", "", parts[0]).strip()
    options = []
    for line in _INSTRUCTION.sub("", parts[1]).strip().splitlines():
        m = _CHOICE_LINE.match(line)
        if m is None or m.group(1) != chr(ord("A") + len(options)):
            return None
        options.append(m.group(2))
    return question, tuple(options)


def question_type(question: str) -> str:
    """SAT's category of a question, by the keyword rules of SAT's own evaluation scripts
    (arijitray1993/SAT `get_qa_type`): for rows that do not carry `question_type` (ViGoRL's)."""
    q = question.lower()
    kind = "other"
    if "how did the camera" in q or "is the camera moving" in q:
        kind = "action_sequence"
    if "need to go" in q:
        kind = "goal_aim"
    if "any of the objects in the initial" in q:
        kind = "obj_movement"
    if "if i" in q:
        kind = "action_consequence"
    if "if i move to the" in q or "for someone at the" in q:
        kind = "perspective"  # later rules win, as in SAT's scripts
    return kind


def _read_image(root: Path, rel: str) -> bytes | None:
    path = root / rel
    return path.read_bytes() if path.is_file() else None


def iter_vigorl(path: Path, root: Path) -> Iterator[tuple[int, SatRow | str]]:
    """(line number, row or reason) of one of ViGoRL's SAT files; images relative to `root`."""
    with Path(path).open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                yield i, "bad_json"
                continue
            if "conversations" in doc:  # sat2_test.jsonl
                turns = doc.get("conversations") or []
                prompt = turns[0].get("value", "") if turns else ""
                answer = turns[1].get("value", "") if len(turns) > 1 else ""
                names = doc.get("image")
            else:  # the RL files
                prompt, answer = doc.get("problem", ""), doc.get("answer", "")
                names = doc.get("images", doc.get("image_paths"))
            names = [names] if isinstance(names, str) else list(names or [])
            parsed = parse_vigorl_prompt(prompt)
            if parsed is None:
                yield i, "unparsed_prompt"
                continue
            question, options = parsed
            images = [_read_image(root, n) for n in names]
            if any(b is None for b in images):
                yield i, "missing_image"
                continue
            kind = str(doc.get("question_type") or question_type(question))
            yield i, _row(f"{path.name}#{i}", images, question, options, answer, kind)
