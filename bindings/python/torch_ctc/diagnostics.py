"""Diagnostics for the classic CTC mistakes.

:func:`diagnose` looks at the arguments of one CTC loss call (the model's output, the
targets and the two length tensors) and returns a :class:`Report` of :class:`Finding`
objects, each saying what is wrong, for which samples, and what to do. It never raises
on the bad inputs it diagnoses: a batch that ``ctc_loss`` would refuse (labels outside
``[0, C)``, blank ids inside the targets, lengths longer than ``T``) is reported instead.

Findings (``Finding.code``):

``layout``
    ``(N, T, C)`` output passed where ``(T, N, C)`` was expected (or the reverse with
    ``batch_first=True``), inferred from the number of lengths and the shapes.
``normalisation``
    log_probs not normalised over the classes (logsumexp over C far from 0), or
    normalised over the wrong dimension (time or batch), or probabilities passed
    instead of log-probabilities.
``lengths``
    all input_lengths equal but different from T (hard-coded lengths), with the number
    of frames the loss never sees; or input_lengths larger than T.
``infeasible``
    samples with fewer frames than labels plus adjacent repeats (loss = +inf).
``tokenizer``
    blank ids inside the targets, or labels outside ``[0, C)``.
``blank_collapse``
    greedy decoding gives empty or one-character outputs for most of the batch, or
    blank wins the argmax on more than 95% of the frames.
``shapes``
    arguments whose sizes do not fit together at all (reported instead of raising).

How it is built: :func:`diagnose` reads the arguments once into a ``_Batch``, which holds
what the checks share: log_probs as a float32 CPU ``(T, N, C)`` tensor in the layout
the lengths point to, the lengths, the options, and per-sample quantities (the mask of
valid frames, the label list of each sample) that are computed the first time a check
uses them. Then it runs the checks in ``_CHECKS`` in order, and the report lists their
findings in that order. Every check has the same signature,
``check(batch: _Batch) -> List[Finding]``, and may record numbers in ``batch.stats`` (the
report's ``stats``; ``Report.__str__`` prints the ones it names). To add a check, write
such a function and put it in ``_CHECKS`` where its findings should appear. A check
that finds sizes the later checks cannot work with raises ``_SizesDoNotFit(finding)``:
that finding is reported and the remaining checks are skipped. Unreadable log_probs or
lengths stop the run the same way, before any check runs.

``ctc_loss(..., warn=True)`` (or :func:`set_warnings` ``(True)``) runs :func:`diagnose`
on each call and emits each kind of finding once per process as a
:class:`CTCDiagnosticWarning`; :func:`reset_warnings` forgets what was emitted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = [
    "CTCDiagnosticWarning",
    "Finding",
    "Report",
    "diagnose",
    "reset_warnings",
    "set_warnings",
    "warn_findings",
    "warnings_enabled",
]

_enabled = False
_emitted: set = set()

#: |logsumexp over C| above this (at any valid frame) means "not normalised".
NORM_TOL = 1e-2
#: blank argmax share above this means blank collapse.
BLANK_SHARE = 0.95
#: share of the batch whose greedy output is empty or one character that means collapse.
SHORT_OUTPUT_SHARE = 0.5
_MAX_LISTED = 8


class CTCDiagnosticWarning(UserWarning):
    """A finding of :func:`torch_ctc.diagnose`, emitted by ``ctc_loss(..., warn=True)``."""


@dataclass
class Finding:
    """One problem found in a CTC loss call.

    Attributes:
        code: the kind of problem (``layout``, ``normalisation``, ``lengths``,
            ``infeasible``, ``tokenizer``, ``blank_collapse``, ``shapes``).
        kind: a sub-kind, e.g. ``time`` for softmax over the time dimension.
        severity: ``error`` (the loss is wrong or will raise) or ``warning``.
        message: what is wrong.
        advice: what to do about it.
        samples: the batch indices concerned (empty when it is about the whole call).
        details: numbers behind the finding (counts, frames needed and available, ...).
    """

    code: str
    kind: str
    severity: str
    message: str
    advice: str
    samples: List[int] = field(default_factory=list)
    details: Dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.code}:{self.kind}"

    def __str__(self) -> str:
        head = f"[{self.severity}] {self.code} ({self.kind}): {self.message}"
        lines = [head]
        if self.samples:
            lines.append(f"    samples: {_fmt_samples(self.samples)}")
        lines.append(f"    fix: {self.advice}")
        return "\n".join(lines)


@dataclass
class Report:
    """What :func:`diagnose` found. Iterable over its :class:`Finding` objects; falsy when clean."""

    findings: List[Finding]
    shape: tuple
    batch_first: bool
    T: Optional[int] = None
    N: Optional[int] = None
    C: Optional[int] = None
    stats: Dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __bool__(self) -> bool:
        return bool(self.findings)

    @property
    def ok(self) -> bool:
        """No finding at all."""
        return not self.findings

    @property
    def codes(self) -> List[str]:
        """The codes of the findings, in order, without duplicates."""
        out: List[str] = []
        for f in self.findings:
            if f.code not in out:
                out.append(f.code)
        return out

    def get(self, code: str) -> List[Finding]:
        """The findings with this code."""
        return [f for f in self.findings if f.code == code]

    def __contains__(self, code: str) -> bool:
        return any(f.code == code for f in self.findings)

    def __str__(self) -> str:
        layout = "(N, T, C)" if self.batch_first else "(T, N, C)"
        dims = f"T={self.T}, N={self.N}, C={self.C}" if self.T is not None else "sizes unknown"
        if "layout" in self:
            # The sizes below come from the layout the lengths point to, not the one the loss reads.
            other = "(T, N, C)" if self.batch_first else "(N, T, C)"
            head = (f"torch_ctc.diagnose: log_probs {tuple(self.shape)} read as {layout}, "
                    f"checked as {other} (see the layout finding): {dims}")
        else:
            head = f"torch_ctc.diagnose: log_probs {tuple(self.shape)} read as {layout}, {dims}"
        stat_bits = []
        for name in ("mean_logsumexp_over_C", "blank_argmax_share", "short_output_share", "mean_target_length"):
            if name in self.stats:
                v = self.stats[name]
                stat_bits.append(f"{name}={v:.3g}" if isinstance(v, float) else f"{name}={v}")
        lines = [head]
        if stat_bits:
            lines.append("  " + ", ".join(stat_bits))
        if not self.findings:
            lines.append("  no problem found")
        else:
            lines.append(f"  {len(self.findings)} finding(s):")
            for i, f in enumerate(self.findings, 1):
                body = str(f).replace("\n", "\n   ")
                lines.append(f"  {i}. {body}")
        return "\n".join(lines)

    __repr__ = __str__


def _fmt_samples(samples: Sequence[int], limit: int = _MAX_LISTED) -> str:
    s = ", ".join(str(i) for i in list(samples)[:limit])
    if len(samples) > limit:
        s += f", ... ({len(samples)} in all)"
    return s


def _as_long_1d(x) -> Optional[torch.Tensor]:
    """Lengths as a 1-D int64 CPU tensor, or None when they cannot be read."""
    try:
        if isinstance(x, torch.Tensor):
            t = x.detach().to("cpu")
        elif isinstance(x, int) and not isinstance(x, bool):
            t = torch.tensor([x])
        else:
            t = torch.tensor(list(x))
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            return None
        return t.reshape(-1).long()
    except Exception:  # noqa: BLE001 - unreadable lengths are reported, not raised
        return None


def _split_targets(targets, target_lengths: torch.Tensor, n: int):
    """Per-sample label lists, or (None, reason)."""
    try:
        tg = targets.detach().to("cpu").long()
    except Exception:  # noqa: BLE001
        return None, "targets is not a tensor"
    if target_lengths.numel() != n:
        return None, f"{target_lengths.numel()} target_lengths for a batch of {n}"
    if (target_lengths < 0).any():
        return None, "negative target_lengths"
    if tg.dim() == 2:
        if tg.shape[0] != n:
            return None, f"padded targets have {tg.shape[0]} rows for a batch of {n}"
        if n and int(target_lengths.max()) > tg.shape[1]:
            return None, f"a target length ({int(target_lengths.max())}) exceeds the padded width {tg.shape[1]}"
        return [tg[b, : int(target_lengths[b])].tolist() for b in range(n)], None
    if tg.dim() <= 1:
        tg = tg.reshape(-1)
        total = int(target_lengths.sum())
        if total > tg.numel():
            return None, f"sum(target_lengths) = {total} but targets holds {tg.numel()} labels"
        out, pos = [], 0
        for b in range(n):
            L = int(target_lengths[b])
            out.append(tg[pos : pos + L].tolist())
            pos += L
        return out, None
    return None, f"targets has {tg.dim()} dimensions (expected 1 or 2)"


# ---- the shared inputs of the checks ------------------------------------------------------------


class _SizesDoNotFit(Exception):
    """Raised with a ``shapes`` finding when the later checks cannot run on these sizes."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


