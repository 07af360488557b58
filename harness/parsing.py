"""Answer extraction from a model's raw text: MCQ letters, yes/no and counts.

Owns `PARSER_VERSION`, `strip_reasoning`, `parse_choice` / `explain_choice`, `parse_yes_no`,
`parse_count` / `explain_count` (the `explain_` forms also name the deciding rule) and the
`Judge` hook type. A parser returns None when it cannot decide; the scorer counts that as wrong
and as a parse failure (never skipped, never guessed). Everything here is plain regular
expressions: deterministic, explainable, tens of thousands of outputs a second.

`PARSER_VERSION` names these rules; `harness.metrics` records it in every cell's metrics and
`harness rescore` re-parses saved raw outputs with the current version. Bump it whenever a rule
changes what any output parses to.

MCQ rules (EVAL_AND_DEDUP_NOTES.md 2.3, 2.6; measured in `harness.parse_agreement`), applied
in this order to the text after reasoning (`<think>` spans), markdown emphasis, LaTeX wrappers
and any invented next turn ("\nQuestion: ...", "\nHuman: ...") are removed. Only the item's
valid letters count. An option is named by its label ("(B)"), its text ("Box B", "the third
image": whole phrase, case-insensitive, the longest text winning where texts overlap), a
paraphrase of a text of several words ("diving into the water" for "diving into water"), or,
weakest, a bare capital ("Based on the image, B").
1. whole: the text is one letter or one option text: "B", "(B)", "B.", "Option B", "Box B".
2. final_line: the last line holds only a letter ("... so BE is 3.\n\nD"), unless a
   declaration comes after it.
3. declaration: explicit answer statements naming an option right after them ("the answer is
   (B)", "Answer: B", "the correct choice to complete the first image would be (A)", "the only
   option that satisfies this is (D)", "I choose C", "\boxed{C}", "答案是 C", "(B) is correct",
   "Point C is the correct answer"). The LAST one wins ("I think it's B. Final answer: C" is
   C); one naming two options ("the answer is (A) or (B)") gives None. Statements that no
   option fits ("none of the options", "this option is not available in the choices",
   "cannot be determined", "I'm sorry") give None, but only when no option is named after
   them and no declaration names a letter ("The answer is (B). ... impossible to answer
   definitively" is B).
4. leading_label: the answer opens with an option's label or text followed by punctuation
   ("(B) the third image. The second image, on the other hand, ..." is B; "C. P2 and P4" is C;
   "No, the circle is not larger" is "no"; "A: No, ..." is "no", the "A:" being "Answer:"),
   unless several lines open with labels (an enumeration of the options).
5. conclusion: the last clause opened by a conclusion word ("Therefore", "Thus", "So", ", so",
   "Hence", "In conclusion", "Overall", "Actually", ...) after which one option is named, not
   negated.
6. answer_first: the first clause of the first sentence that names options, if it names
   exactly one and is not negated ("Box A more accurately localizes the dog, while Box B is
   too large" is A; "The cat is eating food. There is no water to suggest swimming" is the
   food option). Not for enumerations.
7. sole_option: every non-negated clause naming exactly one option names the same one.
Otherwise None ("none"). A clause is a sentence piece cut at ";", ": " and contrast or
consequence words ("while", "whereas", "but", "than", "because", ", as", ", so", "on the other
hand", ...; never inside an option text such as "smaller than"); it is negated when it holds
"not", "n't", "neither", "nor", "never", "incorrect", "wrong", "unlikely", "ruled out",
"eliminated" or "excluded". Within a clause "(X)" labels beat texts, which beat bare capitals;
an option whose words all belong to another named option gives way to it ("decrease slightly"
is "Slightly Decrease", not "Decrease"); a number followed by an operator is an operand, not an
answer ("4 + 4 = 8" names 8). Bare capitals: an "A" followed by a lower-case word is the article
("A bounding box ..."), except before a word that never follows the article ("Both points A
and B", "A is darker"); a capital after "angle", "triangle", "for" ... or before "="
is a variable ("point A" stays an option: BLINK's reflectance options are "A is darker" ...),
and in a body of formulas ("AB = 6", "∠ABC") rules 5-7 ignore bare capitals.

yes/no (`parse_yes_no`): the same rules with the options "yes" and "no".

Counting rules (after Molmo's PointCountEval, 2.4, extended for verbose answers), on the
cleaned, lower-cased text. A number is digits ("1,238" grouped; decimals such as "3.5" are not
counts) or a word from "zero" to "twenty" ("none" = 0); a number followed by an operator
("4 + 4") is an operand.
1. whole: the text is one number ("7", "Seven.").
2. declaration: the LAST of "a total of N", "answer is N" / "answer: N", "the number of ... is
   N", "the total count is N", "there are N", "I count N", "\boxed{N}", "N objects are left",
   "only one object remains", and "there are no ..." / "no objects left" (0); where the
   declared number opens a sum ("3 groups of 4 kites + 1 kite = 12") its result counts.
3. conclusion: the first number (or a sum's result) of the last sentence opened by a
   conclusion word ("Therefore, ...").
4. refusal: a text that says it cannot see or count ("I cannot see the graph", "does not
   provide enough information") gives None, whatever numbers it quotes.
5. last_number: Molmo's rule, the last number in the text.

Judge hook: `parse_choice(..., judge=fn)` calls `fn(text, letters, choices)` only when the rules
return None, and keeps its answer only if it is one of `letters`. Nothing in the default path
calls a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# Bump when a rule changes what any output parses to (recorded in metrics, read by rescore).
PARSER_VERSION = 2

Judge = Callable[[str, str, Sequence[str]], "str | None"]

_THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think\s*>", re.IGNORECASE)
_MARKDOWN = re.compile(r"\*\*|__|`|\*|^#+\s*", re.MULTILINE)
# LaTeX wrappers around plain text: \text{B} -> B (\boxed is kept: it is a declaration).
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LATEX_MATH = re.compile(r"\\[()\[\]]|\$")  # math delimiters: "Answer: \( B \)"
_FULLWIDTH = str.maketrans({"（": "(", "）": ")", "：": ":", "［": "[", "］": "]"})
_WHOLE = re.compile(
    r"(?i:option|choice|answer)?\s*[:\-]?\s*[\(\[]?([A-Za-z])[\)\]]?[.:)]?", re.IGNORECASE
)
# Sentences: line breaks and sentence punctuation (not the "." of "A." inside "is A. text").
_SENTENCE_END = re.compile(r"\n+|(?<=[.!?])\s+")
# Where a sentence splits into clauses; the splitting word stays at the head of its clause, so a
# clause opened by "so" / "therefore" is a conclusion and one opened by "while" a contrast.
_CLAUSE_BREAK = re.compile(
    r";\s*|:\s+|,\s*(?=(?:as|but|while|whereas|although|though|because|since|however|unlike"
    r"|which|so|yet|therefore|thus|hence)\b)|\s(?=(?:while|whereas|but|although|though|because"
    r"|than|unlike|rather\s+than|instead\s+of|compared\s+to|compared\s+with"
    r"|on\s+the\s+other\s+hand|however)\b)",
    re.IGNORECASE,
)
_CONCLUSION = re.compile(
    r"^\W*(?:therefore|thus|hence|so|consequently|accordingly|in conclusion|to conclude"
    r"|in summary|to summarize|overall|ultimately|finally|actually|in short|all in all"
    r"|based on (?:this|these|the above|that|the analysis|my analysis|the observations?)"
    r"|given (?:this|these|the above))\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(?:not|neither|nor|never|incorrect|wrong|cannot|unlikely|ruled?\s+out|eliminated"
    r"|excluded)\b|n't\b|n’t\b",
    re.IGNORECASE,
)
# Words that never follow the article "a": an "A" before them is a letter ("A and B", "A is").
_NOT_AFTER_ARTICLE = (
    "and", "or", "is", "are", "was", "were", "has", "have", "had", "seems", "seem", "appears",
    "looks", "because", "since", "would", "could", "should", "will", "can", "may", "might",
    "must", "does", "did", "to", "than", "then", "as", "in", "on", "at", "of", "for", "with",
    "from", "by", "corresponds", "matches", "shows", "contains", "covers", "encloses", "fits",
    "best", "more", "most", "less", "also", "only", "which", "that", "but", "nor", "vs",
)
_LETTER = (
    r"(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Z])(?![A-Za-z0-9])"
    # a lower-case letter only before punctuation or a word that never follows the article
    # ("the answer is b because ...", not "the answer is a bit unclear")
    r"|([a-z])(?![A-Za-z0-9])(?=\s*(?:[.,;:!)<]|$)|\s+(?:" + "|".join(_NOT_AFTER_ARTICLE)
    + r")\b))"
)
_HEDGE = re.compile(  # "(A) or (B)", "A/B", "(A), (H), and (I)": two options, no decision
    r"\s*(?:,|or|and|/|&)\s*(?:option\s+|choice\s+)?[\(\[]?[A-Za-z][\)\]]?(?![A-Za-z0-9])"
)
_DECLARE_LEAD = re.compile(
    # "the answer is", "the correct choice to complete the first image would be", "the only
    # possible option that satisfies this constraint is", "Answer:", "final answer -"
    r"(?:\b(?:answer|option|choice)\b(?:\s+letter)?(?P<filler>[^.\n:(]{0,60}?)"
    r"\s*(?:\bis|\bwould\s+be|\bshould\s+be|\bwill\s+be|\bmust\s+be|=|:|-)"
    r"|\bi\s+(?:would\s+)?(?:choose|select|pick|go\s+with)"
    r"|\b(?:my|the)\s+(?:selection|pick)\s+(?:is|would\s+be)"
    r"|\\boxed\{|<answer>|(?:答案|回答)\s*(?:是|为|应为)?|选项\s*(?:是|为)?|选择?)"
    r"\s*(?:options?|choices?|letters?)?\s*[:\-]?\s*",
    re.IGNORECASE,
)
_DECLARE_TRAIL = re.compile(
    r"\s*(?:is|would\s+be|seems\s+to\s+be|appears\s+to\s+be)\s+(?:the\s+)?"
    r"(?:correct|right|best|most\s+(?:accurate|likely|appropriate|suitable)|answer\b)",
    re.IGNORECASE,
)
_TRAIL_SUBJECT = re.compile(  # "(B) is correct", "option C is the best", "b is correct"
    r"(?:\b(?:option|choice)\s+)?(?:\(([A-Za-z])\)|\[([A-Za-z])\]|\b([A-Z])|^\s*([a-z]))"
    r"(?![A-Za-z0-9])\s*$"
)
_NO_OPTION = re.compile(
    r"\bnone\s+of\s+the\s+(?:above|(?:given\s+|provided\s+|listed\s+|available\s+)?"
    r"(?:options|choices|answers))"
    r"|\bneither\s+of\s+the\s+(?:options|choices|two)"
    r"|\bno\s+(?:correct|valid|right|matching|such)\s+(?:answer|option|choice)"
    r"|\bthere\s+is\s+no\s+(?:option|choice)\b"
    r"|\b(?:is|are|was|were)(?:\s+not|n't)\s+(?:available|given|listed|present|provided|included"
    r"|among|one\s+of|in)\b[^.\n]{0,25}?\b(?:options|choices)"
    r"|\b(?:is|are)(?:\s+not|n't)\s+listed\b"
    r"|\bmistake\s+in\s+the\s+(?:question|options|choices)"
    r"|\b(?:options|choices)\s+(?:do|does)(?:\s+not|n't)\s+(?:match|include|contain)"
    r"|\b(?:correct\s+|right\s+)?(?:option|answer|choice)\s+is(?:\s+not|n't)\s+(?:provided|given"
    r"|listed|available|among|included|present)"
    r"|\b(?:cannot|can't|can\s+not|unable\s+to|impossible\s+to)\s+(?:be\s+)?(?:\w+ly\s+)?"
    r"(?:determine|determined|answer|answered|tell|say|decide|choose"
    r"|provide\s+(?:an?\s+)?answer)"
    r"|\bi'?m\s+sorry\b|\bi\s+apologi[sz]e\b",
    re.IGNORECASE,
)
_NEXT_TURN = re.compile(
    r"\n\s*(?:Question|Human|Hint|User|USER|Q|###\s*Human|<\|im_start\|>)\s*:", re.IGNORECASE
)
_PAREN = re.compile(r"[\(\[]([A-Za-z])[\)\]]")
_BARE = re.compile(
    r"(?<![A-Za-z0-9'’\-])(?<![A-Za-z]\.)"
    r"(?:(A)(?!\s+(?!(?:" + "|".join(_NOT_AFTER_ARTICLE) + r")\b)[a-z])"
    r"|([B-Z]))(?![A-Za-z0-9'’\-])(?!\.[A-Za-z])"  # not "A.M.", "U.S."
)
# A bare capital that names a point, angle or variable is not an option ("angle A = 110").
_VARIABLE = re.compile(
    r"(?:\b(?:angle|side|line|segment|vertex|triangle|circle|node|edge|plane|region|set"
    r"|matrix|vector|variable|square|rectangle|quadrilateral|parallelogram|polygon|trapezoid"
    r"|for)s?|[∠△=+\-*/^<>])\s*$",
    re.IGNORECASE,
)
_FORMULA_AFTER = re.compile(r"\s*[=+*/^<>]")
_OPERATOR_AFTER = re.compile(r"\s*(?:[+*/×÷^]|-\s*\d)")
# A body of formulas ("AB = 6", "∠ABC"): its bare capitals are variables, not options.
_MATH = re.compile(r"[∠△⊙√]|\b[A-Z]{1,4}\s*=\s*[\w(]")
# A last line holding only a letter: "... The length of BE is 3.\n\nD".
_FINAL_LINE = re.compile(r"\n\s*[\(\[]?([A-Za-z])[\)\].:]?\s*$")
# An option label opening a line: "(B)", "[B]", "B.", "b)", "c:", "B -", or "B " + text.
_LABEL = re.compile(
    r"^\s*(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Za-z])(?:\s*[.:)]|\s+-)(?!\S)|([A-Z])(?=\s))"
)

NUMBER_WORDS = {
    w: i for i, w in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
        "nineteen", "twenty",
    ))
}
NUMBER_WORDS["none"] = 0
# A count: digits (thousands may be grouped, "1,238"; decimals are not counts) or a word.
_NUMBER = (r"(\d{1,3}(?:,\d{3})+(?![\d.]\d)|\d+(?!\d|[.,]\d)|" + "|".join(NUMBER_WORDS)
           + r")")
_COUNT_DECLARATION = re.compile(
    r"(?:\ba\s+total\s+of|\b(?:final\s+)?answer(?:\s+to\s+(?:the|your|this)\s+question)?"
    r"\s*(?:is|would\s+be)?\s*[:=]?"
    r"|\b(?:the\s+)?(?:final\s+|total\s+)?(?:count|number|value)(?:\s+of\s+[^.\n]{1,100}?)?"
    r"\s+(?:is|was|would\s+be|will\s+be|:|=)"
    r"|\bthere\s+(?:are|is|were|was|will\s+be|would\s+be)(?:\s+(?:exactly|only|just))?"
    r"|\bi\s+(?:can\s+)?count(?:ed)?|\\boxed\{)\s*" + _NUMBER + r"\b(?!\s*[+*/×-]\s*\d)"
    # "only one object remains", "3 objects are left"
    r"|\b" + _NUMBER + r"\s+(?:(?!(?:the|on|in|at|to|of)\b)[a-z]+\s+){0,3}?"
    r"(?:remains?|remaining|(?:are\s+|is\s+)?left(?!\s*(?:of|side|hand|corner|half|edge|and)\b))"
    r"\b"
)
_COUNT_REFUSAL = re.compile(
    r"\b(?:cannot|can't|can\s+not|unable\s+to|impossible\s+to|not\s+possible\s+to)\s+"
    r"(?:\w+ly\s+)?(?:see|view|determine|answer|count|tell|provide|analyze)"
    r"|\b(?:does|do)\s+not\s+(?:provide|have|show|contain)\s+(?:enough|any|the|sufficient)?"
    r"\s*(?:information|data|details)"
    r"|\bno\s+(?:specific\s+)?(?:information|question|data)\b"
)
# "there are no cows", "no objects are left": zero.
_COUNT_NONE = re.compile(
    r"\bthere\s+(?:are|is|were|will\s+be)\s+no\b|\bno\s+(?:[a-z]+\s+){0,2}?(?:remain|left)\b"
)
_COUNT_ANY = re.compile(r"(?<![\w.,])" + _NUMBER + r"\b")
# "4+3+2 = 9": the result of a sum a declaration opens.
_COUNT_RESULT = re.compile(r"=\s*" + _NUMBER + r"\b(?![^.\n]*=)")


_STOP_WORDS = frozenset((
    "a", "an", "the", "of", "to", "in", "on", "at", "is", "are", "was", "be", "and", "or",
    "from", "with", "by", "for", "it", "its", "this", "that", "as", "into", "onto", "than",
    "then", "there", "their", "they", "them",
))


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content_words(text: str) -> frozenset[str]:
    """Lower-cased, crudely stemmed words of `text` without stop words ("fast-forward" is
    {"fast", "forward"}, "playing" and "played" are "play")."""
    return frozenset(_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())
                     if w not in _STOP_WORDS and len(w) > 1)


def strip_reasoning(text: str) -> str:
    """The text after the last `</think>`, cut at an unclosed `<think>` (a truncated trace)."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        # Qwen3 thinking templates open <think> in the prompt, so an output may hold only the end.
        text = text[closes[-1].end():]
    opened = _THINK_OPEN.search(text)
    return text[: opened.start()] if opened else text


