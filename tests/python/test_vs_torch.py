"""torch_ctc against torch.nn.functional.ctc_loss.

Losses are compared directly.  Gradients are compared with respect to the
*logits* (log_softmax sits in front of the loss), because torch_ctc returns the
exact derivative w.r.t. log_probs while torch returns exp(lp) - posterior
(pytorch issues #52241, #127608); the two agree after log_softmax.
Where a test needs the gradient w.r.t. log_probs itself, the exact gradient is
derived from torch's as  torch_grad - exp(lp) * dL/dnll  on valid frames.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import torch_ctc
from conftest import requires_cuda
from reference import Problem, lp_grad_to_logit_grad, make_problem, min_frames

F64_TOL = dict(rtol=1e-10, atol=1e-12)
F64_GRAD_TOL = dict(rtol=1e-9, atol=1e-11)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _weights(n, dtype=torch.float64):
    g = torch.Generator().manual_seed(99)
    return torch.rand(n, generator=g, dtype=torch.float64).add(0.5).to(dtype)


def _scalar(loss, reduction):
    """Reduce to a scalar; 'none' uses random per-sample weights so per-sample grads are tested."""
    if reduction == "none":
        if loss.dim() == 0:
            return loss * 1.7
        return (loss * _weights(loss.shape[0], loss.dtype)).sum()
    return loss


def loss_and_logit_grad(fn, logits, reduction, *, from_logits=False):
    """Run fn on log_softmax(logits) (or the logits themselves) and return (loss, d/dlogits)."""
    x = logits.detach().clone().requires_grad_(True)
    inp = x if from_logits else x.log_softmax(-1)
    loss = fn(inp)
    s = _scalar(loss, reduction)
    if s.requires_grad and torch.isfinite(s):
        (g,) = torch.autograd.grad(s, x)
    else:
        g = None
    return loss.detach(), g


def torch_ref(targets, il, tl, **kw):
    return lambda lp: F.ctc_loss(lp, targets, il, tl, **kw)


def ours(targets, il, tl, **kw):
    return lambda lp: torch_ctc.ctc_loss(lp, targets, il, tl, **kw)


def assert_close(a, b, **tol):
    torch.testing.assert_close(a.to(torch.float64), b.to(torch.float64), equal_nan=False, **tol)


def compare(
    p: Problem,
    *,
    reduction="mean",
    zero_infinity=False,
    targets=None,
    il=None,
    tl=None,
    torch_targets=None,
    loss_tol=F64_TOL,
    grad_tol=F64_GRAD_TOL,
    expect_grad=True,
):
    targets = p.padded() if targets is None else targets
    torch_targets = targets if torch_targets is None else torch_targets
    il = p.il() if il is None else il
    tl = p.tl() if tl is None else tl
    kw = dict(blank=p.blank, reduction=reduction, zero_infinity=zero_infinity)
    l_ref, g_ref = loss_and_logit_grad(torch_ref(torch_targets, p.il(), p.tl(), **kw), p.logits, reduction)
    l_our, g_our = loss_and_logit_grad(ours(targets, il, tl, **kw), p.logits, reduction)
    assert l_our.dtype == l_ref.dtype
    assert l_our.shape == l_ref.shape
    assert_close(l_our, l_ref, **loss_tol)
    if expect_grad:
        assert g_ref is not None and g_our is not None
        assert torch.isfinite(g_our).all()
        assert_close(g_our, g_ref, **grad_tol)
    return l_our, g_our


def exact_grad_from_torch(p_lp, loss_ref, torch_grad_lp, il, gr):
    """torch's grad w.r.t. lp is (exp(lp) - posterior) * gr on valid frames; return -posterior * gr."""
    out = torch_grad_lp.clone().to(torch.float64)
    lp = p_lp.to(torch.float64)
    for b in range(lp.shape[1]):
        if math.isfinite(float(loss_ref[b])):
            out[: int(il[b]), b] -= lp[: int(il[b]), b].exp() * gr[b]
    return out


