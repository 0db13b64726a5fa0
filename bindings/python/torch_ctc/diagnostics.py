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

``ctc_loss(..., warn=True)`` (or :func:`set_warnings` ``(True)``) runs :func:`diagnose`
on each call and emits each kind of finding once per process as a
:class:`CTCDiagnosticWarning`; :func:`reset_warnings` forgets what was emitted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

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


def _greedy_lengths(best: torch.Tensor, lengths: torch.Tensor, blank: int) -> List[int]:
    """Length of the greedy (best-path) decoding of each sample; best is (N, T) argmax."""
    out = []
    for b in range(best.shape[0]):
        row = best[b, : int(lengths[b])]
        if row.numel() == 0:
            out.append(0)
            continue
        keep = torch.ones_like(row, dtype=torch.bool)
        keep[1:] = row[1:] != row[:-1]
        out.append(int(((row != blank) & keep).sum()))
    return out


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
    findings: List[Finding] = []
    shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else ()
    report = Report(findings=findings, shape=shape, batch_first=bool(batch_first))

    def add(*args, **kwargs):
        findings.append(Finding(*args, **kwargs))

    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() not in (2, 3) or not log_probs.is_floating_point():
        add(
            "shapes", "log_probs", "error",
            f"log_probs must be a floating tensor (T, N, C) or (T, C), got "
            f"{type(log_probs).__name__} {shape}",
            "pass the model output after log_softmax over the class dimension",
        )
        return report

    with torch.no_grad():
        x = log_probs.detach().to("cpu", torch.float32)
        if x.dim() == 2:  # unbatched (T, C)
            x = x.unsqueeze(0 if batch_first else 1)
        il = _as_long_1d(input_lengths)
        tl = _as_long_1d(target_lengths)
        if il is None or tl is None:
            add(
                "shapes", "lengths", "error",
                "input_lengths or target_lengths is not a sequence of integers",
                "pass int32/int64 tensors or lists of ints, one per sample",
            )
            return report
        A, B, C = x.shape
        n = il.numel()

        # ---- layout: which of the two leading dims is the batch? ----------------------
        bdim = 0 if batch_first else 1
        other = 1 - bdim
        declared_n, declared_t = x.shape[bdim], x.shape[other]
        swapped = bool(n) and declared_n != n and x.shape[other] == n  # batch size sits where T was expected
        if swapped:
            got = "(N, T, C)" if not batch_first else "(T, N, C)"
            want = "(T, N, C)" if not batch_first else "(N, T, C)"
            add(
                "layout", "batch_first" if not batch_first else "time_first", "error",
                f"log_probs has shape {tuple(log_probs.shape)} and there are {n} samples: it looks {got}, "
                f"but the loss reads it as {want} (T={declared_t}, N={declared_n})",
                "pass batch_first=True to torch_ctc, or transpose with log_probs.transpose(0, 1)"
                if not batch_first
                else "drop batch_first=True, or transpose with log_probs.transpose(0, 1)",
                details={"n_lengths": n, "shape": tuple(log_probs.shape)},
            )
            bdim, other = other, bdim
        if bdim == 0:
            x = x.transpose(0, 1)
        x = x.contiguous()  # (T, N, C)
        T, N, C = x.shape
        report.T, report.N, report.C = T, N, C

        if n != N:
            add(
                "shapes", "batch", "error",
                f"{n} input_lengths for a batch of {N} (log_probs {tuple(log_probs.shape)})",
                "give one input length per sample, in batch order",
            )
            return report
        if tl.numel() != N:
            add(
                "shapes", "batch", "error",
                f"{tl.numel()} target_lengths for a batch of {N}",
                "give one target length per sample, in batch order",
            )
            return report

        # ---- lengths ----------------------------------------------------------------------
        over = [b for b in range(N) if int(il[b]) > T]
        neg = [b for b in range(N) if int(il[b]) < 0]
        if over or neg:
            bad = over + neg
            add(
                "lengths", "out_of_range", "error",
                f"input_lengths outside [0, T={T}] for {len(bad)} sample(s) "
                f"(e.g. sample {bad[0]}: {int(il[bad[0]])})",
                "compute input_lengths per sample from the real width through the model's downsampling; "
                "never hard-code them",
                samples=bad,
            )
        lengths = il.clamp(0, T)
        if N >= 2 and bool((il == il[0]).all()) and int(il[0]) != T and not over:
            v = int(il[0])
            ignored = N * (T - v)
            add(
                "lengths", "hard_coded", "error" if v < T else "warning",
                f"all {N} input_lengths are {v} but the model output has T={T} frames: the lengths look "
                f"hard-coded; the loss ignores {ignored} of {N * T} frames ({T - v} per sample)",
                "compute input_lengths per image from its width through the conv/pooling arithmetic "
                "(e.g. width // 4 for two width poolings), or T for every sample if nothing is padded",
                details={"value": v, "T": T, "ignored_frames": ignored},
            )

        # ---- normalisation ---------------------------------------------------------------
        valid = torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)  # (T, N)
        finite_rows = torch.isfinite(x).any(-1)
        mask = valid & finite_rows
        if not from_logits and bool(mask.any()):
            lse_c = torch.logsumexp(x, dim=-1)[mask]
            err_c = float(lse_c.abs().max())
            report.stats["mean_logsumexp_over_C"] = float(lse_c.mean())
            if not math.isfinite(err_c) or err_c > norm_tol:
                sums_c = x.clamp_min(0).sum(-1)[mask] if bool((x >= 0).all()) else None
                lse_t = torch.logsumexp(x, dim=0)  # over time, full padded T
                lse_n = torch.logsumexp(x, dim=1)  # over batch
                if sums_c is not None and float((sums_c - 1).abs().max()) < 1e-3 * C + norm_tol:
                    kind, what, fix = (
                        "probabilities",
                        "log_probs holds probabilities (softmax output): its values are in [0, 1] and sum to 1 "
                        "over C",
                        "use log_softmax(dim=-1) instead of softmax, or pass raw logits with from_logits=True",
                    )
                elif T > 1 and float(lse_t.abs().max()) < norm_tol:
                    kind, what, fix = (
                        "time",
                        "log_probs is normalised over the time dimension (softmax/log_softmax over T), "
                        "not over the classes",
                        "apply log_softmax over the class dimension: log_softmax(dim=-1) (or dim=2 for "
                        "(T, N, C) and (N, T, C) outputs)",
                    )
                elif N > 1 and float(lse_n.abs().max()) < norm_tol:
                    kind, what, fix = (
                        "batch",
                        "log_probs is normalised over the batch dimension (softmax/log_softmax over N), "
                        "not over the classes",
                        "apply log_softmax over the class dimension: log_softmax(dim=-1)",
                    )
                else:
                    kind, what, fix = (
                        "not_normalised",
                        f"log_probs is not normalised over the classes: logsumexp over C ranges from "
                        f"{float(lse_c.min()):.3g} to {float(lse_c.max()):.3g} instead of 0 (raw logits?)",
                        "apply log_softmax(dim=-1) to the model output, or pass the raw logits with "
                        "from_logits=True (torch_ctc fuses the log_softmax)",
                    )
                bad_samples = sorted(
                    {int(b) for b in (torch.logsumexp(x, -1).abs() > norm_tol).logical_and(mask).any(0).nonzero().flatten()}
                )
                add(
                    "normalisation", kind, "error", what, fix,
                    samples=bad_samples,
                    details={"max_abs_logsumexp_over_C": err_c},
                )

        # ---- targets: tokenizer mismatch and feasibility ------------------------------------
        per_sample, why = _split_targets(targets, tl, N)
        if per_sample is None:
            add(
                "shapes", "targets", "error", f"targets and target_lengths do not fit: {why}",
                "give padded (N, S) targets with S >= max target length, or 1-D concatenated targets "
                "of sum(target_lengths) labels",
            )
        else:
            blank_at = [b for b, seq in enumerate(per_sample) if blank in seq]
            if blank_at:
                count = sum(seq.count(blank) for seq in per_sample)
                add(
                    "tokenizer", "blank_in_targets", "error",
                    f"the blank id {blank} appears {count} time(s) inside the targets of {len(blank_at)} of "
                    f"{N} samples: the tokenizer gives a real character the blank's id",
                    f"reserve id {blank} for blank: number the characters from 1 (e.g. "
                    f"{{ch: i + 1 for i, ch in enumerate(vocab)}}) and size the output layer len(vocab) + 1",
                    samples=blank_at,
                    details={"count": count},
                )
            out_of_range = [b for b, seq in enumerate(per_sample) if any(v < 0 or v >= C for v in seq)]
            if out_of_range:
                labels = [v for seq in per_sample for v in seq]
                add(
                    "tokenizer", "label_out_of_range", "error",
                    f"labels outside [0, C={C}) in {len(out_of_range)} sample(s): min label {min(labels)}, "
                    f"max label {max(labels)}, but the model has only {C} output classes",
                    "size the model's last layer to the tokenizer: out_features = number of characters + 1 "
                    "(blank); check that padding values are not counted inside target_lengths",
                    samples=out_of_range,
                    details={"max_label": max(labels), "min_label": min(labels), "C": C},
                )
            infeasible, need_list = [], []
            for b, seq in enumerate(per_sample):
                repeats = sum(1 for i in range(1, len(seq)) if seq[i] == seq[i - 1])
                need = len(seq) + repeats
                if need > int(lengths[b]):
                    infeasible.append(b)
                    need_list.append((b, need, int(lengths[b])))
            if infeasible:
                ex = "; ".join(f"sample {b}: needs {nd} frames, has {av}" for b, nd, av in need_list[:_MAX_LISTED])
                if len(need_list) > _MAX_LISTED:
                    ex += f"; ... ({len(need_list)} in all)"
                add(
                    "infeasible", "too_few_frames", "error",
                    f"{len(infeasible)} of {N} samples cannot be aligned (T_b < labels + adjacent repeats), "
                    f"their loss is +inf: {ex}",
                    "downsample time less (fewer width poolings / strides), check that input_lengths are the "
                    "real per-sample frame counts, drop or split over-long targets, or set zero_infinity=True "
                    "to skip such samples",
                    samples=infeasible,
                    details={"needed_available": need_list},
                )
            mean_len = sum(len(s) for s in per_sample) / max(N, 1)
            report.stats["mean_target_length"] = round(mean_len, 2)

        # ---- blank collapse -------------------------------------------------------------------
        if 0 <= blank < C and bool(valid.any()):
            best = x.argmax(-1)  # (T, N)
            share = float((best == blank)[valid].float().mean())
            report.stats["blank_argmax_share"] = share
            glen = _greedy_lengths(best.T, lengths, blank)
            short = [b for b in range(N) if glen[b] <= 1 and (per_sample is None or len(per_sample[b]) > 1)]
            eligible = [b for b in range(N) if per_sample is None or len(per_sample[b]) > 1]
            short_share = len(short) / max(len(eligible), 1)
            report.stats["short_output_share"] = short_share
            if eligible and (share > blank_share or short_share > SHORT_OUTPUT_SHARE):
                why = []
                if share > blank_share:
                    why.append(f"blank wins the argmax on {100 * share:.1f}% of the valid frames")
                if short_share > SHORT_OUTPUT_SHARE:
                    why.append(
                        f"greedy decoding gives an empty or one-character output for {len(short)} of "
                        f"{len(eligible)} samples whose targets are longer"
                    )
                add(
                    "blank_collapse", "blank" if share > blank_share else "short_outputs", "warning",
                    "the model has collapsed to blanks: " + "; ".join(why),
                    "normal for the first few hundred steps; if it persists, fix the other findings first "
                    "(lengths, normalisation, tokenizer), then check the learning rate (3e-4..1e-3 with Adam), "
                    "gradient clipping, and that the model downsamples width only 4-8x and has nonlinearities",
                    samples=short,
                    details={"blank_share": share, "short_output_share": short_share},
                )
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
