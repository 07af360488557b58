"""Answer extraction on tricky outputs: valid letters only, the last stated answer, ambiguity
is a failure, reasoning traces are ignored; counts from digits, words and "a total of N"."""

from __future__ import annotations

import pytest

from harness.parsing import (
    explain_choice,
    explain_count,
    parse_choice,
    parse_count,
    parse_yes_no,
    strip_reasoning,
)

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


JIG = ("the second image", "the third image")
PTS = ("Point A", "Point B", "Point C", "Point D")
YN = ("yes", "no")
ACT = ("riding a horse", "wielding a spear", "drawing sword from sheath", "shooting an arrow")


@pytest.mark.parametrize(
    ("text", "letters", "choices", "expected", "rule"),
    [
        # The three verbose patterns: the answer first, then talk of the other option.
        ("(B) the third image. The second image, on the other hand, has a different edge.",
         "AB", JIG, "B", "leading_label"),
        ("Box A more accurately localizes the cat. Box B, on the other hand, is too large.",
         "AB", LOC, "A", "answer_first"),
        # "A" before a lower-case word is an option when the word cannot follow the article.
        ("Both points A and B are on the same surface, so about the same.", "ABC", REFL, "C",
         "conclusion"),
        ("A answer1", "AB", ("answer1", "answer2"), "A", "leading_label"),
        # More answers in the shape BLINK's tasks get (written here, after those patterns).
        (("To find the missing part we compare the edges. The second image continues the sky "
         "and the roof line. Therefore, the second image is the missing part."), "AB", JIG, "A",
         "conclusion"),
        (("Box B more accurately encloses the dog, as it fits tightly, whereas Box A includes "
         "extra space."), "AB", LOC, "B", "answer_first"),
        (("The reference point is on the cat's left ear. In the second image, the matching spot "
         "on the left ear is Point C."), "ABCD", PTS, "C", "sole_option"),
        ("Point A is on a white wall and point B is on a dark table. Therefore B is darker.",
         "ABC", REFL, "B", "conclusion"),
        ("Neither image fits perfectly, but the second image is closer.", "AB", JIG, "A",
         "answer_first"),
        # Declarations with words between the noun and the verb.
        (("Looking at the edges, the correct choice to complete the first image would be (A) the "
         "second image."), "AB", JIG, "A", "declaration"),
        ("The only possible option that satisfies this constraint is (D).", "ABCD", (), "D",
         "declaration"),
        ("The correct option letter is C. So angle A would be 25 degrees.", "ABCD",
         ("25", "35", "40", "45"), "C", "declaration"),
        ("Answer: \\( \\text{I} \\)", "ABCDEFGHIJ", (), "I", "whole"),  # LaTeX wrappers
        ("Answer: (E)A: 3.33 years", "ABCDE", (), "E", "declaration"),
        ("Answer: Options (A), (H), and (I) cover typical scenarios.", "ABCDEFGHI", (), None,
         "declaration"),  # several options declared: no decision
        ("所以答案是：(D) 45°", "ABCD", (), "D", "declaration"),
        ("The answer is the third image.", "AB", JIG, "B", "declaration"),  # an option text
        ("Point C is the correct answer because it sits on the handle.", "ABCD", PTS, "C",
         "declaration"),
        ("The answer is (B). The picture is blurry, so it is impossible to answer definitively.",
         "AB", (), "B", "declaration"),  # a stated letter beats a later hedge
        # Saying that no option fits is a declaration of no answer.
        ("The angle is 70°. However, this option is not available in the choices.", "ABCD",
         ("25°", "35°", "40°", "45°"), None, "declaration"),
        ("I'm sorry, but I can't assist with that request.", "AB", LOC, None, "declaration"),
        ("(D) none of the above", "ABCD", ("a", "b", "c", "none of the above"), "D",
         "leading_label"),  # ... unless that is an option's own text
        # An invented next turn after the answer is not part of the answer.
        ("The answer is (C) 4.\n\nQuestion: What is x?\nChoices:\n(A) 1\n(B) 2", "ABCD", (), "C",
         "declaration"),
        # "A:" opening an answer in chat style is "Answer:", not option A.
        ("A: No, the red bar is not the largest.", "AB", YN, "B", "leading_label"),
        ("No, the right circle is not larger than the left one.", "AB", YN, "B",
         "leading_label"),
        # Conclusions.
        (("The REF point is on the bird's leg. Point A is on its wing and Point B on its beak. "
         "Therefore, Point D is the corresponding point."), "ABCD", PTS, "D", "conclusion"),
        ("The REF point lies on the handle. Thus Point C matches it.", "ABCD", PTS, "C",
         "conclusion"),
        # Answer first, explanation (with negations) after.
        (("The cat is eating food. There is no water to suggest swimming, and it is not climbing "
         "a tree."), "ABC", ("swimming", "climbing a tree", "eating food"), "C", "answer_first"),
        ("The knight is drawing a sword from its sheath, as the frames show.", "ABCD", ACT, "C",
         "answer_first"),  # a paraphrase of the option text
        (("The third image fits the missing part, while the edges of the second image do not "
         "align."), "AB", JIG, "B", "answer_first"),
        ("The value of f(-3) is smaller than the value of f(2).", "ABC",
         ("larger than", "equal to", "smaller than"), "C", "answer_first"),  # no cut in a text
        ("Point A is not the match; it is on the wing.", "ABCD", PTS, None, "none"),
        # Enumerations of the options decide nothing by themselves.
        ("(A) Point A is on the tip, not used to poke.\n(B) Point B is on the handle, not used.",
         "ABCD", PTS, None, "none"),
        ("(E) 60°\n(F) 72°\n(G) 81°", "ABCD", ("36°", "44°", "27°", "54°"), None, "none"),
        # Variables and abbreviations are not options.
        ("In triangle ABC, angle A = 110 degrees.", "ABCD", (), None, "none"),
        ("Solving for C, we find the angle is 70 degrees.", "ABCD", ("25", "30", "40", "50"),
         None, "none"),
        # BLINK's reflectance: the options are "A is darker", "B is darker", "About the same".
        ("The surface at point A appears darker than at point B.", "ABC", REFL, "A",
         "answer_first"),
        ("The class begins at 11.50 A.M. on Monday.", "ABCD", (), None, "none"),
        ("As a text-based AI, I cannot see the image.", "ABCDE", ("A", "B", "C", "D", "E"), None,
         "none"),  # a one-letter option text is matched as written, "a" is the article
        # Lower-case letters only count right after a declaration.
        ("The answer is b because the image shows a dog.", "ABCD", (), "B", "declaration"),
        ("I'll go with plan b", "ABCD", (), None, "none"),
        ("c) the red ball on the left", "ABCD", (), "C", "leading_label"),
        ("d is correct", "ABCD", (), "D", "declaration"),
        ("<answer>c</answer>", "ABCD", (), "C", "declaration"),
        ("e.g. the ball on the left", "ABCDE", (), None, "none"),
        ("The DNA helix unwinds during replication.", "ABCD", (), None, "none"),
    ],
)
def test_parse_choice_verbose(text, letters, choices, expected, rule):
    assert explain_choice(text, letters, choices) == (expected, rule)
    assert parse_choice(text, letters, choices) == expected