# --------------------------------------------------------------------------
# the main grid
# --------------------------------------------------------------------------
@pytest.mark.parametrize("targets_kind", ["concat", "padded"])
@pytest.mark.parametrize("tgt_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_grid(targets_kind, tgt_dtype, reduction, zero_infinity):
    p = make_problem(seed=1, T=30, N=5, C=7, max_L=10)
    tg = p.concat(tgt_dtype) if targets_kind == "concat" else p.padded(tgt_dtype)
    compare(p, reduction=reduction, zero_infinity=zero_infinity, targets=tg)


@pytest.mark.parametrize("len_kind", ["int64", "int32", "list", "tuple"])
@pytest.mark.parametrize("targets_kind", ["concat", "padded"])
def test_length_types(len_kind, targets_kind):
    p = make_problem(seed=2, T=20, N=4, C=6, max_L=8)
    conv = {
        "int64": lambda v: torch.tensor(v, dtype=torch.int64),
        "int32": lambda v: torch.tensor(v, dtype=torch.int32),
        "list": lambda v: list(v),
        "tuple": lambda v: tuple(v),
    }[len_kind]
    tg = p.concat() if targets_kind == "concat" else p.padded()
    for reduction in ("none", "mean"):
        compare(p, reduction=reduction, targets=tg, il=conv(p.input_lengths), tl=conv(p.target_lengths))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_output_shape_and_dtype(reduction):
    p = make_problem(seed=3, T=10, N=3, C=5, max_L=3)
    out = torch_ctc.ctc_loss(p.log_probs(), p.padded(), p.il(), p.tl(), reduction=reduction)
    assert out.dtype == torch.float64
    assert out.shape == ((3,) if reduction == "none" else ())


@pytest.mark.parametrize("blank_pos", ["first", "middle", "last"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_blank_positions(blank_pos, reduction):
    C = 6
    blank = {"first": 0, "middle": C // 2, "last": C - 1}[blank_pos]
    p = make_problem(seed=4, T=25, N=4, C=C, max_L=9, blank=blank)
    compare(p, reduction=reduction)
    compare(p, reduction=reduction, targets=p.concat(torch.int32))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_batch_first(reduction):
    p = make_problem(seed=5, T=18, N=4, C=5, max_L=6)
    x_ntc = p.logits.transpose(0, 1).contiguous()
    kw = dict(reduction=reduction)
    l_ref, g_ref = loss_and_logit_grad(
        lambda lp: F.ctc_loss(lp.transpose(0, 1), p.padded(), p.il(), p.tl(), **kw), x_ntc, reduction
    )
    l_our, g_our = loss_and_logit_grad(
        lambda lp: torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl(), batch_first=True, **kw), x_ntc, reduction
    )
    assert_close(l_our, l_ref, **F64_TOL)
    assert g_our.shape == x_ntc.shape
    assert_close(g_our, g_ref, **F64_GRAD_TOL)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("len_kind", ["0d", "int"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_unbatched(reduction, len_kind, from_logits):
    p = make_problem(seed=6, T=12, N=1, C=5, max_L=5, min_L=2, ragged=False)
    x = p.logits[:, 0]  # (T, C)
    tgt = torch.tensor(p.targets_list[0])
    il, tl = p.input_lengths[0], p.target_lengths[0]
    if len_kind == "0d":
        il, tl = torch.tensor(il), torch.tensor(tl)
    l_ref, g_ref = loss_and_logit_grad(
        lambda lp: F.ctc_loss(lp, tgt, torch.tensor(p.input_lengths[0]), torch.tensor(p.target_lengths[0]),
                              reduction=reduction),
        x, reduction,
    )
    l_our, g_our = loss_and_logit_grad(
        lambda inp: torch_ctc.ctc_loss(inp, tgt, il, tl, reduction=reduction, from_logits=from_logits),
        x, reduction, from_logits=from_logits,
    )
    assert l_our.shape == () and l_ref.shape == ()
    assert_close(l_our, l_ref, **F64_TOL)
    assert g_our.shape == x.shape
    assert_close(g_our, g_ref, **F64_GRAD_TOL)


def test_unbatched_partial_length():
    """Unbatched input with input_length < T: trailing frames are ignored."""
    p = make_problem(seed=61, T=12, N=1, C=5, max_L=4, min_L=2, ragged=False)
    x = p.logits[:, 0].log_softmax(-1)
    tgt = torch.tensor(p.targets_list[0])
    L = len(p.targets_list[0])
    il = max(min_frames(p.targets_list[0]), 8)
    ref = F.ctc_loss(x[:il], tgt, torch.tensor(il), torch.tensor(L), reduction="none")
    got = torch_ctc.ctc_loss(x, tgt, il, L, reduction="none")
    assert_close(got, ref, **F64_TOL)


def test_non_contiguous_inputs():
    p = make_problem(seed=7, T=16, N=4, C=6, max_L=6)
    # log_probs as a transposed view of an (N, T, C) tensor, targets as a transposed (S, N) tensor,
    # lengths as strided slices.
    x_ntc = p.logits.transpose(0, 1).contiguous()
    tgt_sn = p.padded().t().contiguous()
    il_big = torch.stack([p.il(), torch.full((p.N,), 999)], 1).reshape(-1)
    tl_big = torch.stack([p.tl(), torch.full((p.N,), 999)], 1).reshape(-1)
    il_view, tl_view = il_big[::2], tl_big[::2]
    tgt_view = tgt_sn.t()
    assert not tgt_view.is_contiguous() and not il_view.is_contiguous()

    def f_ours(lp_ntc):
        lp = lp_ntc.transpose(0, 1)
        assert not lp.is_contiguous()
        return torch_ctc.ctc_loss(lp, tgt_view, il_view, tl_view, reduction="none")

    def f_ref(lp_ntc):
        return F.ctc_loss(lp_ntc.transpose(0, 1).contiguous(), p.padded(), p.il(), p.tl(), reduction="none")

    l_ref, g_ref = loss_and_logit_grad(f_ref, x_ntc, "none")
    l_our, g_our = loss_and_logit_grad(f_ours, x_ntc, "none")
    assert_close(l_our, l_ref, **F64_TOL)
    assert_close(g_our, g_ref, **F64_GRAD_TOL)


CLASS_STRIDE_DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", CLASS_STRIDE_DTYPES)
@pytest.mark.parametrize("kernel", ["auto", "scalar"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_non_contiguous_class_stride(dtype, kernel, from_logits):
    """log_probs whose class dimension has stride 2, on every dtype and CPU kernel.

    This covered only float64 once, and float32 (the AVX2 backward) wrote its
    gradient rows through offsets built for the input's class stride: wrong
    gradients and heap corruption."""
    p = make_problem(seed=8, T=14, N=3, C=5, max_L=5)
    lp = (p.logits if from_logits else p.log_probs()).to(dtype)
    big = torch.zeros(p.T, p.N, 2 * p.C, dtype=dtype)
    big[..., ::2] = lp
    leaf = big.clone().requires_grad_(True)
    kw = dict(reduction="sum", from_logits=from_logits)
    torch_ctc._C.set_cpu_kernel(kernel)
    try:
        loss = torch_ctc.ctc_loss(leaf[..., ::2], p.padded(), p.il(), p.tl(), **kw)
        loss.backward()
        # the same as a contiguous call, bit for bit
        lp2 = big[..., ::2].contiguous().requires_grad_(True)
        loss2 = torch_ctc.ctc_loss(lp2, p.padded(), p.il(), p.tl(), **kw)
        loss2.backward()
    finally:
        torch_ctc._C.set_cpu_kernel("auto")
    assert (leaf.grad[..., 1::2] == 0).all()
    assert_close(loss.detach(), loss2.detach(), rtol=0, atol=0)
    assert_close(leaf.grad[..., ::2], lp2.grad, rtol=0, atol=0)
    if dtype == torch.float64:
        ref = F.ctc_loss(p.log_probs(), p.padded(), p.il(), p.tl(), reduction="sum")
        assert_close(loss.detach(), ref, **F64_TOL)


def test_class_stride_float32_loop_keeps_the_heap_intact():
    """The reported reproduction: a loop of float32 calls on a stride_c = 2 view
    (it ended in 'double free or corruption'). Run under ASan in CI."""
    p = make_problem(seed=81, T=30, N=4, C=12, max_L=8)
    lp = p.log_probs().float()
    x = torch.repeat_interleave(lp, 2, -1)[..., ::2]
    assert x.stride(-1) == 2
    expected = None
    for _ in range(50):
        leaf = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch_ctc.ctc_loss(leaf, p.padded(), p.il(), p.tl(), reduction="sum"), leaf)
        if expected is None:
            y = x.contiguous().requires_grad_(True)
            (expected,) = torch.autograd.grad(torch_ctc.ctc_loss(y, p.padded(), p.il(), p.tl(), reduction="sum"), y)
        assert_close(grad, expected, rtol=0, atol=0)


@pytest.mark.parametrize("which", ["input_lengths", "target_lengths", "both"])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_zero_dim_lengths_for_a_batch_of_one(which, dtype):
    """torch accepts 0-d length tensors when N = 1 (its test_CTCLoss_critical_target_len
    passes target_lengths = torch.tensor(256, dtype=torch.int))."""
    p = make_problem(seed=82, T=12, N=1, C=5, max_L=4, min_L=3)
    il = torch.tensor(p.input_lengths[0], dtype=dtype) if which != "target_lengths" else p.il()
    tl = torch.tensor(len(p.targets_list[0]), dtype=dtype) if which != "input_lengths" else p.tl()
    for reduction in ["none", "mean", "sum"]:
        lp = p.log_probs().requires_grad_(True)
        ours_loss = torch_ctc.ctc_loss(lp, p.padded(), il, tl, reduction=reduction)
        ref = F.ctc_loss(p.log_probs(), p.padded(), il, tl, reduction=reduction)
        assert ours_loss.shape == ref.shape
        assert_close(ours_loss.detach(), ref, **F64_TOL)
        ours_loss.sum().backward()


def test_zero_dim_lengths_need_a_batch_of_one():
    p = make_problem(seed=83, T=12, N=3, C=5, max_L=4)
    with pytest.raises(ValueError, match="input_lengths has 1 entries but log_probs has a batch of N = 3"):
        torch_ctc.ctc_loss(p.log_probs(), p.padded(), torch.tensor(12), p.tl())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("T", [0, 5])
def test_empty_batch_is_refused(batch_first, T):
    """torch raises 'log_probs tensor must not be empty' (RuntimeError, its test_ctc_loss_error);
    we raise ValueError naming log_probs. (T = 0 with N >= 1 stays allowed: test_T_equals_0.)"""
    shape = (0, T, 4) if batch_first else (T, 0, 4)
    empty = torch.tensor([], dtype=torch.long)
    for reduction in ["none", "mean", "sum"]:
        with pytest.raises(ValueError, match=r"log_probs has an empty batch \(N = 0"):
            torch_ctc.ctc_loss(torch.rand(shape), empty, empty, empty, reduction=reduction, batch_first=batch_first)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("fill", [float("nan"), float("inf"), float("-inf")])
def test_ragged_with_nonfinite_padding(batch_first, from_logits, fill):
    """Frames t >= input_length hold NaN/inf: loss unaffected, gradient exactly 0 there."""
    p = make_problem(seed=9, T=20, N=5, C=6, max_L=6)
    assert min(p.input_lengths) < p.T
    lp_clean = p.log_probs()
    base = p.logits.clone() if from_logits else lp_clean.clone()
    mask = torch.arange(p.T)[:, None] >= p.il()[None, :]  # (T, N)
    base[mask] = fill
    zeroed = lp_clean.clone()
    zeroed[mask] = 0.0

    lp_ref = zeroed.clone().requires_grad_(True)
    ref = F.ctc_loss(lp_ref, p.padded(), p.il(), p.tl(), reduction="none")
    w = _weights(p.N)
    (ref * w).sum().backward()

    inp = base.transpose(0, 1).contiguous() if batch_first else base
    inp = inp.requires_grad_(True)
    got = torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), reduction="none",
                             batch_first=batch_first, from_logits=from_logits)
    assert_close(got.detach(), ref.detach(), **F64_TOL)
    (got * w).sum().backward()
    g = inp.grad.transpose(0, 1) if batch_first else inp.grad
    assert torch.isfinite(g).all()
    assert (g[mask] == 0).all()
    if from_logits:
        expected = lp_ref.grad  # torch's lp gradient is the logits gradient
    else:
        expected = exact_grad_from_torch(zeroed, ref.detach(), lp_ref.grad, p.il(), w)
    assert_close(g[~mask], expected[~mask], **F64_GRAD_TOL)


@pytest.mark.parametrize("fill", [-1, 9999])
@pytest.mark.parametrize("tgt_dtype", [torch.int32, torch.int64])
def test_garbage_beyond_target_length(fill, tgt_dtype):
    p = make_problem(seed=10, T=20, N=4, C=6, max_L=7)
    S = max(p.target_lengths) + 3
    garbage = p.padded(tgt_dtype, fill=fill, S=S)
    clean = p.padded(tgt_dtype, fill=1, S=S)
    compare(p, reduction="none", targets=garbage, torch_targets=clean)


@pytest.mark.parametrize(
    "target,T",
    [
        ([1, 1, 1], 5),  # exactly feasible: needs 5 frames
        ([1, 1, 1], 6),
        ([1, 1, 2, 2], 6),
        ([2, 2], 3),
        ([3, 3, 3, 3], 7),
        ([1, 2, 1, 2], 4),  # no repeats, exactly L frames
    ],
)
@pytest.mark.parametrize("blank", [0, 4])
def test_repeats_feasible(target, T, blank):
    C = 5
    if blank == 4:
        target = [v - 1 for v in target]
    assert min_frames(target) <= T
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(T, 2, C, generator=g, dtype=torch.float64)
    p = Problem(logits, [target, target[:-1]], [T, T], blank, C)
    l, _ = compare(p, reduction="none")
    assert torch.isfinite(l).all()


@pytest.mark.parametrize("target,T", [([1, 1, 1], 4), ([1, 1, 2, 2], 5), ([2, 2], 2), ([1, 2, 3], 2)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_repeats_infeasible(target, T, reduction, zero_infinity):
    C = 5
    g = torch.Generator().manual_seed(12)
    logits = torch.randn(T + 2, 3, C, generator=g, dtype=torch.float64)
    # sample 0 infeasible (input length T), samples 1, 2 feasible
    p = Problem(logits, [target, [1], [2, 3]], [T, T + 2, T + 2], 0, C)
    if zero_infinity:
        l, g_our = compare(p, reduction=reduction, zero_infinity=True)
        assert torch.isfinite(l).all()
        if reduction == "none":
            assert l[0] == 0
        # zero gradient for the infeasible sample
        assert (g_our[:, 0] == 0).all()
    else:
        l, _ = compare(p, reduction=reduction, zero_infinity=False, expect_grad=False)
        if reduction == "none":
            assert l[0] == math.inf and torch.isfinite(l[1:]).all()
        else:
            assert l == math.inf


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("targets_kind", ["concat", "padded"])
def test_empty_targets(reduction, targets_kind):
    g = torch.Generator().manual_seed(13)
    T, C = 9, 4
    logits = torch.randn(T, 4, C, generator=g, dtype=torch.float64)
    p = Problem(logits, [[], [1, 2], [], [3]], [9, 7, 4, 9], 0, C)
    tg = p.concat() if targets_kind == "concat" else p.padded()
    l, _ = compare(p, reduction=reduction, targets=tg)
    if reduction == "none":
        lp = p.log_probs()
        assert_close(l[0], -lp[:9, 0, 0].sum(), **F64_TOL)
        assert_close(l[2], -lp[:4, 2, 0].sum(), **F64_TOL)


@pytest.mark.parametrize("targets_kind", ["concat", "padded"])
def test_all_targets_empty(targets_kind):
    g = torch.Generator().manual_seed(14)
    logits = torch.randn(6, 3, 4, generator=g, dtype=torch.float64)
    p = Problem(logits, [[], [], []], [6, 3, 1], 2, 4)
    tg = torch.zeros(0, dtype=torch.long) if targets_kind == "concat" else torch.zeros(3, 0, dtype=torch.long)
    for red in ["none", "sum", "mean"]:
        compare(p, reduction=red, targets=tg, torch_targets=p.padded(S=1))


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_T_equals_1(reduction):
    g = torch.Generator().manual_seed(15)
    logits = torch.randn(1, 3, 4, generator=g, dtype=torch.float64)
    p = Problem(logits, [[], [2], [3]], [1, 1, 1], 0, 4)
    l, _ = compare(p, reduction=reduction)
    if reduction == "none":
        lp = p.log_probs()
        assert_close(l, torch.stack([-lp[0, 0, 0], -lp[0, 1, 2], -lp[0, 2, 3]]), **F64_TOL)


def test_zero_input_length_in_batch():
    """input_length 0: loss 0 with an empty target, +inf otherwise."""
    g = torch.Generator().manual_seed(16)
    logits = torch.randn(5, 3, 4, generator=g, dtype=torch.float64)
    p = Problem(logits, [[1, 2], [], [3]], [5, 0, 0], 0, 4)
    l, _ = compare(p, reduction="none", expect_grad=False)
    assert l[1] == 0 and l[2] == math.inf
    l, g_our = compare(p, reduction="none", zero_infinity=True)
    assert l[1] == 0 and l[2] == 0
    assert (g_our[:, 1:] == 0).all()


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("targets_kind", ["concat", "padded"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_T_equals_0(reduction, targets_kind, batch_first):
    """A (0, N, C) input with all-empty targets has loss 0 (torch rejects it)."""
    N, C = 3, 4
    shape = (N, 0, C) if batch_first else (0, N, C)
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    tg = torch.zeros(0, dtype=torch.long) if targets_kind == "concat" else torch.zeros(N, 0, dtype=torch.long)
    loss = torch_ctc.ctc_loss(x, tg, [0] * N, [0] * N, reduction=reduction, batch_first=batch_first)
    expected = torch.zeros(N, dtype=torch.float64) if reduction == "none" else torch.zeros((), dtype=torch.float64)
    assert_close(loss.detach(), expected, rtol=0, atol=0)
    loss.sum().backward()
    assert x.grad.shape == x.shape


def test_T_equals_0_unbatched():
    x = torch.zeros(0, 5, dtype=torch.float64, requires_grad=True)
    loss = torch_ctc.ctc_loss(x, torch.zeros(0, dtype=torch.long), 0, 0, reduction="none")
    assert loss.shape == () and loss.item() == 0.0
    loss.backward()
    assert x.grad.shape == x.shape


def test_T_equals_0_nonempty_target_is_inf():
    x = torch.zeros(0, 2, 4, dtype=torch.float64)
    loss = torch_ctc.ctc_loss(x, torch.tensor([[1], [0]]), [0, 0], [1, 0], reduction="none")
    assert loss[0] == math.inf and loss[1] == 0
    loss = torch_ctc.ctc_loss(x, torch.tensor([[1], [0]]), [0, 0], [1, 0], reduction="none", zero_infinity=True)
    assert (loss == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_long_targets(reduction):
    p = make_problem(seed=17, T=2500, N=2, C=20, max_L=1000, min_L=1000)
    assert all(len(t) == 1000 for t in p.targets_list)
    tol = dict(rtol=1e-9, atol=1e-9)
    compare(p, reduction=reduction, loss_tol=tol, grad_tol=tol)
    compare(p, reduction=reduction, targets=p.concat(torch.int32), loss_tol=tol, grad_tol=tol)


@pytest.mark.parametrize("scale", [30.0, 100.0])
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_peaked_log_probs(scale, reduction):
    p = make_problem(seed=18, T=40, N=4, C=8, max_L=12, scale=scale)
    l, g = compare(p, reduction=reduction, loss_tol=dict(rtol=1e-9, atol=1e-9),
                   grad_tol=dict(rtol=1e-7, atol=1e-8))
    assert torch.isfinite(l).all() and torch.isfinite(g).all()


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("blank", [0, 3])
def test_from_logits(reduction, batch_first, blank):
    p = make_problem(seed=19, T=22, N=4, C=7, max_L=8, blank=blank, scale=3.0)
    x = p.logits.transpose(0, 1).contiguous() if batch_first else p.logits
    kw = dict(blank=blank, reduction=reduction)
    tr = (lambda t: t.transpose(0, 1)) if batch_first else (lambda t: t)

    l_ref, g_ref = loss_and_logit_grad(
        lambda lp: F.ctc_loss(tr(lp), p.padded(), p.il(), p.tl(), **kw), x, reduction)
    l_ls, g_ls = loss_and_logit_grad(
        lambda lp: torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl(), batch_first=batch_first, **kw), x, reduction)
    l_fl, g_fl = loss_and_logit_grad(
        lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), batch_first=batch_first, from_logits=True, **kw),
        x, reduction, from_logits=True)
    assert_close(l_fl, l_ref, **F64_TOL)
    assert_close(l_fl, l_ls, **F64_TOL)
    assert_close(g_fl, g_ref, **F64_GRAD_TOL)
    assert_close(g_fl, g_ls, **F64_GRAD_TOL)


def test_from_logits_shift_invariance():
    """Logits shifted by a per-frame constant give the same loss and gradient."""
    p = make_problem(seed=20, T=15, N=3, C=6, max_L=5)
    shift = torch.randn(p.T, p.N, 1, dtype=torch.float64) * 50
    a, ga = loss_and_logit_grad(
        lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), from_logits=True, reduction="sum"),
        p.logits, "sum", from_logits=True)
    b, gb = loss_and_logit_grad(
        lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), from_logits=True, reduction="sum"),
        p.logits + shift, "sum", from_logits=True)
    assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert_close(ga, gb, rtol=1e-8, atol=1e-10)


def test_exact_gradient_wrt_log_probs():
    """The gradient w.r.t. log_probs is -posterior (torch's minus exp(lp)), not torch's."""
    p = make_problem(seed=21, T=20, N=4, C=6, max_L=7)
    lp = p.log_probs()
    w = _weights(p.N)
    lp_t = lp.clone().requires_grad_(True)
    ref = F.ctc_loss(lp_t, p.padded(), p.il(), p.tl(), reduction="none")
    (ref * w).sum().backward()
    lp_o = lp.clone().requires_grad_(True)
    got = torch_ctc.ctc_loss(lp_o, p.padded(), p.il(), p.tl(), reduction="none")
    (got * w).sum().backward()
    expected = exact_grad_from_torch(lp, ref.detach(), lp_t.grad, p.il(), w)
    assert_close(lp_o.grad, expected, **F64_GRAD_TOL)
    # posterior occupancy sums to 1 per valid frame: sum_c grad = -w_b
    mask = torch.arange(p.T)[:, None] < p.il()[None, :]
    sums = lp_o.grad.sum(-1)
    assert_close(sums[mask], (-w[None, :].expand(p.T, p.N))[mask], rtol=1e-10, atol=1e-12)
    assert (lp_o.grad[~mask] == 0).all()
    # and through log_softmax it is torch's
    assert_close(lp_grad_to_logit_grad(lp_o.grad, lp), lp_t.grad, **F64_GRAD_TOL)


# --------------------------------------------------------------------------
# reduced precision
# --------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_float32(reduction, from_logits):
    p = make_problem(seed=22, T=50, N=6, C=12, max_L=15)
    x32 = p.logits.float()
    kw = dict(reduction=reduction)
    l64, g64 = loss_and_logit_grad(
        lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), **kw), x32.double(), reduction)
    l_t32, g_t32 = loss_and_logit_grad(
        lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), **kw), x32, reduction)
    l32, g32 = loss_and_logit_grad(
        lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), from_logits=from_logits, **kw),
        x32, reduction, from_logits=from_logits)
    assert l32.dtype == torch.float32 and g32.dtype == torch.float32
    assert_close(l32, l64, rtol=1e-5, atol=1e-5)
    assert_close(g32, g64, rtol=1e-4, atol=1e-5)
    assert_close(l32, l_t32, rtol=1e-5, atol=1e-5)
    assert_close(g32, g_t32, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_half_types(dtype, reduction):
    p = make_problem(seed=23, T=40, N=5, C=10, max_L=12)
    lp_h = p.log_probs().to(dtype)
    lp_up = lp_h.double()

    lp_t = lp_up.clone().requires_grad_(True)
    ref = F.ctc_loss(lp_t, p.padded(), p.il(), p.tl(), reduction="none")
    w = _weights(p.N)
    if reduction == "none":
        gr = w
    elif reduction == "sum":
        gr = torch.ones(p.N, dtype=torch.float64)
    else:
        gr = 1.0 / (p.N * p.tl().clamp_min(1).double())
    (ref * gr).sum().backward()
    exact = exact_grad_from_torch(lp_up, ref.detach(), lp_t.grad, p.il(), gr)

    inp = lp_h.clone().requires_grad_(True)
    got = torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), reduction=reduction)
    assert got.dtype == torch.float32
    expected_loss = {"none": ref.detach(), "sum": ref.detach().sum(), "mean": (ref.detach() * gr).sum()}[reduction]
    assert_close(got.detach(), expected_loss, rtol=1e-2, atol=1e-3)
    (_scalar(got, reduction)).backward()
    assert inp.grad.dtype == dtype
    assert torch.isfinite(inp.grad.float()).all()
    atol = 2e-2 if dtype == torch.bfloat16 else 5e-3
    atol = atol * float(gr.max())
    assert_close(inp.grad, exact, rtol=2e-2, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_from_logits(dtype):
    p = make_problem(seed=24, T=30, N=4, C=9, max_L=10)
    xh = p.logits.to(dtype)
    l_ref, g_ref = loss_and_logit_grad(
        lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="sum"), xh.double(), "sum")
    inp = xh.clone().requires_grad_(True)
    got = torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), reduction="sum", from_logits=True)
    assert got.dtype == torch.float32
    assert_close(got.detach(), l_ref, rtol=1e-2, atol=1e-3)
    got.backward()
    assert inp.grad.dtype == dtype
    atol = 2e-2 if dtype == torch.bfloat16 else 5e-3
    assert_close(inp.grad, g_ref, rtol=2e-2, atol=atol)


