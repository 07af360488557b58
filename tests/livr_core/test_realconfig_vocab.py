"""The offline Qwen vocabulary equals the published tokenizer on known encodings."""

import json

from transformers import Qwen2Tokenizer

from livr_core.realconfig.vocab import N_REGULAR, bytes_to_unicode, qwen_vocab_files


def test_vocab_and_merges_have_the_published_sizes_and_encodings(tmp_path):
    vocab_path, merges_path = qwen_vocab_files(tmp_path)
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    merges = merges_path.read_text(encoding="utf-8").splitlines()
    assert len(vocab) == N_REGULAR == 151_643
    assert merges[0] == "#version: 0.2" and len(merges) - 1 == 151_387  # one per multi-byte token
    assert merges[1] == "Ġ Ġ"  # the first merge of the published file (two spaces)
    tok = Qwen2Tokenizer(vocab=str(vocab_path), merges=str(merges_path))
    assert tok("Hello world")["input_ids"] == [9707, 1879]  # as published by Qwen
    text = "Which point is closer: (A) or (B)? 中文 and   spaces!\n"
    assert tok.decode(tok(text)["input_ids"]) == text
    # A second call reuses the files instead of converting again.
    before = vocab_path.stat().st_mtime_ns
    assert qwen_vocab_files(tmp_path) == (vocab_path, merges_path)
    assert vocab_path.stat().st_mtime_ns == before


def test_byte_table_is_a_bijection_of_256_bytes():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ"
