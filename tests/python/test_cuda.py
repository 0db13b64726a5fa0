"""CUDA backend tests: the GPU against the CPU engine and torch's own CUDA ctc_loss.

Every test here needs a GPU and is skipped cleanly without one. scripts/gpu-check.sh
runs them on the lent GPU machine.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import torch_ctc

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DEV = "cuda"


def make_problem(T, N, C, L, *, blank=0, seed=0, dtype=torch.float64, padded=True, full_lengths=False,
                 repeats=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, N, C, generator=g, dtype=torch.float64).to(dtype)
    target_lengths = torch.full((N,), L) if full_lengths else torch.randint(0, L + 1, (N,), generator=g)
    labels = [c for c in range(C) if c != blank]
    rows = []
    for n in range(N):
        idx = torch.randint(0, len(labels), (int(target_lengths[n]),), generator=g)
        row = torch.tensor([labels[i] for i in idx.tolist()], dtype=torch.long)
        if repeats and len(row) > 2:
            row[1] = row[0]
        rows.append(row)
    min_frames = [int(tl) + sum(int(r[i] == r[i - 1]) for i in range(1, len(r))) for tl, r in zip(target_lengths, rows)]
    input_lengths = torch.tensor(
        [T if full_lengths else int(torch.randint(min(m, T), T + 1, (1,), generator=g)) for m in min_frames]
    )
    if padded:
        targets = torch.full((N, max(L, 1)), -1, dtype=torch.long)
        for n, r in enumerate(rows):
            targets[n, : len(r)] = r
    else:
        targets = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)
    return logits, targets, input_lengths, target_lengths


def loss_and_grad(fn, logits, *args, **kwargs):
    x = logits.detach().clone().requires_grad_()
    loss = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def ours(x, targets, il, tl, **kw):
    from_logits = kw.pop("from_logits", False)
    return torch_ctc.ctc_loss(x if from_logits else x.log_softmax(-1), targets, il, tl, from_logits=from_logits, **kw)


def torch_ref(x, targets, il, tl, **kw):
    kw.pop("from_logits", None)
    kw.pop("validate", None)
    return F.ctc_loss(x.log_softmax(-1), targets, il, tl, **kw)


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("blank", [0, 3, 9])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_matches_cpu_and_torch_float64(padded, blank, reduction, from_logits):
    logits, targets, il, tl = make_problem(40, 6, 10, 12, blank=blank, padded=padded, repeats=True)
    cpu = loss_and_grad(ours, logits, targets, il, tl, blank=blank, reduction=reduction, from_logits=from_logits)
    gpu = loss_and_grad(ours, logits.to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV), blank=blank,
                        reduction=reduction, from_logits=from_logits)
    ref = loss_and_grad(torch_ref, logits.to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV), blank=blank,
                        reduction=reduction)
    for got in (gpu[0].cpu(), ref[0].cpu()):
        torch.testing.assert_close(got, cpu[0], rtol=1e-10, atol=1e-10)
    for got in (gpu[1].cpu(), ref[1].cpu()):
        torch.testing.assert_close(got, cpu[1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("path", ["block", "warp"])
@pytest.mark.parametrize("L", [15, 31, 63, 127])  # every states-per-lane size of the warp kernels
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_both_recurrence_paths_match_cpu(monkeypatch, path, L, dtype):
    """TORCH_CTC_CUDA_RECURRENCE forces each path (docs/cuda-kernels.md); float32 runs the warp
    kernels' fast exp and log, whose error the simulator cannot see."""
    monkeypatch.setenv("TORCH_CTC_CUDA_RECURRENCE", path)
    logits, targets, il, tl = make_problem(2 * L + 10, 9, 12, L, repeats=True, seed=L)
    cpu = loss_and_grad(ours, logits, targets, il, tl, reduction="sum")
    gpu = loss_and_grad(ours, logits.to(DEV, dtype), targets.to(DEV), il.to(DEV), tl.to(DEV), reduction="sum")
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(gpu[0].double().cpu(), cpu[0], rtol=tol, atol=tol)
    torch.testing.assert_close(gpu[1].double().cpu(), cpu[1], rtol=100 * tol, atol=100 * tol)


