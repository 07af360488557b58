"""A VLMEvalKit dataset class for the LIVR toolkit's TSV exports (copied verbatim as
`livr_vlmeval.py` into the pack `harness export-vlmevalkit` writes).

VLMEvalKit's own MCQ classes rebuild the prompt from `question` and the option columns ("Question:
... Options: A. ... Please select ...") and save every image through PIL as JPEG. For a faithful
comparison this class keeps both as the toolkit has them:

* `build_prompt`: the images in order, then the record's `prompt` column verbatim (plus the latent
  suffix of a LIVR export when the environment variable `LIVR_EXPORT` names one);
* `dump_image`: each image written with its original bytes (base64-decoded, never re-encoded),
  named `<index>_<k>.<format>`;
* `evaluate`: the toolkit's own scorer (`harness.metrics.score`), no judge model; accuracy in %
  per task (`category`) and overall.

The TSV files and their dataset names are listed in `livr_vlmevalkit.json` beside this file.
Without VLMEvalKit installed the class still loads, prompts and scores (it then derives from
`object`), which is how the toolkit tests it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from builders.registry import LETTERS, load_registry
from harness.items import Item
from harness.metrics import score

try:  # VLMEvalKit present: a real dataset class of it
    from vlmeval.dataset.image_mcq import ImageMCQDataset as _Base
    from vlmeval.smp import LMUDataRoot as _data_root
except ImportError:  # pragma: no cover - exercised where VLMEvalKit is installed
    _Base = object

    def _data_root() -> str:
        return os.environ.get("LMUData", str(Path.home() / "LMUData"))

INDEX_FILE = "livr_vlmevalkit.json"
EXPORT_ENV = "LIVR_EXPORT"
MAGIC = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg", b"RIFF": "webp", b"GIF8": "gif"}


def _listing() -> dict[str, str]:
    return json.loads((Path(__file__).parent / INDEX_FILE).read_text(encoding="utf-8"))


def images_of(line: Any) -> list[str]:
    """The base64 images of a row: one string, a JSON list of them as the TSV holds several, or
    the Python list VLMEvalKit's base class makes of that when it loads the TSV."""
    value = line["image"]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    value = str(value)
    return json.loads(value) if value.startswith("[") else [value]


def image_format(data: bytes) -> str:
    return next((ext for magic, ext in MAGIC.items() if data.startswith(magic)), "bin")


class LivrMCQDataset(_Base):
    TYPE = "MCQ"
    MODALITY = "IMAGE"

    def __init__(self, dataset: str, **kwargs: Any) -> None:
        if _Base is object:
            self.dataset_name = dataset
            self.img_root = os.path.join(_data_root(), "images", dataset)
            self.data = self.load_data(dataset)
        else:
            super().__init__(dataset, **kwargs)

    @classmethod
    def supported_datasets(cls) -> list[str]:
        return sorted(_listing())

    def load_data(self, dataset: str) -> pd.DataFrame:
        path = _listing()[dataset]
        return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"answer": str})

    def dump_image(self, line: Any) -> list[str]:
        os.makedirs(self.img_root, exist_ok=True)
        paths = []
        for k, encoded in enumerate(images_of(line), start=1):
            data = base64.b64decode(encoded)
            path = os.path.join(self.img_root, f"{line['index']}_{k}.{image_format(data)}")
            if not os.path.exists(path):
                with open(path, "wb") as handle:
                    handle.write(data)
            paths.append(path)
        return paths

    def build_prompt(self, line: Any) -> list[dict[str, str]]:
        if isinstance(line, int):
            line = self.data.iloc[line]
        suffix = ""
        if os.environ.get(EXPORT_ENV):
            info = Path(os.environ[EXPORT_ENV]) / "livr.json"
            suffix = json.loads(info.read_text(encoding="utf-8")).get("latent_sequence", "")
        msgs = [{"type": "image", "value": p} for p in self.dump_image(line)]
        msgs.append({"type": "text", "value": str(line["prompt"]) + suffix})
        return msgs

    @staticmethod
    def score_row(line: Any, prediction: str) -> bool:
        spec = load_registry().resolve(str(line["category"]))
        choices = tuple(str(line[c]) for c in LETTERS if c in line and str(line[c]))
        gold = f"({line['answer']})" if spec.answer_type == "mcq" else str(line["answer"])
        item = Item(idx=str(line["idx"]), task=spec.name, gold=gold,
                    answer_type=spec.answer_type,
                    letters=LETTERS[: len(choices) or spec.num_options]
                    if spec.answer_type == "mcq" else "",
                    choices=choices,
                    source=str(line["source"]) if spec.answer_type == "plan" else "{}")
        return score(item, prediction).correct

    def evaluate(self, eval_file: str, **judge_kwargs: Any) -> pd.DataFrame:
        """Accuracy (%) per category and overall of a VLMEvalKit prediction file."""
        read = pd.read_excel if str(eval_file).endswith(".xlsx") else \
            (lambda p: pd.read_csv(p, sep="\t", keep_default_na=False, dtype={"answer": str}))
        data = read(eval_file)
        data["hit"] = [self.score_row(r, str(r["prediction"])) for _, r in data.iterrows()]
        rows = [{"split": "all", "category": "Overall", "accuracy": 100.0 * data["hit"].mean()}]
        for name, group in data.groupby("category"):
            rows.append({"split": "all", "category": name,
                         "accuracy": 100.0 * group["hit"].mean()})
        return pd.DataFrame(rows)