def test_short_answers_are_whole_answers():
    for text, expected in [("B", "B"), ("(b)", "B"), ("C.", "C"), ("[D]", "D"), ("Box B", "B"),
                           ("box b.", "B"), ("About the same", "C"), ("Option A", "A")]:
        choices = LOC if "ox" in text else REFL
        assert explain_choice(text, "ABCD", choices) == (expected, "whole"), text


def test_parse_yes_no():
    assert parse_yes_no("Yes, the two lines are the same length.") == "yes"
    assert parse_yes_no("No. The map shows a lower value.") == "no"
    assert parse_yes_no("The answer is no.") == "no"
    assert parse_yes_no("yes") == "yes"
    assert parse_yes_no("It is hard to say.") is None


def test_judge_only_when_the_rules_fail():
    calls = []

    def judge(text, letters, choices):
        calls.append((text, letters, choices))
        return "b"

    assert parse_choice("The answer is (A).", "AB", LOC, judge) == "A"
    assert calls == []  # the rules decided: the judge is never asked
    assert parse_choice("Hard to tell from this angle.", "AB", LOC, judge) == "B"
    assert calls == [("Hard to tell from this angle.", "AB", LOC)]
    assert parse_choice("Hard to tell.", "AB", LOC, lambda *a: "Z") is None  # not a valid letter


@pytest.mark.parametrize(
    ("text", "expected", "rule"),
    [
        # Verbose counts: the stated count, not the last number of the explanation.
        ("There are 3 bars with values below 40.", 3, "declaration"),
        ("There are 4 objects. After removing the cube, there are 3 objects left.", 3,
         "declaration"),  # the last statement wins
        (("The number of models that score above 60 is 3. Model 1 scores 65 and model 3 "
         "scores 61."), 3, "declaration"),
        ("I count 7 people: two on the left and five on the right.", 7, "declaration"),
        ("So the total number of kites is 3 groups of 4 kites + 1 kite = 13.", 13,
         "declaration"),  # the sum's result
        ("After removing the cubes, only one object remains.", 1, "declaration"),
        ("There are no cows in this picture.", 0, "declaration"),
        ("The driver drove a total of 1,238 miles.", 1238, "declaration"),
        ("So the answer to your question is 3.", 3, "declaration"),
        ("Therefore, 4 + 4 = 8 objects.", 8, "conclusion"),
        ("I cannot see the graph. The value at x = 0 is 0.", None, "refusal"),
        ("The text does not provide enough information about the 56 boxes.", None, "refusal"),
        ("3 people lifted at least 46 pounds", 46, "last_number"),  # Molmo's rule, kept
        ("Seven.", 7, "whole"),
    ],
)
def test_parse_count_verbose(text, expected, rule):
    assert explain_count(text) == (expected, rule)
