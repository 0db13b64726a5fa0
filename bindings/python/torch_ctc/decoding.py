"""CTC prefix beam search with n-gram language models (docs/decoding.md)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch

from .functional import Lengths, _as_lengths, _check_tensor


class NGramLM:
    """A back-off n-gram language model read from an ARPA file by torch_ctc's own C++
    reader (no KenLM).

    Use :meth:`from_arpa`. ``tokens[i]`` is what token id ``i`` means to the model:

    - a character LM (no ``word_delimiter``): ``tokens[i]`` is the ARPA word of token
      ``i``, e.g. single characters and ``"<space>"`` for the space token. Every token
      but ``blank`` must be in the model.
    - a word LM (``word_delimiter=`` the id of the word separator, e.g. the space
      token): ``tokens[i]`` is the text of token ``i``; a word is the concatenated text
      of the tokens between two delimiters, scored when the delimiter (or the end of
      the hypothesis, for the last word) is reached; unknown words score as ``<unk>``.
    """

    def __init__(self, native, tokens: Sequence[str]):
        self._native = native
        self.tokens = list(tokens)

    @classmethod
    def from_arpa(cls, path: Union[str, os.PathLike], tokens: Sequence[str], *, blank: int = 0,
                  word_delimiter: Optional[int] = None) -> "NGramLM":
        """Load ``path``. Raises ValueError naming the line of a malformed file, or the
        tokens a character LM lacks."""
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise TypeError("torch_ctc: tokens must be a sequence of strings, one per token id")
        delimiter = -1 if word_delimiter is None else int(word_delimiter)
        native = torch.classes.torch_ctc.NGramLM(os.fspath(path), list(tokens), int(blank), delimiter)
        return cls(native, tokens)

    @property
    def order(self) -> int:
        return self._native.order()

    @property
    def blank(self) -> int:
        return self._native.blank()

    @property
    def word_delimiter(self) -> Optional[int]:
        d = self._native.word_delimiter()
        return None if d < 0 else d

    def __len__(self) -> int:
        """The number of words in the model's vocabulary."""
        return self._native.vocabulary_size()

    def score(self, tokens: Sequence[int]) -> float:
        """``ln P_lm(tokens </s>)``, natural log, as the beam search scores it."""
        return self._native.score([int(t) for t in tokens])

    def __repr__(self) -> str:
        kind = "character" if self.word_delimiter is None else f"word (delimiter {self.word_delimiter})"
        return f"NGramLM(order={self.order}, vocabulary={len(self)}, {kind} LM over {len(self.tokens)} tokens)"


@dataclass
class Hypothesis:
    """One decoded sequence: its tokens, its score (natural log) and the frame at which
    the search first emitted each token."""

    tokens: List[int]
    score: float
    timesteps: List[int]


def _threshold(value: Optional[float], name: str) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"torch_ctc: {name} must be a number or None, got {type(value).__name__}")
    return float(value)


def beam_search(
    log_probs: torch.Tensor,
    input_lengths: Lengths,
    *,
    beam_size: int = 16,
    blank: int = 0,
    batch_first: bool = False,
    nbest: int = 1,
    lm: Optional[NGramLM] = None,
    lm_weight: float = 0.5,
    token_score: float = 0.0,
    token_cutoff: Optional[int] = None,
    beam_threshold: Optional[float] = None,
    blank_skip_threshold: Optional[float] = None,
) -> Union[List[List[Hypothesis]], List[Hypothesis]]:
    """CTC prefix beam search: for each sample, up to ``nbest`` hypotheses, best first.

    ``log_probs`` follows :func:`torch_ctc.ctc_loss`'s layouts and dtypes ((T, N, C),
    (N, T, C) with ``batch_first``, or (T, C) unbatched, which returns one list). The
    samples are decoded in C++ on torch's intra-op threads with the GIL released; CUDA
    input is copied to the host first.

    Scores: with no LM and no pruning, and a beam as wide as the number of distinct
    prefixes, the result is exactly the top-nbest of ``log P_ctc(y | x)`` (``-ctc_loss``).
    With ``lm``, ``score(y) = log P_ctc(y | x) + lm_weight * ln P_lm(y </s>) +
    token_score * len(y)``. Pruning, all off by default: ``token_cutoff`` (extend only the
    k likeliest tokens of each frame), ``beam_threshold`` (drop prefixes more than this
    below the best, natural log) and ``blank_skip_threshold`` (frames where blank's
    probability is at least this extend no prefix).
    """
    _check_tensor("log_probs", log_probs)
    for name, value in (("beam_size", beam_size), ("nbest", nbest), ("blank", blank)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"torch_ctc: {name} must be an int, got {type(value).__name__} ({value!r})")
    if lm is not None and not isinstance(lm, NGramLM):
        raise TypeError(f"torch_ctc: lm must be a torch_ctc.NGramLM or None, got {type(lm).__name__}")
    if token_cutoff is not None and (isinstance(token_cutoff, bool) or not isinstance(token_cutoff, int)):
        raise TypeError(f"torch_ctc: token_cutoff must be an int or None, got {type(token_cutoff).__name__}")
    unbatched = log_probs.dim() == 2
    x = log_probs.unsqueeze(1) if unbatched else log_probs
    lengths = _as_lengths("input_lengths", input_lengths).reshape(-1)
    scores, counts, tokens, timesteps = torch.ops.torch_ctc.beam_search(
        x, lengths, beam_size, blank, bool(batch_first) and not unbatched, nbest,
        None if lm is None else lm._native, float(lm_weight), float(token_score),
        0 if token_cutoff is None else token_cutoff, _threshold(beam_threshold, "beam_threshold"),
        _threshold(blank_skip_threshold, "blank_skip_threshold"))
    out: List[List[Hypothesis]] = []
    flat_tokens, flat_steps, pos = tokens.tolist(), timesteps.tolist(), 0
    for row_scores, row_counts in zip(scores.tolist(), counts.tolist()):
        hyps = []
        for score, count in zip(row_scores, row_counts):
            if count < 0:
                break
            hyps.append(Hypothesis(flat_tokens[pos : pos + count], score, flat_steps[pos : pos + count]))
            pos += count
        out.append(hyps)
    return out[0] if unbatched else out


class BeamSearchDecoder:
    """:func:`beam_search` with its options bound: ``BeamSearchDecoder(beam_size=64,
    lm=lm)(log_probs, input_lengths)``."""

    def __init__(self, **options):
        unknown = set(options) - set(beam_search.__kwdefaults__)
        if unknown:
            raise TypeError(f"torch_ctc: BeamSearchDecoder got unknown options {sorted(unknown)}")
        self.options = options

    def __call__(self, log_probs: torch.Tensor, input_lengths: Lengths):
        return beam_search(log_probs, input_lengths, **self.options)

    def __repr__(self) -> str:
        return "BeamSearchDecoder(" + ", ".join(f"{k}={v!r}" for k, v in self.options.items()) + ")"
