"""How often our answer parsers agree with a benchmark's reference extraction on real outputs.

Owns `CorpusItem`, `CorpusError`, `load_corpus`, `agreement` and the command line
`python -m harness.parse_agreement CORPUS.jsonl [...]`, which prints the figures as JSON. The
corpus files themselves are gathered from public evaluation repositories and are kept OUT of
this repository (nothing fetched is committed); this module only reads them, so the
measurement in `harness.parsing`'s docstring can be repeated on any such file.

A corpus file is JSON Lines, one model output per line:

    {"kind": "mcq", "text": "<raw output>", "letters": "ABCD", "choices": ["Box A", ...],
     "reference": "B" | null, "gold": "C" | null, "source": "mathvista", "model": "gpt4",
     "id": "17"}
    {"kind": "mcq", ..., "reference": null, "gold": "C", "reference_correct": false}
    {"kind": "count", "text": "...", "reference": 7 | null, "gold": 7}
    {"kind": "yesno", "text": "...", "reference": "yes" | "no" | null, "gold": "no"}

`reference` is what the benchmark's own extraction read from `text` (null: it found no answer).
Some benchmarks keep only a verdict, not the letter: `reference_correct` (true/false) then says
whether the reference judged the output to pick `gold`. `source`, `model`, `id` and any other
fields are carried along for the breakdown and the disagreement listing.

Figures (all rates in %):
* agreement: the parser returns the reference's answer (both None counts as agreeing); with a
  verdict-only reference, the parser's correctness equals the verdict;
* confident_different: the parser returns an answer and it differs from the reference's (a
  verdict-only item: its correctness differs from the verdict). A parse failure where the
  reference has an answer is counted apart (`we_fail`), since it costs accuracy but never
  credits a wrong option;
* counting adds, against `gold`: accuracy, off-by-one (|parsed - gold| <= 1, Molmo's "close")
  and parse-failure rates, for the parser and for the reference alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.parsing import PARSER_VERSION, parse_choice, parse_count, parse_yes_no

KINDS = ("mcq", "count", "yesno")


class CorpusError(ValueError):
    """A corpus line is not valid JSON or lacks a field."""


@dataclass(frozen=True)
class CorpusItem:
    kind: str  # "mcq", "count" or "yesno"
    text: str
    reference: str | int | None
    gold: str | int | None = None
    letters: str = ""
    choices: tuple[str, ...] = ()
    reference_correct: bool | None = None
    source: str = ""
    model: str = ""
    id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _item(obj: dict[str, Any], where: str) -> CorpusItem:
    kind = obj.get("kind")
    if kind not in KINDS:
        raise CorpusError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(obj.get("text"), str):
        raise CorpusError(f"{where}: field 'text' (the raw output) must be a string")
    if kind == "mcq" and not obj.get("letters"):
        raise CorpusError(f"{where}: an mcq line needs 'letters' (its valid letters, "
                          'e.g. "ABCD")')
    choices = obj.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise CorpusError(f"{where}: field 'choices' must be a list of strings (the option texts)")
    if "reference" not in obj and obj.get("reference_correct") is None:
        raise CorpusError(f"{where}: needs 'reference' (the benchmark's extraction, or null) "
                          "or 'reference_correct' (its verdict) ")
    if obj.get("reference_correct") is not None and obj.get("gold") is None:
        raise CorpusError(f"{where}: a verdict-only line ('reference_correct') needs 'gold'")
    known = {f for f in CorpusItem.__dataclass_fields__ if f != "extra"}
    return CorpusItem(
        kind=kind, text=obj["text"], reference=obj.get("reference"), gold=obj.get("gold"),
        letters=str(obj.get("letters", "")), choices=tuple(obj.get("choices") or ()),
        reference_correct=obj.get("reference_correct"), source=str(obj.get("source", "")),
        model=str(obj.get("model", "")), id=str(obj.get("id", "")),
        extra={k: v for k, v in obj.items() if k not in known},
    )


def load_corpus(path: Path) -> list[CorpusItem]:
    """Every line of a corpus file; a bad line raises `CorpusError` naming the file and line."""
    items = []
    with Path(path).open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise CorpusError(f"{where}: a line must be a JSON object")
            items.append(_item(obj, where))
    return items


def parse_item(item: CorpusItem) -> str | int | None:
    """Our parser's answer for a corpus item (a letter, a count, or None)."""
    if item.kind == "mcq":
        return parse_choice(item.text, item.letters, item.choices)
    if item.kind == "yesno":
        return parse_yes_no(item.text)
    return parse_count(item.text)


