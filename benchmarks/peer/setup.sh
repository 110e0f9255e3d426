#!/usr/bin/env bash
# Make the peer's venv (PyTorch CPU + diffusers) at ./.peer, or at $1. Keep it out of git.
# torch is pinned to its CPU build: without the pin pip pulls gigabytes of CUDA packages
# (where the index serves CUDA wheels by default, add: --index-url <PyTorch's CPU wheel index>).
set -e
V=${1:-.peer}
[ -x "$V/bin/python" ] || python3 -m venv "$V"
"$V/bin/pip" install -q torch==2.13.0
echo "torch==2.13.0+cpu" > "$V/constraints.txt"
"$V/bin/pip" install -q -c "$V/constraints.txt" diffusers numpy
echo "peer ready: $V/bin/python"
