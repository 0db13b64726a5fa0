"""torch.autograd.gradcheck in float64.

Because torch_ctc returns the exact derivative, gradcheck must pass for any
input, including unnormalised log-probabilities that did not go through
log_softmax (torch's own ctc_loss fails that check).
"""

import pytest
import torch
from torch.autograd import gradcheck

import torch_ctc
from reference import Problem, make_problem

GC = dict(eps=1e-6, atol=1e-6, rtol=1e-5)


def _problem(seed, blank=0, T=6, N=3, C=4, max_L=3):
    return make_problem(seed=seed, T=T, N=N, C=C, max_L=max_L, blank=blank)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("normalised", [True, False])
@pytest.mark.parametrize("targets_kind", ["padded", "concat"])
def test_gradcheck_log_probs(reduction, normalised, targets_kind):
    p = _problem(1)
    x = (p.log_probs() if normalised else p.logits * 2.0).detach().requires_grad_(True)
    tg = p.padded() if targets_kind == "padded" else p.concat()

    def f(inp):
        return torch_ctc.ctc_loss(inp, tg, p.il(), p.tl(), reduction=reduction)

    assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_gradcheck_from_logits(reduction, batch_first):
    p = _problem(2, blank=2)
    x = p.logits * 3.0
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    x = x.detach().requires_grad_(True)

    def f(inp):
        return torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), blank=2, reduction=reduction,
                                  batch_first=batch_first, from_logits=True)

    assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_gradcheck_batch_first_unnormalised(reduction):
    p = _problem(3, blank=3)
    x = p.logits.transpose(0, 1).contiguous().detach().requires_grad_(True)

    def f(inp):
        return torch_ctc.ctc_loss(inp, p.concat(torch.int32), p.il(torch.int32), p.tl(torch.int32), blank=3,
                                  reduction=reduction, batch_first=True)

    assert gradcheck(f, (x,), **GC)


def test_gradcheck_unbatched():
    p = _problem(4, N=1)
    x = p.logits[:, 0].detach().clone().requires_grad_(True)
    tgt = torch.tensor(p.targets_list[0], dtype=torch.long)

    def f(inp):
        return torch_ctc.ctc_loss(inp, tgt, p.input_lengths[0], p.target_lengths[0], reduction="none")

    assert gradcheck(f, (x,), **GC)


def test_gradcheck_repeats_and_empty():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(6, 4, 4, generator=g, dtype=torch.float64)
    p = Problem(logits, [[1, 1, 2], [], [3, 3], [2]], [6, 5, 3, 2], 0, 4)
    x = p.logits.clone().requires_grad_(True)

    def f(inp):
        return torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), reduction="none")

    assert gradcheck(f, (x,), **GC)


def test_gradcheck_zero_infinity_with_infeasible():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(5, 3, 4, generator=g, dtype=torch.float64)
    # sample 1 is infeasible: [1, 1] in 2 frames
    p = Problem(logits, [[1, 2], [1, 1], [3]], [5, 2, 4], 0, 4)
    x = p.logits.clone().requires_grad_(True)

    for red in ("none", "sum", "mean"):
        def f(inp):
            return torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), reduction=red, zero_infinity=True)

        assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("from_logits", [False, True])
def test_gradcheck_raw_ctc_nll(from_logits):
    p = _problem(7)
    x = p.logits.detach().clone().requires_grad_(True)

    def f(inp):
        return torch.ops.torch_ctc.ctc_nll(inp, p.padded(), p.il(), p.tl(), 0, False, False, from_logits, True)

    assert gradcheck(f, (x,), **GC)


@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_gradcheck_raw_ctc_loss(reduction):
    p = _problem(8)
    x = p.logits.detach().clone().requires_grad_(True)

    def f(inp):
        return torch.ops.torch_ctc.ctc_loss(inp, p.padded(), p.il(), p.tl(), 0, reduction, False, False, False,
                                            True)

    assert gradcheck(f, (x,), **GC)
