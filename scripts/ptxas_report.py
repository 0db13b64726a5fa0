#!/usr/bin/env python3
"""Registers, spills, stack and shared memory of every CUDA kernel, from `ptxas -v`.

Compiles each per-dtype engine file (kernels/instantiate_<dtype>.cu) and the
aligner (kernels/align_engine.cu) for each architecture the build targets,
with the build's flags plus -Xptxas -v, and reads ptxas's report of every
entry function. Nothing is linked or installed.

    python scripts/ptxas_report.py                          # print the table
    python scripts/ptxas_report.py --check                  # also fail on spills in the hot kernels
    python scripts/ptxas_report.py --update-doc docs/cuda-kernels.md   # splice the table into the doc
    python scripts/ptxas_report.py --sass CUOBJDUMP [--update-doc ...]  # also the recurrences' step loops

--sass takes a cuobjdump (the toolkit here has none; PyPI's nvidia-cuda-cuobjdump has
one) and counts, in the float32 sm_90 SASS of each recurrence kernel, the
instructions of its time-step loop: all of them, the shuffles, the MUFU
(special-function) ops, the global loads and stores, barriers and branches.
They are static counts of the loop body: branches inside it (the emission's
range check, a lane's states past S') make the executed count lower.

--check fails (exit 1) when a hot kernel (the recurrences and the dense
gradient: the loss's time goes there) spills registers or uses a stack frame.
scripts/test.sh runs it wherever nvcc is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["instantiate_float32.cu", "instantiate_float64.cu", "instantiate_float16.cu", "instantiate_bfloat16.cu",
           "align_engine.cu"]
ARCHS = ["sm_80", "sm_90"]
# Kernels whose spills would cost the loss its speed: --check fails on any spill or stack in them.
HOT = ("warp_alpha_kernel", "warp_beta_posterior_kernel", "alpha_kernel", "beta_posterior_kernel", "gradient_kernel")
# The flags of kernels/CMakeLists.txt's ctc_cuda, less the code generation (one arch at a time here).
FLAGS = ["-O3", "-DNDEBUG", "-std=c++17", "-lineinfo", "-Xcompiler=-Wall,-Wextra", "-Werror=all-warnings",
         f"-I{ROOT}", f"-I{os.path.join(ROOT, 'kernels')}", "-Xptxas", "-v"]
ENTRY = re.compile(r"Compiling entry function '(\S+)' for '(sm_\d+)'")
FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers(?:, used (\d+) barriers)?(?:, (\d+) bytes smem)?")


def nvcc():
    path = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not os.path.exists(path):
        raise SystemExit("ptxas_report.py: nvcc not found (on PATH or in /usr/local/cuda/bin)")
    return path


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def compile_one(source, arch, directory):
    cmd = [nvcc(), *FLAGS, f"--generate-code=arch=compute_{arch[3:]},code=[{arch}]", "-c",
           os.path.join(ROOT, "kernels", source), "-o", os.path.join(directory, f"{source}.{arch}.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ptxas_report.py: nvcc failed on {source} for {arch}:\n{proc.stderr}")
    return source, arch, proc.stderr


def parse(source, log):
    """One record per entry function in nvcc's -Xptxas -v output."""
    records, current = [], None
    for line in log.splitlines():
        if m := ENTRY.search(line):
            current = dict(source=source, mangled=m.group(1), arch=m.group(2))
            records.append(current)
        elif current and (m := FRAME.search(line)):
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        elif current and (m := USED.search(line)):
            current.update(registers=int(m.group(1)), barriers=int(m.group(2) or 0), smem=int(m.group(3) or 0))
    return records


def short_name(signature):
    """'void ctc::cuda::warp_alpha_kernel<float, float, 8>(...)' -> ('warp_alpha_kernel', 'float, float, 8')."""
    m = re.match(r"void ctc::cuda::(\w+)<(.*?)>\(", signature)
    return (m.group(1), m.group(2)) if m else (signature, "")


def collect(jobs):
    with tempfile.TemporaryDirectory() as directory, ThreadPoolExecutor(jobs) as pool:
        logs = list(pool.map(lambda sa: compile_one(*sa, directory), [(s, a) for s in SOURCES for a in ARCHS]))
    records = [r for source, _, log in logs for r in parse(source, log)]
    records = [r for r in records if "EmptyKernel" not in r["mangled"]]  # CUB's placeholder
    for r, signature in zip(records, demangle([r["mangled"] for r in records])):
        r["kernel"], r["template"] = short_name(signature)
    return sorted(records, key=lambda r: (r["kernel"], r["template"], r["arch"]))


STEP_KERNELS = ("warp_alpha_kernel", "warp_beta_posterior_kernel", "alpha_kernel", "beta_posterior_kernel")
SASS_LINE = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
BRANCH = re.compile(r"\bBRA(?:\.\S+)?\s+(0x[0-9a-f]+)")


