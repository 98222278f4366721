#!/usr/bin/env bash
# GPU numbers in one go, on a machine with a CUDA device (no network needed):
#   bash benchmarks/gpu.sh
# 1. probe eval on CUDA against the CPU (minutes): `probe eval faithfulness --quick` with
#    --device cpu and --device cuda, then the CUDA run in 2 processes (torchrun; with one GPU
#    both ranks share it, results are gathered over gloo); the JSONs are compared to float
#    tolerance and a verdict is printed -> probe-out/gpu-eval/*.json
# 2. probe bench on CUDA -> benchmarks/results-cuda.json (and its markdown on stdout)
# 3. the accelerate dispatch check (MiniLM split between cuda:0 and CPU offload)
#    -> benchmarks/gpu-dispatch.json
# Exits non-zero, after running everything, if any comparison differs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"

# --- 1. eval on CUDA == eval on CPU. TF32 off (cuBLAS and cuDNN read this variable): with it
# on, convolutions and matmuls round to 10-bit mantissas and the comparison would measure
# that. Tolerance: rel 1e-4 / abs 1e-5 between devices (float32 kernels sum in other orders),
# rel 1e-6 between 1 and 2 processes on CUDA (same kernels). A pointing-game mean differing by
# 1/48 is one near-tie of a map's top patch broken differently: reported, not hidden.
OUT=probe-out/gpu-eval
mkdir -p "$OUT"
EV=(eval faithfulness --quick --batch-size 12 --quiet)   # 48 images, 4 batches (2 per rank)
FAILED=0
compare() {  # compare A.json B.json REL ABS LABEL
    "$PY" -c 'import json, sys; from probe.commands.bench._parallel import json_differences as d
a, b = (json.load(open(p)) for p in sys.argv[1:3]); diff = d(a, b, rel_tol=float(sys.argv[3]), abs_tol=float(sys.argv[4]))
print(f"{sys.argv[5]}: " + ("SAME to tolerance" if not diff else f"DIFFERENT in {len(diff)} place(s):\n  " + "\n  ".join(diff[:50])))
sys.exit(1 if diff else 0)' "$@" || FAILED=1
}
NVIDIA_TF32_OVERRIDE=0 "$PY" -m probe.cli "${EV[@]}" --device cpu --json "$OUT/faith-cpu.json"
NVIDIA_TF32_OVERRIDE=0 "$PY" -m probe.cli "${EV[@]}" --device cuda --json "$OUT/faith-cuda.json"
NVIDIA_TF32_OVERRIDE=0 OMP_NUM_THREADS=1 "$PY" -m torch.distributed.run --standalone \
    --nproc_per_node 2 --no-python -- "$PY" -m probe.cli "${EV[@]}" --device cuda \
    --json "$OUT/faith-cuda-2proc.json"
"$PY" -c 'import json, sys; [print(p, json.load(open(p))["processes"]) for p in sys.argv[1:]]' \
    "$OUT"/faith-*.json
compare "$OUT/faith-cpu.json" "$OUT/faith-cuda.json" 1e-4 1e-5 "eval faithfulness, cuda vs cpu"
compare "$OUT/faith-cuda.json" "$OUT/faith-cuda-2proc.json" 1e-6 1e-9 \
    "eval faithfulness on cuda, 2 processes vs 1"

# --- 2. and 3.
"$PY" -m probe.cli bench --device cuda --quiet ${QUICK:+--quick} --json benchmarks/results-cuda.json
"$PY" benchmarks/gpu_dispatch_check.py | tee benchmarks/gpu-dispatch.json
if [ "$FAILED" != 0 ]; then
    echo "gpu.sh: the eval JSONs differ between devices or process counts (see above)" >&2
    exit 1
fi
