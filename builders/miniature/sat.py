"""Miniature SAT in its two releases: array/SAT's parquet files and ViGoRL's copy.

`write(root)` writes
- `root/SAT/SAT_{train,val}.parquet` (array/SAT: `image_bytes` as a list of raw encoded images,
  `question`, `answers`, `question_type`, `correct_answer`; the correct answer is listed first,
  as SAT's generator writes it): 150 train rows and 12 val rows, static questions with one image
  and dynamic ones with two; and
- `root/vigorl/spatial_reasoning/` (ViGoRL's DATA_ROOT layout): `vigorl_sat2_train_RL.jsonl` (12
  rows: `problem`, `answer`, `images`), `vigorl_sat2_val_RL.jsonl` (4 rows) and
  `sat2_test/sat2_test.jsonl` (8 rows: `id`, `image`, `conversations`, `source`), with one merged
  PNG per test question and the images the RL rows name.
`write_v2(root)` writes array/SAT-v2's layout (`root/SAT-v2/data/{train,val}-00000-of-00001.parquet`,
images as `{bytes, path}` structs in `images`).

Faults a reader must handle, at fixed rows: train row 7 has no image, val row 5's gold is not an
option, val row 2's gold carries SAT's " in the first frame" bug, and in ViGoRL's files test line
3's gold carries the same bug while test line 6's prompt has no "Answer Choices:" block.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from builders.miniature import synthetic_image

TOP, VIGORL, V2 = "SAT", "vigorl", "SAT-v2"
TRAIN_ROWS, VAL_ROWS = 150, 12
RL_ROWS = {"train": 12, "val": 4}
TEST_ROWS = 8
NO_IMAGE_ROW, NOT_AN_OPTION_ROW, FIRST_FRAME_ROW = 7, 5, 2  # train / val / val
VIGORL_FIRST_FRAME_LINE, VIGORL_UNPARSED_LINE = 3, 6
OBJECTS = ("chair", "sofa", "lamp", "table", "plant")
V2_FEATURES = datasets.Features({
    "images": datasets.Sequence(datasets.Image()), "question": datasets.Value("string"),
    "answers": datasets.Sequence(datasets.Value("string")),
    "correct_answer": datasets.Value("string"), "question_type": datasets.Value("string"),
})


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _question(rng: np.random.Generator, i: int) -> dict:
    """One SAT row's text: five question types, two to four options, correct one first."""
    obj = OBJECTS[i % len(OBJECTS)]
    kind = ("obj_movement", "action_sequence", "goal_aim", "action_consequence",
            "perspective")[i % 5]
    if kind == "obj_movement":
        q = ("Were any of the objects in the initial frame that you can still see in the second "
             "frame moved from their original positions?")
        answers = [f"{obj} was moved left and towards the camera", "no objects moved"]
    elif kind == "action_sequence":
        q = ("The first image is from the beginning of the video and the second image is from "
             "the end. How did the camera likely move when shooting the video?")
        answers = ["rotated right and moved forward", "rotated left", "did not move"]
    elif kind == "goal_aim":
        q = f"I need to go to the {obj}. Which direction should I turn to face it?"
        answers = [f"left by {20 + i} degrees", f"right by {20 + i} degrees"]
    elif kind == "action_consequence":
        q = f"If I turn left by 40 degrees, will the {obj} be to my right?"
        answers = ["yes", "no"]
    else:
        q = f"If I move to the {obj}, which object is closest to my left?"
        answers = ["lamp", "table", "plant", "sofa"][: 2 + i % 3]
    return {"question": q, "answers": answers, "correct_answer": answers[0],
            "question_type": kind, "frames": 2 if kind in ("obj_movement", "action_sequence")
            else 1, "seed": int(rng.integers(1 << 30))}


def _frames(q: dict) -> list[Image.Image]:
    rng = np.random.default_rng(q["seed"])
    return [synthetic_image(rng, 48, 36, shapes=2) for _ in range(q["frames"])]


