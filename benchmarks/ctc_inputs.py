"""Named shapes, their seeded inputs, and the CTC implementations compare.py times.

Shared by the timing loop and the memory probe subprocesses, so both see
exactly the same inputs and the same calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import zlib
from typing import Callable, Dict

import torch
import torch.nn.functional as F

# name: (N, T, L, C). L is the longest target; lengths are drawn in [L/2, L]. (issue 4)
SHAPES: Dict[str, tuple] = {
    "htr-s": (32, 128, 40, 80),
    "htr-l": (64, 256, 100, 100),
    "asr-char": (16, 500, 100, 32),
    "asr-bpe": (16, 1000, 200, 1000),
    "long": (4, 2500, 1000, 64),
}
# Not part of the suite: a few-millisecond shape for smoke tests.
EXTRA_SHAPES: Dict[str, tuple] = {"tiny": (2, 20, 5, 6)}
ALL_SHAPES = {**SHAPES, **EXTRA_SHAPES}

# cuDNN's CTC takes targets shorter than 256 only (torch checks target_length < 256).
CUDNN_MAX_TARGET = 255


@dataclasses.dataclass
class Inputs:
    log_probs: torch.Tensor  # (T, N, C) float32 leaf with requires_grad
    targets: torch.Tensor  # concatenated int64, on the device
    input_lengths: torch.Tensor  # int64, on the device; all equal to T
    target_lengths: torch.Tensor  # int64, on the device
    # What cuDNN's path needs: int32 concatenated targets and int32 lengths on the CPU.
    targets_cpu_i32: torch.Tensor
    input_lengths_cpu_i32: torch.Tensor
    target_lengths_cpu_i32: torch.Tensor


def make_inputs(shape: str, device: str) -> Inputs:
    """log_softmax of N(0, 1) logits, built once outside any timed region.

    Generated on the CPU frame block by frame block, so that no temporary as
    large as the input exists: the memory probe's baseline then holds the input
    and nothing more. Seeded by the shape's name, so every run and every
    process sees the same values.
    """
    n, t, max_len, c = ALL_SHAPES[shape]
    gen = torch.Generator().manual_seed(zlib.crc32(shape.encode()))
    log_probs = torch.empty(t, n, c)
    block = 64
    for t0 in range(0, t, block):
        logits = torch.randn(min(block, t - t0), n, c, generator=gen)
        log_probs[t0 : t0 + block] = logits.log_softmax(2)
    target_lengths = torch.randint(max_len // 2, max_len + 1, (n,), generator=gen)
    targets = torch.randint(1, c, (int(target_lengths.sum()),), generator=gen)  # blank = 0 excluded
    input_lengths = torch.full((n,), t, dtype=torch.long)
    return Inputs(
        log_probs=log_probs.to(device).requires_grad_(),
        targets=targets.to(device),
        input_lengths=input_lengths.to(device),
        target_lengths=target_lengths.to(device),
        targets_cpu_i32=targets.int(),
        input_lengths_cpu_i32=input_lengths.int(),
        target_lengths_cpu_i32=target_lengths.int(),
    )


@contextlib.contextmanager
def cudnn_enabled(enabled: bool):
    """torch.backends.cudnn.enabled for the duration, restored afterwards."""
    before = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = before


def _torch_ctc(x: Inputs) -> torch.Tensor:
    import torch_ctc

    return torch_ctc.ctc_loss(x.log_probs, x.targets, x.input_lengths, x.target_lengths, blank=0, reduction="sum")


@contextlib.contextmanager
def cuda_recurrence(path: str):
    """TORCH_CTC_CUDA_RECURRENCE for the duration (the engine reads it at every call), restored afterwards."""
    before = os.environ.get("TORCH_CTC_CUDA_RECURRENCE")
    os.environ["TORCH_CTC_CUDA_RECURRENCE"] = path
    try:
        yield
    finally:
        if before is None:
            del os.environ["TORCH_CTC_CUDA_RECURRENCE"]
        else:
            os.environ["TORCH_CTC_CUDA_RECURRENCE"] = before


def _torch_native(x: Inputs) -> torch.Tensor:
    # cuDNN off, so on a GPU this is torch's own CUDA kernel even where cuDNN would qualify.
    with cudnn_enabled(False):
        return F.ctc_loss(x.log_probs, x.targets, x.input_lengths, x.target_lengths, blank=0, reduction="sum")


def _torch_cudnn(x: Inputs) -> torch.Tensor:
    # torch picks cuDNN (aten::_cudnn_ctc_loss) when: cudnn enabled, blank 0, float32 3-D CUDA
    # log_probs, 1-D contiguous int32 targets on the CPU, every input length == T and every
    # target length < 256 and <= its input length. Anything else silently falls back to
    # torch's native kernel: compare.py checks which one ran with the profiler.
    with cudnn_enabled(True):
        return F.ctc_loss(
            x.log_probs,
            x.targets_cpu_i32,
            x.input_lengths_cpu_i32,
            x.target_lengths_cpu_i32,
            blank=0,
            reduction="sum",
        )


IMPLEMENTATIONS: Dict[str, Callable[[Inputs], torch.Tensor]] = {
    "torch": _torch_native,
    "cudnn": _torch_cudnn,
    "torch_ctc": _torch_ctc,
    # torch_ctc with each CUDA recurrence path forced (TORCH_CTC_CUDA_RECURRENCE around forward
    # and backward): the block kernels of before, and the warp kernels where they fit (L <= 127).
    "torch_ctc_block": _torch_ctc,
    "torch_ctc_warp": _torch_ctc,
}
RECURRENCE = {"torch_ctc_block": "block", "torch_ctc_warp": "warp"}
WARP_MAX_TARGET = 127  # S' = 2L + 1 <= 256 states


def implementations_for(device: str, shape: str) -> list:
    """The implementations compared on this device and shape (cuDNN: GPU and L < 256 only)."""
    names = ["torch", "torch_ctc"]
    if device == "cuda" and ALL_SHAPES[shape][2] <= CUDNN_MAX_TARGET:
        names.insert(1, "cudnn")
    if device == "cuda":
        names.append("torch_ctc_block")
        if ALL_SHAPES[shape][2] <= WARP_MAX_TARGET:
            names.append("torch_ctc_warp")
    return names


def forward_backward(name: str, x: Inputs) -> torch.Tensor:
    """One training step's worth of CTC: the loss and its gradient w.r.t. log_probs.

    The caller clears log_probs.grad beforehand (outside any timed region: freeing
    a large gradient costs time of its own)."""
    path = RECURRENCE.get(name)
    with cuda_recurrence(path) if path else contextlib.nullcontext():
        loss = IMPLEMENTATIONS[name](x)
        loss.backward()
    return loss.detach()