def step_loop(instructions):
    """The innermost backward branch's body that holds the loop's shuffle (warp kernels) or
    barrier (block kernels): the time-step loop."""
    index = {a: i for i, (a, _) in enumerate(instructions)}
    loops = []
    for i, (a, op) in enumerate(instructions):
        m = BRANCH.search(op)
        if m and int(m.group(1), 16) <= a and int(m.group(1), 16) in index:
            loops.append((index[int(m.group(1), 16)], i))
    marks = [i for i, (_, op) in enumerate(instructions) if "SHFL" in op or "BAR.SYNC" in op]
    inside = [(b, e) for b, e in loops if any(b <= k <= e for k in marks)]
    if not inside:
        return []
    b, e = min(inside, key=lambda be: be[1] - be[0])
    return [op for _, op in instructions[b:e + 1]]


def sass_counts(cuobjdump):
    """{(kernel, template): counts} for the float32 recurrence kernels on sm_90."""
    with tempfile.TemporaryDirectory() as directory:
        cubin = os.path.join(directory, "f32.cubin")
        cmd = [nvcc(), *FLAGS[:-2], "-cubin", "-arch=sm_90", os.path.join(ROOT, "kernels", "instantiate_float32.cu"),
               "-o", cubin]
        subprocess.run(cmd, check=True, capture_output=True)
        sass = subprocess.run([cuobjdump, "-sass", cubin], check=True, capture_output=True, text=True).stdout
    out = {}
    for chunk in re.split(r"\n\s*Function : ", sass)[1:]:
        mangled, body = chunk.split("\n", 1)
        kernel, template = short_name(demangle([mangled.strip()])[0])
        if kernel not in STEP_KERNELS:
            continue
        loop = step_loop([(int(m.group(1), 16), m.group(2)) for line in body.splitlines()
                          if (m := SASS_LINE.match(line))])
        count = lambda pattern: sum(bool(re.search(pattern, op)) for op in loop)  # noqa: E731
        out[(kernel, template)] = dict(instructions=len(loop), shfl=count(r"\bSHFL"), mufu=count(r"\bMUFU"),
                                       loads=count(r"\bLDG"), stores=count(r"\bSTG"), barriers=count(r"\bBAR"),
                                       branches=count(r"\bBRA"))
    return out


def sass_markdown(counts):
    lines = ["| kernel (float32, sm_90) | states per lane (K) | instructions | per state | SHFL | MUFU | per state | "
             "LDG | STG | BAR | branches |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (kernel, template), c in sorted(counts.items()):
        k = int(template.split(",")[-1]) if kernel.startswith("warp_") else 1
        lines.append(f"| `{kernel}` | {k if kernel.startswith('warp_') else '1 (a thread a state)'} | "
                     f"{c['instructions']} | {c['instructions'] / k:.0f} | {c['shfl']} | {c['mufu']} | "
                     f"{c['mufu'] / k:.1f} | {c['loads']} | {c['stores']} | {c['barriers']} | {c['branches']} |")
    return "\n".join(lines) + "\n"


def markdown(records):
    lines = ["| kernel | template arguments (input, accumulate[, states per lane]) | arch | registers | spills "
             "(stores / loads, bytes) | stack (bytes) | static shared memory (bytes) |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| `{r['kernel']}` | {r['template']} | {r['arch']} | {r['registers']} | "
                     f"{r['spill_stores']} / {r['spill_loads']} | {r['stack']} | {r['smem']} |")
    return "\n".join(lines) + "\n"


def hot_problems(records):
    return [f"{r['kernel']}<{r['template']}> on {r['arch']}: {r['spill_stores']} / {r['spill_loads']} bytes of spill "
            f"stores / loads, {r['stack']} bytes of stack" for r in records
            if r["kernel"] in HOT and (r["spill_stores"] or r["spill_loads"] or r["stack"])]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="fail on spills or stack in the hot kernels")
    p.add_argument("--update-doc", help="splice the table between the doc's ptxas-report markers")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--sass", metavar="CUOBJDUMP", help="also count the recurrences' step-loop instructions")
    args = p.parse_args(argv)
    records = collect(args.jobs)
    if not records:
        raise SystemExit("ptxas_report.py: ptxas reported no kernels")
    table = markdown(records)
    print(table)
    if args.update_doc:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        import report

        version = subprocess.run([nvcc(), "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
        report.splice(args.update_doc, "ptxas-report",
                      f"`python scripts/ptxas_report.py --update-doc {args.update_doc}`, {version}.\n\n{table}")
    if args.sass:
        sass = sass_markdown(sass_counts(args.sass))
        print(sass)
        if args.update_doc:
            report.splice(args.update_doc, "sass-step-loops",
                          f"`python scripts/ptxas_report.py --sass CUOBJDUMP --update-doc {args.update_doc}`, "
                          f"{version}.\n\n{sass}")
    problems = hot_problems(records)
    hot = sum(r["kernel"] in HOT for r in records)
    if args.check:
        if problems:
            print("hot kernels that spill:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print(f"ptxas: no spills and no stack in the {hot} hot kernel builds ({', '.join(HOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
