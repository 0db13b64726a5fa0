"""The registered operators: opcheck, consistency between the raw ops and the
Python wrapper, torch.compile, and the CTCLoss module as a drop-in for
torch.nn.CTCLoss."""

import pytest
import torch
import torch.nn.functional as F
from torch.library import opcheck

import torch_ctc
from reference import make_problem

RED = {"none": 0, "mean": 1, "sum": 2}


def _close(a, b, **tol):
    tol = tol or dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a.to(torch.float64), b.to(torch.float64), **tol)


def _samples(requires_grad):
    """(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits, validate)."""
    out = []
    p = make_problem(seed=1, T=8, N=3, C=5, max_L=3)
    lp = p.log_probs()
    out.append((lp, p.padded(), p.il(), p.tl(), 0, False, False, True))
    out.append((p.logits.float(), p.concat(torch.int32), p.il(torch.int32), p.tl(torch.int32), 0, False, True,
                True))
    q = make_problem(seed=2, T=7, N=2, C=6, max_L=3, blank=5)
    out.append((q.logits.transpose(0, 1).contiguous(), q.padded(), q.il(), q.tl(), 5, True, False, True))
    out.append((q.log_probs(), q.padded(), q.il(), q.tl(), 5, False, False, False))
    res = []
    for s in out:
        x = s[0].detach().clone().requires_grad_(requires_grad)
        res.append((x,) + s[1:])
    return res


@pytest.mark.parametrize("idx", range(4))
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_opcheck_ctc_nll(idx, zero_infinity):
    x, tg, il, tl, blank, bf, fl, val = _samples(True)[idx]
    args = (x, tg, il, tl, blank, zero_infinity, bf, fl, val)
    opcheck(torch.ops.torch_ctc.ctc_nll.default, args)


@pytest.mark.parametrize("idx", range(4))
@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_opcheck_ctc_loss(idx, reduction):
    x, tg, il, tl, blank, bf, fl, val = _samples(True)[idx]
    args = (x, tg, il, tl, blank, reduction, idx % 2 == 1, bf, fl, val)
    opcheck(torch.ops.torch_ctc.ctc_loss.default, args)


@pytest.mark.parametrize("idx", range(4))
def test_opcheck_ctc_forward(idx):
    args = _samples(False)[idx]
    opcheck(torch.ops.torch_ctc._ctc_forward.default, args)


@pytest.mark.parametrize("idx", range(4))
def test_opcheck_ctc_backward(idx):
    x, tg, il, tl, blank, bf, fl, val = _samples(False)[idx]
    nll, ws = torch.ops.torch_ctc._ctc_forward(x, tg, il, tl, blank, bf, fl, val)
    grad_nll = torch.linspace(0.5, 1.5, nll.shape[0], dtype=nll.dtype)
    args = (grad_nll, x, tg, il, tl, nll, ws, blank, False, bf, fl)
    opcheck(torch.ops.torch_ctc._ctc_backward.default, args)


