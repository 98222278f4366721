#!/usr/bin/env bash
# GPU numbers in one go, on a machine with a CUDA device (no network needed):
#   bash benchmarks/gpu.sh
# 1. probe bench on CUDA -> benchmarks/results-cuda.json (and its markdown on stdout)
# 2. the accelerate dispatch check (MiniLM split between cuda:0 and CPU offload)
#    -> benchmarks/gpu-dispatch.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
"$PY" -m probe.cli bench --device cuda --quiet ${QUICK:+--quick} --json benchmarks/results-cuda.json
"$PY" benchmarks/gpu_dispatch_check.py | tee benchmarks/gpu-dispatch.json