def _clean(text: str) -> str:
    body = strip_reasoning(text).translate(_FULLWIDTH)
    body = _LATEX_MATH.sub("", _LATEX_TEXT.sub(r"\1", _MARKDOWN.sub("", body))).strip()
    # A model that runs on into an invented next turn ("Question: ...", "Human: ...") has
    # answered before it; the invented turn is not its answer.
    turn = _NEXT_TURN.search(body)
    return body[: turn.start()].strip() if turn else body


def _boundary(text: str, start: int, end: int) -> bool:
    """Is text[start:end] a whole phrase (no word character just outside it)?"""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_")


def _first(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g).upper()


class _Options:
    """An item's options: valid letters and their texts, and where a text names them.

    Texts are found by plain case-insensitive search with word boundaries on both sides (no
    regex per item: every item of a run may have its own option texts); at one position the
    longest text wins, so "P2 and P4" beats "P2". One-character texts ("A", "1") match exactly
    as written, since "a" would be the article.
    """

    def __init__(self, letters: str, choices: Sequence[str]) -> None:
        self.letters = letters.upper()
        texts = [(t.strip(), self.letters[i]) for i, t in enumerate(choices[: len(letters)])
                 if t and t.strip()]
        self.text_letter = {t.lower(): x for t, x in texts}
        self.texts = sorted(((t if len(t) == 1 else t.lower(), x) for t, x in texts),
                            key=lambda tx: -len(tx[0]))
        words = [(x, _content_words(t)) for t, x in texts]
        # The paraphrase tier ("diving into the water" names "diving into water") leaves out
        # options told apart only by a letter or number ("Box A" / "Box B") or made of digits.
        self.all_words = dict(words)
        self.words = [(x, w) for x, w in words
                      if len(w) > 1 and any(v.isalpha() and len(v) > 2 for v in w)
                      and sum(w == other for _, other in words) == 1]

    def letter_of_text(self, text: str) -> str | None:
        return self.text_letter.get(text.strip().lower())

    def valid(self, letter: str) -> str | None:
        letter = letter.upper()
        return letter if letter in self.letters else None

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, letter) of every option text in `text`, left to right, not overlapping."""
        lower = text.lower()
        lower = lower if len(lower) == len(text) else text
        found = []
        for option, letter in self.texts:
            haystack = text if len(option) == 1 else lower
            start = haystack.find(option)
            while start != -1:
                end = start + len(option)
                if _boundary(text, start, end):
                    found.append((start, end, letter))
                start = haystack.find(option, start + 1)
        found.sort(key=lambda f: (f[0], f[0] - f[1]))
        kept: list[tuple[int, int, str]] = []
        for span in found:
            if not kept or span[0] >= kept[-1][1]:
                kept.append(span)
        return kept

    def text_at(self, text: str, position: int) -> tuple[int, str] | None:
        """(end, letter) of the longest option text starting at `position`, if any."""
        for option, letter in self.texts:
            end = position + len(option)
            piece = text[position:end]
            if (piece if len(option) == 1 else piece.lower()) == option \
                    and _boundary(text, position, end):
                return end, letter
        return None

    def names_at(self, text: str, position: int) -> bool:
        """Does an option text cover `position` ("(D) none of the above" is an option)?"""
        return any(a <= position < b for a, b, _ in self.spans(text))

    def mentions(self, clause: str, bare: bool = True) -> set[str]:
        """Options a clause names: "(X)" labels, else option texts and their paraphrases,
        else (if `bare`) bare capitals. An option whose words are all part of another named
        option's ("Decrease" in "slightly decrease") gives way to it; a number followed by an
        operator ("4 + 4 = 8") is an operand, not an answer."""
        paren = {x.upper() for x in _PAREN.findall(clause)} & set(self.letters)
        if paren:
            return paren
        found = {x for _, end, x in self.spans(clause) if not _OPERATOR_AFTER.match(clause, end)}
        found |= self.paraphrased(clause)
        if found:
            words = {x: self.all_words.get(x, frozenset()) for x in found}
            return {x for x in found if not any(words[x] < w for w in words.values())}
        if not bare:
            return set()
        return {_first(m) for m in _BARE.finditer(clause)
                if not _VARIABLE.search(clause[max(0, m.start() - 12): m.start()])
                and not _FORMULA_AFTER.match(clause, m.end())} & set(self.letters)

    def paraphrased(self, clause: str) -> set[str]:
        """Options of several content words that the clause holds all of; where one option's
        words include another's ("slow" / "very slow"), only the larger set counts."""
        words = _content_words(clause)
        held = [(x, w) for x, w in self.words if w <= words]
        return {x for x, w in held if not any(w < other for _, other in held)}


