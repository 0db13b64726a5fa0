"""Rendering for compare.py: run metadata, the markdown table, the PNG chart, doc splicing."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys

import torch

LABELS = {"torch": "torch native", "cudnn": "torch cuDNN", "torch_ctc": "torch_ctc",
          "torch_ctc_block": "torch_ctc, block kernels", "torch_ctc_warp": "torch_ctc, warp kernels"}
ORDER = ["torch", "cudnn", "torch_ctc_block", "torch_ctc_warp", "torch_ctc"]
CPU_TARGET_SPEEDUP = 8.0  # issue 4's goal for the CPU engine


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM) in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"^Model name:\s*(.+)$", out, re.M).group(1).strip()
    except (OSError, subprocess.CalledProcessError, AttributeError):
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def run_metadata(device, reps, warmup, script, argv) -> dict:
    import torch_ctc

    meta = dict(
        device=device,
        machine=machine(device),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        torch=torch.__version__,
        torch_ctc=torch_ctc.__version__,
        python=platform.python_version(),
        reps=reps,
        warmup=warmup,
        command=" ".join(["python", script] + [shlex.quote(a) for a in argv]),
    )
    if hasattr(os, "getloadavg"):
        meta["load_average"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    if device == "cuda":
        meta["cudnn"] = str(torch.backends.cudnn.version())
    return meta


def _cell(value, fmt):
    return "n/a" if value is None else fmt.format(value)


def _groups(records):
    """{threads: {shape: {impl: record}}}, in first-seen order."""
    out = {}
    for r in records:
        out.setdefault(r["threads"], {}).setdefault(r["shape"], {})[r["impl"]] = r
    return out


def speedups(records):
    """[(threads, shape, baseline impl, speedup of torch_ctc over it)]."""
    rows = []
    for threads, shapes in _groups(records).items():
        for shape, impls in shapes.items():
            ours = impls["torch_ctc"]["median_ms"]
            for base in ("torch", "cudnn"):
                if base in impls:
                    rows.append((threads, shape, base, impls[base]["median_ms"] / ours))
    return rows


def max_loss_difference(records):
    """Largest |loss - torch native's| / |torch native's| over the run."""
    worst = 0.0
    for shapes in _groups(records).values():
        for impls in shapes.values():
            ref = impls["torch"]["loss"]
            for r in impls.values():
                worst = max(worst, abs(r["loss"] - ref) / max(abs(ref), 1e-30))
    return worst


def markdown(meta, records, png_path=None, md_path=None) -> str:
    """The report: a header naming the run, one table per thread count, notes.

    `md_path` is where the text will live, so the chart link can be relative to it."""
    device = meta["device"]
    impls = [i for i in ORDER if any(r["impl"] == i for r in records)]
    bases = [i for i in impls if i != "torch_ctc"]
    lines = [
        f"Measured {meta['date']} on **{meta['machine']}**"
        + (f" (load average {meta['load_average']} at start)" if "load_average" in meta else "") + ".",
        f"torch {meta['torch']}, torch_ctc {meta['torch_ctc']}, Python {meta['python']}"
        + (f", cuDNN {meta['cudnn']}" if "cudnn" in meta else "") + ".",
        f"Forward + backward, float32, reduction='sum'; median of {meta['reps']} repetitions after "
        f"{meta['warmup']} warm-up round(s), implementations alternated in one process.",
        "",
        f"Command: `{meta['command']}`",
        "",
    ]
    fallbacks = []
    for threads, shapes in _groups(records).items():
        if device == "cuda":
            lines.append(f"#### CUDA (torch host threads: {threads})")
        else:
            lines.append(f"#### CPU, {threads} thread{'s' if threads != 1 else ''}")
        lines.append("")
        head = ["shape", "N, T, L, C"] + [f"{LABELS[i]} (ms)" for i in impls]
        head += [f"speedup vs {LABELS[b]}" for b in bases]
        if device == "cpu":
            head += ["speedup by CPU time"]
        head += [f"peak extra MiB, {LABELS[i]}" for i in impls]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for shape, by_impl in shapes.items():
            any_r = next(iter(by_impl.values()))
            row = [shape, f"{any_r['N']}, {any_r['T']}, {any_r['L']}, {any_r['C']}"]
            for i in impls:
                r = by_impl.get(i)
                mark = ""
                if i == "cudnn" and r is not None and r["path"] != "cudnn":
                    mark = " †"
                    fallbacks.append(f"{shape}: ran {r['path']}")
                row.append(_cell(r and r["median_ms"], "{:.2f}") + mark)
            ours = by_impl["torch_ctc"]["median_ms"]
            for b in bases:
                row.append(_cell(by_impl[b]["median_ms"] / ours if b in by_impl else None, "**{:.1f}x**"))
            if device == "cpu":
                row.append(_cell(by_impl["torch"]["median_cpu_ms"] / by_impl["torch_ctc"]["median_cpu_ms"], "{:.1f}x"))
            for i in impls:
                row.append(_cell(by_impl[i]["peak_extra_mib"] if i in by_impl else None, "{:.1f}"))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines.append("Speedup = the other implementation's median wall time / torch_ctc's (above 1: torch_ctc is faster).")
    if device == "cpu":
        lines.append("Speedup by CPU time: the same ratio of medians of process CPU time (all threads), which a busy "
                     "machine disturbs less than wall time; idle-spinning worker threads count in it.")
    if device == "cpu":
        lines.append("Peak extra memory: peak RSS of a subprocess running one forward + backward alone, minus that "
                     "of a subprocess that only builds the inputs (the gradient is included).")
    else:
        lines.append("Peak extra memory: torch.cuda.max_memory_allocated over one forward + backward, minus the "
                     "memory allocated before it (the gradient is included).")
        lines.append("cuDNN: n/a where L >= 256 (beyond cuDNN's label limit).")
    worst = max_loss_difference(records)
    lines.append(f"Loss agreement with torch native (same inputs): largest relative difference {worst:.1e}."
                 + (" **Check this: above 1e-3.**" if worst > 1e-3 else ""))
    if fallbacks:
        lines.append("† cuDNN was not used, torch fell back: " + "; ".join(fallbacks) + ".")
    if png_path:
        rel = os.path.relpath(png_path, os.path.dirname(os.path.abspath(md_path)) if md_path else os.getcwd())
        lines += ["", f"![torch_ctc speedups, {device}]({rel})"]
    return "\n".join(lines) + "\n"


def speedup_chart(meta, records, path):
    """Grouped bars of torch_ctc's speedup per shape: one bar per thread count (CPU) or baseline (GPU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = speedups(records)
    shapes = list(dict.fromkeys(r[1] for r in rows))
    series = list(dict.fromkeys((r[0], r[2]) for r in rows))
    value = {(r[0], r[2], r[1]): r[3] for r in rows}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 + 1.4 * len(shapes)), 4.2))
    width = 0.8 / max(len(series), 1)
    for k, (threads, base) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(shapes))]
        ys = [value.get((threads, base, s), 0.0) for s in shapes]
        label = f"vs {LABELS[base]}" if meta["device"] == "cuda" else f"{threads} thread{'s' if threads != 1 else ''}"
        bars = ax.bar(xs, ys, width, label=label)
        ax.bar_label(bars, labels=[f"{y:.1f}x" if y else "" for y in ys], fontsize=8, padding=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    if meta["device"] == "cpu":
        ax.axhline(CPU_TARGET_SPEEDUP, color="tab:red", linestyle="--", linewidth=1,
                   label=f"target {CPU_TARGET_SPEEDUP:.0f}x")
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels(shapes)
    ax.set_ylabel("speedup over torch (x)")
    ax.set_title(f"torch_ctc forward+backward speedup, {meta['device'].upper()}\n{meta['machine']}, {meta['date']}",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.margins(y=0.15)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_text(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def splice(doc_path, section, text):
    """Replace the text between `<!-- BEGIN section -->` and `<!-- END section -->` in doc_path.

    The markers stay, so the next run replaces the block again; a doc without
    them gets the block appended under a heading."""
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    doc = open(doc_path).read() if os.path.exists(doc_path) else ""
    block = f"{begin}\n<!-- generated: do not edit by hand, rerun the command below -->\n{text}{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + f"\n\n## Results: {section}\n\n{block}\n"
    write_text(doc_path, doc)