def test_recurrence_path_variable_errors(monkeypatch):
    logits, targets, il, tl = make_problem(300, 2, 8, 140, full_lengths=True)
    args = (logits.log_softmax(-1).to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV))
    monkeypatch.setenv("TORCH_CTC_CUDA_RECURRENCE", "warp")  # 281 states: more than a warp holds
    with pytest.raises(ValueError, match="TORCH_CTC_CUDA_RECURRENCE"):
        torch_ctc.ctc_loss(*args)
    monkeypatch.setenv("TORCH_CTC_CUDA_RECURRENCE", "fastest")
    with pytest.raises(ValueError, match="'fastest'"):
        torch_ctc.ctc_loss(*args)


@pytest.mark.parametrize("lengths_on_gpu", [False, True])
@pytest.mark.parametrize("targets_on_gpu", [False, True])
def test_lengths_and_targets_on_either_device(lengths_on_gpu, targets_on_gpu):
    logits, targets, il, tl = make_problem(30, 4, 8, 9)
    cpu = loss_and_grad(ours, logits, targets, il, tl)
    dev = lambda t, on: t.to(DEV) if on else t  # noqa: E731
    gpu = loss_and_grad(ours, logits.to(DEV), dev(targets, targets_on_gpu), dev(il, lengths_on_gpu),
                        dev(tl, lengths_on_gpu))
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("layout", ["batch_first", "transposed_view", "unbatched"])
def test_layouts_through_strides(layout):
    logits, targets, il, tl = make_problem(25, 3, 7, 6)
    cpu = loss_and_grad(ours, logits, targets, il, tl, reduction="sum")
    if layout == "batch_first":
        x = logits.transpose(0, 1).contiguous().to(DEV)
        gpu = loss_and_grad(ours, x, targets.to(DEV), il.to(DEV), tl.to(DEV), reduction="sum", batch_first=True)
        torch.testing.assert_close(gpu[1].transpose(0, 1).cpu(), cpu[1], rtol=1e-9, atol=1e-10)
    elif layout == "transposed_view":
        x = logits.transpose(0, 1).contiguous().to(DEV).transpose(0, 1)  # (T, N, C) view, not contiguous
        assert not x.is_contiguous()
        gpu = loss_and_grad(ours, x, targets.to(DEV), il.to(DEV), tl.to(DEV), reduction="sum")
        torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-9, atol=1e-10)
    else:
        x = logits[:, 0].to(DEV)
        cpu = loss_and_grad(ours, logits[:, 0], targets[0, : tl[0]], il[0], tl[0], reduction="none")
        gpu = loss_and_grad(ours, x, targets[0, : tl[0]].to(DEV), il[0], tl[0], reduction="none")
        assert gpu[0].dim() == 0
        torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("from_logits", [False, True])
def test_low_precision_inputs(dtype, from_logits):
    logits, targets, il, tl = make_problem(50, 8, 20, 15)
    x = logits if from_logits else logits.log_softmax(-1)
    ref = torch_ctc.ctc_loss(x, targets, il, tl, reduction="none", from_logits=from_logits)
    got = torch_ctc.ctc_loss(x.to(DEV, dtype), targets.to(DEV), il.to(DEV), tl.to(DEV), reduction="none",
                             from_logits=from_logits)
    assert got.dtype == (torch.float32 if dtype != torch.float64 else dtype)
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got.double().cpu(), ref, rtol=tol, atol=tol * 10)
    cpu_same_dtype = torch_ctc.ctc_loss(x.to(dtype), targets, il, tl, reduction="none", from_logits=from_logits)
    torch.testing.assert_close(got.cpu(), cpu_same_dtype, rtol=1e-4, atol=1e-4)


def test_edge_cases_match_cpu():
    C = 5
    cases = [
        # (T, targets, input_length) : infeasible repeats, feasible repeats, empty, T=1, T=0 empty
        (4, [1, 1, 1], 4),
        (5, [1, 1, 1], 5),
        (6, [], 6),
        (1, [2], 1),
        (3, [], 0),
    ]
    for zero_infinity in (False, True):
        for T, target, frames in cases:
            logits = torch.randn(T, 1, C, dtype=torch.float64)
            args = (torch.tensor([target + [0] * (3 - len(target))]), torch.tensor([frames]), torch.tensor([len(target)]))
            cpu = loss_and_grad(ours, logits, *args, reduction="sum", zero_infinity=zero_infinity)
            gpu = loss_and_grad(ours, logits.to(DEV), *(a.to(DEV) for a in args), reduction="sum",
                                zero_infinity=zero_infinity)
            torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-10, atol=1e-10, equal_nan=True)
            torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-9, atol=1e-10, equal_nan=True)