def _declared(body: str, options: _Options) -> list[tuple[int, str | None, str]]:
    """(position, letter or None, kind) of every declaration, in text order; kind "letter"
    names an option, "hedged" two options (None), "no_option" says none fits (None)."""
    found: list[tuple[int, str | None, str]] = []
    for lead in _DECLARE_LEAD.finditer(body):
        if lead.group("filler") and _NEGATION.search(lead.group("filler")):
            continue  # "the answer is not (A)"
        rest = body[lead.end():]
        letter = re.match(_LETTER, rest)
        answer: str | None
        if letter:
            if _HEDGE.match(rest, letter.end()):
                answer = None
            else:
                answer = options.valid(_first(letter))
                if answer is None:
                    continue  # "answer is a bit unclear": not a declaration of a letter
        else:
            named = options.text_at(rest, 0)
            if named is None:
                continue
            answer = named[1]
        found.append((lead.start(), answer, "letter" if answer else "hedged"))
    for trail in _DECLARE_TRAIL.finditer(body):
        head = body[max(0, trail.start() - 80): trail.start()]
        subject = _TRAIL_SUBJECT.search(head)
        if subject and subject.group(4) and trail.start() > 80:
            subject = None  # a lower-case letter counts only as the answer's first word
        letter = options.valid(_first(subject)) if subject else None
        if letter is None:
            texts = options.spans(head)
            if texts and texts[-1][1] == len(head.rstrip()):
                letter = texts[-1][2]
        if letter is not None and not _NEGATION.search(head[subject.start() if subject else 0:]):
            found.append((trail.start(), letter, "letter"))
    # "No option fits" counts only if no option is named after it ("cannot be determined.
    # However, ... would be 1:3 (A)" goes on to the other rules).
    found += [(m.start(), None, "no_option") for m in _NO_OPTION.finditer(body)
              if not options.mentions(body[m.end():]) and not options.names_at(body, m.start())]
    return sorted(found)


