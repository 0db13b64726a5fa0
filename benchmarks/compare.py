#!/usr/bin/env python3
"""Side-by-side benchmark: torch_ctc.ctc_loss against torch.nn.functional.ctc_loss.

One process, identical inputs (log_softmax computed once, outside the timed
region), forward + backward with reduction='sum'. The implementations are
alternated within each repetition (and their order rotated), so slow drifts of
a shared machine hit all of them alike. On a GPU, torch's cuDNN path is timed
too, where cuDNN accepts the shape, and the profiler confirms which kernel ran.

Reports medians over --reps repetitions after --warmup rounds, the peak extra
memory of each implementation (CPU: peak RSS of a subprocess running it alone,
minus that of a subprocess that only builds the inputs; GPU:
torch.cuda.max_memory_allocated), a markdown table, a PNG chart and JSON.

    python benchmarks/compare.py --device cpu --threads 1 2 \
        --out-md docs/benchmarks_cpu.md --out-png docs/benchmarks_cpu.png --update-doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

import ctc_inputs
import report

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="torch.set_num_threads values (default: 1 2 on cpu, torch's default on cuda)")
    p.add_argument("--shapes", nargs="+", default=list(ctc_inputs.SHAPES), choices=list(ctc_inputs.ALL_SHAPES))
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per implementation (default 7)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 repetitions, 1 warm-up round")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--out-md", help="write the markdown report here")
    p.add_argument("--out-png", help="write the speedup bar chart here")
    p.add_argument("--out-json", help="write every measurement here")
    p.add_argument("--update-doc", help="splice the markdown report into this file between its markers")
    # Internal: run one implementation once and print the peak RSS (see memory_cpu).
    p.add_argument("--mem-probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 3 if args.quick else 7
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.threads is None:
        args.threads = [1, 2] if args.device == "cpu" else [torch.get_num_threads()]
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    return args


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_once(name, x, device):
    """(wall seconds, process CPU seconds) of one forward + backward; the gradient is
    cleared beforehand, untimed. CPU time sums every thread of the process: on a busy
    machine it is a steadier measure of work than wall time (GPU: wall time only)."""
    x.log_probs.grad = None
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync(device)
        start.record()
        ctc_inputs.forward_backward(name, x)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3, None
    c0, t0 = time.process_time(), time.perf_counter()
    ctc_inputs.forward_backward(name, x)
    return time.perf_counter() - t0, time.process_time() - c0


def which_path(name, x, device):
    """The kernel that actually runs: on a GPU from the profiler's op names, since torch
    falls back from cuDNN to its native kernel silently. The CPU has no choice to check."""
    if device == "cpu":
        return "torch_ctc" if name == "torch_ctc" else "native"
    try:
        import warnings

        from torch.profiler import ProfilerActivity, profile

        x.log_probs.grad = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                ctc_inputs.forward_backward(name, x)
        names = {e.name for e in prof.events()}
    except Exception as e:  # profiler unavailable: report it, do not fail the benchmark
        return f"unknown ({type(e).__name__})"
    if any("_cudnn_ctc_loss" in n for n in names):
        return "cudnn"
    if "aten::_ctc_loss" in names:
        return "native"
    if any(n.startswith("torch_ctc::") for n in names):
        return "torch_ctc"
    return "unknown"


def time_shape(shape, x, names, device, reps, warmup):
    """{name: [(wall, cpu) seconds]} over `reps` rounds, each running every implementation once."""
    times = {n: [] for n in names}
    gc.collect()
    gc.disable()  # no collector pauses inside a timed call
    try:
        for rep in range(warmup + reps):
            k = rep % len(names)
            for name in names[k:] + names[:k]:
                sample = time_once(name, x, device)
                if rep >= warmup:
                    times[name].append(sample)
    finally:
        gc.enable()
    return times


def memory_probe(impl, shape, device, threads):
    """Child process body: build the inputs, run `impl` once (unless 'none'), print peak RSS.

    Every probe, the baseline included, first runs every implementation on the tiny
    shape: code pages, thread pools and allocator state are then the same in all of
    them, and the differences of their peaks are data."""
    torch.set_num_threads(threads)
    tiny = ctc_inputs.make_inputs("tiny", device)
    for name in ctc_inputs.implementations_for(device, "tiny"):
        ctc_inputs.forward_backward(name, tiny)
    del tiny
    x = ctc_inputs.make_inputs(shape, device)
    if impl != "none":
        ctc_inputs.forward_backward(impl, x)
    print(json.dumps({"peak_rss_kib": report.peak_rss_kib()}))


def memory_cpu(shape, names, threads):
    """Peak extra RSS (MiB) of each implementation over a baseline that only builds the inputs."""
    env = dict(os.environ)
    # A fixed mmap threshold (which also disables glibc's dynamic one) returns every large
    # free to the OS at once, so freed temporaries are not silently reused and RSS tracks
    # what is live.
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"

    def run(impl):
        cmd = [sys.executable, os.path.join(HERE, "compare.py"), "--mem-probe", impl, "--shapes", shape,
               "--threads", str(threads)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:  # report it and carry on: the timings are still worth having
            print(f"compare.py: memory probe {impl} on {shape} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return None
        return json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_kib"]

    # All at once: peak memory, unlike time, does not suffer from a busy neighbour.
    with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
        peaks = dict(zip(["none"] + names, pool.map(run, ["none"] + names)))
    if peaks["none"] is None:
        return {}
    return {n: None if peaks[n] is None else (peaks[n] - peaks["none"]) / 1024 for n in names}


def memory_cuda(names, x):
    extra = {}
    for name in names:
        x.log_probs.grad = None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        ctc_inputs.forward_backward(name, x)
        torch.cuda.synchronize()
        extra[name] = (torch.cuda.max_memory_allocated() - base) / 2**20
    x.log_probs.grad = None
    return extra


def run(args):
    records = []
    for shape in args.shapes:
        n, t, max_len, c = ctc_inputs.ALL_SHAPES[shape]
        x = ctc_inputs.make_inputs(shape, args.device)
        names = ctc_inputs.implementations_for(args.device, shape)
        for threads in args.threads:
            torch.set_num_threads(threads)
            paths = {name: which_path(name, x, args.device) for name in names}
            # Also the first warm-up: one-time costs (thread pools, cuDNN handles) land here.
            losses = {name: float(ctc_inputs.forward_backward(name, x)) for name in names}
            times = time_shape(shape, x, names, args.device, args.reps, args.warmup)
            if args.no_memory:
                memory = {}
            elif args.device == "cuda":
                memory = memory_cuda(names, x)
            else:
                memory = memory_cpu(shape, names, threads)
            for name in names:
                records.append(dict(
                    device=args.device, threads=threads, shape=shape, N=n, T=t, L=max_len, C=c, impl=name,
                    median_ms=statistics.median(w for w, _ in times[name]) * 1e3,
                    times_ms=[w * 1e3 for w, _ in times[name]],
                    median_cpu_ms=None if args.device == "cuda" else statistics.median(c for _, c in times[name]) * 1e3,
                    peak_extra_mib=memory.get(name), path=paths[name], loss=losses[name]))
            summary = "  ".join(f"{r['impl']} {r['median_ms']:.2f} ms" for r in records[-len(names):])
            print(f"[{args.device} threads={threads}] {shape}: {summary}", flush=True)
        del x
    return records


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.mem_probe:
        memory_probe(args.mem_probe, args.shapes[0], args.device, args.threads[0])
        return
    if args.reps < 7 and not args.quick:
        print(f"compare.py: note: {args.reps} repetitions (issue 4 asks for at least 7)", file=sys.stderr)
    meta = report.run_metadata(args.device, args.reps, args.warmup, "benchmarks/compare.py", argv)
    records = run(args)
    # Rendered per destination: the chart link is relative to the file the text lands in.
    print(report.markdown(meta, records, png_path=args.out_png))
    if args.out_md:
        report.write_text(args.out_md, report.markdown(meta, records, args.out_png, args.out_md))
    if args.out_png:
        report.speedup_chart(meta, records, args.out_png)
    if args.out_json:
        report.write_text(args.out_json, json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    if args.update_doc:
        report.splice(args.update_doc, f"compare-{args.device}",
                      report.markdown(meta, records, args.out_png, args.update_doc))


if __name__ == "__main__":
    main()
