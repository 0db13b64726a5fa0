"""Property-based tests (Hypothesis): the whole matrix of CPU paths, drawn at random.

A strided float32 input once corrupted the heap because the stride test covered only
float64, which runs a different kernel. Here every example draws one complete call:

- dtype (float64, float32, float16, bfloat16), CPU kernel (AVX2 or scalar, through
  ``set_cpu_kernel``) and thread count (1 or 2; some batches are large enough for the
  engine to split them over threads);
- from_logits, normalised or raw log-probs, time-major, batch-first or unbatched input;
- padded (with any padding value, contiguous or not) or concatenated targets, int32 or
  int64, blank anywhere in ``[0, C)``; lengths as tensors (int32, int64, 0-d) or lists;
- zero_infinity and every reduction;
- ragged input lengths, empty targets, zero-length inputs and infeasible samples;
- any strided view of log_probs: any memory order of the dimensions (channels-first,
  batch-major, ...), steps (stride_c != 1), offsets into a larger tensor, and expand
  (stride 0).

Each example is checked three ways:

1. the same call on float64, contiguous input holding the same values agrees with an
   independent float64 reference (brute force over all paths when small, the numpy
   alpha-beta of reference.py otherwise), loss and exact gradient, NaN for NaN;
2. the drawn call agrees with that float64 call within the rounding of its dtype;
3. with 2 threads, the same call on 1 thread gives bitwise the same loss and gradient.

A failure names the drawn ``Case``: ``check_case(<the repr>)`` replays it exactly, and
Hypothesis prints the seed that drew it (``--hypothesis-seed=N`` reruns the search).
The default run draws ``TORCH_CTC_HYPOTHESIS_EXAMPLES`` examples (1500, about 20 s); set it higher
for a longer search, e.g. ``TORCH_CTC_HYPOTHESIS_EXAMPLES=20000``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import torch_ctc
from reference import MAX_BRUTE_FORCE_T, alpha_beta_nll_grad, brute_force_nll, min_frames

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
EXAMPLES = int(os.environ.get("TORCH_CTC_HYPOTHESIS_EXAMPLES", "1500"))
BRUTE_FORCE_PATHS = 4096  # brute force when C ** T_n is at most this

# Tolerances. A log-space recurrence in precision eps carries an absolute error of
# about eps * (|nll| + T) into each log posterior, so each sample's losses and gradients
# are allowed K * eps * (|nll_n| + T_n + 1) times its gradient scale, eps being that of
# the accumulate type (float32 for every input but float64; the AVX2 kernels' vector
# exp/log included). Half-type gradients are rounded on output: ROUNDING adds that
# relative error. (The stride bug this file was written for gave errors near 1.)
K = 16
ACCUMULATE_EPS = {"float64": torch.finfo(torch.float64).eps, "float32": torch.finfo(torch.float32).eps,
                  "float16": torch.finfo(torch.float32).eps, "bfloat16": torch.finfo(torch.float32).eps}
ROUNDING = {"float64": 0.0, "float32": 0.0, "float16": 1e-3, "bfloat16": 8e-3}
SUBNORMAL_ROUNDING = {"float16": 2.0**-25}  # half of float16's smallest subnormal step


# --------------------------------------------------------------------------
# The drawn call
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """How log_probs sits in memory, over its logical dims ((T, N, C), (N, T, C) or (T, C))."""

    order: Tuple[int, ...]  # memory order, outermost first: (0, 1, 2) is contiguous
    steps: Tuple[int, ...]  # every steps[d]-th element of a larger dim d
    offsets: Tuple[int, ...]  # starting at offsets[d]
    expand_dim: Optional[int] = None  # that dim is a stride-0 expand of one slice


@dataclass(frozen=True)
class Case:
    seed: int  # draws the values
    dtype: str
    kernel: str  # "auto" (AVX2 where the CPU has it) or "scalar"
    threads: int
    layout: str  # "time_major", "batch_first" or "unbatched"
    T: int
    C: int
    blank: int
    targets: Tuple[Tuple[int, ...], ...]
    input_lengths: Tuple[int, ...]
    from_logits: bool
    normalised: bool  # log_softmax applied before (for from_logits=False)
    scale: float
    targets_kind: str  # "padded", "padded_transposed" or "concat"
    targets_dtype: str
    pad_extra: int
    pad_fill: int
    lengths_kind: str
    zero_infinity: bool
    reduction: str
    view: View

    @property
    def N(self) -> int:
        return len(self.targets)

    def logical_shape(self) -> Tuple[int, ...]:
        return {"time_major": (self.T, self.N, self.C), "batch_first": (self.N, self.T, self.C),
                "unbatched": (self.T, self.C)}[self.layout]


CONTIGUOUS_3D = View((0, 1, 2), (1, 1, 1), (0, 0, 0))
CONTIGUOUS_2D = View((0, 1), (1, 1), (0, 0))


def contiguous_view(ndim: int) -> View:
    return CONTIGUOUS_3D if ndim == 3 else CONTIGUOUS_2D


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------
@st.composite
def views(draw, ndim: int) -> View:
    kind = draw(st.sampled_from(["contiguous", "class_stride", "channels_first", "slice", "expand", "any"]))
    plain = contiguous_view(ndim)
    last = ndim - 1
    if kind == "contiguous":
        return plain
    if kind == "class_stride":
        steps = tuple(draw(st.sampled_from([2, 3])) if d == last else 1 for d in range(ndim))
        return replace(plain, steps=steps)
    if kind == "channels_first":
        return replace(plain, order=(last,) + tuple(range(last)))
    if kind == "slice":
        return View(plain.order, tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(ndim)),
                    tuple(draw(st.integers(0, 2)) for _ in range(ndim)))
    order = tuple(draw(st.permutations(range(ndim))))
    steps = tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(ndim))
    offsets = tuple(draw(st.integers(0, 1)) for _ in range(ndim))
    expand = draw(st.integers(0, last)) if kind == "expand" else draw(st.one_of(st.none(), st.integers(0, last)))
    return View(order, steps, offsets, expand)


@st.composite
def small_samples(draw, N: int, T: int, C: int, blank: int):
    """Per-sample targets and input lengths, drawn by Hypothesis (so they shrink)."""
    label = st.integers(0, C - 2).map(lambda v: v + (v >= blank))
    targets, lengths = [], []
    for _ in range(N):
        target = tuple(draw(st.lists(label, max_size=min(T + 2, 7))))
        need = min_frames(target)
        feasible = draw(st.integers(0, 4)) > 0 and need <= T
        lengths.append(draw(st.integers(need, T) if feasible else st.integers(0, T)))
        targets.append(target)
    return tuple(targets), tuple(lengths)


def seeded_samples(seed: int, N: int, T: int, C: int, blank: int, max_L: int):
    """The same for large batches, from a seed (drawing thousands of labels one by one is slow)."""
    rng = np.random.default_rng(seed)
    labels = [c for c in range(C) if c != blank]
    targets, lengths = [], []
    for _ in range(N):
        target = tuple(int(v) for v in rng.choice(labels, size=int(rng.integers(0, max_L + 1))))
        need = min_frames(target)
        feasible = rng.random() < 0.9 and need <= T
        lengths.append(int(rng.integers(need if feasible else 0, T + 1)))
        targets.append(target)
    return tuple(targets), tuple(lengths)


@st.composite
def cases(draw) -> Case:
    layout = draw(st.sampled_from(["time_major", "batch_first", "unbatched"]))
    # One batch in six is large enough (work over 5e4 cells) that 2 threads split it.
    large = layout != "unbatched" and draw(st.integers(0, 5)) == 0
    N = 1 if layout == "unbatched" else draw(st.integers(24, 80) if large else st.integers(1, 5))
    T = draw(st.integers(40, 90) if large else st.integers(0, 12))
    C = draw(st.integers(2, 40) if large else st.integers(2, 9))
    blank = draw(st.integers(0, C - 1))
    seed = draw(st.integers(0, 2**31 - 1))
    if large:
        targets, input_lengths = seeded_samples(seed, N, T, C, blank, max_L=30)
    else:
        targets, input_lengths = draw(small_samples(N, T, C, blank))
    from_logits = draw(st.booleans())
    unbatched = layout == "unbatched"
    return Case(
        seed=seed,
        dtype=draw(st.sampled_from(list(DTYPES))),
        kernel=draw(st.sampled_from(["auto", "scalar"])),
        threads=draw(st.sampled_from([1, 2])),
        layout=layout,
        T=T,
        C=C,
        blank=blank,
        targets=targets,
        input_lengths=input_lengths,
        from_logits=from_logits,
        normalised=not from_logits and draw(st.booleans()),
        scale=draw(st.sampled_from([1.0, 4.0])),
        targets_kind=draw(st.sampled_from(["padded", "padded_transposed", "concat"])),
        targets_dtype=draw(st.sampled_from(["int32", "int64"])),
        pad_extra=draw(st.integers(0, 2)),
        pad_fill=draw(st.sampled_from([0, blank, C - 1, -1, C])),
        lengths_kind=draw(st.sampled_from(["int", "tensor0d", "tensor1d", "list"] if unbatched
                                          else ["int64", "int32", "list"])),
        zero_infinity=draw(st.booleans()),
        reduction=draw(st.sampled_from(["none", "mean", "sum"])),
        view=draw(views(2 if unbatched else 3)),
    )


# --------------------------------------------------------------------------
# Building the arguments
# --------------------------------------------------------------------------
def logical_values(case: Case) -> torch.Tensor:
    """The input values (float64, logical layout), already rounded to case.dtype, so
    every call and the reference see the same numbers."""
    g = torch.Generator().manual_seed(case.seed)
    shape = case.logical_shape()
    if case.view.expand_dim is not None and shape[case.view.expand_dim] > 0:
        small = list(shape)
        small[case.view.expand_dim] = 1
        raw = torch.randn(small, generator=g, dtype=torch.float64).expand(shape)
    else:
        raw = torch.randn(shape, generator=g, dtype=torch.float64)
    raw = raw * case.scale
    values = raw.log_softmax(-1) if case.normalised else raw
    return values.to(DTYPES[case.dtype]).to(torch.float64)


def strided_input(values: torch.Tensor, view: View, dtype: torch.dtype) -> torch.Tensor:
    """`values` as a view with the layout `view` describes, requiring grad (a non-leaf:
    the gradient asked for is the op's own, whatever the view)."""
    shape = list(values.shape)
    expand = view.expand_dim is not None and shape[view.expand_dim] > 0
    if expand:
        values = values.narrow(view.expand_dim, 0, 1)
    sizes = list(values.shape)
    full = [o + s * k for s, k, o in zip(sizes, view.steps, view.offsets)]
    storage = torch.zeros([full[d] for d in view.order], dtype=dtype)
    inverse = [view.order.index(d) for d in range(len(sizes))]
    index = tuple(slice(o, o + s * k, k) for s, k, o in zip(sizes, view.steps, view.offsets))
    storage.permute(inverse)[index].copy_(values)
    storage.requires_grad_(True)
    x = storage.permute(inverse)[index]
    return x.expand(shape) if expand else x


def targets_tensor(case: Case) -> torch.Tensor:
    dtype = getattr(torch, case.targets_dtype)
    if case.targets_kind == "concat":
        return torch.tensor([v for t in case.targets for v in t], dtype=dtype)
    S = max([len(t) for t in case.targets] + [0]) + case.pad_extra
    padded = torch.full((case.N, S), case.pad_fill, dtype=dtype)
    for n, t in enumerate(case.targets):
        padded[n, : len(t)] = torch.tensor(t, dtype=dtype)
    if case.targets_kind == "padded_transposed":
        padded = padded.t().contiguous().t()  # column-major storage
    return padded[0] if case.layout == "unbatched" else padded


def lengths_argument(values: Tuple[int, ...], kind: str):
    if kind == "int":
        return values[0]
    if kind == "tensor0d":
        return torch.tensor(values[0])
    if kind == "tensor1d":
        return torch.tensor(values)
    if kind == "list":
        return list(values)
    return torch.tensor(values, dtype=getattr(torch, kind))


def sample_weights(case: Case) -> torch.Tensor:
    """'none' is reduced with distinct weights, so each sample's gradient scale is tested."""
    return torch.linspace(0.5, 1.5, case.N, dtype=torch.float64)


def gradient_scales(case: Case) -> np.ndarray:
    if case.reduction == "none":
        return sample_weights(case).numpy()
    if case.reduction == "sum":
        return np.ones(case.N)
    return np.array([1.0 / (case.N * max(len(t), 1)) for t in case.targets])


def run_call(case: Case, values: torch.Tensor, view: View):
    """The torch_ctc call of `case` on `values` laid out as `view`: (loss, d loss / d input)
    in float64, the gradient in time-major (T, N, C)."""
    x = strided_input(values, view, DTYPES[case.dtype])
    torch_ctc._C.set_cpu_kernel(case.kernel)
    torch.set_num_threads(case.threads)
    try:
        loss = torch_ctc.ctc_loss(
            x, targets_tensor(case), lengths_argument(case.input_lengths, case.lengths_kind),
            lengths_argument(tuple(len(t) for t in case.targets), case.lengths_kind), blank=case.blank,
            reduction=case.reduction, zero_infinity=case.zero_infinity, batch_first=case.layout == "batch_first",
            from_logits=case.from_logits)
        weights = sample_weights(case).to(loss.dtype)
        total = (loss * (weights if loss.dim() else weights[0])).sum() if case.reduction == "none" else loss
        (grad,) = torch.autograd.grad(total, x)
    finally:
        torch_ctc._C.set_cpu_kernel("auto")
    assert grad.dtype == x.dtype and grad.shape == x.shape
    grad = grad.to(torch.float64)
    grad = {"time_major": grad, "batch_first": grad.transpose(0, 1), "unbatched": grad.unsqueeze(1)}[case.layout]
    return loss.detach().to(torch.float64), grad


# --------------------------------------------------------------------------
# The reference
# --------------------------------------------------------------------------
def reference_sample(lp: torch.Tensor, target, blank: int):
    """(nll, d nll / d lp) of one sample's valid frames: brute force when small."""
    frames, C = lp.shape
    if 0 < frames <= MAX_BRUTE_FORCE_T and C**frames <= BRUTE_FORCE_PATHS:
        x = lp.clone().requires_grad_(True)
        nll = brute_force_nll(x, target, blank)
        if not torch.isfinite(nll):
            return math.inf, np.full((frames, C), np.nan)
        (g,) = torch.autograd.grad(nll, x)
        return float(nll.detach()), g.numpy()
    return alpha_beta_nll_grad(lp.numpy(), target, blank)


@dataclass
class Expected:
    loss: torch.Tensor
    grad: torch.Tensor  # time-major (T, N, C)
    nlls: np.ndarray  # per sample, before reduction (0 where zero_infinity zeroed it)


def reference(case: Case, values: torch.Tensor) -> Expected:
    """Expected loss and time-major gradient of `case`, from the float64 values."""
    tm = {"time_major": values, "batch_first": values.transpose(0, 1), "unbatched": values.unsqueeze(1)}[case.layout]
    lp = tm.log_softmax(-1) if case.from_logits else tm
    scales = gradient_scales(case)
    nlls = np.zeros(case.N)
    grad = np.zeros((case.T, case.N, case.C))
    for n, target in enumerate(case.targets):
        frames = case.input_lengths[n]
        nll, g = reference_sample(lp[:frames, n], target, case.blank)
        if math.isinf(nll) and case.zero_infinity:
            continue  # loss and gradient 0
        nlls[n] = nll
        if case.from_logits and math.isfinite(nll):  # through the fused log_softmax
            g = g - np.exp(lp[:frames, n].numpy()) * g.sum(-1, keepdims=True)
        grad[:frames, n] = g * scales[n]
    if case.reduction == "none":
        loss = torch.from_numpy(nlls)
        loss = loss[0] if case.layout == "unbatched" else loss
    elif case.reduction == "sum":
        loss = torch.tensor(nlls.sum())
    else:
        loss = torch.tensor(np.mean([v / max(len(t), 1) for v, t in zip(nlls, case.targets)]))
    return Expected(loss, torch.from_numpy(grad), nlls)


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------
def sample_tolerances(case: Case, expected: Expected, dtype: str) -> np.ndarray:
    """Per sample, the absolute error allowed before scaling (see K above)."""
    finite = np.where(np.isfinite(expected.nlls), np.abs(expected.nlls), 0.0)
    return K * ACCUMULATE_EPS[dtype] * (finite + np.array(case.input_lengths) + 1.0)


def tolerances(case: Case, expected: Expected, dtype: str):
    """(loss atol, gradient atol tensor (T, N, C)) for results in `dtype`."""
    per_sample = sample_tolerances(case, expected, dtype)
    scales = gradient_scales(case)
    if case.reduction == "none":
        loss_atol = torch.from_numpy(per_sample)
        loss_atol = loss_atol[0] if case.layout == "unbatched" else loss_atol
    else:
        loss_atol = torch.tensor(float((per_sample * scales).sum()))
    grad_atol = torch.from_numpy(per_sample * scales + SUBNORMAL_ROUNDING.get(dtype, 0.0))
    return loss_atol, grad_atol[None, :, None].expand(case.T, case.N, case.C)


def assert_matches(got, expected, atol, rtol: float, what: str):
    """|got - expected| <= atol + rtol |expected| elementwise; NaN and inf where expected has them."""
    assert got.shape == expected.shape, f"{what}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
    assert torch.equal(torch.isnan(got), torch.isnan(expected)), f"{what}: NaN in different places"
    infinite = torch.isinf(expected)
    assert torch.equal(got[infinite], expected[infinite]), f"{what}: inf in different places"
    finite = torch.isfinite(expected)
    err = (got - expected).abs()
    bad = finite & ~(err <= atol + rtol * expected.abs())
    if bad.any():
        i = tuple(int(v) for v in bad.nonzero()[0])
        allowed = (atol + rtol * expected.abs())[i] if torch.is_tensor(atol) else atol + rtol * abs(expected[i])
        raise AssertionError(f"{what}: {int(bad.sum())} of {expected.numel()} elements differ, first at {i}: "
                             f"{float(got[i])!r} vs {float(expected[i])!r} (allowed {float(allowed):.3g})")


def assert_identical(got, expected, what: str):
    assert torch.equal(torch.isnan(got), torch.isnan(expected)), f"{what}: NaN in different places"
    assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(expected)), f"{what}: not bitwise identical"