# --------------------------------------------------------------------------
# determinism and threads
# --------------------------------------------------------------------------
def _run_bits(p, dtype, from_logits, reduction="sum"):
    x = p.logits.to(dtype)
    if not from_logits:
        x = x.log_softmax(-1)
    x = x.detach().clone().requires_grad_(True)
    loss = torch_ctc.ctc_loss(x, p.padded(), p.il(), p.tl(), reduction=reduction, from_logits=from_logits)
    _scalar(loss, reduction).backward()
    return loss.detach().clone(), x.grad.clone()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("from_logits", [False, True])
def test_deterministic_bitwise(dtype, from_logits):
    p = make_problem(seed=25, T=80, N=16, C=30, max_L=25)
    torch.set_num_threads(2)
    a = _run_bits(p, dtype, from_logits, "none")
    b = _run_bits(p, dtype, from_logits, "none")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    a = _run_bits(p, dtype, from_logits, "mean")
    b = _run_bits(p, dtype, from_logits, "mean")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("from_logits", [False, True])
def test_thread_count_invariance(dtype, from_logits):
    p = make_problem(seed=26, T=60, N=13, C=20, max_L=20)
    results = []
    for n in (1, 2, 3):
        torch.set_num_threads(n)
        for red in ("none", "mean"):
            results.append((n, red, _run_bits(p, dtype, from_logits, red)))
    base = {red: r for n, red, r in results if n == 1}
    for n, red, (l, g) in results:
        assert torch.equal(l, base[red][0]), (n, red)
        assert torch.equal(g, base[red][1]), (n, red)


