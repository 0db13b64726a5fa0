"""The functional CTC loss: argument handling in Python, the work in the op."""

from __future__ import annotations

from typing import Sequence, Union

import torch

from . import diagnostics

Lengths = Union[torch.Tensor, Sequence[int], int]

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _check_tensor(name: str, value) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"torch_ctc: {name} must be a torch.Tensor, got {type(value).__name__}")


def _as_lengths(name: str, value: Lengths) -> torch.Tensor:
    """Lengths as an int tensor: tensors pass through, ints and int sequences are converted."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes, float)):
        raise TypeError(
            f"torch_ctc: {name} must be an int32/int64 tensor or a sequence of ints, got {type(value).__name__}"
        )
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.long)
    try:
        items = list(value)
    except TypeError:
        raise TypeError(
            f"torch_ctc: {name} must be an int32/int64 tensor or a sequence of ints, got {type(value).__name__}"
        ) from None
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"torch_ctc: {name}[{i}] must be an int, got {type(item).__name__} ({item!r})")
    return torch.tensor(items, dtype=torch.long)


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: Lengths,
    target_lengths: Lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
    *,
    batch_first: bool = False,
    from_logits: bool = False,
    validate: bool = True,
    warn: bool | None = None,
) -> torch.Tensor:
    """Connectionist Temporal Classification loss, a drop-in for ``torch.nn.functional.ctc_loss``.

    Args:
        log_probs: ``(T, N, C)`` log-probabilities (``(N, T, C)`` with ``batch_first``,
            ``(T, C)`` unbatched); float32, float64, float16 or bfloat16. With
            ``from_logits=True``, raw logits: log_softmax over C is fused in.
        targets: concatenated 1-D labels (``sum(target_lengths)`` of them) or padded
            ``(N, S)``; int32 or int64. Padding beyond each target length is ignored.
        input_lengths: frames per sample, each ``<= T`` (tensor or int sequence).
        target_lengths: labels per sample (tensor or int sequence).
        blank: index of the blank class, in ``[0, C)``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``; 'mean' divides each loss by its
            target length (at least 1) and averages over the batch, as torch does.
        zero_infinity: replace infinite losses (infeasible alignments) and their
            gradients by zero.
        batch_first: ``log_probs`` is ``(N, T, C)``.
        from_logits: ``log_probs`` holds raw logits.
        validate: check labels on the device (CUDA only; the CPU always checks).
            Switch off for CUDA-graph capture.
        warn: run :func:`torch_ctc.diagnose` on this call and emit each new finding
            once as a Python warning. ``None`` follows the module-level switch
            :func:`torch_ctc.set_warnings`. Skipped under torch.compile.

    The gradient w.r.t. ``log_probs`` is the exact derivative (minus the posterior
    occupancy). torch instead returns ``exp(log_probs) - posterior``; the two agree
    once the gradient flows through a log_softmax.
    """
    _check_tensor("log_probs", log_probs)
    _check_tensor("targets", targets)
    input_lengths = _as_lengths("input_lengths", input_lengths)
    target_lengths = _as_lengths("target_lengths", target_lengths)
    if isinstance(blank, bool) or not isinstance(blank, int):
        raise TypeError(f"torch_ctc: blank must be an int, got {type(blank).__name__} ({blank!r})")
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"torch_ctc: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if (warn if warn is not None else diagnostics.warnings_enabled()) and not torch.compiler.is_compiling():
        diagnostics.warn_findings(
            log_probs, targets, input_lengths, target_lengths, blank, batch_first=batch_first, from_logits=from_logits
        )
    return torch.ops.torch_ctc.ctc_loss(
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        blank,
        _REDUCTIONS[reduction],
        bool(zero_infinity),
        bool(batch_first),
        bool(from_logits),
        bool(validate),
    )
