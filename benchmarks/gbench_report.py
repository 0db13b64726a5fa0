#!/usr/bin/env python3
"""Turns ctc_bench's Google Benchmark JSON into a markdown table (and splices it into a doc).

    python benchmarks/gbench_report.py build/bench/ctc_bench.json --update-doc docs/benchmarks.md

With --benchmark_repetitions the medians are reported, otherwise the single runs.
"""

from __future__ import annotations

import argparse
import json
import re

import report

# cpu_fwdbwd/htr-s/f32/threads:2/real_time, cuda_fwd/asr-bpe/bf16/manual_time
NAME = re.compile(r"^(cpu|cuda)_(fwd|fwdbwd)/([^/]+)/([^/]+)(?:/threads:(\d+))?")
PASSES = {"fwd": "forward", "fwdbwd": "forward + backward"}


def rows(data):
    """One dict per benchmark: medians when repetitions were aggregated, else the plain runs."""
    runs = data["benchmarks"]
    medians = [b for b in runs if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"]
    out = []
    for b in medians or [b for b in runs if b.get("run_type", "iteration") == "iteration"]:
        m = NAME.match(b.get("run_name", b["name"]))
        if not m or b.get("error_occurred"):
            continue
        backend, pass_, shape, dtype, threads = m.groups()
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
        out.append(dict(
            backend=backend, pass_=PASSES[pass_], shape=shape, dtype=dtype,
            where=f"{threads} thread{'s' if threads != '1' else ''}" if backend == "cpu" else "GPU",
            ms=b["real_time"] * scale, cpu_ms=b["cpu_time"] * scale if backend == "cpu" else None, cells=b.get("cells/s"), bytes=b.get("bytes_per_second")))
    return out


def markdown(data, command, machine=None):
    ctx = data.get("context", {})
    lines = [
        f"Measured {ctx.get('date', '?')} on {machine or ctx.get('host_name', '?')} "
        f"({ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, load average "
        f"{' '.join(f'{v:.2f}' for v in ctx.get('load_avg', []))}); CPU kernels: "
        f"{ctx.get('ctc_cpu_kernel', '?')}; CUDA benchmarks: {ctx.get('ctc_cuda', '?')}.",
        "",
        f"Command: `{command}`",
        "",
        "| pass | shape | dtype | threads / device | time (ms) | main-thread CPU (ms) | DP cells/s (M) "
        "| GB/s (nominal) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows(data):
        cells = "n/a" if r["cells"] is None else f"{r['cells'] / 1e6:.1f}"
        gbs = "n/a" if r["bytes"] is None else f"{r['bytes'] / 1e9:.2f}"
        cpu = "n/a" if r["cpu_ms"] is None else f"{r['cpu_ms']:.2f}"
        lines.append(f"| {r['pass_']} | {r['shape']} | {r['dtype']} | {r['where']} | {r['ms']:.2f} | {cpu} | {cells} "
                     f"| {gbs} |")
    lines += [
        "",
        "DP cells: sum over samples of T_n * S'_n per pass (alpha, and beta for the backward). "
        "Nominal bytes: the dense (T, N, C) input read once, plus the dense gradient written by the backward. "
        "Time is wall time; main-thread CPU is the benchmark thread's own CPU time (with 1 thread, the work "
        "itself, less disturbed by a busy machine; with 2, half of it).",
    ]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", help="ctc_bench --benchmark_out file (--benchmark_out_format=json)")
    p.add_argument("--command", default="scripts/bench.sh", help="the command to name in the report")
    p.add_argument("--out-md", help="write the markdown table here")
    p.add_argument("--update-doc", help="splice the table into this file between its ctc-bench markers")
    args = p.parse_args()
    with open(args.json) as f:
        text = markdown(json.load(f), args.command, report.machine("cpu"))
    print(text)
    if args.out_md:
        report.write_text(args.out_md, text)
    if args.update_doc:
        report.splice(args.update_doc, "ctc-bench", text)


if __name__ == "__main__":
    main()