@pytest.mark.parametrize("idx", range(4))
def test_ctc_forward_outputs_deterministic(idx):
    """Both outputs of _ctc_forward (nll and workspace) are reproducible.

    opcheck's AOT-dispatch test compares every output of the op between eager
    and traced runs, so a workspace with uninitialised (garbage) cells fails it;
    it would also let stale memory leak into an output tensor.
    """
    x, tg, il, tl, blank, bf, fl, val = _samples(False)[idx]
    outs = []
    for _ in range(3):
        # churn the allocator so uninitialised memory differs between calls
        junk = torch.full((4096,), float(len(outs) + 7), dtype=torch.float64)
        del junk
        outs.append(torch.ops.torch_ctc._ctc_forward(x, tg, il, tl, blank, bf, fl, val))
    for nll, ws in outs[1:]:
        torch.testing.assert_close(nll, outs[0][0], rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(ws, outs[0][1], rtol=0, atol=0, equal_nan=True)


# --------------------------------------------------------------------------
# raw ops vs wrapper
# --------------------------------------------------------------------------
@pytest.mark.parametrize("idx", range(4))
def test_raw_ops_consistent(idx):
    x, tg, il, tl, blank, bf, fl, val = _samples(False)[idx]
    kw = dict(blank=blank, batch_first=bf, from_logits=fl)
    nll = torch.ops.torch_ctc.ctc_nll(x, tg, il, tl, blank, False, bf, fl, val)
    none = torch_ctc.ctc_loss(x, tg, il, tl, reduction="none", **kw)
    assert torch.equal(nll, none)
    for red, code in RED.items():
        a = torch.ops.torch_ctc.ctc_loss(x, tg, il, tl, blank, code, False, bf, fl, val)
        b = torch_ctc.ctc_loss(x, tg, il, tl, reduction=red, **kw)
        _close(a, b, rtol=1e-6 if x.dtype == torch.float32 else 1e-12, atol=1e-12)
    f_nll, ws = torch.ops.torch_ctc._ctc_forward(x, tg, il, tl, blank, bf, fl, val)
    assert torch.equal(f_nll, nll)

    # _ctc_backward == autograd gradient
    w = torch.linspace(0.5, 1.5, nll.shape[0], dtype=nll.dtype)
    g_raw = torch.ops.torch_ctc._ctc_backward(w, x, tg, il, tl, f_nll, ws, blank, False, bf, fl)
    assert g_raw.shape == x.shape and g_raw.dtype == x.dtype
    xr = x.clone().requires_grad_(True)
    out = torch.ops.torch_ctc.ctc_nll(xr, tg, il, tl, blank, False, bf, fl, val)
    (out * w).sum().backward()
    _close(g_raw, xr.grad, rtol=1e-6 if x.dtype == torch.float32 else 1e-10, atol=1e-7)


def test_ctc_nll_matches_torch():
    p = make_problem(seed=3, T=12, N=4, C=6, max_L=5)
    lp = p.log_probs()
    nll = torch.ops.torch_ctc.ctc_nll(lp, p.padded(), p.il(), p.tl(), 0, False, False, False, True)
    _close(nll, F.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none"))


def test_validate_false_same_result():
    p = make_problem(seed=4, T=12, N=4, C=6, max_L=5)
    lp = p.log_probs()
    a = torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none", validate=True)
    b = torch_ctc.ctc_loss(lp, p.padded(), p.il(), p.tl(), reduction="none", validate=False)
    assert torch.equal(a, b)


def test_ctc_nll_zero_infinity():
    p = make_problem(seed=5, T=6, N=2, C=4, max_L=2)
    tg = torch.tensor([[1, 1, 1, 1], [2, 0, 0, 0]])
    x = p.log_probs().requires_grad_(True)
    nll = torch.ops.torch_ctc.ctc_nll(x, tg, torch.tensor([5, 6]), torch.tensor([4, 1]), 0, True, False, False, True)
    assert nll[0] == 0 and torch.isfinite(nll).all()
    nll.sum().backward()
    assert (x.grad[:, 0] == 0).all()


# --------------------------------------------------------------------------
# torch.compile
# --------------------------------------------------------------------------
def _compile_problem(seed):
    p = make_problem(seed=seed, T=16, N=4, C=7, max_L=5)
    return p.logits.float(), p.padded(), p.il(), p.tl()


def _loss_fn(x, tg, il, tl):
    a = torch_ctc.ctc_loss(x.log_softmax(-1), tg, il, tl, reduction="mean")
    b = torch_ctc.ctc_loss(x * 2.0, tg, il, tl, reduction="sum", from_logits=True)
    return a + 0.1 * b


def _eager_and_compiled(fn, cfn, args):
    res = []
    for f in (fn, cfn):
        x = args[0].detach().clone().requires_grad_(True)
        out = f(x, *args[1:])
        out.backward()
        res.append((out.detach(), x.grad))
    return res


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(backend):
    torch._dynamo.reset()
    cfn = torch.compile(_loss_fn, fullgraph=True, backend=backend)
    for seed in (10, 11):  # same shapes, different lengths / targets: no value specialisation
        args = _compile_problem(seed)
        (le, ge), (lc, gc) = _eager_and_compiled(_loss_fn, cfn, args)
        _close(lc, le, rtol=1e-5, atol=1e-5)
        _close(gc, ge, rtol=1e-4, atol=1e-6)
    torch._dynamo.reset()


@pytest.mark.slow
def test_torch_compile_module_none_reduction():
    torch._dynamo.reset()
    crit = torch_ctc.CTCLoss(reduction="none", zero_infinity=True)

    def fn(x, tg, il, tl):
        return (crit(x.log_softmax(-1), tg, il, tl) * torch.arange(1, x.shape[1] + 1)).sum()

    cfn = torch.compile(fn, fullgraph=True, backend="aot_eager")
    args = _compile_problem(12)
    (le, ge), (lc, gc) = _eager_and_compiled(fn, cfn, args)
    _close(lc, le, rtol=1e-5, atol=1e-5)
    _close(gc, ge, rtol=1e-4, atol=1e-6)
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.parametrize("targets_kind", ["padded", "concat"])
def test_torch_compile_dynamic_shapes(targets_kind):
    """dynamic=True: one graph serves several (T, N, S) shapes and matches eager."""
    torch._dynamo.reset()
    cfn = torch.compile(_loss_fn, fullgraph=True, backend="aot_eager", dynamic=True)
    for seed, (T, N, C, L) in enumerate([(16, 4, 7, 5), (21, 3, 7, 6), (12, 5, 7, 4)]):
        p = make_problem(seed=40 + seed, T=T, N=N, C=C, max_L=L)
        tg = p.padded() if targets_kind == "padded" else p.concat()
        args = (p.logits.float(), tg, p.il(), p.tl())
        (le, ge), (lc, gc) = _eager_and_compiled(_loss_fn, cfn, args)
        _close(lc, le, rtol=1e-5, atol=1e-5)
        _close(gc, ge, rtol=1e-4, atol=1e-6)
    torch._dynamo.reset()


# --------------------------------------------------------------------------
# CTCLoss module
# --------------------------------------------------------------------------
def test_module_is_module():
    m = torch_ctc.CTCLoss()
    assert isinstance(m, torch.nn.Module)
    assert len(list(m.parameters())) == 0
    assert len(m.state_dict()) == 0


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("blank", [0, 4])
@pytest.mark.parametrize("positional", [False, True])
def test_module_drop_in(reduction, zero_infinity, blank, positional):
    p = make_problem(seed=20, T=20, N=4, C=8, max_L=7, blank=blank)
    if positional:
        ours, ref = torch_ctc.CTCLoss(blank, reduction, zero_infinity), torch.nn.CTCLoss(blank, reduction,
                                                                                          zero_infinity)
    else:
        kw = dict(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
        ours, ref = torch_ctc.CTCLoss(**kw), torch.nn.CTCLoss(**kw)
    res = []
    for crit in (ref, ours):
        x = p.logits.clone().requires_grad_(True)
        out = crit(x.log_softmax(-1), p.padded(), p.il(), p.tl())
        s = (out * torch.linspace(0.5, 1.5, p.N, dtype=out.dtype)).sum() if reduction == "none" else out
        s.backward()
        res.append((out.detach(), x.grad))
    _close(res[1][0], res[0][0])
    _close(res[1][1], res[0][1], rtol=1e-9, atol=1e-11)


def test_module_defaults_match_torch():
    p = make_problem(seed=21, T=15, N=3, C=5, max_L=5)
    lp = p.log_probs()
    _close(torch_ctc.CTCLoss()(lp, p.concat(), p.input_lengths, p.target_lengths),
           torch.nn.CTCLoss()(lp, p.concat(), p.input_lengths, p.target_lengths))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
def test_module_keyword_options(batch_first, from_logits):
    p = make_problem(seed=22, T=15, N=3, C=5, max_L=5)
    x = p.logits if from_logits else p.log_probs()
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    m = torch_ctc.CTCLoss(reduction="sum", batch_first=batch_first, from_logits=from_logits)
    got = m(x, p.padded(), p.il(), p.tl())
    _close(got, F.ctc_loss(p.log_probs(), p.padded(), p.il(), p.tl(), reduction="sum"))