@pytest.mark.parametrize("N, T, max_L", [(13, 400, 40), (90, 120, 30)])
def test_thread_count_invariance_parallel_split(N, T, max_L):
    """Problems big enough for the engine to split them over threads: one chunk
    per sample, largest first (N <= 64), or contiguous groups of equal work."""
    p = make_problem(seed=28, T=T, N=N, C=30, max_L=max_L)
    results = []
    for n in (1, 2, 3):
        torch.set_num_threads(n)
        results.append(_run_bits(p, torch.float32, False, "none"))
    for l, g in results[1:]:
        assert torch.equal(l, results[0][0]) and torch.equal(g, results[0][1])


def test_batch_composition_invariance():
    """A sample's loss and gradient do not depend on the other samples in the batch."""
    p = make_problem(seed=27, T=30, N=6, C=8, max_L=10)
    full_l, full_g = _run_bits(p, torch.float64, False, "none")
    for b in (0, 3, 5):
        sub = Problem(p.logits[:, b:b + 1], [p.targets_list[b]], [p.input_lengths[b]], p.blank, p.C)
        l, g = _run_bits(sub, torch.float64, False, "none")
        assert_close(l[0], full_l[b], rtol=1e-12, atol=0)
        w = _weights(p.N)
        assert_close(g[:, 0] / _weights(1)[0], full_g[:, b] / w[b], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# --------------------------------------------------------------------------
@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("from_logits", [False, True])
def test_cuda_matches_cpu(dtype, from_logits):
    p = make_problem(seed=28, T=50, N=8, C=20, max_L=15)
    x = p.logits.to(dtype)
    if not from_logits:
        x = x.log_softmax(-1)
    outs = []
    for dev in ("cpu", "cuda"):
        xd = x.detach().to(dev).requires_grad_(True)
        loss = torch_ctc.ctc_loss(xd, p.padded().to(dev), p.il().to(dev), p.tl().to(dev), reduction="none",
                                  from_logits=from_logits)
        (loss * _weights(p.N, dtype).to(dev)).sum().backward()
        outs.append((loss.detach().cpu(), xd.grad.cpu()))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    assert_close(outs[1][0], outs[0][0], **tol)
    assert_close(outs[1][1], outs[0][1], **tol)


@requires_cuda
@pytest.mark.cuda
def test_cuda_deterministic():
    p = make_problem(seed=29, T=100, N=16, C=40, max_L=30)
    res = []
    for _ in range(2):
        x = p.log_probs().float().cuda().requires_grad_(True)
        loss = torch_ctc.ctc_loss(x, p.padded().cuda(), p.il().cuda(), p.tl().cuda(), reduction="mean")
        loss.backward()
        res.append((loss.detach(), x.grad))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])