@dataclass
class _Batch:
    """What the checks share, read once by :func:`diagnose`.

    ``x`` is a float32 CPU copy of log_probs in ``(T, N, C)`` order, in the layout the
    lengths point to: after a layout finding the other checks look at the corrected view,
    so they report the real problems instead of echoing the layout one. The per-sample
    quantities are properties computed on first use: nothing is spent on them when the
    sizes stop the run before any check needs them.
    """

    x: torch.Tensor
    shape: tuple  # of log_probs as given
    batch_first: bool
    swapped: bool  # the lengths say log_probs has the other layout
    read_T: int  # the T and N the loss reads from the layout it was told
    read_N: int
    input_lengths: torch.Tensor  # as given: 1-D int64, possibly outside [0, T]
    target_lengths: torch.Tensor
    targets: Any
    blank: int
    from_logits: bool
    norm_tol: float
    blank_share: float
    stats: Dict[str, Any]  # the report's stats, filled in by the checks

    @property
    def T(self) -> int:
        return self.x.shape[0]

    @property
    def N(self) -> int:
        return self.x.shape[1]

    @property
    def C(self) -> int:
        return self.x.shape[2]

    @cached_property
    def lengths(self) -> torch.Tensor:
        """input_lengths clamped into [0, T], as the frames that can be indexed."""
        return self.input_lengths.clamp(0, self.T)

    @cached_property
    def valid(self) -> torch.Tensor:
        """(T, N) mask of the frames the loss reads; padding beyond the lengths may hold anything."""
        return torch.arange(self.T).unsqueeze(1) < self.lengths.unsqueeze(0)

    @cached_property
    def _split(self):
        return _split_targets(self.targets, self.target_lengths, self.N)

    @property
    def per_sample(self) -> Optional[List[List[int]]]:
        """The label list of each sample, or None when targets and target_lengths do not fit."""
        return self._split[0]

    @property
    def targets_problem(self) -> Optional[str]:
        """Why targets and target_lengths do not fit, or None."""
        return self._split[1]


