"""PyTorch's own CTC-loss tests, ported to run against torch_ctc.

Every test below re-creates the intent and the inputs (shapes, dtypes, lengths,
reductions) of a CTC test in PyTorch's test suite, written afresh, with random
data drawn from fixed ``torch.Generator`` seeds. Where a torch test compares two
torch backends (CPU against CUDA, native against cuDNN), the port compares
torch_ctc with torch's own CPU ``F.ctc_loss`` (and with the float64 references
in ``reference.py``). float32 ports run on both CPU kernels of torch_ctc (AVX2
"auto" and "scalar", see ``torch_ctc._C.set_cpu_kernel``); float64 always runs
the scalar kernel. Each CPU test also has a CUDA variant marked
``requires_cuda`` that runs torch_ctc on the GPU against torch on the CPU.

Gradients. torch_ctc returns the exact derivative w.r.t. ``log_probs``
(``-posterior * grad_out``); torch returns ``(exp(log_probs) - posterior) *
grad_out`` (pytorch issue #52241). Where a torch test compares gradients w.r.t.
``log_probs`` between two implementations, the port converts torch's gradient
to the exact one (``exact_from_torch``: subtract ``exp(lp) * d loss / d nll_n``
on the valid frames of each sample with a finite loss). Where the port compares
with torch in general, the leaf goes through a log_softmax first (as the OpInfo's
``gradcheck_wrapper_ctc_loss`` does), after which both conventions agree.

Errors. torch raises ``RuntimeError`` for bad lengths / dtypes / empty input;
torch_ctc raises a ``ValueError`` or ``TypeError`` whose message starts with
``torch_ctc:`` and names the argument. The ports assert torch_ctc's exception
type and the argument name (and, where cheap, that torch raises RuntimeError).

Ported, from test/test_nn.py, class ``TestNN`` (torch name -> name here):

- ``test_CTCLoss_typechecks``: float input_lengths / target_lengths are refused
  (TypeError naming the argument; torch: RuntimeError), function and module.
- ``test_CTCLoss_lengthchecks_cpu`` / ``test_CTCLoss_lengthchecks_cuda`` ->
  ``test_CTCLoss_lengthchecks[cpu|cuda-...]``: a target length longer than the
  padded width (30 > 29) or a negative length is refused, all four combinations
  (ValueError; torch: RuntimeError).
- ``test_CTCLoss_long_targets`` (CUDA-only in torch): T = 4000, N = 4, C = 3,
  L = 1200, float64, 'sum', zero_infinity; torch's sizes kept (about 3 s).
  Loss and the log_probs gradient (random grad_out) against torch's CPU.
- ``test_CTCLoss_critical_target_len`` (CUDA-only in torch, cuDNN issue
  #53505): N = 1, S = 256, T = 500, a 0-d int32 ``target_lengths`` tensor; loss
  against torch's CPU (atol 1e-3 as torch) and, added, the logit gradient. Also
  parametrised over which lengths are 0-d (torch accepts each with N = 1).
- ``test_CTCLoss_zero_lengths``: T = 1, C = 200, all input lengths 0: loss 0 and
  zero gradient for empty targets, +inf and zero gradient for length-1 targets;
  also checked against the brute-force reference and torch.
- ``test_CTCLoss_zero_infinity`` (CUDA-only in torch): an infeasible sample
  (60 labels in 50 frames), 'sum', zero_infinity: int32 and int64 targets
  against torch's CPU; loss and gradient within 1e-4 and free of NaN.

From test/test_nn.py, class ``TestNNDeviceType``:

- ``test_CTCLoss_cudnn`` (CUDA-only): the inputs cuDNN would get (blank 0,
  float32, int32 concatenated CPU targets, all input lengths = T, labels < 256),
  both zero_infinity settings: loss against a float64 reference (the job of
  common_nn's ``ctcloss_reference``, here ``reference.dp_nll``), int32 vs int64
  targets equal, gradient against torch's.
- ``test_CTCLoss_no_batch_dim`` x reduction x use_module_form: (T, 1, C) with
  (1, S) targets, (T, 1, C) with (S,) targets and (T, C) with 0-d lengths give
  the same loss and gradient, with the right shapes; added: each form against
  torch.
- ``test_CTCLoss_empty_target``: empty targets give ``-sum_t lp[t, blank]``,
  also mixed with a non-empty one; added: against torch.
- ``test_ctc_loss`` -> ``test_ctc_loss_gradcheck``: gradcheck of log_softmax +
  ctc_loss through a tiled 10-element leaf, batch 64, 101 labels; all eight
  (input_length, vary_lengths, zero_lengths) cases on the CPU too (torch runs
  the last four on CUDA only); exact-mode gradcheck, check_batched_grad on as in
  torch's testing gradcheck.
- ``test_ctc_loss_cudnn`` (CUDA-only): batch 16, T = 30, 101 labels, L = 15:
  torch_ctc with int32 targets ("cuDNN inputs") against torch's CPU with int64
  targets, gradient with a random grad_out, atol 1e-4.
- ``test_ctc_loss_cudnn_tensor_cuda`` (CUDA-only) -> ``test_ctc_loss_cudnn_tensor``:
  the same with tensor lengths, input lengths 15..30 (linspace); a second seed
  makes sample 0 infeasible, whose inf loss / NaN gradient must match torch's.
- ``test_ctc_loss_cudnn_tensor_cpu_length_cuda`` (CUDA-only smoke test) ->
  ``test_ctc_loss_cudnn_tensor_cpu_length``: N = 50, T = 100, C = 80, CPU int32
  lengths and targets, 'sum', compared with torch. torch draws the labels from
  [0, C), so the blank can be a label; torch accepts that, torch_ctc refuses it
  by design (docs/semantics.md). The port draws from [1, C); the faithful draw is
  ``test_ctc_loss_cudnn_tensor_cpu_length_blank_labels``, which asserts the ValueError.
- ``test_ctc_loss_error``: log_probs of shape (0, 0, 4) raises ValueError naming
  log_probs (torch: RuntimeError "log_probs tensor must not be empty"). T = 0
  with N >= 1 is a documented torch_ctc extension (loss 0), checked as such in
  ``test_ctc_loss_zero_frames_extension`` (not a torch test).
- ``test_invalid_reduction_strings`` (its ctc_loss line): 'none' works,
  'invalid' raises ValueError (as torch); also for the module.

From torch/testing/_internal/common_methods_invocations.py, OpInfo
"nn.functional.ctc_loss" (``sample_inputs_ctc_loss``: T = 50, N = 16, C = 20,
(16, 30) int64 targets, target lengths in [10, 30), 3 reductions x 2
zero_infinity x lengths as list / tensor, 12 samples):

- ``test_opinfo_sample_vs_torch_float32`` / ``_float64``: each sample against
  torch (float32 on both kernels, float64), gradient through the OpInfo's
  log_softmax gradcheck wrapper. In float32 torch_ctc must also be at least
  about as accurate as torch w.r.t. the float64 result (both gradients are
  ~1e-4 off: make_tensor's [-9, 9) logits give peaked posteriors).
- test/test_ops.py ``test_noncontiguous_samples`` ->
  ``test_opinfo_noncontiguous_samples``: every tensor of the sample made
  noncontiguous the way ``SampleInput.noncontiguous()`` does (interleaved with
  a NaN / junk value, so the class stride is 2), grad_out too; same loss and
  gradient as the contiguous sample (float32, both kernels).
- ``TestBwdGradients.test_fn_grad`` -> ``test_opinfo_fn_grad``: float64
  gradcheck (fast mode and batched grad, torch's testing defaults), with and
  without the log_softmax wrapper.
- ``TestBwdGradients.test_fn_gradgrad`` -> ``test_opinfo_fn_gradgrad``: an
  expected failure in torch (no derivative for _ctc_loss_backward); torch_ctc's
  double backward raises a clear RuntimeError, asserted.

From torch/testing/_internal/common_modules.py, ``module_inputs_torch_nn_CTCLoss``
((50, 3, 15) log_probs, lengths (50, 50, 50) / (30, 25, 20), padded or 1-D
targets, int or tensor lengths, int32 / int64 targets, default / sum / mean /
none / blank = 14: 40 inputs), each through ``torch_ctc.CTCLoss``:

- ``TestModule.test_forward`` (and, on CUDA, ``test_cpu_gpu_parity``) ->
  ``test_module_forward_float32`` / ``_float64``: against the ModuleInput's
  ``reference_fn`` (``ctcloss_reference``, here ``reference_loss``) and torch.
- ``TestModule.test_grad`` / ``test_gradgrad`` (both skipped in torch for
  CTCLoss) -> ``test_module_grad`` / ``test_module_gradgrad``: gradcheck on
  log_probs itself passes; double backward raises.
- ``TestModule.test_non_contiguous_tensors`` (skipped in torch, issue #115585)
  -> ``test_module_non_contiguous_tensors``: same loss and gradient.
- ``TestModule.test_pickle`` / ``test_repr`` -> ``test_module_pickle_and_repr``
  (four of the inputs): pickled and deep-copied modules agree; repr.

torch/testing/_internal/common_nn.py holds no CTCLoss criterion entries any
more in torch 2.x (they became the common_modules inputs above); it keeps only
``ctcloss_reference``, whose role ``reference_loss`` below fills.
"""

