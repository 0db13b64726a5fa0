"""``torch_ctc.CTCLoss``: a drop-in for ``torch.nn.CTCLoss``."""

from __future__ import annotations

import torch

from .functional import Lengths, _REDUCTIONS, ctc_loss


class CTCLoss(torch.nn.Module):
    """Connectionist Temporal Classification loss module.

    Takes the same constructor arguments and forward arguments as
    ``torch.nn.CTCLoss``, plus the keyword-only ``batch_first`` and
    ``from_logits`` (see :func:`torch_ctc.ctc_loss`).
    """

    def __init__(
        self,
        blank: int = 0,
        reduction: str = "mean",
        zero_infinity: bool = False,
        *,
        batch_first: bool = False,
        from_logits: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            raise ValueError(f"torch_ctc: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.blank = blank
        self.reduction = reduction
        self.zero_infinity = zero_infinity
        self.batch_first = batch_first
        self.from_logits = from_logits

    def forward(
        self,
        log_probs: torch.Tensor,
        targets: torch.Tensor,
        input_lengths: Lengths,
        target_lengths: Lengths,
    ) -> torch.Tensor:
        return ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            self.blank,
            self.reduction,
            self.zero_infinity,
            batch_first=self.batch_first,
            from_logits=self.from_logits,
        )

    def extra_repr(self) -> str:
        return (
            f"blank={self.blank}, reduction={self.reduction!r}, zero_infinity={self.zero_infinity}, "
            f"batch_first={self.batch_first}, from_logits={self.from_logits}"
        )