def _enumerated(body: str) -> bool:
    """Do several lines open with different option labels (a list of the options)?"""
    labels = {_first(m) for line in body.splitlines() if (m := _LABEL.match(line))}
    return len(labels) > 1


def _leading_label(body: str, options: _Options) -> str | None:
    if _enumerated(body):
        return None
    opening = options.text_at(body, 0)
    if opening and re.match(r"\s*(?:[,.;:!]|$)", body[opening[0]:]):
        return opening[1]  # "No, ...", "Box A. ..."
    first = _LABEL.match(body)
    if first is None or _HEDGE.match(body, first.end()):
        return None
    letter = options.valid(_first(first))
    rest = body[first.end():]
    after = options.text_at(body, first.end() + len(rest) - len(rest.lstrip()))
    if after is not None and after[1] != letter:
        # "A: No, ..." is "Answer: No": the option text, not the label, is the answer.
        return after[1] if body[first.end() - 1] == ":" else None
    bare_a = first.group(4) == "A" and not body[first.end():].lstrip()[:1].isupper()
    if letter is None or (bare_a and options.letter_of_text(body[first.end():]) != "A"):
        return None  # "A bounding box ..." is the article, unless "A <option A's text>"
    return letter


def _split_clauses(sentence: str, options: _Options) -> list[str]:
    """A sentence cut at clause breaks, except inside an option text ("smaller than")."""
    spans = [(a, b) for a, b, _ in options.spans(sentence)]
    pieces, start = [], 0
    for cut in _CLAUSE_BREAK.finditer(sentence):
        if not any(a <= cut.start() < b for a, b in spans):
            pieces.append(sentence[start:cut.start()])
            start = cut.end()
    pieces.append(sentence[start:])
    return [p for p in pieces if p.strip()]