from __future__ import annotations

import copy
import math
import pickle
from functools import partial
from itertools import product

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import reference
import torch_ctc
from conftest import requires_cuda

F64 = dict(rtol=1e-9, atol=1e-10)
# torch's assertEqual defaults for float32 (used by the OpInfo / ModuleInfo tests)
F32_DEFAULT = dict(rtol=1.3e-6, atol=1e-5)


# --------------------------------------------------------------------------
# backends: float32 tests run on both CPU kernels (and CUDA when present)
# --------------------------------------------------------------------------
@pytest.fixture(
    params=[
        pytest.param("cpu-auto", id="cpu-auto"),
        pytest.param("cpu-scalar", id="cpu-scalar"),
        pytest.param("cuda", id="cuda", marks=requires_cuda),
    ]
)
def f32_device(request):
    """A device for float32 work; on the CPU, with the given kernel selected (restored after)."""
    device, _, kernel = request.param.partition("-")
    if kernel:
        torch_ctc._C.set_cpu_kernel(kernel)
    try:
        yield device
    finally:
        torch_ctc._C.set_cpu_kernel("auto")


@pytest.fixture(params=[pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=requires_cuda)])
def f64_device(request):
    return request.param


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn_log_probs(shape, gen, dtype=torch.float32):
    """torch.randn(shape).log_softmax(-1) in `dtype`, from a seeded generator."""
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).log_softmax(-1)


def _uniform(shape, gen, dtype, low=-9.0, high=9.0):
    """make_tensor's default floating-point draw: uniform in [-9, 9)."""
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low).to(dtype)


def _to(x, device):
    return x.to(device) if isinstance(x, torch.Tensor) else x


def noncontiguous_like(t):
    """What torch.testing's SampleInput.noncontiguous() does to each tensor: the same values in
    every other element of a buffer whose other half holds a value that must never be read
    (NaN for floats, 12 for integers), so the last dimension has stride 2."""
    if not t.is_contiguous():
        return t
    junk = math.nan if t.dtype.is_floating_point else 12
    buf = t.new_empty(t.shape + (2,))
    buf[..., 0] = junk
    buf[..., 1] = t.detach()
    out = buf[..., 1]
    out.requires_grad_(t.requires_grad)
    return out


def run_loss(impl, lp, targets, il, tl, *, device="cpu", grad_out=None, wrap=False, module=False, **kw):
    """Loss and gradient (both on the CPU) of `impl` ('ours' or 'torch') at a fresh leaf.

    The leaf is `lp` itself, or with wrap=True the tensor that log_softmax turns into the
    input (the OpInfo's gradcheck_wrapper_ctc_loss), where torch's and torch_ctc's gradients
    agree. grad_out defaults to ones. torch always runs on the CPU.
    """
    if impl == "torch":
        device = "cpu"
    leaf = lp.detach().to(device).requires_grad_()
    inp = leaf.log_softmax(-1) if wrap else leaf
    args = [_to(a, device) for a in (targets, il, tl)]
    if module:
        fn = (torch_ctc.CTCLoss if impl == "ours" else torch.nn.CTCLoss)(**kw)
    else:
        fn = partial(torch_ctc.ctc_loss if impl == "ours" else F.ctc_loss, **kw)
    loss = fn(inp, *args)
    go = torch.ones_like(loss) if grad_out is None else grad_out.to(device=loss.device, dtype=loss.dtype)
    (grad,) = torch.autograd.grad(loss, leaf, go)
    return loss.detach().cpu(), grad.cpu()


def per_sample_scale(reduction, grad_out, tl, N):
    """d(reduced loss)/d(nll_n) times the incoming gradient, per sample, in float64."""
    go = torch.as_tensor(grad_out, dtype=torch.float64)
    tl = torch.as_tensor(tl, dtype=torch.float64).reshape(N)
    if reduction == "none":
        return go.reshape(N)
    if reduction == "sum":
        return go.expand(N)
    return go / (N * tl.clamp(min=1))


