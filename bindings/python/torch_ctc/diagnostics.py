"""Diagnostics for the classic CTC mistakes (placeholder until issue 5 lands)."""

from __future__ import annotations

_enabled = False


def set_warnings(enabled: bool) -> None:
    """Module-level switch for ``ctc_loss(..., warn=None)``."""
    global _enabled
    _enabled = bool(enabled)


def warnings_enabled() -> bool:
    return _enabled


def warn_findings(log_probs, targets, input_lengths, target_lengths, blank=0, *, batch_first=False, from_logits=False):
    raise NotImplementedError("torch_ctc diagnostics are not implemented yet")