def _read_log_probs(log_probs, batch_first: bool) -> torch.Tensor:
    """log_probs as a 3-D float32 CPU tensor in the given layout; raises _SizesDoNotFit."""
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() not in (2, 3) or not log_probs.is_floating_point():
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else ()
        raise _SizesDoNotFit(Finding(
            "shapes", "log_probs", "error",
            f"log_probs must be a floating tensor (T, N, C) or (T, C), got "
            f"{type(log_probs).__name__} {shape}",
            "pass the model output after log_softmax over the class dimension",
        ))
    x = log_probs.detach().to("cpu", torch.float32)
    if x.dim() == 2:  # unbatched (T, C)
        x = x.unsqueeze(0 if batch_first else 1)
    return x


def _read_lengths(input_lengths, target_lengths):
    """Both length arguments as 1-D int64 tensors; raises _SizesDoNotFit."""
    il = _as_long_1d(input_lengths)
    tl = _as_long_1d(target_lengths)
    if il is None or tl is None:
        raise _SizesDoNotFit(Finding(
            "shapes", "lengths", "error",
            "input_lengths or target_lengths is not a sequence of integers",
            "pass int32/int64 tensors or lists of ints, one per sample",
        ))
    return il, tl


def _to_time_first(x: torch.Tensor, n: int, batch_first: bool):
    """(x as (T, N, C), swapped, (T, N) as the loss reads them).

    The number of lengths tells which leading dimension is the batch: when the batch size
    sits where T was expected, the output was passed in the other layout.
    """
    bdim = 0 if batch_first else 1
    other = 1 - bdim
    read = (x.shape[other], x.shape[bdim])
    swapped = bool(n) and x.shape[bdim] != n and x.shape[other] == n
    if swapped:
        bdim = other
    if bdim == 0:
        x = x.transpose(0, 1)
    return x.contiguous(), swapped, read