def exact_from_torch(torch_grad, lp, targets, il, tl, *, reduction, grad_out, blank=0, zero_infinity=False):
    """Turn torch's gradient w.r.t. (T, N, C) log_probs into the exact one torch_ctc returns.

    torch gives (exp(lp) - posterior) * s_n on the frames t < il[n] of a sample with a finite
    loss (zero everywhere for a sample zero_infinity zeroed, NaN for an infeasible one without
    it); the exact derivative is -posterior * s_n. So subtract exp(lp) * s_n where the loss is
    finite.
    """
    lp64 = lp.detach().to(torch.float64)
    N = lp64.shape[1]
    nll = F.ctc_loss(lp64, targets, il, tl, blank=blank, reduction="none")
    scale = per_sample_scale(reduction, grad_out, tl, N)
    il = torch.as_tensor(il).reshape(N)
    out = torch_grad.to(torch.float64).clone()
    for n in range(N):
        if math.isfinite(float(nll[n])):
            t = int(il[n])
            out[:t, n] -= lp64[:t, n].exp() * scale[n]
    return out


def split_targets(targets, tl):
    """Per-sample label lists from padded (N, S) or concatenated 1-D targets."""
    tl = [int(v) for v in torch.as_tensor(tl).reshape(-1)]
    if targets.dim() == 2:
        return [targets[n, : tl[n]].tolist() for n in range(len(tl))]
    out, pos = [], 0
    for L in tl:
        out.append(targets[pos : pos + L].tolist())
        pos += L
    return out


def reference_loss(lp, targets, il, tl, blank=0, reduction="mean"):
    """What common_nn's ctcloss_reference computes: a float64 forward recursion per sample
    (reference.dp_nll), then torch's reduction ('mean' divides by max(target length, 1))."""
    lp64 = lp.detach().to(torch.float64)
    il = [int(v) for v in torch.as_tensor(il).reshape(-1)]
    labels = split_targets(targets, tl)
    nll = torch.tensor([reference.dp_nll(lp64[: il[n], n], labels[n], blank) for n in range(len(il))],
                       dtype=torch.float64)
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    lens = torch.tensor([len(x) for x in labels], dtype=torch.float64).clamp(min=1)
    return (nll / lens).mean()


def close(a, b, **tol):
    torch.testing.assert_close(a.to(torch.float64), b.to(torch.float64), **tol)


def assert_as_accurate_as_torch(ours, theirs, truth, slack=2.0, floor=1e-5):
    """float32 results against the float64 truth: torch_ctc's largest error may be at most
    `slack` times torch's own float32 error (plus `floor`). With make_tensor's [-9, 9) logits
    the posteriors are peaked and both implementations' float32 logit gradients are ~1e-4 off."""
    truth = truth.to(torch.float64)
    err = (ours.to(torch.float64) - truth).abs().max().item()
    base = (theirs.to(torch.float64) - truth).abs().max().item()
    assert err <= slack * base + floor, f"torch_ctc float32 error {err:.3g} vs torch's {base:.3g}"


# ==========================================================================
# test/test_nn.py, TestNN
# ==========================================================================
@pytest.mark.parametrize("which", ["input_lengths", "target_lengths"])
@pytest.mark.parametrize("use_module", [False, True])
def test_CTCLoss_typechecks(which, use_module):
    g = _gen(11)
    lengths = dict(input_lengths=torch.tensor([50, 50, 50]), target_lengths=torch.tensor([30, 25, 20]))
    targets = torch.randint(1, 15, (75,), dtype=torch.int, generator=g)
    log_probs = _randn_log_probs((50, 3, 15), g)
    lengths[which] = lengths[which].to(torch.float)
    fn = torch_ctc.CTCLoss() if use_module else torch_ctc.ctc_loss
    # torch raises RuntimeError ("... must be integral"); torch_ctc raises TypeError naming the argument.
    with pytest.raises(RuntimeError):
        F.ctc_loss(log_probs, targets, lengths["input_lengths"], lengths["target_lengths"])
    with pytest.raises(TypeError, match=f"torch_ctc: {which}"):
        fn(log_probs, targets, lengths["input_lengths"], lengths["target_lengths"])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("target_lengths", [[30, 25, 20], [-1, -1, -1]], ids=["tl_too_long", "tl_negative"])
@pytest.mark.parametrize("input_lengths", [[50, 50, 50], [-1, -1, -1]], ids=["il_ok", "il_negative"])
def test_CTCLoss_lengthchecks(device, target_lengths, input_lengths):
    """test_CTCLoss_lengthchecks_cpu (int32 targets) and _cuda (int64 targets on the GPU)."""
    g = _gen(12)
    tdtype = torch.int if device == "cpu" else torch.long
    targets = torch.randint(1, 15, (3, 29), dtype=tdtype, generator=g).to(device)
    log_probs = _randn_log_probs((50, 3, 15), g).to(device)
    # every combination is invalid: 30 labels do not fit the padded width 29, and -1 is negative;
    # target_lengths is always bad, input_lengths sometimes (then either may be named).
    name = "(input|target)_lengths" if input_lengths[0] < 0 else "target_lengths"
    if device == "cpu":
        # torch raises RuntimeError here; torch_ctc raises ValueError naming the argument.
        with pytest.raises(RuntimeError):
            F.ctc_loss(log_probs, targets, input_lengths, target_lengths)
    with pytest.raises(ValueError, match=f"torch_ctc: {name}"):
        torch_ctc.ctc_loss(log_probs, targets, input_lengths, target_lengths)


def test_CTCLoss_long_targets(f64_device):
    """CUDA-only in torch (CPU vs GPU); here torch_ctc against torch's CPU, torch's sizes."""
    T, C, N, L = 4000, 3, 4, 1200
    g = _gen(13)
    log_probs = _randn_log_probs((T, N, C), g, torch.float64)
    # as in torch: randint(1, C - 1) draws only label 1, a target of 1200 repeats (2399 frames needed)
    targets = torch.randint(1, C - 1, (N, L), dtype=torch.long, generator=g)
    il, tl = N * [T], N * [L]
    grad_out = torch.randn((), dtype=torch.float64, generator=g)
    kw = dict(reduction="sum", zero_infinity=True)
    l_ref, g_ref = run_loss("torch", log_probs, targets, il, tl, grad_out=grad_out, **kw)
    l_our, g_our = run_loss("ours", log_probs, targets, il, tl, device=f64_device, grad_out=grad_out, **kw)
    assert torch.isfinite(l_our)
    close(l_our, l_ref, **F64)
    close(g_our, exact_from_torch(g_ref, log_probs, targets, il, tl, reduction="sum", grad_out=grad_out), **F64)