# --------------------------------------------------------------------------
# broader sweeps and odd inputs
# --------------------------------------------------------------------------
def _sweep_cases():
    g = torch.Generator().manual_seed(2024)
    cases = []
    for i in range(24):
        T = int(torch.randint(1, 40, (), generator=g))
        N = int(torch.randint(1, 7, (), generator=g))
        C = int(torch.randint(2, 12, (), generator=g))
        max_L = int(torch.randint(0, T + 1, (), generator=g))
        blank = int(torch.randint(0, C, (), generator=g))
        cases.append((1000 + i, T, N, C, max_L, blank))
    return cases


@pytest.mark.parametrize("seed,T,N,C,max_L,blank", _sweep_cases())
def test_random_sweep(seed, T, N, C, max_L, blank):
    p = make_problem(seed=seed, T=T, N=N, C=C, max_L=max_L, blank=blank, repeat_prob=0.3, scale=2.0)
    compare(p, reduction="none")
    compare(p, reduction="mean", targets=p.concat(torch.int32), il=p.il(torch.int32), tl=p.tl(torch.int32))


def test_htr_size_float32():
    """A typical handwriting-recognition batch in float32, against torch float32 and float64."""
    p = make_problem(seed=30, T=128, N=32, C=80, max_L=40, min_L=5)
    x = p.logits.float()
    l64, g64 = loss_and_logit_grad(lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl()), x.double(), "mean")
    l32, g32 = loss_and_logit_grad(lambda lp: torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl()), x, "mean")
    assert_close(l32, l64, rtol=1e-5, atol=1e-5)
    assert_close(g32, g64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
def test_large_vocabulary(from_logits):
    p = make_problem(seed=31, T=40, N=3, C=3000, max_L=15)
    x = p.logits.float()
    l64, g64 = loss_and_logit_grad(lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="sum"),
                                   x.double(), "sum")
    l32, g32 = loss_and_logit_grad(
        lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), reduction="sum", from_logits=from_logits),
        x, "sum", from_logits=from_logits)
    assert_close(l32, l64, rtol=1e-5, atol=1e-4)
    assert_close(g32, g64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_peaked_reduced_precision(from_logits, dtype):
    """Very confident (peaked) predictions in low precision stay finite and close to float64."""
    p = make_problem(seed=32, T=30, N=4, C=10, max_L=10, scale=60.0)
    x = p.logits.to(dtype)
    l64, g64 = loss_and_logit_grad(lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="sum"),
                                   x.double(), "sum")
    fn = (lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), reduction="sum", from_logits=True)) \
        if from_logits else \
        (lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), reduction="sum"))
    if from_logits:
        lo, go = loss_and_logit_grad(fn, x, "sum", from_logits=True)
    else:
        # log_softmax in float64, then rounded to dtype: the input of the loss is the leaf
        lp = x.double().log_softmax(-1).to(dtype).requires_grad_(True)
        lo = fn(lp)
        lo.backward()
        go = lp.grad
        assert torch.isfinite(go.float()).all()
        lo = lo.detach()
        l64 = F.ctc_loss(lp.detach().double(), p.padded(), p.il(), p.tl(), reduction="sum")
        go = lp_grad_to_logit_grad(go, lp.detach().double())
    assert torch.isfinite(lo).all() and torch.isfinite(go.float()).all()
    lt = 1e-5 if dtype == torch.float32 else 1e-2
    assert_close(lo, l64, rtol=lt, atol=lt)
    if from_logits:
        assert_close(go, g64, rtol=1e-2, atol=2e-2 if dtype == torch.bfloat16 else 1e-2)


