"""Interpolated modified Kneser-Ney n-gram estimation, written out as an ARPA file.

The HTR trainer builds its character language model with this (docs/htr.md says why not
IRSTLM). The estimator follows Chen & Goodman (1998), as KenLM's lmplz does:

- Each sentence is padded with one ``<s>`` in front and one ``</s>`` at the end.
- *Adjusted counts*: an n-gram of the highest order, or one that starts with ``<s>``, counts
  its occurrences; any other n-gram counts its distinct left extensions (the continuation
  count, N1+(. w)).
- Three discounts per order from that order's counts of counts t_k (adjusted counts equal
  to k): Y = t1 / (t1 + 2 t2), D_k = k - (k + 1) Y t_{k+1} / t_k for k = 1, 2, 3+.
- ``p(w | h) = max(a(hw) - D(a(hw)), 0) / S(h) + gamma(h) p(w | h')`` with ``S(h)`` the sum
  of the adjusted counts of h's extensions, ``h'`` h without its first word and
  ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / S(h)``. Unigrams interpolate with the
  uniform distribution over the vocabulary (``</s>`` and ``<unk>`` included, ``<s>`` not).

In the ARPA file each seen n-gram carries its interpolated ``log10 p(w | h)`` and each
context its ``log10 gamma(h)`` as back-off weight, so that a standard back-off reader (such
as torch_ctc.NGramLM) computes exactly the interpolated model.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, Iterable, List, Sequence, Tuple

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPACE = "<space>"

Gram = Tuple[str, ...]


def char_sentence(text: str, space: str = SPACE) -> List[str]:
    """A text line as the words of a character LM: one per character, ``space`` for " "."""
    return [space if c == " " else c for c in text]


def _discounts(counts: Iterable[int]) -> Tuple[float, float, float]:
    """D1, D2, D3+ from the counts of counts; a fallback where the data are too thin for the
    formula (a count of counts of zero, or a discount outside (0, k))."""
    t = [0, 0, 0, 0, 0]
    for c in counts:
        if c <= 4:
            t[c] += 1
    y = t[1] / (t[1] + 2 * t[2]) if t[1] and t[2] else 0.5
    out = []
    for k in (1, 2, 3):
        d = k - (k + 1) * y * t[k + 1] / t[k] if t[k] and t[k + 1] else y
        out.append(min(max(d, 0.01 * k), k - 0.01))
    return out[0], out[1], out[2]


class KneserNey:
    """An interpolated modified Kneser-Ney model of ``order`` estimated from ``sentences``
    (sequences of words, without ``<s>``/``</s>``). ``vocabulary`` adds words that may not
    occur in the text (they get the uniform share of the unigram mass)."""

    def __init__(self, sentences: Iterable[Sequence[str]], order: int, vocabulary: Iterable[str] = ()):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        raw = self._count(sentences)
        self.adjusted = self._adjust(raw)
        self.discounts = [None] + [_discounts(self.adjusted[n].values()) for n in range(1, order + 1)]
        self.vocabulary = sorted(({g[0] for g in self.adjusted[1]} | set(vocabulary) | {EOS, UNK}) - {BOS})
        for w in self.vocabulary:
            if not w or any(c.isspace() for c in w) or w == BOS:
                raise ValueError(f"vocabulary word {w!r}: ARPA words are non-empty and have no whitespace")
        self._contexts()

    # ---- estimation ---------------------------------------------------------------------------

    def _count(self, sentences: Iterable[Sequence[str]]) -> List[Dict[Gram, int]]:
        """Raw counts of every n-gram (n <= order) that ends at a predicted word."""
        raw: List[Dict[Gram, int]] = [{}] + [defaultdict(int) for _ in range(self.order)]
        for sentence in sentences:
            words = [BOS, *sentence, EOS]
            for w in sentence:
                if w in (BOS, EOS, UNK):
                    raise ValueError(f"sentence word {w!r} is reserved")
            for i in range(1, len(words)):
                for n in range(1, min(self.order, i + 1) + 1):
                    raw[n][tuple(words[i - n + 1: i + 1])] += 1
        return raw

    def _adjust(self, raw: List[Dict[Gram, int]]) -> List[Dict[Gram, int]]:
        """Adjusted counts: raw for the top order and for n-grams that start with <s>,
        distinct left extensions for the others."""
        adjusted: List[Dict[Gram, int]] = [{}] + [dict() for _ in range(self.order)]
        adjusted[self.order] = dict(raw[self.order])
        for n in range(1, self.order):
            left = defaultdict(int)
            for g in raw[n + 1]:
                left[g[1:]] += 1  # n+1-grams are distinct keys: each is one left extension of g[1:]
            for g, c in raw[n].items():
                adjusted[n][g] = c if g[0] == BOS else left[g]
        return adjusted

    def _contexts(self) -> None:
        """S(h) and gamma(h) of every context h that has an extension."""
        total: Dict[Gram, int] = defaultdict(int)
        mass: Dict[Gram, float] = defaultdict(float)
        for n in range(1, self.order + 1):
            d = self.discounts[n]
            for g, c in self.adjusted[n].items():
                total[g[:-1]] += c
                mass[g[:-1]] += d[min(c, 3) - 1]
        self.total = dict(total)
        self.gamma = {h: mass[h] / total[h] for h in total}

    # ---- queries ------------------------------------------------------------------------------

    def _discounted(self, gram: Gram) -> float:
        c = self.adjusted[len(gram)].get(gram, 0)
        return max(c - self.discounts[len(gram)][min(c, 3) - 1], 0.0) / self.total[gram[:-1]] if c else 0.0

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """p(word | context) of the interpolated model (``<unk>`` for a word outside it)."""
        if word == BOS:
            return 0.0
        if word not in self.vocabulary:
            word = UNK
        p = self._discounted((word,)) + self.gamma[()] / len(self.vocabulary)
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        for k in range(1, len(context) + 1):
            h = context[-k:]
            if h not in self.total:  # unseen context: no longer one is seen either
                break
            p = self._discounted(h + (word,)) + self.gamma[h] * p
        return p

    # ---- output ------------------------------------------------------------------------------

    def arpa_entries(self, n: int) -> List[Tuple[Gram, float, float]]:
        """(n-gram, p(w | h), gamma or None) of every n-gram the ARPA file lists at order n."""
        import math

        grams = sorted(set(self.adjusted[n]) | ({(w,) for w in self.vocabulary} | {(BOS,)} if n == 1 else set()))
        out = []
        for g in grams:
            p = self.prob(g[-1], g[:-1])
            bow = self.gamma.get(g) if n < self.order else None
            out.append((g, -99.0 if p == 0.0 else math.log10(p), None if bow is None else math.log10(bow)))
        return out

    def write_arpa(self, path: str) -> None:
        """The model as an ARPA file (log10 probabilities and back-off weights)."""
        sections = [self.arpa_entries(n) for n in range(1, self.order + 1)]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\\data\\\n")
            for n, entries in enumerate(sections, 1):
                f.write(f"ngram {n}={len(entries)}\n")
            for n, entries in enumerate(sections, 1):
                f.write(f"\n\\{n}-grams:\n")
                for g, logp, bow in entries:
                    f.write(f"{logp:.7f}\t{' '.join(g)}" + ("" if bow is None else f"\t{bow:.7f}") + "\n")
            f.write("\n\\end\\\n")