def test_nan_in_frames_beyond_input_length_is_ignored():
    logits, targets, il, tl = make_problem(30, 5, 9, 8)
    il[0], il[3] = 10, 17
    x = logits.clone()
    for n in range(5):
        x[il[n]:, n] = float("nan")
    cpu = loss_and_grad(ours, torch.nan_to_num(x, nan=0.0), targets, il, tl, from_logits=True)
    gpu = loss_and_grad(ours, x.to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV), from_logits=True)
    assert torch.isfinite(gpu[1]).all()
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("L,T", [(1000, 2500), (4096, 9000)])
def test_long_targets(L, T):
    logits, targets, il, tl = make_problem(T, 2, 30, L, full_lengths=True, seed=L)
    cpu = loss_and_grad(ours, logits, targets, il, tl, reduction="sum")
    gpu = loss_and_grad(ours, logits.to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV), reduction="sum")
    assert torch.isfinite(gpu[0]).all()
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-8, atol=1e-10)


def test_gradcheck_on_gpu():
    logits, targets, il, tl = make_problem(8, 3, 5, 3)
    x = logits.to(DEV).requires_grad_()
    args = (targets.to(DEV), il.to(DEV), tl.to(DEV))
    assert torch.autograd.gradcheck(lambda y: torch_ctc.ctc_loss(y, *args, reduction="sum"), (x,))
    assert torch.autograd.gradcheck(lambda y: torch_ctc.ctc_loss(y, *args, from_logits=True), (x,))


def test_deterministic_100_runs():
    logits, targets, il, tl = make_problem(120, 16, 40, 30, dtype=torch.float32, seed=7)
    args = (logits.to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV))
    torch.use_deterministic_algorithms(True)
    try:
        first = loss_and_grad(ours, *args, reduction="sum", from_logits=True)
        for _ in range(99):
            again = loss_and_grad(ours, *args, reduction="sum", from_logits=True)
            assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])
    finally:
        torch.use_deterministic_algorithms(False)


def test_cuda_graph_capture_and_replay():
    logits, targets, il, tl = make_problem(60, 8, 20, 12, dtype=torch.float32, seed=3)
    x = logits.to(DEV).requires_grad_()
    targets, il, tl = targets.to(DEV), il.to(DEV), tl.to(DEV)

    def step():
        loss = torch_ctc.ctc_loss(x, targets, il, tl, from_logits=True, validate=False)
        (grad,) = torch.autograd.grad(loss, x)
        return loss, grad

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up outside the capture
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss, static_grad = step()
    with torch.no_grad():
        x.copy_(torch.randn_like(x))
    graph.replay()
    torch.cuda.synchronize()
    eager = loss_and_grad(ours, x.detach(), targets, il, tl, from_logits=True)
    torch.testing.assert_close(static_loss, eager[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(static_grad, eager[1], rtol=1e-5, atol=1e-6)


def test_validate_false_never_reads_out_of_bounds():
    logits, targets, il, tl = make_problem(20, 4, 6, 5, dtype=torch.float32)
    bad_targets = targets.clone()
    bad_targets[0, 0] = 1000  # label outside [0, C)
    bad_targets[1, 0] = -7
    bad_il = il.clone()
    bad_il[2] = 10_000  # longer than T
    bad_tl = tl.clone()
    bad_tl[3] = 50  # longer than the padded width
    loss = torch_ctc.ctc_loss(logits.to(DEV).log_softmax(-1), bad_targets.to(DEV), bad_il.to(DEV), bad_tl.to(DEV),
                              reduction="none", validate=False)
    torch.cuda.synchronize()  # an illegal access would surface here
    assert torch.isnan(loss[0]) or torch.isinf(loss[0])
    assert torch.isnan(loss[1]) or torch.isinf(loss[1])
    with pytest.raises(ValueError, match="targets"):
        torch_ctc.ctc_loss(logits.to(DEV).log_softmax(-1), bad_targets.to(DEV), il.to(DEV), tl.to(DEV))


def test_errors_match_cpu_messages():
    logits, targets, il, tl = make_problem(10, 2, 5, 3)
    il_bad = il.clone()
    il_bad[1] = 11
    for device in ("cpu", DEV):
        with pytest.raises(ValueError, match=r"input_lengths\[1\] = 11"):
            torch_ctc.ctc_loss(logits.to(device), targets.to(device), il_bad.to(device), tl.to(device))


def test_more_than_2_pow_31_elements_bf16():
    # N*T*C > 2^31 exercises 64-bit index arithmetic in every pass (about 4.3 GB of bf16 input).
    T, N, C, L = 512, 64, 65_600, 20
    assert T * N * C > 2**31
    g = torch.Generator(device=DEV).manual_seed(0)
    x = torch.randn(T, N, C, device=DEV, dtype=torch.bfloat16, generator=g)
    targets = torch.randint(1, C, (N, L), device=DEV, generator=g)
    il = torch.full((N,), T, device=DEV)
    tl = torch.full((N,), L, device=DEV)
    x.requires_grad_()
    loss = torch_ctc.ctc_loss(x, targets, il, tl, reduction="none", from_logits=True)
    loss.sum().backward()
    # Check the last sample (whose elements sit beyond 2^31) against float32 on that slice alone.
    last = x.detach()[:, -1:].float()
    ref_loss = torch_ctc.ctc_loss(last, targets[-1:], il[-1:], tl[-1:], reduction="none", from_logits=True)
    torch.testing.assert_close(loss[-1:], ref_loss, rtol=1e-3, atol=1e-2)
    ref_x = last.clone().requires_grad_()
    torch_ctc.ctc_loss(ref_x, targets[-1:], il[-1:], tl[-1:], reduction="sum", from_logits=True).backward()
    torch.testing.assert_close(x.grad[:, -1:].float(), ref_x.grad, rtol=2e-2, atol=1e-3)


# --------------------------------------------------------------------------
# Forced alignment and greedy decoding on the GPU: the same results as the CPU, bit for
# bit (max-plus needs no device math), on the input's device, without host syncs.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("padded", [True, False])
def test_forced_align_matches_cpu(dtype, padded):
    lp, targets, il, tl = make_problem(60, 6, 12, 15, blank=2, seed=7, dtype=torch.float64, padded=padded)
    x = lp.log_softmax(-1).to(dtype)
    cpu = torch_ctc.forced_align(x, targets, il, tl, blank=2)
    gpu = torch_ctc.forced_align(x.to(DEV), targets.to(DEV), il.to(DEV), tl.to(DEV), blank=2)
    assert gpu[0].device.type == "cuda"
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])


