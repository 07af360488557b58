"""Answer extraction on tricky outputs: valid letters only, the last stated answer, ambiguity
is a failure, reasoning traces are ignored; counts from digits, words and "a total of N"."""

from __future__ import annotations

import pytest

from harness.parsing import parse_choice, parse_count, strip_reasoning

LOC = ("Box A", "Box B")
REFL = ("A is darker", "B is darker", "About the same")


@pytest.mark.parametrize(
    ("text", "letters", "choices", "expected"),
    [
        ("The answer is (B).", "AB", (), "B"),
        ("**B**", "AB", (), "B"),
        ("Based on the image, A", "AB", (), "A"),
        ("(A) or (B)", "AB", (), None),  # hedged: ambiguous
        ("B", "AB", (), "B"),
        ("b", "AB", (), "B"),
        ("(C)", "ABCD", (), "C"),
        ("C.", "ABC", (), "C"),
        ("<think>It looks like A. Or maybe D.</think> C", "ABCD", (), "C"),
        ("The image shows... </think>\n\n(B)", "AB", (), "B"),  # Qwen3: <think> was in the prompt
        ("<think>The answer is A", "AB", (), None),  # trace cut off before any answer
        ("I think it's B. Final answer: C", "ABCD", (), "C"),  # last statement wins
        ("It could be A. Actually, it's B.", "AB", (), "B"),
        ("Answer: **D**", "ABCD", (), "D"),  # OPD-V#2 was parsed as A
        ("The correct answer is (B)", "AB", (), "B"),  # lmms-eval#1434 parsed "T"
        ("\\boxed{C}", "ABC", (), "C"),
        ("B is the correct answer.", "AB", (), "B"),
        ("(A) or (B)? Looking closer, the answer is (B).", "AB", (), "B"),  # a final statement
        ("The answer is (A) or (B).", "AB", (), None),  # a hedged declaration is no declaration
        ("E", "ABCD", (), None),  # not a valid letter
        ("(D)", "AB", (), None),  # valid for 4-way items only
        ("The answer is (C).", "AB", (), None),
        ("", "AB", (), None),
        ("   ", "AB", (), None),
        ("The answer is a bit unclear", "AB", (), None),  # lower-case "a" is a word
        ("A bounding box is drawn around the dog.", "AB", LOC, None),  # the article
        ("Box B", "AB", LOC, "B"),  # option text
        ("Box A is better than Box B", "AB", LOC, "A"),  # the comparison's subject
        ("A is darker than B.", "ABC", REFL, "A"),  # option text beats bare letters
        ("They are about the same.", "ABC", REFL, "C"),
        ("(A) Box A\n(B) Box B\nAnswer: B", "AB", LOC, "B"),  # echoed options, then an answer
    ],
)
def test_parse_choice(text: str, letters: str, choices: tuple[str, ...], expected: str | None):
    assert parse_choice(text, letters, choices) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        ("seven", 7),
        ("Seven.", 7),
        ("There are 7 cows.", 7),
        ("There are seven cows in the image.", 7),
        ("twenty", 20),
        ("Counting the cows shows a total of 12.", 12),
        ("I count 3 red and 4 blue balls, a total of 7 balls.", 7),  # the total, not the last
        ("The answer is 4 (2 rows of 2).", 4),  # a declaration beats the last number
        ("<think>3 or 4?</think> 5", 5),
        ("There are none.", 0),
        ("I see 2, no wait, 3", 3),  # the last number
        ("about 3.5", None),  # not a count
        ("Someone is there", None),  # "one" inside a word is not a number
        ("no idea", None),
        ("", None),
    ],
)
def test_parse_count(text: str, expected: int | None):
    assert parse_count(text) == expected


def test_strip_reasoning():
    assert strip_reasoning("<think>x</think>y") == "y"
    assert strip_reasoning("a <think>b") == "a "
    assert strip_reasoning("plain") == "plain"