def _sat_rows(rng: np.random.Generator, n: int, faults: dict[int, str]) -> list[dict]:
    rows = []
    for i in range(n):
        q = _question(rng, i)
        images = [_encode(im, "JPEG") for im in _frames(q)]
        fault = faults.get(i)
        if fault == "no_image":
            images = []
        elif fault == "not_an_option":
            q["correct_answer"] = "the answer nobody offered"
        elif fault == "first_frame":
            q["answers"] = ["sofa was moved right and away from the camera", "no objects moved"]
            q["question_type"] = "obj_movement"
            q["correct_answer"] = q["answers"][0] + " in the first frame"
        rows.append({"image_bytes": images, **{k: q[k] for k in
                     ("question", "answers", "question_type", "correct_answer")}})
    return rows


def _sat_tables(seed: int) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    return {
        "train": _sat_rows(rng, TRAIN_ROWS, {NO_IMAGE_ROW: "no_image"}),
        "val": _sat_rows(rng, VAL_ROWS, {NOT_AN_OPTION_ROW: "not_an_option",
                                         FIRST_FRAME_ROW: "first_frame"}),
    }


def _vigorl_prompt(q: dict) -> str:
    options = "\n".join(f"{chr(65 + k)}. {a}" for k, a in enumerate(q["answers"]))
    return (f"<image>\nQuestion: {q['question']}\nAnswer Choices:\n{options}\n"
            "Answer with the text of the option.")


def _write_vigorl(root: Path, rng: np.random.Generator) -> None:
    base = root / VIGORL / "spatial_reasoning"
    (base / "sat2_test" / "images").mkdir(parents=True, exist_ok=True)
    (base / "sat2_images").mkdir(parents=True, exist_ok=True)
    for split, n in RL_ROWS.items():
        lines = []
        for i in range(n):
            q = _question(rng, i)
            order = rng.permutation(len(q["answers"]))  # ViGoRL randomised the option order
            q["answers"] = [q["answers"][k] for k in order]
            names = []
            for k, im in enumerate(_frames(q)):
                name = f"spatial_reasoning/sat2_images/{split}_{i}_{k}.png"
                (root / VIGORL / name).write_bytes(_encode(im, "PNG"))
                names.append(name)
            lines.append({"problem": _vigorl_prompt(q), "answer": q["correct_answer"],
                          "images": names})
        (base / f"vigorl_sat2_{split}_RL.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    lines = []
    for i in range(TEST_ROWS):
        q = _question(rng, i)
        order = rng.permutation(len(q["answers"]))
        q["answers"] = [q["answers"][k] for k in order]
        frames = _frames(q)
        merged = Image.new("RGB", (sum(f.width for f in frames), frames[0].height))
        for k, f in enumerate(frames):
            merged.paste(f, (k * f.width, 0))
        name = f"spatial_reasoning/sat2_test/images/{i}_merged.png"
        (root / VIGORL / name).write_bytes(_encode(merged, "PNG"))
        prompt, gold = _vigorl_prompt(q), q["correct_answer"]
        if i == VIGORL_FIRST_FRAME_LINE:
            gold = q["correct_answer"] + " in the first frame"
        if i == VIGORL_UNPARSED_LINE:
            prompt = prompt.replace("Answer Choices:", "Choose one:")
        lines.append({"id": i, "image": name, "source": "SAT2_base", "conversations": [
            {"from": "human", "value": prompt}, {"from": "gpt", "value": gold}]})
    (base / "sat2_test" / "sat2_test.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def write(root: Path, seed: int = 0) -> Path:
    top = Path(root) / TOP
    top.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([
        ("image_bytes", pa.list_(pa.binary())), ("question", pa.string()),
        ("answers", pa.list_(pa.string())), ("question_type", pa.string()),
        ("correct_answer", pa.string()),
    ])
    for split, rows in _sat_tables(seed).items():
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), top / f"SAT_{split}.parquet")
    _write_vigorl(Path(root), np.random.default_rng(seed + 1))
    return top


def write_v2(root: Path, seed: int = 0) -> Path:
    """array/SAT-v2's layout with the same rows as `write`'s array/SAT files."""
    top = Path(root) / V2 / "data"
    top.mkdir(parents=True, exist_ok=True)
    for split, rows in _sat_tables(seed).items():
        v2 = [{"images": [{"bytes": b, "path": None} for b in r.pop("image_bytes")], **r}
              for r in rows]
        pq.write_table(pa.Table.from_pylist(v2, schema=V2_FEATURES.arrow_schema),
                       top / f"{split}-00000-of-00001.parquet")
    return top.parent