def check_case(case: Case) -> None:
    values = logical_values(case)
    plain = contiguous_view(values.dim())
    expected = reference(case, values)
    # 1. The float64 contiguous call against the independent reference.
    loss64, grad64 = run_call(replace(case, dtype="float64", kernel="scalar", threads=1), values, plain)
    loss_atol, grad_atol = tolerances(case, expected, "float64")
    assert_matches(loss64, expected.loss, loss_atol, 0.0, "float64 loss vs reference")
    assert_matches(grad64, expected.grad, grad_atol, 0.0, "float64 gradient vs reference")
    # 2. The drawn call against the float64 one.
    loss, grad = run_call(case, values, case.view)
    loss_atol, grad_atol = tolerances(case, expected, case.dtype)
    assert_matches(loss, loss64, loss_atol, 0.0, f"{case.dtype} loss vs float64")
    assert_matches(grad, grad64, grad_atol, ROUNDING[case.dtype], f"{case.dtype} gradient vs float64")
    # 3. Bitwise the same on one thread.
    if case.threads > 1:
        loss1, grad1 = run_call(replace(case, threads=1), values, case.view)
        assert_identical(loss, loss1, "loss with 2 threads vs 1")
        assert_identical(grad, grad1, "gradient with 2 threads vs 1")


def view_kind(view: View) -> str:
    if view.expand_dim is not None:
        return "expand"
    if view.order[0] == len(view.order) - 1:
        return "channels_first"
    if view.steps[-1] != 1:
        return "class_stride"
    if view == contiguous_view(len(view.order)):
        return "contiguous"
    return "other_strided"