# ---- the checks, one per finding code -----------------------------------------------------------
# Each takes the _Batch and returns its findings, in report order (usually none or one).


def _check_layout(batch: _Batch) -> List[Finding]:
    """``layout``: (N, T, C) read as (T, N, C), or the reverse."""
    if not batch.swapped:
        return []
    if batch.batch_first:
        kind, got, want = "time_first", "(T, N, C)", "(N, T, C)"
        fix = "drop batch_first=True, or transpose with log_probs.transpose(0, 1)"
    else:
        kind, got, want = "batch_first", "(N, T, C)", "(T, N, C)"
        fix = "pass batch_first=True to torch_ctc, or transpose with log_probs.transpose(0, 1)"
    n = batch.input_lengths.numel()
    read_T, read_N = batch.read_T, batch.read_N
    return [Finding(
        "layout", kind, "error",
        f"log_probs has shape {batch.shape} and there are {n} samples: it looks {got}, "
        f"but the loss reads it as {want} (T={read_T}, N={read_N})",
        fix,
        details={"n_lengths": n, "shape": batch.shape},
    )]


def _check_batch_sizes(batch: _Batch) -> List[Finding]:
    """``shapes`` (batch): one input and one target length per sample, or nothing else can run."""
    N = batch.N
    if batch.input_lengths.numel() != N:
        raise _SizesDoNotFit(Finding(
            "shapes", "batch", "error",
            f"{batch.input_lengths.numel()} input_lengths for a batch of {N} (log_probs {batch.shape})",
            "give one input length per sample, in batch order",
        ))
    if batch.target_lengths.numel() != N:
        raise _SizesDoNotFit(Finding(
            "shapes", "batch", "error",
            f"{batch.target_lengths.numel()} target_lengths for a batch of {N}",
            "give one target length per sample, in batch order",
        ))
    return []


def _check_lengths(batch: _Batch) -> List[Finding]:
    """``lengths``: input_lengths outside [0, T], or all equal and not T (hard-coded)."""
    il, T, N = batch.input_lengths, batch.T, batch.N
    over = [b for b in range(N) if int(il[b]) > T]
    neg = [b for b in range(N) if int(il[b]) < 0]
    found = []
    if over or neg:
        bad = over + neg
        found.append(Finding(
            "lengths", "out_of_range", "error",
            f"input_lengths outside [0, T={T}] for {len(bad)} sample(s) "
            f"(e.g. sample {bad[0]}: {int(il[bad[0]])})",
            "compute input_lengths per sample from the real width through the model's downsampling; "
            "never hard-code them",
            samples=bad,
        ))
    # Equal lengths are normal when nothing is padded (all T); equal to something else, they
    # were most likely written down once instead of computed per sample.
    if N >= 2 and bool((il == il[0]).all()) and int(il[0]) != T and not over:
        found.append(_hard_coded_lengths(int(il[0]), T, N))
    return found


def _hard_coded_lengths(v: int, T: int, N: int) -> Finding:
    ignored = N * (T - v)
    return Finding(
        "lengths", "hard_coded", "error" if v < T else "warning",
        f"all {N} input_lengths are {v} but the model output has T={T} frames: the lengths look "
        f"hard-coded; the loss ignores {ignored} of {N * T} frames ({T - v} per sample)",
        "compute input_lengths per image from its width through the conv/pooling arithmetic "
        "(e.g. width // 4 for two width poolings), or T for every sample if nothing is padded",
        details={"value": v, "T": T, "ignored_frames": ignored},
    )


def _check_normalisation(batch: _Batch) -> List[Finding]:
    """``normalisation``: logsumexp over C must be 0 at every frame the loss reads."""
    x = batch.x
    # Rows that are all -inf (masked frames) have no logsumexp to test.
    mask = batch.valid & torch.isfinite(x).any(-1)
    if batch.from_logits or not bool(mask.any()):  # the loss normalises logits itself
        return []
    lse = torch.logsumexp(x, dim=-1)  # (T, N)
    lse_c = lse[mask]
    err_c = float(lse_c.abs().max())
    batch.stats["mean_logsumexp_over_C"] = float(lse_c.mean())
    if math.isfinite(err_c) and not err_c > batch.norm_tol:
        return []
    kind, what, fix = _misnormalisation(batch, mask, lse_c)
    bad_samples = sorted({int(b) for b in (lse.abs() > batch.norm_tol).logical_and(mask).any(0).nonzero().flatten()})
    return [Finding(
        "normalisation", kind, "error", what, fix,
        samples=bad_samples,
        details={"max_abs_logsumexp_over_C": err_c},
    )]