def _by_clauses(body: str, options: _Options) -> tuple[str | None, str]:
    bare = not _MATH.search(body)
    sentences = [[(c, options.mentions(c, bare), bool(_NEGATION.search(c)))
                  for c in _split_clauses(s, options)]
                 for s in _SENTENCE_END.split(body) if s.strip()]
    for sentence in reversed(sentences):
        for i in reversed(range(len(sentence))):
            if _CONCLUSION.match(sentence[i][0]):
                named = next(((m, neg) for _, m, neg in sentence[i:] if m), None)
                if named is not None and len(named[0]) == 1 and not named[1]:
                    return next(iter(named[0])), "conclusion"
    enumerated = _enumerated(body)
    opening = next(((m, neg) for _, m, neg in sentences[0] if m), None) if sentences else None
    if not enumerated and opening is not None and len(opening[0]) == 1 and not opening[1]:
        return next(iter(opening[0])), "answer_first"
    affirmed = {next(iter(m)) for s in sentences for _, m, neg in s if len(m) == 1 and not neg}
    if len(affirmed) == 1 and not enumerated:
        return affirmed.pop(), "sole_option"
    return None, "none"


def explain_choice(text: str, letters: str, choices: Sequence[str] = ()) -> tuple[str | None, str]:
    """`parse_choice`'s answer and the rule that decided it: "whole", "final_line",
    "declaration", "leading_label", "conclusion", "answer_first", "sole_option", "none" (no
    rule decided) or "empty"."""
    body = _clean(text)
    if not body:
        return None, "empty"
    options = _Options(letters, choices)
    whole = _WHOLE.fullmatch(body.rstrip("."))
    if whole:
        return options.valid(whole.group(1)), "whole"
    by_text = options.letter_of_text(body.rstrip("."))
    if by_text:
        return by_text, "whole"
    declared = _declared(body, options)
    final = _FINAL_LINE.search(body)
    # A last line holding only a letter is the model's final word, like a declaration.
    if final and options.valid(final.group(1)) and not _enumerated(body) \
            and (not declared or declared[-1][0] < final.start()):
        return options.valid(final.group(1)), "final_line"
    if declared:
        # A stated letter beats a later "cannot be determined" hedge ("The answer is (B). ...
        # it is impossible to answer definitively" is B); hedged or invalid ones are None.
        letters_declared = [(p, x) for p, x, kind in declared if kind == "letter"]
        return (letters_declared or declared)[-1][1], "declaration"
    label = _leading_label(body, options)
    if label:
        return label, "leading_label"
    return _by_clauses(body, options)


