"""Reader of the official VSP spatial-planning files, for users who have them.

Two published layouts are read (`LAYOUT`): the VSP benchmark's maps (UCSB-NLP-Chang/
Visual-Spatial-Planning, `VSP-main/maze/task-main/maps/level<N>/`; Mirage's test archive
`imgs_test/level<N>/` has the same layout and the same 400 maps of levels 3-6) and Mirage's
training file `train_direct.jsonl` with its `img/` folder. Without either, `builders.tasks.vsp`
generates its maps. A map's grid is read from its `table/<i>.txt` (@ player, # hole, * goal,
_ safe) or from a jsonl row's `map_desc` (Mirage's codes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError
from builders.vsp_maps import GOAL, HOLE, SAFE, START, MapError, VspMap

NAME = "vsp"
PROCEDURAL = True  # without the files, builders.tasks.vsp generates its maps
LAYOUT = """\
<vsp_root>/   (any one of these; without them VSP maps are generated, seeded)
  maps/level3/table/0.txt, maps/level3/img/0.png ... level8   (VSP benchmark: test split;
      also found as VSP-main/maze/task-main/maps/ or Mirage's imgs_test/)
  train_direct.jsonl + img/level_<N>/<id>/map_<N>x<N>_step_0.png, map_reasoning_path.png
      (Mirage's training set: train and val splits)
"""
TABLE_CELLS = {"_": SAFE, "#": HOLE, "@": START, "*": GOAL}
MAP_DIRS = ("maps", "VSP-main/maze/task-main/maps", "imgs_test")
TRAIN_FILE = "train_direct.jsonl"


@dataclass(frozen=True)
class OfficialMap:
    key: str  # stable id: "level3/17" or "mirage/1454"
    level: int
    vsp_map: VspMap
    image: Path
    rel: str  # image path relative to the source root (provenance, exclusion)
    answer: str | None = None  # Mirage's text_output, when the file has one
    helper: Path | None = None  # Mirage's helper image, when present


def has_official(path: Path) -> bool:
    """Whether `path` holds any official VSP layout."""
    return map_dir(path) is not None or (Path(path) / TRAIN_FILE).is_file()


def map_dir(path: Path) -> Path | None:
    for name in MAP_DIRS:
        if (Path(path) / name / "level3" / "table").is_dir():
            return Path(path) / name
    return None


def read_table(path: Path) -> VspMap:
    """A `table/<i>.txt` grid ("| Row 1 | _ | * | @ |" lines) as a map."""
    rows = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("| Row")]
    try:
        return VspMap.from_codes(
            [[TABLE_CELLS[cell.strip()] for cell in row.split("|")[2:-1]] for row in rows]
        )
    except (KeyError, MapError) as exc:
        raise MapError(f"{path}: not a VSP map table ({exc})") from None


def benchmark_maps(root: Path, levels: list[int]) -> list[OfficialMap]:
    """The benchmark's maps of `levels`, by level then map number."""
    base = map_dir(root)
    if base is None:
        raise SourceLayoutError(NAME, root, "no VSP benchmark maps (maps/level<N>/table)", LAYOUT)
    out = []
    for level in levels:
        tables = base / f"level{level}" / "table"
        if not tables.is_dir():
            raise SourceLayoutError(NAME, root, f"no level{level}/table folder in {base}", LAYOUT)
        for table in sorted(tables.glob("*.txt"), key=lambda p: int(p.stem)):
            image = base / f"level{level}" / "img" / f"{table.stem}.png"
            out.append(OfficialMap(f"level{level}/{table.stem}", level, read_table(table), image,
                                   str(image.relative_to(root))))
    return out


def _resolve(root: Path, given: str) -> Path:
    """A jsonl image path ("./data/vsp_spatial_planning/img/...") under the source root."""
    text = given.replace("\\", "/")
    cut = text.find("img/")
    return root / (text[cut:] if cut >= 0 else text)


def mirage_rows(root: Path) -> Iterator[OfficialMap]:
    """Mirage's training rows (map_desc, input image, answer, helper), in file order."""
    path = Path(root) / TRAIN_FILE
    if not path.is_file():
        raise SourceLayoutError(NAME, root, f"no {TRAIN_FILE}", LAYOUT)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            vsp_map = VspMap.from_codes(row["map_desc"])
            image = _resolve(root, row["image_input"])
            helper = _resolve(root, row["image_output"]) if row.get("image_output") else None
            answer = str(row["text_output"])
        except (ValueError, KeyError, TypeError, MapError) as exc:
            raise ValueError(f"{path}:{number}: not a Mirage VSP row ({exc}); expected map_desc, "
                             "image_input, image_output and text_output") from None
        yield OfficialMap(f"mirage/{row.get('map_id', number)}", vsp_map.size, vsp_map, image,
                          str(image.relative_to(root)) if image.is_relative_to(root) else image.name,
                          answer, helper)