def _misnormalisation(batch: _Batch, mask: torch.Tensor, lse_c: torch.Tensor):
    """(kind, message, advice) for log_probs that are not normalised over C.

    Tells the usual mistakes apart (softmax instead of log_softmax, the softmax over the
    wrong dimension, raw scores), because each has a different fix.
    """
    x, tol = batch.x, batch.norm_tol
    if bool((x >= 0).all()) and float((x.clamp_min(0).sum(-1)[mask] - 1).abs().max()) < 1e-3 * batch.C + tol:
        return (
            "probabilities",
            "log_probs holds probabilities (softmax output): its values are in [0, 1] and sum to 1 over C",
            "use log_softmax(dim=-1) instead of softmax, or pass raw logits with from_logits=True",
        )
    if batch.T > 1 and float(torch.logsumexp(x, dim=0).abs().max()) < tol:  # over the full padded T
        return (
            "time",
            "log_probs is normalised over the time dimension (softmax/log_softmax over T), not over the classes",
            "apply log_softmax over the class dimension: log_softmax(dim=-1) (or dim=2 for "
            "(T, N, C) and (N, T, C) outputs)",
        )
    if batch.N > 1 and float(torch.logsumexp(x, dim=1).abs().max()) < tol:
        return (
            "batch",
            "log_probs is normalised over the batch dimension (softmax/log_softmax over N), not over the classes",
            "apply log_softmax over the class dimension: log_softmax(dim=-1)",
        )
    return (
        "not_normalised",
        f"log_probs is not normalised over the classes: logsumexp over C ranges from "
        f"{float(lse_c.min()):.3g} to {float(lse_c.max()):.3g} instead of 0 (raw logits?)",
        "apply log_softmax(dim=-1) to the model output, or pass the raw logits with "
        "from_logits=True (torch_ctc fuses the log_softmax)",
    )


def _check_targets_fit(batch: _Batch) -> List[Finding]:
    """``shapes`` (targets): targets must hold target_lengths labels per sample.

    Not fatal: the checks that need the labels skip themselves, the others still run.
    """
    per_sample = batch.per_sample
    if per_sample is None:
        return [Finding(
            "shapes", "targets", "error", f"targets and target_lengths do not fit: {batch.targets_problem}",
            "give padded (N, S) targets with S >= max target length, or 1-D concatenated targets "
            "of sum(target_lengths) labels",
        )]
    batch.stats["mean_target_length"] = round(sum(len(s) for s in per_sample) / max(batch.N, 1), 2)
    return []


def _check_tokenizer(batch: _Batch) -> List[Finding]:
    """``tokenizer``: the blank id inside the targets, or labels outside [0, C)."""
    if batch.per_sample is None:  # unreadable targets: _check_targets_fit reports them
        return []
    found = [_blank_in_targets(batch), _labels_out_of_range(batch)]
    return [f for f in found if f is not None]


def _blank_in_targets(batch: _Batch) -> Optional[Finding]:
    per_sample, blank = batch.per_sample, batch.blank
    blank_at = [b for b, seq in enumerate(per_sample) if blank in seq]
    if not blank_at:
        return None
    count = sum(seq.count(blank) for seq in per_sample)
    return Finding(
        "tokenizer", "blank_in_targets", "error",
        f"the blank id {blank} appears {count} time(s) inside the targets of {len(blank_at)} of "
        f"{batch.N} samples: the tokenizer gives a real character the blank's id",
        f"reserve id {blank} for blank: number the characters from 1 (e.g. "
        f"{{ch: i + 1 for i, ch in enumerate(vocab)}}) and size the output layer len(vocab) + 1",
        samples=blank_at,
        details={"count": count},
    )


