"""The per-position token kinds that encoding produces and the attention masks consume.

Owns `TokenType`. Types are assigned by position when a sample is encoded:
* IMAGE: image placeholder positions (the image's features);
* LATENT: the K latent positions;
* ANSWER: the supervised answer, its end-of-turn token, and at inference every generated token;
* PROMPT: the sample's prompt text, i.e. the user's question and its options (paper: "the
  prompt Q"), exactly the tokens of `Sample.prompt` as the chat template placed them;
* TEXT: everything else: the chat scaffolding (system prompt, `<|im_start|>user`, the first token),
  vision start/end markers, the assistant-turn header, padding.

PROMPT is split from TEXT for one mask: Table 4(a)'s "+latent->prompt" ablation bars the latents
from the question ("latents need to see the question", Sec. 4.4.3) and from nothing else. Every
other mask treats PROMPT and TEXT alike (both are text).
"""

from __future__ import annotations

from enum import IntEnum


class TokenType(IntEnum):
    TEXT = 0
    IMAGE = 1
    LATENT = 2
    ANSWER = 3
    PROMPT = 4


TEXT_TYPES = (TokenType.TEXT, TokenType.PROMPT)  # every text position that is not the answer