@pytest.mark.parametrize("batch_first", [False, True])
def test_zero_infinity_from_logits(batch_first):
    g = torch.Generator().manual_seed(33)
    logits = torch.randn(6, 3, 5, generator=g, dtype=torch.float64)
    p = Problem(logits, [[1, 2], [3, 3, 3], [4]], [6, 4, 6], 0, 5)  # sample 1 infeasible
    x = logits.transpose(0, 1).contiguous() if batch_first else logits.clone()
    x.requires_grad_(True)
    loss = torch_ctc.ctc_loss(x, p.padded(), p.il(), p.tl(), reduction="none", zero_infinity=True,
                              batch_first=batch_first, from_logits=True)
    assert loss[1] == 0 and torch.isfinite(loss).all()
    loss.sum().backward()
    gx = x.grad.transpose(0, 1) if batch_first else x.grad
    assert (gx[:, 1] == 0).all()
    ref = F.ctc_loss(logits.log_softmax(-1), p.padded(), p.il(), p.tl(), reduction="none", zero_infinity=True)
    assert_close(loss.detach(), ref, **F64_TOL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("from_logits", [False, True])
def test_half_nonfinite_padding(dtype, from_logits):
    p = make_problem(seed=34, T=20, N=4, C=6, max_L=6)
    base = (p.logits if from_logits else p.log_probs()).to(dtype)
    mask = torch.arange(p.T)[:, None] >= p.il()[None, :]
    clean = base.clone()
    base[mask] = float("nan")
    a = base.clone().requires_grad_(True)
    la = torch_ctc.ctc_loss(a, p.padded(), p.il(), p.tl(), reduction="sum", from_logits=from_logits)
    la.backward()
    b = clean.clone().requires_grad_(True)
    lb = torch_ctc.ctc_loss(b, p.padded(), p.il(), p.tl(), reduction="sum", from_logits=from_logits)
    lb.backward()
    assert torch.equal(la, lb)
    assert torch.isfinite(a.grad.float()).all()
    assert (a.grad[mask] == 0).all()
    assert torch.equal(a.grad, b.grad)


def test_stride_zero_input():
    """An expanded (stride-0) log_probs view: the gradient accumulates into the leaf."""
    g = torch.Generator().manual_seed(35)
    row = torch.randn(1, 3, 5, generator=g, dtype=torch.float64)
    p = Problem(row.expand(7, 3, 5).contiguous(), [[1, 2], [3], [4, 4]], [7, 5, 6], 0, 5)
    leaf = row.clone().requires_grad_(True)
    loss = torch_ctc.ctc_loss(leaf.log_softmax(-1).expand(7, 3, 5), p.padded(), p.il(), p.tl(), reduction="sum")
    ref_leaf = row.clone().requires_grad_(True)
    ref = F.ctc_loss(ref_leaf.log_softmax(-1).expand(7, 3, 5).contiguous(), p.padded(), p.il(), p.tl(),
                     reduction="sum")
    assert_close(loss.detach(), ref.detach(), **F64_TOL)
    loss.backward()
    ref.backward()
    assert_close(leaf.grad, ref_leaf.grad, **F64_GRAD_TOL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_thread_count_invariance_half(dtype):
    p = make_problem(seed=36, T=50, N=11, C=16, max_L=15)
    res = []
    for n in (1, 2):
        torch.set_num_threads(n)
        res.append(_run_bits(p, dtype, True, "none"))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_neg_inf_log_probs_in_valid_frames(from_logits, batch_first):
    """Probability-0 entries (-inf) inside valid frames: finite loss, finite gradient, 0 there.

    torch itself returns NaN gradients here, so the reference is torch on the
    same input with -inf replaced by -1000 (exp(-1000) == 0 in float64).
    """
    g = torch.Generator().manual_seed(37)
    x = torch.randn(8, 3, 6, generator=g, dtype=torch.float64)
    x[:, :, 5] = -math.inf  # a class that is never possible
    x[2, 0, 3] = -math.inf  # a class not in sample 0's target
    x[2, 0, 1] = -math.inf  # a label of sample 0's target, at one frame
    x[4, 1, 0] = -math.inf  # the blank, at one frame
    p = Problem(x, [[1, 2], [3, 1, 1], [4]], [8, 7, 5], 0, 6)
    finite_x = torch.where(torch.isinf(x), torch.full_like(x, -1000.0), x)

    l_ref, g_ref = loss_and_logit_grad(
        lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none"), finite_x, "none")

    inp = x.transpose(0, 1).contiguous() if batch_first else x.clone()
    inp.requires_grad_(True)
    z = inp if from_logits else inp.log_softmax(-1)
    loss = torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), reduction="none", batch_first=batch_first,
                              from_logits=from_logits)
    _scalar(loss, "none").backward()
    gx = inp.grad.transpose(0, 1) if batch_first else inp.grad
    assert_close(loss.detach(), l_ref, **F64_TOL)
    assert torch.isfinite(gx).all()
    assert (gx[torch.isinf(x)] == 0).all()
    assert_close(gx, g_ref, **F64_GRAD_TOL)

    # and the exact gradient w.r.t. log_probs is finite and 0 at the -inf entries
    lp = x.log_softmax(-1)
    lp_leaf = (lp.transpose(0, 1).contiguous() if batch_first else lp.clone()).requires_grad_(True)
    torch_ctc.ctc_loss(lp_leaf, p.padded(), p.il(), p.tl(), reduction="sum", batch_first=batch_first).backward()
    glp = lp_leaf.grad.transpose(0, 1) if batch_first else lp_leaf.grad
    assert torch.isfinite(glp).all()
    assert (glp[torch.isinf(lp)] == 0).all()


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_impossible_by_probabilities(zero_infinity):
    """Every alignment passes through a probability-0 entry: +inf (or 0 and zero grad)."""
    g = torch.Generator().manual_seed(38)
    x = torch.randn(3, 2, 4, generator=g, dtype=torch.float64)
    x[:, 0, 1] = -math.inf  # sample 0 needs label 1, which is impossible everywhere
    p = Problem(x, [[1], [2]], [3, 3], 0, 4)
    inp = x.clone().requires_grad_(True)
    loss = torch_ctc.ctc_loss(inp.log_softmax(-1), p.padded(), p.il(), p.tl(), reduction="none",
                              zero_infinity=zero_infinity)
    assert torch.isfinite(loss[1])
    if zero_infinity:
        assert loss[0] == 0
        loss.sum().backward()
        assert torch.isfinite(inp.grad).all()
        assert (inp.grad[:, 0] == 0).all()
    else:
        assert loss[0] == math.inf


def test_long_input_short_target_float32():
    """T = 3000 frames, float32: the accumulated loss stays accurate."""
    p = make_problem(seed=39, T=3000, N=2, C=10, max_L=10, min_L=10, ragged=False)
    x = p.logits.float()
    l64, g64 = loss_and_logit_grad(lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none"),
                                   x.double(), "none")
    lt, gt = loss_and_logit_grad(lambda lp: F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none"),
                                 x, "none")
    # losses ~ 8000: float32 log-space accumulation leaves ~1e-2 absolute error in the nll and hence
    # ~1% in the posteriors, for torch as well; require accuracy no worse than torch's float32 kernel.
    for from_logits in (False, True):
        l32, g32 = loss_and_logit_grad(
            lambda z: torch_ctc.ctc_loss(z, p.padded(), p.il(), p.tl(), reduction="none", from_logits=from_logits),
            x, "none", from_logits=from_logits)
        assert torch.isfinite(g32).all()
        assert_close(l32, l64, rtol=1e-5, atol=1e-3)
        err_ours = (g32.double() - g64).abs()
        err_torch = (gt.double() - g64).abs()
        assert err_ours.max() <= 2 * err_torch.max() + 1e-4
        assert err_ours.mean() <= 2 * err_torch.mean() + 1e-5


def test_batch_of_one_equals_unbatched():
    p = make_problem(seed=40, T=12, N=1, C=5, max_L=4, ragged=False)
    lp = p.log_probs()
    a = torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none")
    b = torch_ctc.ctc_loss(lp[:, 0], p.padded()[0], p.input_lengths[0], p.target_lengths[0], reduction="none")
    assert a.shape == (1,) and b.shape == ()
    assert_close(a[0], b, rtol=0, atol=0)
