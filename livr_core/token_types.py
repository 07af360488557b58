"""The per-position token kinds that encoding produces and the attention masks consume.

Owns `TokenType`. Types are assigned by position when a sample is encoded: image placeholder
positions are IMAGE, latent positions LATENT, the supervised answer (and its end-of-turn token,
and at inference every generated token) ANSWER, everything else TEXT (chat scaffolding, the
prompt, vision start/end markers, padding).
"""

from __future__ import annotations

from enum import IntEnum


class TokenType(IntEnum):
    TEXT = 0
    IMAGE = 1
    LATENT = 2
    ANSWER = 3
