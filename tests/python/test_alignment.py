"""Forced alignment (torch_ctc.forced_align) and merge_tokens.

Checked against torchaudio.functional.forced_align one sample at a time (bit for bit:
the same tie rule, the same float arithmetic; except where torchaudio 2.11 loses the
best path, see test_torchaudio_loses_the_best_path_on_a_step_skip_tie), against a
brute force over every path
for tiny problems, and for the invariants of an alignment; the checkpointed mode
against the full one; merge_tokens against torchaudio's; the memory bound at the
target size (T = 100,000, L = 5,000) in a subprocess; and every error.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torch_ctc
from reference import collapse, min_frames

# The peer, a test-only dependency (requirements.txt); the GPU check machine may lack it.
TAF = pytest.importorskip("torchaudio.functional")

DTYPES = [torch.float32, torch.float64]
KERNELS = ["auto", "scalar"]


def with_kernel(kernel, fn):
    torch_ctc._C.set_cpu_kernel(kernel)
    try:
        return fn()
    finally:
        torch_ctc._C.set_cpu_kernel("auto")


def path_score(lp_tc, path):
    return float(lp_tc.double()[torch.arange(lp_tc.shape[0]), path].sum())


def assert_matches_torchaudio(lp_tc, target, blank, ours, our_scores):
    """Bit for bit, unless torchaudio's path scores lower than ours: torchaudio 2.11 breaks
    a tie between stepping and skipping (both above staying) by staying, which is not a
    best path (see the test below); then ours must be the strictly better one."""
    ref_a, ref_s = torchaudio_align(lp_tc, target, blank)
    if torch.equal(ours, ref_a):
        assert torch.equal(our_scores, ref_s.to(our_scores.dtype))
    else:
        assert path_score(lp_tc, ours) > path_score(lp_tc, ref_a), (ours, ref_a)


def torchaudio_align(lp_tc, target, blank):
    """torchaudio on one sample: lp_tc (T_n, C) and its target."""
    a, s = TAF.forced_align(lp_tc.unsqueeze(0).contiguous(), torch.tensor([target], dtype=torch.int32),
                            torch.tensor([lp_tc.shape[0]]), torch.tensor([len(target)]), blank)
    return a[0].long(), s[0]


@st.composite
def batches(draw):
    """A random batch of feasible, non-empty targets (what torchaudio accepts)."""
    T = draw(st.integers(1, 40))
    C = draw(st.integers(2, 9))
    blank = draw(st.sampled_from(sorted({0, C - 1, C // 2})))
    N = draw(st.integers(1, 4))
    labels = [c for c in range(C) if c != blank]
    targets, lengths = [], []
    for _ in range(N):
        target = draw(st.lists(st.sampled_from(labels), min_size=1, max_size=max(1, T)))
        while min_frames(target) > T:
            target = target[:-1]
        if not target:
            target = [labels[0]]
        targets.append(target)
        lengths.append(draw(st.integers(min_frames(target), T)))
    return dict(T=T, C=C, blank=blank, targets=targets, input_lengths=lengths,
                seed=draw(st.integers(0, 2**31 - 1)), scale=draw(st.sampled_from([1.0, 5.0])),
                padded=draw(st.booleans()), dtype=draw(st.sampled_from(DTYPES)),
                kernel=draw(st.sampled_from(KERNELS)), memory=draw(st.sampled_from(["auto", "full", "checkpointed"])),
                batch_first=draw(st.booleans()))


def make_inputs(case):
    g = torch.Generator().manual_seed(case["seed"])
    N = len(case["targets"])
    lp = (torch.randn(case["T"], N, case["C"], generator=g, dtype=torch.float64) * case["scale"]).log_softmax(-1)
    lp = lp.to(case["dtype"])
    if case["padded"]:
        S = max(len(t) for t in case["targets"])
        targets = torch.full((N, S), case["blank"], dtype=torch.long)
        for n, t in enumerate(case["targets"]):
            targets[n, : len(t)] = torch.tensor(t)
    else:
        targets = torch.tensor([v for t in case["targets"] for v in t], dtype=torch.long)
    return lp, targets


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=batches())
def test_matches_torchaudio_sample_by_sample(case):
    lp, targets = make_inputs(case)
    x = lp.transpose(0, 1) if case["batch_first"] else lp
    a, s = with_kernel(case["kernel"], lambda: torch_ctc.forced_align(
        x, targets, case["input_lengths"], [len(t) for t in case["targets"]], case["blank"],
        batch_first=case["batch_first"], memory=case["memory"]))
    assert a.dtype == torch.int64 and s.dtype == (torch.float64 if case["dtype"] == torch.float64 else torch.float32)
    for n, target in enumerate(case["targets"]):
        frames = case["input_lengths"][n]
        assert_matches_torchaudio(lp[:frames, n], target, case["blank"], a[n, :frames], s[n, :frames])
        assert (a[n, frames:] == -1).all() and (s[n, frames:] == 0).all()


def test_torchaudio_loses_the_best_path_on_a_step_skip_tie():
    """torchaudio 2.11's CPU forced_align takes a step only when it beats both staying and
    skipping, so when stepping and skipping tie above staying it stays: here it returns a
    path of log-probability -2 where -1 exists. torch_ctc takes the step (its tie rule:
    stay, then step, then skip, on equal scores only) and finds the best path."""
    lp = torch.tensor([[0.0, -1, -2], [0, -1, -1], [-1, -2, 0], [-1, -2, 0], [-1, -2, 0]]).unsqueeze(1)
    a, s = torch_ctc.forced_align(lp, torch.tensor([[1, 2]]), [5], [2])
    ref_a, ref_s = torchaudio_align(lp[:, 0], [1, 2], 0)
    assert a[0].tolist() == [1, 0, 2, 2, 2] and s[0].sum().item() == -1.0
    assert ref_a.tolist() == [1, 2, 2, 2, 2] and ref_s.sum().item() == -2.0
    assert best_path_brute_force(lp[:, 0].double(), [1, 2], 0) == -1.0


def best_path_brute_force(lp_tc, target, blank):
    """max over every frame-level path that collapses to target of its log-prob."""
    T, C = lp_tc.shape
    best = -math.inf
    for path in itertools.product(range(C), repeat=T):
        if collapse(path, blank) == tuple(target):
            best = max(best, float(lp_tc[torch.arange(T), list(path)].sum()))
    return best


def legal(path, target, blank):
    """Every frame-to-frame transition is a CTC one, and the path starts and ends right."""
    ext = [blank]
    for v in target:
        ext += [v, blank]
    # Follow the states greedily: a label path is legal iff some state sequence matches it.
    states = {s for s in (0, 1) if s < len(ext) and ext[s] == path[0]}
    for label in path[1:]:
        nxt = set()
        for s in states:
            for d in (0, 1, 2):
                q = s + d
                if q >= len(ext) or ext[q] != label:
                    continue
                if d == 2 and (ext[q] == blank or ext[q] == ext[q - 2]):
                    continue
                nxt.add(q)
        states = nxt
    return bool(states & {len(ext) - 1, len(ext) - 2})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_brute_force_and_invariants(dtype, kernel):
    g = torch.Generator().manual_seed(3)
    for trial in range(40):
        T, C = int(torch.randint(1, 7, (1,), generator=g)), int(torch.randint(2, 5, (1,), generator=g))
        blank = trial % C
        labels = [c for c in range(C) if c != blank]
        length = int(torch.randint(0, T + 1, (1,), generator=g))
        target = [labels[int(i)] for i in torch.randint(0, len(labels), (length,), generator=g)]
        while min_frames(target) > T:
            target = target[:-1]
        lp = torch.randn(T, 1, C, generator=g, dtype=torch.float64).log_softmax(-1).to(dtype)
        tg = torch.tensor([target + [blank]], dtype=torch.long)  # padded one wider
        a, s = with_kernel(kernel, lambda: torch_ctc.forced_align(lp, tg, [T], [len(target)], blank))
        path = a[0].tolist()
        assert collapse(path, blank) == tuple(target)
        assert legal(path, target, blank)
        assert torch.equal(s[0], lp[torch.arange(T), 0, a[0]].to(s.dtype))
        best = best_path_brute_force(lp[:, 0].double(), target, blank)
        assert math.isclose(float(s[0].double().sum()), best, rel_tol=1e-6 if dtype == torch.float32 else 1e-12,
                            abs_tol=1e-5 if dtype == torch.float32 else 1e-12)


def test_nan_past_the_input_lengths_changes_nothing():
    g = torch.Generator().manual_seed(4)
    lp = torch.randn(20, 3, 6, generator=g).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3], [4, 4, 0], [5, 0, 0]])
    il, tl = [20, 12, 7], [3, 2, 1]
    clean = torch_ctc.forced_align(lp, targets, il, tl)
    dirty = lp.clone()
    for n, frames in enumerate(il):
        dirty[frames:, n] = float("nan")
    for kernel in KERNELS:
        got = with_kernel(kernel, lambda: torch_ctc.forced_align(dirty, targets, il, tl))
        assert torch.equal(got[0], clean[0]) and torch.equal(got[1], clean[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kernel", KERNELS)
def test_checkpointed_is_exactly_the_full_mode(dtype, kernel):
    g = torch.Generator().manual_seed(5)
    T, N, C = 700, 3, 12
    lp = (torch.randn(T, N, C, generator=g) * 2).log_softmax(-1).to(dtype)
    targets = torch.randint(1, C, (N, 150), generator=g)
    il, tl = [700, 650, 333], [150, 120, 40]
    full = with_kernel(kernel, lambda: torch_ctc.forced_align(lp, targets, il, tl, memory="full"))
    ckpt = with_kernel(kernel, lambda: torch_ctc.forced_align(lp, targets, il, tl, memory="checkpointed"))
    assert torch.equal(full[0], ckpt[0]) and torch.equal(full[1], ckpt[1])


def test_half_inputs_align_like_their_float32_values():
    g = torch.Generator().manual_seed(6)
    lp = torch.randn(30, 2, 7, generator=g).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3, 4], [6, 6, 5, 0]])
    for dtype in (torch.float16, torch.bfloat16):
        half = lp.to(dtype)
        got = torch_ctc.forced_align(half, targets, [30, 25], [4, 3])
        ref = torch_ctc.forced_align(half.float(), targets, [30, 25], [4, 3])
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1]) and got[1].dtype == torch.float32


def test_strided_input_and_unbatched():
    g = torch.Generator().manual_seed(7)
    lp = torch.randn(25, 3, 8, generator=g).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3], [4, 5, 0], [7, 7, 7]])
    il, tl = [25, 20, 15], [3, 2, 3]
    ref = torch_ctc.forced_align(lp, targets, il, tl)
    wide = torch.repeat_interleave(lp, 2, -1)[..., ::2]  # class stride 2
    channels_first = lp.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    for view in (wide, channels_first, lp.transpose(0, 1).contiguous().transpose(0, 1)):
        got = torch_ctc.forced_align(view, targets, il, tl)
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    one = torch_ctc.forced_align(lp[:, 1], targets[1, :2], 20, 2)
    assert one[0].shape == (25,) and torch.equal(one[0], ref[0][1])


def test_empty_targets_align_to_blank():
    lp = torch.randn(6, 2, 4).log_softmax(-1)
    a, s = torch_ctc.forced_align(lp, torch.zeros(2, 0, dtype=torch.long), [6, 3], [0, 0], blank=2)
    assert (a[0] == 2).all() and (a[1, :3] == 2).all() and (a[1, 3:] == -1).all()


def test_errors_name_the_problem():
    lp = torch.randn(5, 2, 4).log_softmax(-1)
    with pytest.raises(ValueError, match=r"forced_align: sample 1 has too few frames.*input_lengths\[1\] = 4, but 3 "
                                         r"labels with 2 repeat\(s\) need 5 frames"):
        torch_ctc.forced_align(lp, torch.tensor([[1, 2, 0], [3, 3, 3]]), [5, 4], [2, 3])
    with pytest.raises(ValueError, match=r"samples 0 and 1 have too few frames"):
        torch_ctc.forced_align(lp, torch.tensor([[1, 2, 3, 1, 2, 3], [1, 1, 2, 2, 3, 3]]), [5, 5], [6, 6])
    masked = lp.clone()
    masked[2, 1, :] = float("-inf")
    with pytest.raises(ValueError, match=r"no path of finite score for sample 1"):
        torch_ctc.forced_align(masked, torch.tensor([[1], [2]]), [5, 5], [1, 1])
    with pytest.raises(ValueError, match=r"targets: sample 0, position 0 holds the blank index 0"):
        torch_ctc.forced_align(lp, torch.tensor([[0], [2]]), [5, 5], [1, 1])
    with pytest.raises(ValueError, match=r"input_lengths\[0\] = 9 is greater than the number of frames"):
        torch_ctc.forced_align(lp, torch.tensor([[1], [2]]), [9, 5], [1, 1])
    with pytest.raises(ValueError, match=r"memory must be 'auto', 'full' or 'checkpointed'"):
        torch_ctc.forced_align(lp, torch.tensor([[1], [2]]), [5, 5], [1, 1], memory="some")
    with pytest.raises(TypeError, match=r"log_probs must be float32"):
        torch_ctc.forced_align(lp.long(), torch.tensor([[1], [2]]), [5, 5], [1, 1])
    with pytest.raises(ValueError, match=r"blank = 4 must be in \[0, C\)"):
        torch_ctc.forced_align(lp, torch.tensor([[1], [2]]), [5, 5], [1, 1], blank=4)


def test_no_gradient_is_tracked():
    lp = torch.randn(8, 1, 4).log_softmax(-1).requires_grad_()
    a, s = torch_ctc.forced_align(lp, torch.tensor([[1, 2]]), [8], [2])
    assert not s.requires_grad


def test_meta_and_compile_shapes():
    lp = torch.randn(9, 2, 5, device="meta")
    a, s = torch.ops.torch_ctc._forced_align(lp, torch.ones(2, 3, dtype=torch.long, device="meta"),
                                             torch.ones(2, dtype=torch.long, device="meta"),
                                             torch.ones(2, dtype=torch.long, device="meta"), 0, False, 0, True)
    assert a.shape == (2, 9) and a.dtype == torch.int64 and s.shape == (2, 9) and s.dtype == torch.float32


@pytest.mark.parametrize("blank", [0, 3])
def test_merge_tokens_matches_torchaudio(blank):
    g = torch.Generator().manual_seed(8)
    for _ in range(30):
        T = int(torch.randint(1, 40, (1,), generator=g))
        tokens = torch.randint(0, 5, (T,), generator=g)
        scores = torch.rand(T, generator=g)
        ours = torch_ctc.merge_tokens(tokens, scores, blank=blank)
        ref = TAF.merge_tokens(tokens, scores, blank=blank)
        assert [(s.token, s.start, s.end) for s in ours] == [(s.token, s.start, s.end) for s in ref]
        for a, b in zip(ours, ref):
            assert math.isclose(a.score, b.score, rel_tol=1e-6) and len(a) == len(b)


def test_merge_tokens_per_sample_ignores_frames_past_the_lengths():
    lp = torch.randn(12, 2, 5, generator=torch.Generator().manual_seed(9)).log_softmax(-1)
    a, s = torch_ctc.forced_align(lp, torch.tensor([[1, 2, 2], [3, 4, 0]]), [12, 7], [3, 2])
    spans = torch_ctc.merge_tokens(a, s.exp(), input_lengths=[12, 7])
    assert [sp.token for sp in spans[0]] == [1, 2, 2] and [sp.token for sp in spans[1]] == [3, 4]
    assert all(sp.end <= 7 for sp in spans[1])
    assert spans[1] == torch_ctc.merge_tokens(a[1], s[1].exp())  # 1-D: the -1 frames are left out


MEMORY_PROBE = textwrap.dedent("""
    import json, sys, time, torch, torch_ctc
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    torch.set_num_threads(1)
    T, L, C = 100_000, 5_000, 32
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(T, 1, C, generator=g).log_softmax(-1)
    tg = torch.arange(L).remainder(C - 1).add(1).reshape(1, L)  # no repeats: needs L frames
    torch_ctc.forced_align(lp[:50], tg[:, :10], [50], [10])  # load everything once
    before = status("VmRSS:")
    start = time.perf_counter()
    a, s = torch_ctc.forced_align(lp, tg, [T], [L], memory=sys.argv[1])
    seconds = time.perf_counter() - start
    peak = status("VmHWM:")
    ok = bool((a[0] >= 0).all()) and torch_ctc.merge_tokens(a[0], s[0]).__len__() == L
    print(json.dumps(dict(extra_bytes=peak - before, seconds=seconds, ok=ok)))
""")


@pytest.mark.slow
def test_long_input_aligns_in_bounded_memory():
    """T = 100,000 frames and L = 5,000 labels on one core: at most 512 MiB of extra
    memory (the peak resident size during the call, less the size before it)."""
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, "auto"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"]
    assert result["extra_bytes"] <= 512 << 20, result
    print(f"\nT=100000 L=5000: {result['seconds']:.2f} s, peak extra {result['extra_bytes'] / 2**20:.1f} MiB")
