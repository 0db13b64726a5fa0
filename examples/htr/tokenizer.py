"""Characters <-> ids for CTC.

The mapping: id 0 is the CTC blank; the characters of ``charset`` get ids 1..len(charset)
in the order given (for the synthetic data: a-z, A-Z, 0-9, then " .,;:'\\"!?-()&/").
The model's output layer therefore has ``len(tokenizer) = len(charset) + 1`` classes.
Characters outside the charset are dropped by :meth:`encode` (or raise with
``strict=True``). :meth:`decode` turns ids into text; the trainer gets a best path's ids from
``torch_ctc.greedy_decode``.
"""

from __future__ import annotations

import json
from typing import Iterable, List, Sequence


class Tokenizer:
    BLANK = 0

    def __init__(self, charset: str):
        if len(set(charset)) != len(charset):
            raise ValueError("charset has duplicate characters")
        self.charset = charset
        self.char_to_id = {c: i + 1 for i, c in enumerate(charset)}
        self.id_to_char = {i + 1: c for i, c in enumerate(charset)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "Tokenizer":
        """A tokenizer for every character of these texts, sorted."""
        return cls("".join(sorted(set("".join(texts)))))

    def __len__(self) -> int:
        """Number of classes, blank included."""
        return len(self.charset) + 1

    def encode(self, text: str, strict: bool = False) -> List[int]:
        if strict:
            missing = sorted(set(text) - set(self.char_to_id))
            if missing:
                raise KeyError(f"characters not in the tokenizer: {missing!r}")
        return [self.char_to_id[c] for c in text if c in self.char_to_id]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.id_to_char.get(int(i), "") for i in ids)

    def to_json(self) -> str:
        return json.dumps({"blank": self.BLANK, "charset": self.charset})

    @classmethod
    def from_json(cls, s: str) -> "Tokenizer":
        return cls(json.loads(s)["charset"])


class ForumTokenizer(Tokenizer):
    """The forum's mistake: characters numbered from 0, so the first one (here the space)
    gets the blank's id. Used by ``--recipe forum`` only."""

    def __init__(self, charset: str):
        charset = " " + charset.replace(" ", "")
        super().__init__(charset)
        self.char_to_id = {c: i for i, c in enumerate(charset)}
        self.id_to_char = {i: c for i, c in enumerate(charset)}

    def __len__(self) -> int:
        return len(self.charset)
