"""`harness.parse_agreement`: a corpus file of outputs with the benchmark's reference extraction,
scored into agreement / confident-different / parse-failure figures; bad lines named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.parse_agreement import CorpusError, agreement, load_corpus, main
from harness.parsing import PARSER_VERSION

LOC = ["Box A", "Box B"]
LINES = [
    # letter references: agree, agree (both None), confidently different, we fail
    {"kind": "mcq", "text": "The answer is (B).", "letters": "AB", "choices": LOC,
     "reference": "B", "source": "s1", "model": "m1", "id": "1"},
    {"kind": "mcq", "text": "I cannot tell.", "letters": "AB", "choices": LOC,
     "reference": None, "source": "s1", "model": "m1", "id": "2"},
    {"kind": "mcq", "text": "Box A fits the dog tightly.", "letters": "AB", "choices": LOC,
     "reference": "B", "source": "s1", "model": "m2", "id": "3"},
    {"kind": "mcq", "text": "Both look fine to me.", "letters": "AB", "choices": LOC,
     "reference": "A", "source": "s1", "model": "m2", "id": "4"},
    # a verdict-only reference (TempCompass keeps a rating, not a letter)
    {"kind": "mcq", "text": "The man is dunking a basketball.", "letters": "ABC",
     "choices": ["dribbling a basketball", "passing a basketball", "dunking a basketball"],
     "reference": None, "reference_correct": True, "gold": "C", "source": "s2", "model": "m1",
     "id": "5"},
    # counts: agree and off by one from gold; reference failed where we read one
    {"kind": "count", "text": "There are 3 bars with values below 40.", "reference": 3,
     "gold": 4, "source": "s3", "model": "m1", "id": "6"},
    {"kind": "count", "text": "I count 7 people.", "reference": None, "gold": 7,
     "source": "s3", "model": "m1", "id": "7"},
]


def _write(path: Path, lines) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "\n")
    return path


def test_figures(tmp_path: Path):
    items = load_corpus(_write(tmp_path / "c.jsonl", LINES))
    result = agreement(items, show=10)
    assert result["parser_version"] == PARSER_VERSION
    assert (result["n"], result["agreement"], result["confident_different"], result["we_fail"]) \
        == (7, round(100 * 4 / 7, 2), round(100 * 2 / 7, 2), round(100 * 1 / 7, 2))
    assert result["by_source"]["s1"]["agreement"] == 50.0
    assert result["by_source"]["s3"]["ours_vs_gold"] == {
        "accuracy": 50.0, "off_by_one": 100.0, "parse_failure": 0.0}
    assert result["by_source"]["s3"]["reference_vs_gold"] == {
        "accuracy": 0.0, "off_by_one": 50.0, "parse_failure": 50.0}
    assert [d["id"] for d in result["disagreements"]] == ["3", "4", "7"]
    assert result["by_model"]["m2"]["confident_different"] == 50.0


def test_verdict_only_disagreement(tmp_path: Path):
    wrong = dict(LINES[4], text="The man is passing a basketball.")
    [item] = load_corpus(_write(tmp_path / "c.jsonl", [wrong]))
    assert agreement([item])["confident_different"] == 100.0  # we say B, the verdict says C


@pytest.mark.parametrize(("line", "message"), [
    ("{nope", "c.jsonl:1: not valid JSON"),
    (json.dumps({"kind": "essay", "text": "x", "reference": None}), "field 'kind' must be one"),
    (json.dumps({"kind": "mcq", "text": "x", "reference": None}), "needs 'letters'"),
    (json.dumps({"kind": "mcq", "text": "x", "letters": "AB"}), "needs 'reference'"),
    (json.dumps({"kind": "mcq", "text": "x", "letters": "AB", "reference": None,
                 "choices": [1, 2]}), "'choices' must be a list of strings"),
    (json.dumps({"kind": "mcq", "text": "x", "letters": "AB", "reference_correct": True}),
     "needs 'gold'"),
])
def test_bad_lines_are_named(tmp_path: Path, line: str, message: str):
    path = tmp_path / "c.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(CorpusError, match=message.replace("(", r"\(")):
        load_corpus(path)


def test_command_line(tmp_path: Path, capsys):
    path = _write(tmp_path / "c.jsonl", LINES)
    assert main([str(path), "--by", "source"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 7 and set(result["by_source"]) == {"s1", "s2", "s3"}
    assert "by_model" not in result
    assert main([str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