@pytest.mark.parametrize("zero_d", ["target_lengths", "input_lengths", "both"])
def test_CTCLoss_critical_target_len(f32_device, zero_d):
    """cuDNN mishandled target length 256 (torch issue #53505); N = 1 with 0-d length tensors."""
    N, S, C, T = 1, 256, 10, 500
    g = _gen(14)
    target = torch.randint(1, C, (S,), dtype=torch.int, generator=g)
    input_lengths = torch.full((N,), T, dtype=torch.int)
    target_lengths = torch.tensor([S], dtype=torch.int)
    if zero_d in ("target_lengths", "both"):
        target_lengths = torch.tensor(S, dtype=torch.int)
    if zero_d in ("input_lengths", "both"):
        input_lengths = torch.tensor(T, dtype=torch.int)
    logits = torch.randn(T, N, C, generator=g)
    kw = dict(reduction="none")
    l_ref, _ = run_loss("torch", logits.log_softmax(2), target, input_lengths, target_lengths, **kw)
    l_our, _ = run_loss("ours", logits.log_softmax(2), target, input_lengths, target_lengths, device=f32_device, **kw)
    assert l_our.shape == l_ref.shape == (1,)
    close(l_our, l_ref, atol=1e-3, rtol=0)
    # added: the gradient w.r.t. the logits, against torch in float64, at least as accurate as
    # torch's own float32 gradient (which is 1.9e-4 off here: T = 500, L = 256)
    _, gl_64 = run_loss("torch", logits.double(), target, input_lengths, target_lengths, wrap=True, **kw)
    _, gl_ref = run_loss("torch", logits, target, input_lengths, target_lengths, wrap=True, **kw)
    _, gl_our = run_loss("ours", logits, target, input_lengths, target_lengths, device=f32_device, wrap=True, **kw)
    close(gl_our, gl_64, atol=5e-4, rtol=0)
    assert_as_accurate_as_torch(gl_our, gl_ref, gl_64)


def test_CTCLoss_zero_lengths(f32_device):
    N, S, C, T = 3, 2, 200, 1
    g = _gen(15)
    target = torch.randint(1, C, (N, S), dtype=torch.int, generator=g)
    input_lengths = torch.full((N,), 0, dtype=torch.int)
    for L, expected in ((0, 0.0), (1, math.inf)):
        target_lengths = torch.full((N,), L, dtype=torch.int)
        lp = _randn_log_probs((T, N, C), g)
        loss, grad = run_loss("ours", lp, target, input_lengths, target_lengths, device=f32_device, reduction="none")
        assert (loss == expected).all()
        assert (grad == 0).all()
        # the brute-force reference over the (empty) frames, and torch, agree
        brute = reference.brute_force_batch(lp, [t[:L].tolist() for t in target], input_lengths)
        assert torch.equal(brute, loss.double())
        l_ref, g_ref = run_loss("torch", lp, target, input_lengths, target_lengths, reduction="none")
        assert torch.equal(l_ref, loss) and torch.equal(g_ref, grad)


def test_CTCLoss_zero_infinity(f32_device):
    """CUDA-only in torch (cuDNN int32 vs native int64 vs CPU); sample 0 is infeasible."""
    target_lengths = [60, 25, 20]
    input_lengths = [50, 50, 50]
    g = _gen(16)
    targets = torch.randint(1, 15, (sum(target_lengths),), dtype=torch.int, generator=g)
    log_probs = _randn_log_probs((50, 3, 15), g)
    kw = dict(reduction="sum", zero_infinity=True)
    l_int, g_int = run_loss("ours", log_probs, targets, input_lengths, target_lengths, device=f32_device, **kw)
    l_long, g_long = run_loss("ours", log_probs, targets.long(), input_lengths, target_lengths, device=f32_device,
                              **kw)
    l_ref, g_ref = run_loss("torch", log_probs, targets, input_lengths, target_lengths, **kw)
    close(l_long, l_int, atol=1e-4, rtol=0)
    close(l_ref, l_int, atol=1e-4, rtol=0)
    exact = exact_from_torch(g_ref, log_probs, targets, input_lengths, target_lengths, reduction="sum",
                             grad_out=1.0, zero_infinity=True)
    close(g_long, g_int, atol=1e-4, rtol=0)
    close(g_int, exact, atol=1e-4, rtol=0)
    assert not torch.isnan(g_int).any()
    assert (g_int[:, 0] == 0).all()  # the infeasible sample is zeroed


# ==========================================================================
# test/test_nn.py, TestNNDeviceType
# ==========================================================================
@pytest.mark.parametrize("zero_infinity", [True, False])
def test_CTCLoss_cudnn(f32_device, zero_infinity):
    """On the CPU: the inputs cuDNN gets (blank 0, float32, int32 concatenated CPU targets,
    all input lengths = T, labels < 256), against the float64 reference and torch."""
    target_lengths = [30, 25, 20]
    input_lengths = [50, 50, 50]
    g = _gen(17)
    targets = torch.randint(1, 15, (sum(target_lengths),), dtype=torch.int, generator=g)
    log_probs = _randn_log_probs((50, 3, 15), g)
    kw = dict(zero_infinity=zero_infinity)
    res, grad = run_loss("ours", log_probs, targets, input_lengths, target_lengths, device=f32_device, **kw)
    expected = reference_loss(log_probs, targets, input_lengths, target_lengths).float()
    res2, grad2 = run_loss("ours", log_probs, targets.long(), input_lengths, target_lengths, device=f32_device, **kw)
    close(res, expected, **F32_DEFAULT)
    close(res2, res, **F32_DEFAULT)
    close(grad, grad2, **F32_DEFAULT)
    # against torch's native gradient (converted to the exact convention)
    l_ref, g_ref = run_loss("torch", log_probs, targets.long(), input_lengths, target_lengths, **kw)
    close(res, l_ref, **F32_DEFAULT)
    exact = exact_from_torch(g_ref, log_probs, targets, input_lengths, target_lengths, reduction="mean",
                             grad_out=1.0, zero_infinity=zero_infinity)
    close(grad, exact, **F32_DEFAULT)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("use_module_form", [True, False])
