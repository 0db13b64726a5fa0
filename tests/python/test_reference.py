"""torch_ctc against an independent brute-force reference (all C**T paths, T <= 5).

The brute force is differentiable, so its autograd gradient w.r.t. the
log-probabilities is the exact derivative, which torch_ctc must reproduce for
normalised and unnormalised input alike.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import torch_ctc
from reference import (
    Problem,
    brute_force_batch,
    brute_force_nll,
    collapse,
    dp_nll,
    make_problem,
    min_frames,
)

TOL = dict(rtol=1e-10, atol=1e-12)


def _close(a, b, **tol):
    torch.testing.assert_close(a.to(torch.float64), b.to(torch.float64), **(tol or TOL))


def test_reference_self_consistency():
    """Sanity of the reference itself: collapse, DP and brute force agree; probabilities sum to 1."""
    assert collapse([0, 1, 1, 0, 1, 2, 2], 0) == (1, 1, 2)
    assert collapse([3, 3, 3], 3) == ()
    assert min_frames([1, 1, 2, 2, 2]) == 8
    g = torch.Generator().manual_seed(0)
    T, C = 4, 3
    lp = torch.randn(T, C, generator=g, dtype=torch.float64).log_softmax(-1)
    # sum over all label sequences of p(l|x) == 1
    from reference import _paths_by_label

    _, groups = _paths_by_label(T, C, 0)
    total = sum(math.exp(-float(brute_force_nll(lp, k, 0))) for k in groups)
    assert abs(total - 1.0) < 1e-12
    for k in groups:
        assert abs(float(brute_force_nll(lp, k, 0)) - dp_nll(lp, k, 0)) < 1e-12
    assert brute_force_nll(lp, [1, 1, 1], 0) == math.inf  # needs 5 frames


def _cases():
    cases = []
    i = 0
    for T in range(1, 6):
        for C in (2, 3, 4):
            for blank in sorted({0, C - 1}):
                cases.append((i, T, C, blank))
                i += 1
    return cases


@pytest.mark.parametrize("seed,T,C,blank", _cases())
@pytest.mark.parametrize("kind", ["normalised", "unnormalised", "large_unnormalised"])
def test_vs_brute_force(seed, T, C, blank, kind):
    N = 4
    p = make_problem(seed=100 + seed, T=T, N=N, C=C, max_L=T, blank=blank, repeat_prob=0.4)
    lp = {"normalised": p.log_probs(), "unnormalised": p.logits * 1.5, "large_unnormalised": p.logits * 40 + 20}[kind]
    w = torch.linspace(0.5, 1.5, N, dtype=torch.float64)

    lp_ref = lp.clone().requires_grad_(True)
    ref = brute_force_batch(lp_ref, p.targets_list, p.input_lengths, blank)
    (ref * w).sum().backward()

    for targets in (p.padded(), p.concat(torch.int32)):
        lp_our = lp.clone().requires_grad_(True)
        got = torch_ctc.ctc_loss(lp_our, targets, p.input_lengths, p.target_lengths, blank=blank,
                                 reduction="none")
        _close(got.detach(), ref.detach())
        (got * w).sum().backward()
        _close(lp_our.grad, lp_ref.grad)

    # torch's forward is the same formula for any input
    tref = F.ctc_loss(lp, p.padded(), p.il(), p.tl(), blank=blank, reduction="none")
    _close(tref, ref.detach())


@pytest.mark.parametrize("seed", range(6))
def test_vs_brute_force_infeasible_and_zero_infinity(seed):
    """Random targets that may not fit; brute force says +inf exactly when the target is infeasible."""
    T, C, N = 4, 3, 6
    p = make_problem(seed=200 + seed, T=T, N=N, C=C, max_L=5, feasible=False, repeat_prob=0.5)
    lp = p.logits  # unnormalised
    ref = brute_force_batch(lp, p.targets_list, p.input_lengths, 0)
    got = torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none")
    inf_mask = torch.tensor([min_frames(t) > il for t, il in zip(p.targets_list, p.input_lengths)])
    assert torch.equal(torch.isinf(ref), inf_mask)
    assert torch.equal(torch.isinf(got), inf_mask)
    _close(got[~inf_mask], ref[~inf_mask])

    x = lp.clone().requires_grad_(True)
    got0 = torch_ctc.ctc_loss(x, p.padded(), p.il(), p.tl(), reduction="sum", zero_infinity=True)
    _close(got0.detach(), ref[~inf_mask].sum())
    got0.backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[:, inf_mask] == 0).all()
    x_ref = lp.clone().requires_grad_(True)
    ref_sum = brute_force_batch(x_ref, p.targets_list, p.input_lengths, 0)[~inf_mask].sum()
    if ref_sum.requires_grad:
        ref_sum.backward()
        _close(x.grad, x_ref.grad)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_reductions_vs_brute_force(reduction, from_logits, batch_first):
    T, C, N = 5, 4, 5
    p = make_problem(seed=300, T=T, N=N, C=C, max_L=4, blank=1)
    p.targets_list[2] = []  # an empty target (mean divides by clamp_min(0, 1) = 1)
    x = p.logits.clone().requires_grad_(True)
    lp = x.log_softmax(-1) if from_logits else x
    nll = brute_force_batch(lp, p.targets_list, p.input_lengths, 1)
    if reduction == "sum":
        ref = nll.sum()
    else:
        ref = (nll / p.tl().clamp_min(1).double()).mean()
    (g_ref,) = torch.autograd.grad(ref, x)

    y = (p.logits.transpose(0, 1).contiguous() if batch_first else p.logits.clone()).requires_grad_(True)
    got = torch_ctc.ctc_loss(y, p.padded(), p.input_lengths, p.target_lengths, blank=1, reduction=reduction,
                             batch_first=batch_first, from_logits=from_logits)
    _close(got.detach(), ref.detach())
    got.backward()
    g = y.grad.transpose(0, 1) if batch_first else y.grad
    _close(g, g_ref)


@pytest.mark.parametrize("T", [0, 1, 2, 3])
def test_unbatched_vs_brute_force(T):
    g = torch.Generator().manual_seed(400 + T)
    C = 3
    lp = torch.randn(T, C, generator=g, dtype=torch.float64)
    for target in ([], [1], [2, 1], [1, 1]):
        ref = brute_force_nll(lp, target, 0)
        got = torch_ctc.ctc_loss(lp, torch.tensor(target, dtype=torch.long), T, len(target), reduction="none")
        assert got.shape == ()
        if math.isinf(float(ref)):
            assert got.item() == math.inf
        else:
            _close(got, ref)


def test_uniform_distribution_closed_form():
    """With uniform probabilities every path has prob C**-T: nll = T log C - log(#paths)."""
    T, C = 5, 3
    lp = torch.full((T, 1, C), -math.log(C), dtype=torch.float64)
    for target in ([1], [1, 2], [1, 1], [2, 1, 2]):
        from reference import _paths_by_label

        _, groups = _paths_by_label(T, C, 0)
        npaths = len(groups[tuple(target)])
        expected = T * math.log(C) - math.log(npaths)
        got = torch_ctc.ctc_loss(lp, torch.tensor([target]), [T], [len(target)], reduction="sum")
        assert abs(got.item() - expected) < 1e-12
