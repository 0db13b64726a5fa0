#!/usr/bin/env bash
# The demo command: sets everything up on a fresh machine, then trains the HTR example
# (examples/htr: a CRNN on synthetic handwriting-like lines, torch_ctc.CTCLoss) on the CPU
# for 10 minutes after generating and caching the data (about 2 minutes the first time),
# prints the test CER on held-out fonts and writes the plots to build/htr-demo/.
# Extra arguments go to the trainer, e.g. `scripts/demo.sh --minutes 30` or `--recipe forum`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Two data-parallel processes of one thread each (--procs 2): on the 2-core CPU they train on
# about 1.4 times the lines per second of one single-threaded process and twice those of one
# two-threaded process (docs/htr.md); one process on a 1-core machine.
procs=2
if [ "$(nproc)" -lt 2 ]; then procs=1; fi
# The trainer's default length: 10 minutes, or 3 for `--recipe forum`.
.venv/bin/python examples/htr/train.py --procs "$procs" --out build/htr-demo "$@"