def test_CTCLoss_no_batch_dim(f32_device, reduction, use_module_form):
    T, C, L, N = 40, 3, 12, 1
    g = _gen(18)
    log_probs = _randn_log_probs((T, N, C), g)
    # as in torch: randint(1, C - 1) with C = 3 draws only label 1
    targets = torch.randint(1, C - 1, (N, L), dtype=torch.int, generator=g)
    targets_1d = targets.squeeze(0).clone()
    forms = [
        (log_probs, targets, N * [T], N * [L]),  # (T, N, C), (N, S), (N,) lengths
        (log_probs, targets_1d, N * [T], N * [L]),  # (T, N, C), (S,), (N,) lengths
        (log_probs.squeeze(1).clone(), targets_1d, torch.tensor(T), torch.tensor(L)),  # (T, C), (S,), 0-d
    ]
    kw = dict(reduction=reduction, zero_infinity=True, module=use_module_form)
    results = [run_loss("ours", *form, device=f32_device, **kw) for form in forms]
    (l0, g0), (l1, g1), (l2, g2) = results
    close(l1, l0, atol=1e-4, rtol=0)
    close(l2, l0.squeeze(0), atol=1e-4, rtol=0)
    close(g1, g0, atol=1e-4, rtol=0)
    close(g2, g0.squeeze(1), atol=1e-4, rtol=0)
    assert l0.shape == l1.shape == ((1,) if reduction == "none" else ())
    assert l2.shape == ()
    assert g0.shape == g1.shape == (T, 1, C)
    assert g2.shape == (T, C)
    # added: each form agrees with torch (gradient through log_softmax)
    for form in forms:
        l_ref, gl_ref = run_loss("torch", *form, wrap=True, **kw)
        l_our, gl_our = run_loss("ours", *form, device=f32_device, wrap=True, **kw)
        close(l_our, l_ref, atol=1e-4, rtol=0)
        close(gl_our, gl_ref, atol=1e-4, rtol=0)