def _pct(k: int, n: int) -> float:
    return round(100.0 * k / n, 2) if n else 0.0


def _compare(item: CorpusItem, parsed: str | int | None) -> tuple[bool, bool]:
    """(agrees, confidently different) of one parsed answer with the item's reference."""
    if item.reference_correct is not None and item.reference is None:
        ours = parsed is not None and parsed == item.gold
        return ours == item.reference_correct, parsed is not None and ours != item.reference_correct
    return parsed == item.reference, parsed is not None and parsed != item.reference


def _count_rates(values: Sequence[int | None], gold: Sequence[int]) -> dict[str, float]:
    n = len(values)
    return {
        "accuracy": _pct(sum(v == g for v, g in zip(values, gold)), n),
        "off_by_one": _pct(sum(v is not None and abs(v - g) <= 1 for v, g in zip(values, gold)), n),
        "parse_failure": _pct(sum(v is None for v in values), n),
    }


def _figures(rows: Sequence[tuple[CorpusItem, str | int | None]]) -> dict[str, Any]:
    n = len(rows)
    agree = different = we_fail = 0
    for item, parsed in rows:
        ok, diff = _compare(item, parsed)
        agree += ok
        different += diff
        has_reference = item.reference is not None or item.reference_correct is True
        we_fail += parsed is None and has_reference
    out: dict[str, Any] = {
        "n": n, "agreement": _pct(agree, n), "confident_different": _pct(different, n),
        "we_fail": _pct(we_fail, n),
    }
    counted = [(i, p) for i, p in rows if i.kind == "count" and i.gold is not None]
    if counted:
        gold = [int(i.gold) for i, _ in counted]  # type: ignore[arg-type]
        ours = [p for _, p in counted]
        reference = [i.reference for i, _ in counted]
        out["ours_vs_gold"] = _count_rates(ours, gold)  # type: ignore[arg-type]
        out["reference_vs_gold"] = _count_rates(reference, gold)  # type: ignore[arg-type]
    return out


def agreement(
    items: Iterable[CorpusItem],
    parse: Callable[[CorpusItem], str | int | None] = parse_item,
    by: Sequence[str] = ("source", "model"),
    show: int = 0,
) -> dict[str, Any]:
    """The agreement figures of `parse` on `items`: overall, per value of each field in `by`,
    and (`show` > 0) that many disagreements with their texts, for reading."""
    rows = [(item, parse(item)) for item in items]
    out: dict[str, Any] = {"parser_version": PARSER_VERSION, **_figures(rows)}
    for key in by:
        groups: dict[str, list[tuple[CorpusItem, str | int | None]]] = defaultdict(list)
        for item, parsed in rows:
            groups[getattr(item, key)].append((item, parsed))
        if len(groups) > 1:
            out[f"by_{key}"] = {k: _figures(v) for k, v in sorted(groups.items())}
    if show:
        out["disagreements"] = [
            {"source": i.source, "model": i.model, "id": i.id, "reference": i.reference,
             "reference_correct": i.reference_correct, "gold": i.gold, "parsed": p,
             "text": i.text}
            for i, p in rows if not _compare(i, p)[0]
        ][:show]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.parse_agreement",
        description="Agreement of harness.parsing with a benchmark's reference extraction.")
    parser.add_argument("corpus", nargs="+", type=Path, help="corpus JSONL file(s)")
    parser.add_argument("--by", nargs="*", default=["source", "model"],
                        help="fields to break the figures down by (default: source model)")
    parser.add_argument("--show", type=int, default=0, help="list this many disagreements")
    args = parser.parse_args(argv)
    try:
        items = [item for path in args.corpus for item in load_corpus(path)]
    except (OSError, CorpusError) as exc:
        print(f"parse_agreement: error: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    result = agreement(items, by=args.by, show=args.show)
    seconds = time.perf_counter() - start
    result["outputs_per_second"] = round(len(items) / seconds) if seconds > 0 else None
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