def _labels_out_of_range(batch: _Batch) -> Optional[Finding]:
    per_sample, C = batch.per_sample, batch.C
    out_of_range = [b for b, seq in enumerate(per_sample) if any(v < 0 or v >= C for v in seq)]
    if not out_of_range:
        return None
    labels = [v for seq in per_sample for v in seq]
    return Finding(
        "tokenizer", "label_out_of_range", "error",
        f"labels outside [0, C={C}) in {len(out_of_range)} sample(s): min label {min(labels)}, "
        f"max label {max(labels)}, but the model has only {C} output classes",
        "size the model's last layer to the tokenizer: out_features = number of characters + 1 "
        "(blank); check that padding values are not counted inside target_lengths",
        samples=out_of_range,
        details={"max_label": max(labels), "min_label": min(labels), "C": C},
    )


def _check_infeasible(batch: _Batch) -> List[Finding]:
    """``infeasible``: samples with fewer frames than their alignment needs (loss = +inf).

    CTC needs one frame per label plus a blank between equal neighbours.
    """
    if batch.per_sample is None:  # unreadable targets: _check_targets_fit reports them
        return []
    need_list = []
    for b, seq in enumerate(batch.per_sample):
        repeats = sum(1 for i in range(1, len(seq)) if seq[i] == seq[i - 1])
        need = len(seq) + repeats
        if need > int(batch.lengths[b]):
            need_list.append((b, need, int(batch.lengths[b])))
    if not need_list:
        return []
    ex = "; ".join(f"sample {b}: needs {nd} frames, has {av}" for b, nd, av in need_list[:_MAX_LISTED])
    if len(need_list) > _MAX_LISTED:
        ex += f"; ... ({len(need_list)} in all)"
    return [Finding(
        "infeasible", "too_few_frames", "error",
        f"{len(need_list)} of {batch.N} samples cannot be aligned (T_b < labels + adjacent repeats), "
        f"their loss is +inf: {ex}",
        "downsample time less (fewer width poolings / strides), check that input_lengths are the "
        "real per-sample frame counts, drop or split over-long targets, or set zero_infinity=True "
        "to skip such samples",
        samples=[b for b, _, _ in need_list],
        details={"needed_available": need_list},
    )]


def _check_blank_collapse(batch: _Batch) -> List[Finding]:
    """``blank_collapse``: blank wins almost every frame, or greedy outputs are mostly empty."""
    blank, valid = batch.blank, batch.valid
    if not (0 <= blank < batch.C) or not bool(valid.any()):
        return []
    best = batch.x.argmax(-1)  # (T, N)
    share = float((best == blank)[valid].float().mean())
    batch.stats["blank_argmax_share"] = share
    from .alignment import greedy_decode  # here: alignment imports functional, which imports this module

    glen = greedy_decode(batch.x, batch.lengths, blank).lengths.tolist()
    # An empty or one-character output is only suspicious when the target is longer; with
    # unreadable targets every sample counts.
    per_sample = batch.per_sample
    eligible = [b for b in range(batch.N) if per_sample is None or len(per_sample[b]) > 1]
    short = [b for b in eligible if glen[b] <= 1]
    short_share = len(short) / max(len(eligible), 1)
    batch.stats["short_output_share"] = short_share
    blank_wins, mostly_short = share > batch.blank_share, short_share > SHORT_OUTPUT_SHARE
    if not eligible or not (blank_wins or mostly_short):
        return []
    why = []
    if blank_wins:
        why.append(f"blank wins the argmax on {100 * share:.1f}% of the valid frames")
    if mostly_short:
        why.append(
            f"greedy decoding gives an empty or one-character output for {len(short)} of "
            f"{len(eligible)} samples whose targets are longer"
        )
    return [Finding(
        "blank_collapse", "blank" if blank_wins else "short_outputs", "warning",
        "the model has collapsed to blanks: " + "; ".join(why),
        "normal for the first few hundred steps; if it persists, fix the other findings first "
        "(lengths, normalisation, tokenizer), then check the learning rate (3e-4..1e-3 with Adam), "
        "gradient clipping, and that the model downsamples width only 4-8x and has nonlinearities",
        samples=short,
        details={"blank_share": share, "short_output_share": short_share},
    )]