def test_CTCLoss_empty_target(f64_device):
    g = _gen(19)
    target_lengths = [0, 0, 0]
    input_lengths = [50, 50, 50]
    targets = torch.randint(1, 15, (0,), dtype=torch.long, generator=g)
    log_probs = _randn_log_probs((50, 3, 15), g, torch.float64)
    loss, _ = run_loss("ours", log_probs, targets, input_lengths, target_lengths, device=f64_device,
                       reduction="none")
    assert (loss >= 0).all()
    close(loss, -log_probs.sum(0)[:, 0], rtol=1e-12, atol=1e-12)
    close(loss, F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none"), **F64)

    target_lengths = [0, 9, 0]
    targets = torch.randint(1, 15, (9,), dtype=torch.long, generator=g)
    log_probs = _randn_log_probs((50, 3, 15), g, torch.float64)
    loss, _ = run_loss("ours", log_probs, targets, input_lengths, target_lengths, device=f64_device,
                       reduction="none")
    assert (loss >= 0).all()
    close(loss[[0, 2]], -log_probs.sum(0)[[0, 2], 0], rtol=1e-12, atol=1e-12)
    close(loss, F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none"), **F64)


ZERO_NONE, ZERO_SOME, ZERO_ALL = 0, 1, 2


@pytest.mark.parametrize(
    "input_length, vary_lengths, zero_mode",
    [
        (150, False, ZERO_NONE), (150, True, ZERO_NONE), (50, True, ZERO_SOME), (50, True, ZERO_ALL),
        # torch runs these four on CUDA only
        (50, False, ZERO_NONE), (50, True, ZERO_NONE), (150, True, ZERO_SOME), (150, True, ZERO_ALL),
    ],
)
def test_ctc_loss_gradcheck(f64_device, input_length, vary_lengths, zero_mode):
    """test_ctc_loss: gradcheck of log_softmax + ctc_loss ('mean') through a 10-element leaf
    tiled over (T, 64, 101) log-probabilities."""
    batch_size, num_labels, target_length, leaf_size = 64, 101, 15, 10
    g = _gen(20 + input_length + 2 * vary_lengths + 3 * zero_mode)
    targets = torch.randint(1, num_labels, (batch_size, target_length), dtype=torch.long, generator=g)
    x = torch.randn(leaf_size, dtype=torch.float64, generator=g).to(f64_device).requires_grad_()
    tile = torch.randn(input_length * batch_size * num_labels // leaf_size + 1, generator=g).to(f64_device)
    input_lengths = [
        int(torch.randint(input_length // 2, input_length + 1, (), generator=g)) if vary_lengths or i == 0
        else input_length
        for i in range(batch_size)
    ]
    if zero_mode == ZERO_ALL:
        target_lengths = [0] * batch_size
    else:
        target_lengths = [
            int(torch.randint(target_length // 2, target_length + 1, (), generator=g)) if vary_lengths
            else target_length
            for _ in range(batch_size)
        ]
        if zero_mode == ZERO_SOME:
            for i in torch.randint(0, batch_size, (10,), generator=g):
                target_lengths[int(i)] = 0
    targets = targets.to(f64_device)

    def ctc_after_softmax(x):
        n = input_length * batch_size * num_labels
        full = (x[:, None] * tile[None, :]).reshape(-1)[:n].reshape(input_length, batch_size, num_labels)
        return torch_ctc.ctc_loss(full.log_softmax(2), targets, input_lengths, target_lengths)

    assert torch.isfinite(ctc_after_softmax(x))
    # torch's testing gradcheck enables check_batched_grad; exact (not fast) mode, the leaf is small
    assert gradcheck(ctc_after_softmax, (x,), check_batched_grad=True)


def test_ctc_loss_cudnn(f32_device):
    """CUDA-only in torch (cuDNN with int32 CPU targets vs native with int64); here torch_ctc
    with int32 (and int64) targets against torch's CPU with int64 targets."""
    batch_size, input_length, num_labels, target_length = 16, 30, 101, 15
    g = _gen(21)
    targets = torch.randint(1, num_labels, (batch_size * target_length,), dtype=torch.long, generator=g)
    log_probs = _randn_log_probs((input_length, batch_size, num_labels), g)
    input_lengths = batch_size * [input_length]
    target_lengths = batch_size * [target_length]
    grad_out = torch.randn(batch_size, generator=g)
    kw = dict(reduction="none", grad_out=grad_out)
    l_native, g_native = run_loss("torch", log_probs, targets, input_lengths, target_lengths, **kw)
    l_cudnn, g_cudnn = run_loss("ours", log_probs, targets.to(torch.int32), input_lengths, target_lengths,
                                device=f32_device, **kw)
    l_long, g_long = run_loss("ours", log_probs, targets, input_lengths, target_lengths, device=f32_device, **kw)
    exact = exact_from_torch(g_native, log_probs, targets, input_lengths, target_lengths, reduction="none",
                             grad_out=grad_out)
    close(l_cudnn, l_native, atol=1e-4, rtol=0)
    close(g_cudnn, exact, atol=1e-4, rtol=0)
    close(g_long, g_cudnn, atol=1e-4, rtol=0)


@pytest.mark.parametrize("seed", [22, 28], ids=["all_feasible", "one_infeasible"])
def test_ctc_loss_cudnn_tensor(f32_device, seed):
    """test_ctc_loss_cudnn_tensor_cuda: as above with tensor lengths, input lengths 15..30.
    Sample 0 has 15 frames for 15 labels: with seed 28 its target has a repeat, so it is
    infeasible (loss inf, NaN gradient, as torch)."""
    batch_size, input_length, num_labels, target_length = 16, 30, 101, 15
    g = _gen(seed)
    targets = torch.randint(1, num_labels, (batch_size * target_length,), dtype=torch.long, generator=g)
    log_probs = _randn_log_probs((input_length, batch_size, num_labels), g)
    input_lengths = torch.linspace(start=15, end=input_length, steps=batch_size, dtype=torch.long)
    target_lengths = torch.tensor(batch_size * [target_length], dtype=torch.long)
    grad_out = torch.randn(batch_size, generator=g)
    kw = dict(reduction="none", grad_out=grad_out)
    l_native, g_native = run_loss("torch", log_probs, targets, input_lengths, target_lengths, **kw)
    l_cudnn, g_cudnn = run_loss("ours", log_probs, targets.to(torch.int32), input_lengths.to(torch.int32),
                                target_lengths.to(torch.int32), device=f32_device, **kw)
    exact = exact_from_torch(g_native, log_probs, targets, input_lengths, target_lengths, reduction="none",
                             grad_out=grad_out)
    # like torch's assertEqual, NaN (an infeasible sample without zero_infinity) equals NaN
    close(l_cudnn, l_native, atol=1e-4, rtol=0, equal_nan=True)
    close(g_cudnn, exact, atol=1e-4, rtol=0, equal_nan=True)
    assert torch.isinf(l_native).sum() == (seed == 28)


def _cpu_length_inputs(label_low):
    N, T, C, S = 50, 100, 80, 10
    g = _gen(23)
    log_probs = _randn_log_probs((T, N, C), g)
    input_lengths = torch.full((N,), T, dtype=torch.int32)
    target_lengths = torch.randint(low=1, high=S, size=(N,), dtype=torch.int32, generator=g)
    targets = torch.randint(low=label_low, high=C, size=(int(target_lengths.sum()),), dtype=torch.int32,
                            generator=g)
    return log_probs, targets, input_lengths, target_lengths


def test_ctc_loss_cudnn_tensor_cpu_length(f32_device):
    """test_ctc_loss_cudnn_tensor_cpu_length_cuda: log_probs on the device, int32 lengths and
    targets on the CPU, 'sum'. Labels drawn from [1, C): the test below draws them from [0, C)."""
    log_probs, targets, input_lengths, target_lengths = _cpu_length_inputs(label_low=1)
    # lengths and targets stay on the CPU, whatever the device of log_probs
    lp = log_probs.to(f32_device)
    loss = torch_ctc.ctc_loss(lp, targets, input_lengths, target_lengths, reduction="sum")
    assert loss.device == lp.device and torch.isfinite(loss)
    ref = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum")
    close(loss.cpu(), ref, rtol=1e-5, atol=1e-4)


def test_ctc_loss_cudnn_tensor_cpu_length_blank_labels():
    """The same inputs as torch draws them, labels from [0, C): the blank (0) is then a label.
    torch accepts that and returns a number for a path through a blank 'label'; torch_ctc
    refuses it by design with a ValueError naming the sample and position (README,
    docs/semantics.md: a blank id inside the targets is a tokenizer mistake)."""
    log_probs, targets, input_lengths, target_lengths = _cpu_length_inputs(label_low=0)
    assert (targets == 0).any()  # the draw does contain the blank
    F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum")  # torch accepts it
    with pytest.raises(ValueError, match=r"targets: sample \d+, position \d+ holds the blank index 0"):
        torch_ctc.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum")


def test_ctc_loss_error(f32_device):
    log_probs = torch.rand(0, 0, 4, device=f32_device)
    targets = torch.tensor([], device=f32_device, dtype=torch.long)
    input_lengths = torch.tensor([], device=f32_device, dtype=torch.long)
    target_lengths = torch.tensor([], device=f32_device, dtype=torch.long)
    if f32_device == "cpu":
        with pytest.raises(RuntimeError, match="log_probs tensor must not be empty"):
            F.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    # torch raises RuntimeError ("log_probs tensor must not be empty"); torch_ctc raises ValueError naming log_probs.
    with pytest.raises(ValueError, match="torch_ctc: log_probs"):
        torch_ctc.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")


def test_ctc_loss_zero_frames_extension(f32_device):
    """Not a torch test: T = 0 with N >= 1 (all input lengths 0) is a documented torch_ctc
    extension (torch refuses any empty log_probs); empty targets give loss 0."""
    log_probs = torch.rand(0, 2, 4, device=f32_device).requires_grad_()
    empty = torch.tensor([], dtype=torch.long)
    loss = torch_ctc.ctc_loss(log_probs, empty, [0, 0], [0, 0], reduction="none")
    assert loss.shape == (2,) and (loss == 0).all()


@pytest.mark.parametrize("reduction", ["none", "invalid"])
def test_invalid_reduction_strings(reduction):
    g = _gen(24)
    log_probs = _randn_log_probs((50, 16, 20), g)
    targets = torch.randint(1, 20, (16, 30), dtype=torch.long, generator=g)
    input_lengths = torch.full((16,), 50, dtype=torch.long)
    target_lengths = torch.randint(10, 30, (16,), dtype=torch.long, generator=g)
    args = (log_probs, targets, input_lengths, target_lengths)
    if reduction == "invalid":
        # torch raises ValueError too
        with pytest.raises(ValueError):
            F.ctc_loss(*args, reduction=reduction)
        with pytest.raises(ValueError, match="torch_ctc: reduction"):
            torch_ctc.ctc_loss(*args, reduction=reduction)
        # torch's module raises at forward, torch_ctc's already in the constructor
        with pytest.raises(ValueError, match="torch_ctc: reduction"):
            torch_ctc.CTCLoss(reduction=reduction)(*args)
    else:
        out = torch_ctc.ctc_loss(*args, reduction=reduction)
        assert out.shape == (16,) and torch.isfinite(out).all()
        close(out, F.ctc_loss(*args, reduction=reduction), rtol=1e-5, atol=1e-4)


# ==========================================================================
# OpInfo "nn.functional.ctc_loss" (common_methods_invocations.sample_inputs_ctc_loss)
# ==========================================================================
OPINFO_CASES = [
    (r, z, lt) for r, z, lt in product(("none", "mean", "sum"), (True, False), ("list", "tensor"))
]
OPINFO_IDS = [f"{r}-zinf{int(z)}-{lt}" for r, z, lt in OPINFO_CASES]


def opinfo_sample(i, dtype, requires_grad=False):
    """Sample i of sample_inputs_ctc_loss: (log_probs, targets, input_lengths, target_lengths, kwargs)."""
    reduction, zero_infinity, lengths_type = OPINFO_CASES[i]
    input_length, batch, num_char, target_length = 50, 16, 20, 30
    g = _gen(300 + i)
    log_probs = _uniform((input_length, batch, num_char), g, dtype).log_softmax(2).detach()
    log_probs.requires_grad_(requires_grad)
    targets = torch.randint(1, num_char, (batch, target_length), dtype=torch.long, generator=g)
    input_lengths = torch.full((batch,), input_length, dtype=torch.long)
    target_lengths = torch.randint(10, target_length, (batch,), dtype=torch.long, generator=g)
    # as in torch: int lists only for 'none' and 'sum'
    if lengths_type == "list" and reduction in ("none", "sum"):
        input_lengths, target_lengths = input_lengths.tolist(), target_lengths.tolist()
    return log_probs, targets, input_lengths, target_lengths, dict(reduction=reduction, zero_infinity=zero_infinity)


@pytest.mark.parametrize("i", range(len(OPINFO_CASES)), ids=OPINFO_IDS)
def test_opinfo_sample_vs_torch_float32(f32_device, i):
    lp, targets, il, tl, kw = opinfo_sample(i, torch.float32)
    l_ref, g_ref = run_loss("torch", lp, targets, il, tl, wrap=True, **kw)
    l_our, g_our = run_loss("ours", lp, targets, il, tl, device=f32_device, wrap=True, **kw)
    l_64, g_64 = run_loss("torch", lp.double(), targets, il, tl, wrap=True, **kw)
    assert l_our.dtype == torch.float32 and l_our.shape == l_ref.shape
    close(l_our, l_ref, rtol=1e-5, atol=1e-4)
    close(g_our, g_ref, rtol=0, atol=5e-4)
    assert_as_accurate_as_torch(l_our, l_ref, l_64, floor=1e-4)
    assert_as_accurate_as_torch(g_our, g_ref, g_64)


@pytest.mark.parametrize("i", range(len(OPINFO_CASES)), ids=OPINFO_IDS)
def test_opinfo_sample_vs_torch_float64(f64_device, i):
    lp, targets, il, tl, kw = opinfo_sample(i, torch.float64)
    l_ref, g_ref = run_loss("torch", lp, targets, il, tl, wrap=True, **kw)
    l_our, g_our = run_loss("ours", lp, targets, il, tl, device=f64_device, wrap=True, **kw)
    assert l_our.dtype == torch.float64 and l_our.shape == l_ref.shape
    close(l_our, l_ref, **F64)
    close(g_our, g_ref, **F64)


@pytest.mark.parametrize("i", range(len(OPINFO_CASES)), ids=OPINFO_IDS)
def test_opinfo_noncontiguous_samples(f32_device, i):
    """test_ops.py test_noncontiguous_samples (float32): every tensor of the sample, and the
    incoming gradient, made noncontiguous as SampleInput.noncontiguous() does."""
    lp, targets, il, tl, kw = opinfo_sample(i, torch.float32, requires_grad=True)
    dev = f32_device
    t_args = [_to(a, dev) for a in (lp.detach(), targets, il, tl)]
    t_args[0].requires_grad_()
    n_args = [noncontiguous_like(a) if isinstance(a, torch.Tensor) else a for a in t_args]
    n_args[0] = noncontiguous_like(t_args[0].detach()).requires_grad_()
    assert n_args[0].stride(-1) == 2 and not n_args[0].is_contiguous()

    expected = torch_ctc.ctc_loss(*t_args, **kw)
    actual = torch_ctc.ctc_loss(*n_args, **kw)
    close(actual.cpu(), expected.cpu(), **F32_DEFAULT)

    g = _gen(400 + i)
    grad_for_expected = torch.randn(expected.shape, generator=g).to(dev)
    grad_for_actual = noncontiguous_like(grad_for_expected)
    (t_grad,) = torch.autograd.grad(expected, t_args[0], grad_for_expected)
    (n_grad,) = torch.autograd.grad(actual, n_args[0], grad_for_actual)
    assert torch.isfinite(t_grad).all() and torch.isfinite(n_grad).all()
    close(n_grad.cpu(), t_grad.cpu(), **F32_DEFAULT)


@pytest.mark.parametrize("wrapper", [True, False], ids=["log_softmax_wrapper", "direct"])
@pytest.mark.parametrize("i", range(len(OPINFO_CASES)), ids=OPINFO_IDS)
def test_opinfo_fn_grad(f64_device, i, wrapper):
    """TestBwdGradients.test_fn_grad: float64 gradcheck, torch's testing defaults (fast mode,
    batched grad). torch needs the log_softmax wrapper (issue #52241); torch_ctc passes without."""
    lp, targets, il, tl, kw = opinfo_sample(i, torch.float64)
    x = lp.detach().to(f64_device).requires_grad_()
    targets, il, tl = (_to(a, f64_device) for a in (targets, il, tl))

    def fn(inp):
        return torch_ctc.ctc_loss(inp.log_softmax(2) if wrapper else inp, targets, il, tl, **kw)

    assert gradcheck(fn, (x,), fast_mode=True, check_batched_grad=True)


def test_opinfo_fn_gradgrad(f64_device):
    """TestBwdGradients.test_fn_gradgrad is an expected failure for torch's ctc_loss ("derivative
    for aten::_ctc_loss_backward is not implemented"); torch_ctc does not support double
    backward either, and says so."""
    lp, targets, il, tl, kw = opinfo_sample(0, torch.float64)
    x = lp[:8, :2].detach().contiguous().to(f64_device).requires_grad_()
    targets = targets[:2, :3].to(f64_device)
    il, tl = [8, 8], [3, 2]

    def fn(inp):
        return torch_ctc.ctc_loss(inp.log_softmax(2), targets, il, tl, **kw)

    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.gradgradcheck(fn, (x,))


# ==========================================================================
# ModuleInfo torch.nn.CTCLoss (common_modules.module_inputs_torch_nn_CTCLoss)
# ==========================================================================
MODULE_CASES = [
    ("default", {}),
    ("reduction_sum", {"reduction": "sum"}),
    ("reduction_mean", {"reduction": "mean"}),
    ("reduction_none", {"reduction": "none"}),
    ("blank", {"blank": 14}),
]
MODULE_FORMS = ["lengths_intlists", "lengths_tensors", "1d_target_lengths_intlists", "1d_target_lengths_tensors"]
MODULE_INPUTS = [
    (tdtype, desc, ctor, form)
    for tdtype, (desc, ctor) in product((torch.int32, torch.int64), MODULE_CASES)
    for form in MODULE_FORMS
]
MODULE_IDS = [f"{str(t).split('.')[-1]}-{d}_{f}" for t, d, _, f in MODULE_INPUTS]


def module_input(i, dtype):
    """ModuleInput i: (constructor kwargs, (log_probs, targets, input_lengths, target_lengths))."""
    tdtype, _, ctor, form = MODULE_INPUTS[i]
    g = _gen(500 + i)
    log_probs = _uniform((50, 3, 15), g, dtype).log_softmax(2)
    # targets in [1, 15) with blank 0, in [0, 14) with blank 14 (make_tensor's high is exclusive)
    low, high = (0, 14) if ctor.get("blank", 0) == 14 else (1, 15)
    shape = (30 + 25 + 20,) if form.startswith("1d") else (3, 30)
    targets = torch.randint(low, high, shape, dtype=tdtype, generator=g)
    il, tl = (50, 50, 50), (30, 25, 20)
    if form.endswith("tensors"):
        il, tl = torch.tensor(il), torch.tensor(tl)
    return ctor, (log_probs, targets, il, tl)


_REF_CACHE = {}


def module_reference(i, dtype):
    """The ModuleInput's reference_fn (ctcloss_reference with the constructor kwargs), cached."""
    key = (i, dtype)
    if key not in _REF_CACHE:
        ctor, (lp, targets, il, tl) = module_input(i, dtype)
        _REF_CACHE[key] = reference_loss(lp, targets, il, tl, **ctor)
    return _REF_CACHE[key]


@pytest.mark.parametrize("i", range(len(MODULE_INPUTS)), ids=MODULE_IDS)
def test_module_forward_float32(f32_device, i):
    ctor, (lp, targets, il, tl) = module_input(i, torch.float32)
    m = torch_ctc.CTCLoss(**ctor)
    out = m(lp.to(f32_device), targets, il, tl)
    assert out.dtype == torch.float32 and out.device.type == f32_device
    # TestModule.test_forward: the output against reference_fn, cast to float32 as ctcloss_reference does
    close(out.cpu(), module_reference(i, torch.float32).float(), **F32_DEFAULT)
    # and against torch.nn.CTCLoss, gradient through log_softmax
    l_ref, g_ref = run_loss("torch", lp, targets, il, tl, wrap=True, module=True, **ctor)
    l_our, g_our = run_loss("ours", lp, targets, il, tl, device=f32_device, wrap=True, module=True, **ctor)
    _, g_64 = run_loss("torch", lp.double(), targets, il, tl, wrap=True, module=True, **ctor)
    close(l_our, l_ref, rtol=1e-5, atol=1e-4)
    close(g_our, g_ref, rtol=0, atol=5e-4)
    assert_as_accurate_as_torch(g_our, g_ref, g_64)


@pytest.mark.parametrize("i", range(len(MODULE_INPUTS)), ids=MODULE_IDS)
def test_module_forward_float64(f64_device, i):
    ctor, (lp, targets, il, tl) = module_input(i, torch.float64)
    out = torch_ctc.CTCLoss(**ctor)(lp.to(f64_device), targets, il, tl)
    assert out.dtype == torch.float64
    close(out.cpu(), module_reference(i, torch.float64), **F64)
    l_ref, g_ref = run_loss("torch", lp, targets, il, tl, wrap=True, module=True, **ctor)
    l_our, g_our = run_loss("ours", lp, targets, il, tl, device=f64_device, wrap=True, module=True, **ctor)
    close(l_our, l_ref, **F64)
    close(g_our, g_ref, **F64)


@pytest.mark.parametrize("i", range(0, len(MODULE_INPUTS)), ids=MODULE_IDS)
def test_module_grad(f64_device, i):
    """TestModule.test_grad (skipped for torch's CTCLoss): gradcheck w.r.t. log_probs itself,
    which passes for torch_ctc's exact derivative."""
    ctor, (lp, targets, il, tl) = module_input(i, torch.float64)
    m = torch_ctc.CTCLoss(**ctor)
    x = lp.detach().to(f64_device).requires_grad_()
    assert gradcheck(lambda inp: m(inp, targets, il, tl), (x,), fast_mode=True, check_batched_grad=True)


def test_module_gradgrad(f64_device):
    """TestModule.test_gradgrad (skipped for torch's CTCLoss): double backward is refused."""
    ctor, (lp, targets, il, tl) = module_input(0, torch.float64)
    m = torch_ctc.CTCLoss(**ctor)
    x = lp.detach().to(f64_device).requires_grad_()
    with pytest.raises(RuntimeError, match="double backward"):
        (g,) = torch.autograd.grad(m(x, targets, il, tl), x, create_graph=True)
        torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("i", range(len(MODULE_INPUTS)), ids=MODULE_IDS)
def test_module_non_contiguous_tensors(f32_device, i):
    """TestModule.test_non_contiguous_tensors (skipped for torch's CTCLoss, issue #115585)."""
    ctor, (lp, targets, il, tl) = module_input(i, torch.float32)
    m = torch_ctc.CTCLoss(**ctor)
    dev = f32_device
    x = lp.detach().to(dev).requires_grad_()
    x_nc = noncontiguous_like(lp.detach().to(dev)).requires_grad_()
    targets = targets.to(dev)
    nc = [noncontiguous_like(a) if isinstance(a, torch.Tensor) else a for a in (targets, _to(il, dev), _to(tl, dev))]
    out = m(x, targets, _to(il, dev), _to(tl, dev))
    out_nc = m(x_nc, *nc)
    close(out_nc.cpu(), out.cpu(), **F32_DEFAULT)
    go = torch.randn(out.shape, generator=_gen(600 + i)).to(dev)
    (g,) = torch.autograd.grad(out, x, go)
    (g_nc,) = torch.autograd.grad(out_nc, x_nc, noncontiguous_like(go))
    close(g_nc.cpu(), g.cpu(), **F32_DEFAULT)


@pytest.mark.parametrize("i", [0, 4, 19, 36], ids=[MODULE_IDS[j] for j in (0, 4, 19, 36)])
def test_module_pickle_and_repr(i):
    """TestModule.test_pickle / test_repr: a pickled (and a deep-copied) module gives the same
    output; repr names the settings."""
    ctor, (lp, targets, il, tl) = module_input(i, torch.float64)
    m = torch_ctc.CTCLoss(**ctor)
    out = m(lp, targets, il, tl)
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert torch.equal(clone(lp, targets, il, tl), out)
    text = repr(m)
    assert text.startswith("CTCLoss(")
    assert f"blank={ctor.get('blank', 0)}" in text and repr(ctor.get("reduction", "mean")) in text
