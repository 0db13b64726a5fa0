"""Small CUDA cases for compute-sanitizer (memcheck, racecheck) in scripts/gpu-check.sh.

Covers every kernel: both target layouts, every dtype, from_logits, batch-first,
zero_infinity with an infeasible sample, long targets that make the recurrence
kernels loop over states, and validate=False with out-of-range lengths and labels
(which must give NaN/inf, never an illegal access).
"""

import os

import torch

import torch_ctc


def run(T, N, C, L, dtype, padded, from_logits, batch_first=False, validate=True, bad=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, C, generator=g).to("cuda", dtype)
    if batch_first:
        x = x.transpose(0, 1).contiguous()
    if not from_logits:
        x = x.float().log_softmax(-1).to(dtype)
    tl = torch.randint(0, L + 1, (N,), generator=g)
    targets = torch.randint(1, C, (N, L), generator=g)
    il = torch.randint(0, T + 1, (N,), generator=g)
    il[0] = T
    if bad:
        targets[0, 0] = C + 5
        il[1] = T + 100
        tl[-1] = L + 7
    if not padded:
        targets = torch.cat([targets[n, : min(int(tl[n]), L)] for n in range(N)])
        if bad:
            tl[-1] = L + 7  # sum(target_lengths) now exceeds targets.numel()
    x.requires_grad_()
    loss = torch_ctc.ctc_loss(x, targets.cuda(), il.cuda(), tl.cuda(), reduction="sum", zero_infinity=True,
                              batch_first=batch_first, from_logits=from_logits, validate=validate)
    loss.backward()
    torch.cuda.synchronize()
    return loss.item()


def main():
    # Both recurrence paths (docs/cuda-kernels.md): the warp kernels where the targets fit.
    for path in ("block", "warp"):
        os.environ["TORCH_CTC_CUDA_RECURRENCE"] = path
        for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            for padded in (True, False):
                for from_logits in (False, True):
                    print(path, dtype, padded, from_logits, run(12, 3, 7, 4, dtype, padded, from_logits))
        print(path, "batch_first", run(10, 3, 6, 3, torch.float32, True, True, batch_first=True))
        print(path, "8 states a lane", run(260, 5, 12, 120, torch.float32, True, False))
        print(path, "validate=False, bad", run(12, 4, 7, 4, torch.float32, True, True, validate=False, bad=True))
        print(path, "validate=False, bad concatenated",
              run(12, 4, 7, 4, torch.float32, False, True, validate=False, bad=True))
    os.environ["TORCH_CTC_CUDA_RECURRENCE"] = "auto"
    print("long target", run(1400, 1, 12, 600, torch.float32, True, False))


if __name__ == "__main__":
    main()
