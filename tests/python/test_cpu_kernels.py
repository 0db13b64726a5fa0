"""The CPU engine's AVX2 kernels against its portable scalar kernels.

Both run in float32 here, so they must agree to float32 rounding plus the
documented error of the vector exp/log (a few ulp); and both must agree with
the float64 scalar path. Also checks that the kernels' windowing (states that
cannot lie on a complete path are skipped) and the -inf/NaN rules hold.
"""

from __future__ import annotations

import pytest
import torch

import torch_ctc

AVX2 = torch_ctc._C.active_cpu_kernel("float32") == "avx2"
requires_avx2 = pytest.mark.skipif(not AVX2, reason="this CPU (or build) has no AVX2 kernels")


def run(kernel, x, targets, il, tl, **kw):
    torch_ctc._C.set_cpu_kernel(kernel)
    try:
        x = x.detach().clone().requires_grad_()
        loss = torch_ctc.ctc_loss(x, targets, il, tl, reduction="none", **kw)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad
    finally:
        torch_ctc._C.set_cpu_kernel("auto")


def problem(T, N, C, L, seed, padded=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, C, generator=g)
    tl = torch.randint(0, L + 1, (N,), generator=g)
    targets = torch.randint(1, C, (N, max(L, 1)), generator=g)
    il = torch.randint(T // 2, T + 1, (N,), generator=g)
    il[0] = T
    if not padded:
        targets = torch.cat([targets[n, : tl[n]] for n in range(N)])
    return x, targets, il, tl


@requires_avx2
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("from_logits", [False, True])
def test_avx2_matches_scalar_float32(seed, padded, from_logits):
    T, N, C, L = [(30, 5, 7, 9), (64, 8, 40, 20), (9, 3, 5, 4), (100, 4, 12, 45), (17, 6, 3, 8), (50, 2, 200, 23)][seed]
    x, targets, il, tl = problem(T, N, C, L, seed, padded)
    inp = x if from_logits else x.log_softmax(-1)
    a = run("auto", inp, targets, il, tl, from_logits=from_logits, zero_infinity=True)
    s = run("scalar", inp, targets, il, tl, from_logits=from_logits, zero_infinity=True)
    ref = run("scalar", inp.double(), targets, il, tl, from_logits=from_logits, zero_infinity=True)
    assert_no_worse_than_scalar(a, s, ref)


def assert_no_worse_than_scalar(avx2, scalar, ref):
    """float32 itself loses accuracy as losses grow (its error scales with |nll|);
    the AVX2 kernels may add their exp/log error but must stay within twice the
    scalar float32 error, plus a few float32 ulps of the values involved."""
    for got, base, exact in zip(avx2, scalar, ref):
        err = (got.double() - exact).abs().max().item()
        base_err = (base.double() - exact).abs().max().item()
        ulps = 8 * torch.finfo(torch.float32).eps * max(exact.abs().max().item(), 1.0)
        assert err <= 2 * base_err + ulps, (err, base_err)


@requires_avx2
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_avx2_half_inputs_match_scalar(dtype):
    x, targets, il, tl = problem(40, 6, 30, 12, 11)
    inp = x.log_softmax(-1).to(dtype)
    a = run("auto", inp, targets, il, tl)
    s = run("scalar", inp, targets, il, tl)
    torch.testing.assert_close(a[0], s[0], rtol=2e-6, atol=2e-5)
    torch.testing.assert_close(a[1].float(), s[1].float(), rtol=1e-2, atol=1e-3)


@requires_avx2
def test_avx2_peaked_and_masked_inputs():
    x, targets, il, tl = problem(60, 6, 10, 10, 3)
    peaked = (x * 100).log_softmax(-1)
    masked = x.clone()
    masked[5:9, :, 4] = float("-inf")  # a class masked out in some frames
    masked = masked.log_softmax(-1)
    for inp in (peaked, masked):
        a = run("auto", inp, targets, il, tl, zero_infinity=True)
        s = run("scalar", inp, targets, il, tl, zero_infinity=True)
        ref = run("scalar", inp.double(), targets, il, tl, zero_infinity=True)
        assert torch.isfinite(a[1]).all()
        assert_no_worse_than_scalar(a, s, ref)


@requires_avx2
def test_avx2_nan_propagates_and_padding_is_ignored():
    x, targets, il, tl = problem(20, 3, 6, 5, 4)
    il[1] = 12
    lp = x.log_softmax(-1)
    lp[12:, 1] = float("nan")  # beyond input_length: ignored
    a = run("auto", lp, targets, il, tl)
    assert torch.isfinite(a[0]).all() and torch.isfinite(a[1]).all()
    assert (a[1][12:, 1] == 0).all()
    lp[3, 2, :] = float("nan")  # inside a valid frame: must surface
    a = run("auto", lp, targets, il, tl)
    assert torch.isnan(a[0][2])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kernel", ["auto", "scalar"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("case", ["all_minus_inf_logits", "nan_log_prob"])
def test_nan_loss_gives_nan_gradient_on_every_kernel(dtype, kernel, zero_infinity, case):
    """A sample whose loss is NaN gets NaN on all of its valid frames (math::gradient_undefined),
    with or without zero_infinity; its padding frames and the other samples are untouched.
    The scalar kernel once mixed 0s (states with alpha or beta -inf) into the NaNs and the
    AVX2 one did not (found by the fuzzer: a frame of all -inf logits)."""
    x, targets, il, tl = problem(12, 3, 6, 3, seed=5)
    il[0] = 9
    from_logits = case == "all_minus_inf_logits"
    inp = x.clone() if from_logits else x.log_softmax(-1)
    if from_logits:
        inp[4, 0, :] = float("-inf")  # no class possible: log_softmax is NaN
    else:
        inp[4, 0, 0] = float("nan")  # the blank, read by every state
    loss, grad = run(kernel, inp.to(dtype), targets, il, tl, from_logits=from_logits, zero_infinity=zero_infinity)
    assert torch.isnan(loss[0]) and torch.isfinite(loss[1:]).all()
    assert torch.isnan(grad[:9, 0]).all()
    assert (grad[9:, 0] == 0).all()
    assert torch.isfinite(grad[:, 1:]).all()


@requires_avx2
def test_avx2_infeasible_sample_matches_scalar_semantics():
    lp = torch.randn(3, 1, 4).log_softmax(-1)
    targets, il, tl = torch.tensor([[1, 1, 1]]), torch.tensor([3]), torch.tensor([3])
    a = run("auto", lp, targets, il, tl)
    s = run("scalar", lp, targets, il, tl)
    assert torch.isinf(a[0]).all() and torch.isinf(s[0]).all()
    assert torch.equal(torch.isnan(a[1]), torch.isnan(s[1]))
    a = run("auto", lp, targets, il, tl, zero_infinity=True)
    assert (a[0] == 0).all() and (a[1] == 0).all()


@requires_avx2
def test_kernel_switch_is_reported():
    assert torch_ctc._C.active_cpu_kernel("float64") == "scalar"
    torch_ctc._C.set_cpu_kernel("scalar")
    try:
        assert torch_ctc._C.active_cpu_kernel("float32") == "scalar"
    finally:
        torch_ctc._C.set_cpu_kernel("auto")
    with pytest.raises(ValueError, match="cpu kernel"):
        torch_ctc._C.set_cpu_kernel("avx512")


def test_double_backward_raises_clearly():
    torch_ctc._C.set_cpu_kernel("auto")
    x = torch.randn(5, 2, 4, dtype=torch.float64, requires_grad=True)
    loss = torch_ctc.ctc_loss(x.log_softmax(-1), torch.tensor([[1, 2], [3, 1]]), [5, 4], [2, 2])
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, x, create_graph=True)


@requires_avx2
@pytest.mark.parametrize("classes", [1024, 1023])
def test_avx2_streamed_gradient_matches_scalar(classes):
    """A gradient of 16 MiB or more is written with streaming stores from a
    staged row (cpu_engine_avx2.cpp); 1023 classes makes most rows start off a
    32-byte boundary, so the unaligned head and tail are exercised too."""
    T, N, L = 520, 8, 40
    x, targets, il, tl = problem(T, N, classes, L, seed=11)
    assert T * N * classes * 4 >= 16 << 20
    inp = x.log_softmax(-1)
    a = run("auto", inp, targets, il, tl, zero_infinity=True)
    s = run("scalar", inp, targets, il, tl, zero_infinity=True)
    ref = run("scalar", inp.double(), targets, il, tl, zero_infinity=True)
    assert_no_worse_than_scalar(a, s, ref)
    # Frames past each sample's input length are exactly zero.
    for n in range(N):
        assert torch.count_nonzero(a[1][il[n]:, n]) == 0
