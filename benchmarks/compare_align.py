#!/usr/bin/env python3
"""Forced alignment side by side: batched torch_ctc.forced_align against
torchaudio.functional.forced_align, which takes one sample at a time (the loop
users write around it).

One process, identical inputs, both aligners alternated within each repetition;
medians over --reps. The alignments are checked to be equal. The peak extra memory
of each is measured in a subprocess running it alone (peak resident size during the
call, less the size just before it). torchaudio is a benchmark-only dependency.

    python benchmarks/compare_align.py --threads 1 2 --update-doc docs/benchmarks.md
    python benchmarks/compare_align.py --device cuda --update-doc docs/benchmarks.md   (on a GPU)

On CUDA, peak extra memory is torch.cuda.max_memory_allocated during the call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

import report

# (N, T, L, C): a batch of HTR/ASR-char-sized lines, and one long recording or page.
SHAPES = {
    "align-batch": (32, 500, 100, 32),
    "align-long": (1, 100_000, 5_000, 32),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU only")
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, the small shape only")
    p.add_argument("--out-json")
    p.add_argument("--update-doc", help="splice the table into this file between its compare-align markers")
    p.add_argument("--mem-probe", nargs=2, help=argparse.SUPPRESS)  # internal: SHAPE IMPL
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.shapes = 1, ["align-batch"]
    if args.device == "cuda":
        args.threads = [torch.get_num_threads()]
    return args


def inputs(shape, device="cpu"):
    """log_probs (T, N, C), padded targets without adjacent repeats, lengths."""
    N, T, L, C = SHAPES[shape]
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(T, N, C, generator=g).log_softmax(-1)
    targets = torch.randint(1, C - 1, (N, L), generator=g)
    targets[:, 1:] += (targets[:, 1:] >= targets[:, :-1]).long()  # never equal to the previous label
    input_lengths = torch.full((N,), T, dtype=torch.long)
    input_lengths[1::2] = max(L, int(T * 0.9))  # ragged
    target_lengths = torch.full((N,), L, dtype=torch.long)
    return tuple(x.to(device) for x in (lp, targets, input_lengths, target_lengths))


def run(impl, lp, targets, input_lengths, target_lengths):
    if impl == "torch_ctc":
        import torch_ctc

        return torch_ctc.forced_align(lp, targets, input_lengths, target_lengths)[0]
    import torchaudio.functional as F

    out = torch.full((lp.shape[1], lp.shape[0]), -1, dtype=torch.long, device=lp.device)
    for n in range(lp.shape[1]):
        frames, length = int(input_lengths[n]), int(target_lengths[n])
        a, _ = F.forced_align(lp[:frames, n].unsqueeze(0).contiguous(), targets[n : n + 1, :length].int(),
                              input_lengths[n : n + 1], target_lengths[n : n + 1])
        out[n, :frames] = a[0]
    return out


def memory_probe(shape, impl):
    torch.set_num_threads(1)
    data = inputs(shape)
    lp, targets = data[0], data[1]
    run(impl, lp[:50, :1], targets[:1, :10], torch.tensor([50]), torch.tensor([10]))  # load the libraries first
    before = _status("VmRSS:")
    run(impl, *data)
    print(json.dumps({"extra_bytes": _status("VmHWM:") - before}))


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def peak_extra_bytes(shape, impl):
    out = subprocess.run([sys.executable, __file__, "--mem-probe", shape, impl], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"]


def check_same(lp, reference, got, impl, shape):
    """The aligners agree, except where torchaudio 2.11 loses the best path on a tie
    between stepping and skipping (docs/alignment.md): there its path must score lower."""
    for n in range(lp.shape[1]):
        if torch.equal(got[n], reference[n]):
            continue
        frames = int((got[n] >= 0).sum())
        score = lambda path: float(lp[torch.arange(frames), n, path[:frames]].double().sum())  # noqa: E731
        ours, theirs = (reference[n], got[n]) if impl == "torchaudio" else (got[n], reference[n])
        assert score(ours) > score(theirs), f"{impl} aligned sample {n} of {shape} differently"


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def peak_extra_cuda(shape, impl):
    data = inputs(shape, "cuda")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run(impl, *data)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def measure(args):
    records = []
    for shape in args.shapes:
        data = inputs(shape, args.device)
        reference = None
        for threads in args.threads:
            torch.set_num_threads(threads)
            times = {"torch_ctc": [], "torchaudio": []}
            for rep in range(args.reps + 1):  # the first round warms up
                order = ["torch_ctc", "torchaudio"] if rep % 2 == 0 else ["torchaudio", "torch_ctc"]
                for impl in order:
                    synchronize(args.device)
                    start = time.perf_counter()
                    got = run(impl, *data)
                    synchronize(args.device)
                    elapsed = time.perf_counter() - start
                    if rep > 0:
                        times[impl].append(elapsed)
                    if reference is None:
                        reference = got
                    check_same(data[0], reference, got, impl, shape)
            medians = {k: statistics.median(v) for k, v in times.items()}
            records.append(dict(shape=shape, threads=threads, **{f"{k}_s": v for k, v in medians.items()},
                                speedup=medians["torchaudio"] / medians["torch_ctc"]))
            print(records[-1], flush=True)
        first = next(r for r in records if r["shape"] == shape)  # memory: once per shape, on one thread
        for impl in ("torch_ctc", "torchaudio"):
            extra = peak_extra_cuda(shape, impl) if args.device == "cuda" else peak_extra_bytes(shape, impl)
            first[f"{impl}_extra_mib"] = extra / 2**20
    return records


def markdown(meta, records):
    lines = [
        f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}, torchaudio {meta['torchaudio']}, "
        f"load average {meta.get('load_average', 'n/a')}; medians of {meta['reps']} alternating repetitions.",
        f"Command: `{meta['command']}`.",
        "",
        "| shape (N, T, L, C) | threads | torch_ctc | torchaudio (per-sample loop) | speedup "
        "| peak extra memory: torch_ctc / torchaudio |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        memory = (f"{r['torch_ctc_extra_mib']:.1f} / {r['torchaudio_extra_mib']:.1f} MiB"
                  if r.get("torch_ctc_extra_mib") is not None else "")
        lines.append(f"| {r['shape']} {SHAPES[r['shape']]} | {r['threads']} | {1e3 * r['torch_ctc_s']:.1f} ms | "
                     f"{1e3 * r['torchaudio_s']:.1f} ms | {r['speedup']:.1f}x | {memory} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.mem_probe:
        return memory_probe(*args.mem_probe)
    import torchaudio

    records = measure(args)
    meta = report.run_metadata(args.device, args.reps, 1, "benchmarks/compare_align.py", argv or sys.argv[1:])
    meta["torchaudio"] = torchaudio.__version__
    text = markdown(meta, records)
    print(text)
    if args.out_json:
        report.write_text(args.out_json, json.dumps(dict(meta=meta, records=records), indent=2))
    if args.update_doc:
        report.splice(args.update_doc, "compare-align" if args.device == "cpu" else "compare-align-cuda", text)


if __name__ == "__main__":
    main()