#: What every check is: it reads the shared _Batch (and may record numbers in its stats) and
#: returns its findings; one that finds the sizes unusable raises _SizesDoNotFit instead.
_Check = Callable[[_Batch], List[Finding]]

#: The checks, in the order of the report. Adding a check: write a _Check, add it here.
_CHECKS: Tuple[_Check, ...] = (
    _check_layout,
    _check_batch_sizes,  # raises when the batch sizes disagree: the checks below index per sample
    _check_lengths,
    _check_normalisation,
    _check_targets_fit,
    _check_tokenizer,
    _check_infeasible,
    _check_blank_collapse,
)


def diagnose(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths,
    target_lengths,
    blank: int = 0,
    *,
    batch_first: bool = False,
    from_logits: bool = False,
    norm_tol: float = NORM_TOL,
    blank_share: float = BLANK_SHARE,
) -> Report:
    """Look for the classic CTC mistakes in the arguments of one loss call.

    Takes the arguments of :func:`torch_ctc.ctc_loss` and returns a :class:`Report`
    (``print(report)`` gives a readable summary; ``report.codes`` lists the kinds of
    findings; ``report.ok`` is True when nothing was found). It never raises on bad
    inputs; it works on a detached float copy on the CPU, so call it on a batch now
    and then, not on every step of a GPU training loop.

    Args:
        log_probs: the tensor given to the loss, ``(T, N, C)`` (``(N, T, C)`` with
            ``batch_first``) or ``(T, C)``.
        targets: padded ``(N, S)`` or concatenated 1-D labels.
        input_lengths, target_lengths: tensors or int sequences.
        blank: the blank index.
        batch_first, from_logits: as given to the loss. With ``from_logits`` the
            normalisation check is skipped (logits need not be normalised).
        norm_tol: tolerance on ``|logsumexp over C|`` for the normalisation check.
        blank_share: blank argmax share above which the batch has collapsed.
    """
    shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else ()
    report = Report(findings=[], shape=shape, batch_first=bool(batch_first))
    with torch.no_grad():
        try:
            x = _read_log_probs(log_probs, batch_first)
            il, tl = _read_lengths(input_lengths, target_lengths)
            x, swapped, (read_T, read_N) = _to_time_first(x, il.numel(), batch_first)
            batch = _Batch(
                x=x, shape=shape, batch_first=batch_first, swapped=swapped, read_T=read_T, read_N=read_N,
                input_lengths=il, target_lengths=tl, targets=targets, blank=blank, from_logits=from_logits,
                norm_tol=norm_tol, blank_share=blank_share, stats=report.stats,
            )
            report.T, report.N, report.C = batch.T, batch.N, batch.C
            for check in _CHECKS:
                report.findings.extend(check(batch))
        except _SizesDoNotFit as stop:
            report.findings.append(stop.finding)
    return report


# ---- warnings -----------------------------------------------------------------------------------


def set_warnings(enabled: bool) -> None:
    """Module-level switch for ``ctc_loss(..., warn=None)``: run :func:`diagnose` on every call."""
    global _enabled
    _enabled = bool(enabled)


def warnings_enabled() -> bool:
    """Whether ``ctc_loss(..., warn=None)`` runs the diagnostics."""
    return _enabled


def reset_warnings() -> None:
    """Forget which findings were already emitted, so they are emitted again."""
    _emitted.clear()


def warn_findings(
    log_probs, targets, input_lengths, target_lengths, blank=0, *, batch_first=False, from_logits=False
) -> Report | None:
    """Run :func:`diagnose` and emit each kind of finding not yet emitted as a warning.

    Called by ``ctc_loss`` when warnings are on. Never raises (an internal error of the
    diagnostics is itself reported as a warning); returns the report.
    """
    try:
        report = diagnose(
            log_probs, targets, input_lengths, target_lengths, blank, batch_first=batch_first, from_logits=from_logits
        )
    except Exception as exc:  # noqa: BLE001 - diagnostics must never break training
        warnings.warn(f"torch_ctc.diagnose failed: {exc!r}", CTCDiagnosticWarning, stacklevel=3)
        return None
    for f in report.findings:
        if f.key in _emitted:
            continue
        _emitted.add(f.key)
        warnings.warn(f"torch_ctc: {f}", CTCDiagnosticWarning, stacklevel=3)
    return report
