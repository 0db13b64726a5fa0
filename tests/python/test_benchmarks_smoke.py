"""Smoke test of the benchmark tooling: compare.py end to end on a tiny shape, and the
ctc_bench JSON report. Checks that the tools run and write what they promise, not speed."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def test_compare_quick_tiny(tmp_path):
    pytest.importorskip("matplotlib")
    doc = tmp_path / "doc.md"
    doc.write_text("# doc\n\nprose\n<!-- BEGIN compare-cpu -->\nold\n<!-- END compare-cpu -->\ntail\n")
    out = {k: tmp_path / f"cmp.{k}" for k in ("md", "png", "json")}
    cmd = [sys.executable, os.path.join(BENCHMARKS, "compare.py"), "--quick", "--shapes", "tiny", "--threads", "1",
           "--out-md", str(out["md"]), "--out-png", str(out["png"]), "--out-json", str(out["json"]),
           "--update-doc", str(doc)]
    # Memory probes included: three more Python processes importing torch.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    records = json.loads(out["json"].read_text())["records"]
    assert {r["impl"] for r in records} == {"torch", "torch_ctc"}
    for r in records:
        assert r["shape"] == "tiny" and r["threads"] == 1
        assert len(r["times_ms"]) == 3 and r["median_ms"] > 0
        assert r["peak_extra_mib"] is not None
    # Same inputs, same loss (a tiny float32 problem agrees far closer than this).
    assert abs(records[0]["loss"] - records[1]["loss"]) <= 1e-3 * abs(records[1]["loss"])

    md = out["md"].read_text()
    assert "| tiny | 2, 20, 5, 6 |" in md and "speedup vs torch native" in md
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    spliced = doc.read_text()
    assert "old" not in spliced and "| tiny |" in spliced
    assert spliced.startswith("# doc\n\nprose\n") and spliced.endswith("<!-- END compare-cpu -->\ntail\n")


def test_gbench_report(tmp_path):
    sys.path.insert(0, BENCHMARKS)
    try:
        import gbench_report
    finally:
        sys.path.remove(BENCHMARKS)
    data = {
        "context": {"date": "today", "host_name": "h", "num_cpus": 2, "load_avg": [1.0], "ctc_cuda": "off"},
        "benchmarks": [
            {"name": "cpu_fwdbwd/htr-s/f32/threads:2/real_time", "run_name": "cpu_fwdbwd/htr-s/f32/threads:2/real_time",
             "run_type": "iteration", "real_time": 2.5, "cpu_time": 1.25, "time_unit": "ms", "cells/s": 2.0e8,
             "bytes_per_second": 1.0e9},
            {"name": "cuda_fwd/long/f32/manual_time", "run_type": "iteration", "real_time": 300.0, "cpu_time": 9.0,
             "time_unit": "us"},
        ],
    }
    md = gbench_report.markdown(data, "cmd")
    assert "| forward + backward | htr-s | f32 | 2 threads | 2.50 | 1.25 | 200.0 | 1.00 |" in md
    assert "| forward | long | f32 | GPU | 0.30 | n/a | n/a | n/a |" in md


def test_compare_decode_quick(tmp_path):
    """compare_decode.py end to end with the peer the tests install (pyctcdecode, without an LM:
    its word LM needs kenlm); the others are benchmark-only (requirements-bench.txt)."""
    pytest.importorskip("pyctcdecode")
    doc = tmp_path / "doc.md"
    doc.write_text("# doc\n<!-- BEGIN compare-decode -->\nold\n<!-- END compare-decode -->\n")
    out = tmp_path / "decode.json"
    cmd = [sys.executable, os.path.join(BENCHMARKS, "compare_decode.py"), "--quick", "--shapes", "char",
           "--peers", "pyctcdecode", "--lms", "none", "char", "--out-json", str(out), "--update-doc", str(doc)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())["records"]
    assert [(r["shape"], r["beam"], r["lm"]) for r in records] == [("char", 16, "none"), ("char", 16, "char 5-gram")]
    assert set(records[0]["per_sample_s"]) == {"torch_ctc 1 thread", "torch_ctc 2 threads", "pyctcdecode"}
    assert set(records[1]["per_sample_s"]) == {"torch_ctc 1 thread", "torch_ctc 2 threads"}
    assert all(t > 0 for r in records for t in r["per_sample_s"].values())
    assert 0 <= records[0]["agreement"]["pyctcdecode"] <= 1
    spliced = doc.read_text()
    assert "old" not in spliced and "| char (64, 500, 30) | 16 | none |" in spliced


def test_compare_decode_names_missing_peers(tmp_path):
    cmd = [sys.executable, os.path.join(BENCHMARKS, "compare_decode.py"), "--quick", "--shapes", "char", "--peers",
           "fast-ctc-decode"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, PYTHONNOUSERSITE="1"))
    try:
        import fast_ctc_decode  # noqa: F401
    except ImportError:
        assert proc.returncode != 0 and "requirements-bench.txt" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