def record_coverage(case: Case) -> None:
    """Labels for --hypothesis-show-statistics: which paths the run drew, and how often."""
    event(f"{case.dtype} {case.kernel if case.dtype != 'float64' else 'scalar'} {view_kind(case.view)}")
    event(f"{case.layout}, from_logits={case.from_logits}, {case.targets_kind}, threads={case.threads}")
    infeasible = any(min_frames(t) > f for t, f in zip(case.targets, case.input_lengths))
    event(f"infeasible sample: {infeasible}, zero_infinity={case.zero_infinity}, {case.reduction}")


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_every_path_matches_the_reference(case):
    record_coverage(case)
    try:
        check_case(case)
    except AssertionError as e:
        raise AssertionError(f"{e}\nreplay with: check_case({case!r})") from None


def test_case_replays():
    """A failing case's repr rebuilds it (the failure message relies on it)."""
    case = Case(seed=5, dtype="float32", kernel="auto", threads=2, layout="time_major", T=6, C=4, blank=2,
                targets=((1, 1), (), (3, 0, 1)), input_lengths=(6, 0, 4), from_logits=False, normalised=True,
                scale=1.0, targets_kind="padded", targets_dtype="int32", pad_extra=1, pad_fill=-1,
                lengths_kind="int64", zero_infinity=False, reduction="mean",
                view=View((2, 0, 1), (1, 1, 2), (0, 1, 0), None))
    assert eval(repr(case)) == case
    check_case(case)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kernel", ["auto", "scalar"])
def test_the_reported_class_stride_view(dtype, kernel):
    """The reported view, stride_c = 2 by repeat_interleave(...)[..., ::2], on every dtype and kernel."""
    case = Case(seed=11, dtype=dtype, kernel=kernel, threads=1, layout="time_major", T=12, C=6, blank=0,
                targets=((1, 2, 3), (4, 4), (5,)), input_lengths=(12, 9, 7), from_logits=False, normalised=True,
                scale=1.0, targets_kind="padded", targets_dtype="int64", pad_extra=0, pad_fill=0,
                lengths_kind="int64", zero_infinity=False, reduction="sum",
                view=View((0, 1, 2), (1, 1, 2), (0, 0, 0), None))
    check_case(case)
