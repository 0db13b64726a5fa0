#!/usr/bin/env bash
# The demo command: sets everything up on a fresh machine, then trains a toy
# CTC model on the CPU with torch_ctc.CTCLoss and prints its loss falling.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python examples/toy/train_toy.py "$@"
