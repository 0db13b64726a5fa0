"""Offline English text for the synthetic lines: Debian's fortunes and word list.

Lines are cut at word boundaries from the fortune cookies (real sentences, with
punctuation and digits) and, for a share of the lines, drawn as random words from
the wamerican word list (so the model cannot lean on a small language model).
Everything is filtered to the tokenizer's character set.
"""

from __future__ import annotations

import functools
import glob
import os
import re
from typing import List, Sequence

import numpy as np

FORTUNE_DIRS = ["/usr/share/games/fortunes"]
WORD_LISTS = ["/usr/share/dict/american-english", "/usr/share/dict/words"]

_FALLBACK = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs! "
    "How vexingly quick daft zebras jump; 1234567890 (sphinx of black quartz, judge my vow?) "
    "A wizard's job is to vex chumps quickly in fog - Waltz, bad nymph, for quick jigs & vex/"
)


@functools.lru_cache(maxsize=4)
def _read_fortunes(dirs: tuple) -> tuple:
    return tuple(_fortune_paragraphs(dirs))


def fortune_paragraphs(dirs: Sequence[str] = FORTUNE_DIRS) -> List[str]:
    """The fortune cookies of every fortunes file, whitespace collapsed (read once per process)."""
    return list(_read_fortunes(tuple(dirs)))


def _fortune_paragraphs(dirs: Sequence[str]) -> List[str]:
    """The fortune cookies of every fortunes file (not the .dat index or .u8 links), in a fixed order."""
    out: List[str] = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*"))):
            if path.endswith((".dat", ".u8")) or os.path.isdir(path) or os.path.islink(path):
                continue
            try:
                with open(path, encoding="utf-8", errors="ignore") as f:
                    text = f.read()
            except OSError:
                continue
            out.extend(p for p in (" ".join(c.split()) for c in text.split("\n%\n")) if p)
    return out


def word_list(paths: Sequence[str] = WORD_LISTS) -> List[str]:
    """The words of the first word list found (read once per process)."""
    return list(_read_words(tuple(paths)))


@functools.lru_cache(maxsize=4)
def _read_words(paths: tuple) -> tuple:
    for p in paths:
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="ignore") as f:
                return tuple(w.strip() for w in f if w.strip())
    return ()


def clean(text: str, charset: str) -> str:
    """Keep only characters of charset; collapse whitespace."""
    allowed = set(charset)
    text = text.replace("\t", " ").replace("`", "'")
    text = "".join(c for c in text if c in allowed)
    return re.sub(r" +", " ", text).strip()


def make_lines(
    n: int,
    charset: str,
    seed: int,
    min_chars: int = 6,
    max_chars: int = 40,
    word_share: float = 0.3,
    part: tuple | None = None,
) -> List[str]:
    """n text lines, deterministic in seed; lengths spread over [min_chars, max_chars].

    ``part`` = (k, m) keeps only the paragraphs and words whose index is k modulo m, so
    that the splits draw on disjoint text (train: k != 0, test: k = 0).
    """
    rng = np.random.default_rng(seed)
    paras = [clean(p, charset) for p in fortune_paragraphs()]
    words = [w for w in (clean(w, charset) for w in word_list()) if w and " " not in w]
    if part is not None:
        k, m = part
        keep = (lambda i: i % m == k) if k >= 0 else (lambda i: i % m != -k - 1)
        paras = [p for i, p in enumerate(paras) if keep(i)]
        words = [w for i, w in enumerate(words) if keep(i)]
    paras = [p for p in paras if len(p) >= min_chars] or [clean(_FALLBACK, charset)]
    lines: List[str] = []
    while len(lines) < n:
        target = int(rng.integers(min_chars, max_chars + 1))
        if words and rng.random() < word_share:
            line = ""
            while len(line) < target:
                w = words[int(rng.integers(len(words)))]
                if rng.random() < 0.15:
                    w = w.capitalize()
                line = f"{line} {w}".strip()
        else:
            para = paras[int(rng.integers(len(paras)))].split(" ")
            start = int(rng.integers(len(para)))
            line = ""
            for w in para[start:]:
                if line and len(line) + 1 + len(w) > target:
                    break
                line = f"{line} {w}".strip()
        line = line[:max_chars].strip()
        if len(line) >= min_chars:
            lines.append(line)
    return lines
