"""Forced alignment, token spans and greedy decoding (docs/alignment.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Union

import torch

from .functional import Lengths, _as_lengths, _check_tensor

_MEMORY = {"auto": 0, "full": 1, "checkpointed": 2}


def forced_align(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
    *,
    batch_first: bool = False,
    memory: str = "auto",
    validate: bool = True,
):
    """The best (Viterbi) CTC path of each sample's target: ``(alignments, scores)``.

    Args:
        log_probs: ``(T, N, C)`` (``(N, T, C)`` with ``batch_first``, ``(T, C)``
            unbatched); any float dtype, any strides.
        targets, input_lengths, target_lengths, blank: as for :func:`torch_ctc.ctc_loss`.
        memory: ``'auto'`` (the default), ``'full'`` or ``'checkpointed'``. The full
            mode keeps 2 bits per (frame, state); the checkpointed one keeps one row
            of scores in ``ceil(sqrt(T))`` and recomputes segments while backtracking,
            for about twice the work. ``'auto'`` checkpoints a sample whose moves
            would take over 64 MiB. Both give the same alignment. CPU only:
            CUDA keeps every frame's moves.
        validate: CUDA only (the CPU always checks): ``False`` skips the host copy of
            the lengths and targets (for CUDA-graph capture); samples that cannot be
            aligned then get -1 in every frame instead of an error.

    Returns:
        ``alignments``: int64 ``(N, T)`` (``(T,)`` unbatched), the label of every frame
        on the best path, -1 for frames ``t >= input_lengths[n]``. ``scores``: the same
        shape, float32 (float64 for float64 input), ``log_probs`` at that label, 0 past
        the input length. ``scores[n].sum()`` is the best path's log-probability.

    Ties between paths of equal score are broken the same way on every backend, and
    as torchaudio does: staying in a state wins over stepping to the next one, which
    wins over skipping a blank; the path ends on the last label rather than the final
    blank.

    Raises ValueError naming the samples with too few frames for their target (labels
    plus repeats), or with no path of finite score; other bad input raises the same
    errors as :func:`torch_ctc.ctc_loss`.
    """
    _check_tensor("log_probs", log_probs)
    _check_tensor("targets", targets)
    if memory not in _MEMORY:
        raise ValueError(f"torch_ctc: memory must be 'auto', 'full' or 'checkpointed', got {memory!r}")
    if isinstance(blank, bool) or not isinstance(blank, int):
        raise TypeError(f"torch_ctc: blank must be an int, got {type(blank).__name__} ({blank!r})")
    return torch.ops.torch_ctc.forced_align(
        log_probs,
        targets,
        _as_lengths("input_lengths", input_lengths),
        _as_lengths("target_lengths", target_lengths),
        blank,
        bool(batch_first),
        _MEMORY[memory],
        bool(validate),
    )


@dataclass
class TokenSpan:
    """A run of one token in an alignment (torchaudio's TokenSpan): frames
    ``[start, end)`` and the mean of the given scores over them."""

    token: int
    start: int
    end: int
    score: float

    def __len__(self) -> int:
        return self.end - self.start


def merge_tokens(
    alignments: torch.Tensor,
    scores: torch.Tensor,
    blank: int = 0,
    input_lengths: Optional[Lengths] = None,
) -> Union[List[TokenSpan], List[List[TokenSpan]]]:
    """The token spans of an alignment, blanks left out.

    For a 1-D ``alignments`` (as torchaudio's ``merge_tokens``) a list of
    :class:`TokenSpan`; frames holding -1 (past the input length) are left out. For
    ``(N, T)`` alignments one such list per sample, frames ``t >= input_lengths[n]``
    ignored (all frames when ``input_lengths`` is None). ``score`` is the mean of
    ``scores`` over the span: pass ``scores.exp()`` for probabilities.
    """
    _check_tensor("alignments", alignments)
    _check_tensor("scores", scores)
    single = alignments.dim() == 1
    a = alignments.unsqueeze(0) if single else alignments
    s = scores.unsqueeze(0) if single else scores
    if input_lengths is None:
        lengths = torch.full((a.shape[0],), a.shape[1], dtype=torch.long)
    else:
        lengths = _as_lengths("input_lengths", input_lengths).reshape(-1)
    spans, means = torch.ops.torch_ctc._merge_tokens(a, s, lengths, blank)
    out: List[List[TokenSpan]] = [[] for _ in range(a.shape[0])]
    for (n, token, start, end), score in zip(spans.tolist(), means.tolist()):
        out[n].append(TokenSpan(token, start, end, score))
    return out[0] if single else out


class GreedyDecoding(NamedTuple):
    """What :func:`greedy_decode` returns."""

    tokens: torch.Tensor  # int64 (N, T), -1 after each sample's last token
    lengths: torch.Tensor  # int64 (N,)
    frames: torch.Tensor  # int64 (N, T): the frame each token starts at, -1 after the last


def greedy_decode(
    log_probs: torch.Tensor,
    input_lengths: Lengths,
    blank: int = 0,
    *,
    batch_first: bool = False,
) -> GreedyDecoding:
    """Best-path decoding: each frame's argmax label, repeats merged, blanks removed.

    ``tokens[n, :lengths[n]]`` is sample n's output. Runs on the input's device; on
    CUDA with no host sync (input_lengths on the host are checked there, on the
    device they are clamped to ``[0, T]``). Ties go to the lowest class, and a NaN
    wins, as in ``torch.argmax``. Unbatched ``(T, C)`` input gives ``(T,)`` tokens
    and frames and a 0-d length.
    """
    _check_tensor("log_probs", log_probs)
    if isinstance(blank, bool) or not isinstance(blank, int):
        raise TypeError(f"torch_ctc: blank must be an int, got {type(blank).__name__} ({blank!r})")
    tokens, lengths, frames = torch.ops.torch_ctc.greedy_decode(
        log_probs, _as_lengths("input_lengths", input_lengths), blank, bool(batch_first)
    )
    return GreedyDecoding(tokens, lengths, frames)