def parse_choice(
    text: str, letters: str, choices: Sequence[str] = (), judge: Judge | None = None
) -> str | None:
    """The option letter `text` answers, among `letters` (e.g. "ABCD"), or None.

    `choices` are the option texts in letter order ("Box A", "About the same"), matched as whole
    phrases, case-insensitively. `judge` is consulted only when the rules find no answer.
    """
    answer = explain_choice(text, letters, choices)[0]
    if answer is None and judge is not None:
        answer = judge(text, letters, tuple(choices))
        answer = answer.upper() if isinstance(answer, str) and answer.upper() in letters else None
    return answer


def parse_yes_no(text: str) -> str | None:
    """"yes" or "no" as `text` answers a yes/no question (the MCQ rules with those two
    options), or None."""
    letter = parse_choice(text, "AB", ("yes", "no"))
    return {"A": "yes", "B": "no"}.get(letter or "")


def _number(token: str) -> int:
    return int(token.replace(",", "")) if token[0].isdigit() else NUMBER_WORDS[token]


def explain_count(text: str) -> tuple[int | None, str]:
    """`parse_count`'s answer and the rule that decided it: "whole", "declaration",
    "conclusion", "refusal", "last_number", "none" or "empty"."""
    body = _clean(text).lower().rstrip(".! ")
    if not body:
        return None, "empty"
    if re.fullmatch(_NUMBER, body):
        return _number(body), "whole"
    refusal = _COUNT_REFUSAL.search(body)
    declared: list[tuple[int, int]] = [] if refusal else [
        (m.start(), 0) for m in _COUNT_NONE.finditer(body)]
    for m in _COUNT_DECLARATION.finditer(body):
        # "3 groups of 4 kites + 1 kite = 12": the sum the declaration opens.
        rest = _SENTENCE_END.split(body[m.end():], maxsplit=1)[0]
        result = _COUNT_RESULT.search(rest)
        declared.append((m.start(), _number(next(g for g in (result or m).groups() if g))))
    if declared:
        return max(declared)[1], "declaration"
    sentences = [x for x in _SENTENCE_END.split(body) if x.strip()]
    for sentence in reversed(sentences):
        found = _COUNT_ANY.search(sentence)
        if _CONCLUSION.match(sentence) and found:
            result = _COUNT_RESULT.search(sentence)
            return _number((result or found).group(1)), "conclusion"
    if refusal:
        return None, "refusal"  # "I cannot see the graph ... at x = 0 is 0": no count given
    found = [m.group(1) for m in _COUNT_ANY.finditer(body)]
    return (_number(found[-1]), "last_number") if found else (None, "none")


def parse_count(text: str) -> int | None:
    """The count `text` states, or None."""
    return explain_count(text)[0]
