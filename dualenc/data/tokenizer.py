"""Word-level tokenizer: lower-cased words, a fixed context length, and a padding mask."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Tokenizer:
    """Maps captions to (N, context_length) int64 ids and a (N, context_length) bool mask (True = token)."""

    def __init__(self, vocab: Sequence[str], context_length: int):
        if list(vocab[:2]) != [PAD, UNK]:
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}; got {list(vocab[:2])}")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = context_length

    @classmethod
    def from_texts(cls, texts: Iterable[str], context_length: int) -> "Tokenizer":
        found = sorted({w for t in texts for w in words(t)})
        return cls([PAD, UNK, *found], context_length)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.index.get(w, 1) for w in words(text)][: self.context_length]
            if not tokens:
                raise ValueError(f"caption {text!r} has no words to tokenize")
            ids[row, : len(tokens)] = tokens
        return ids, ids != 0