def test_forced_align_long_and_on_a_second_device():
    lp = torch.randn(3000, 2, 8, generator=torch.Generator().manual_seed(1)).log_softmax(-1)
    targets = torch.arange(2 * 1400).remainder(7).add(1).reshape(2, 1400)
    cpu = torch_ctc.forced_align(lp, targets, [3000, 2900], [1400, 1300])
    devices = [DEV] + (["cuda:1"] if torch.cuda.device_count() > 1 else [])
    for device in devices:
        gpu = torch_ctc.forced_align(lp.to(device), targets.to(device), [3000, 2900], [1400, 1300])
        assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])


def test_forced_align_validate_false_is_capturable():
    lp = torch.randn(40, 4, 6, device=DEV).log_softmax(-1)
    targets = torch.randint(1, 6, (4, 8), device=DEV)
    il = torch.full((4,), 40, device=DEV)
    tl = torch.full((4,), 8, device=DEV)
    ref = torch_ctc.forced_align(lp, targets, il, tl, validate=False)
    graph = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        torch_ctc.forced_align(lp, targets, il, tl, validate=False)  # warm-up on the side stream
        with torch.cuda.graph(graph):
            out = torch_ctc.forced_align(lp, targets, il, tl, validate=False)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_greedy_decode_matches_cpu_without_sync(dtype):
    lp = (torch.randn(80, 5, 30, generator=torch.Generator().manual_seed(3)) * 3).log_softmax(-1).to(dtype)
    il = torch.tensor([80, 70, 1, 0, 55])
    cpu = torch_ctc.greedy_decode(lp, il)
    gpu = torch_ctc.greedy_decode(lp.to(DEV), il.to(DEV))
    for a, b in zip(gpu, cpu):
        assert torch.equal(a.cpu(), b)
    graph = torch.cuda.CUDAGraph()
    x, lengths = lp.to(DEV), il.to(DEV)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        torch_ctc.greedy_decode(x, lengths)
        with torch.cuda.graph(graph):
            captured = torch_ctc.greedy_decode(x, lengths)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(captured.tokens.cpu(), cpu.tokens)
