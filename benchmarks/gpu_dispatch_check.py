"""Accelerate dispatch on a GPU: MiniLM split between ``cuda:0`` and CPU offload.

Run on a CUDA machine (``benchmarks/gpu.sh`` does): the embeddings and the first half of the
layers on ``cuda:0``, the other layers offloaded to CPU memory (accelerate moves them to the
GPU for each forward). ``probe.trace`` and three attribution methods must equal the same
model on the CPU (to 1e-4: GPU kernels differ in the last bits), with the attention gathered
on the GPU by default and on the CPU with ``device="cpu"``. Prints one JSON line; exits 1 on a
mismatch.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from accelerate import dispatch_model

import probe

TEXT = ["The animal didn't cross the street because it was too tired."]


def main() -> int:
    if not torch.cuda.is_available():
        print(json.dumps({"status": "skipped", "reason": "no CUDA device"}))
        return 0
    reference, tokenizer = probe.load_model("minilm")
    model, _ = probe.load_model("minilm")
    n = model.config.num_hidden_layers
    device_map = {"embeddings": 0, "pooler": 0}
    device_map.update({f"encoder.layer.{i}": 0 if i < n // 2 else "cpu" for i in range(n)})
    model = dispatch_model(model, device_map, main_device=0)
    report: dict = {"device_map": {k: str(v) for k, v in device_map.items()},
                    "adapter_device": str(probe.adapter_for(model).device)}
    want = probe.trace(reference, TEXT, tokenizer=tokenizer)
    start = time.perf_counter()
    got = probe.trace(model, TEXT, tokenizer=tokenizer)
    report["trace_s"] = time.perf_counter() - start
    report["gathered_on"] = str(got.attentions.device)
    on_cpu = probe.trace(model, TEXT, tokenizer=tokenizer, device="cpu")
    diffs = {
        "trace": float((got.attentions.cpu() - want.attentions).abs().max()),
        "trace_device_cpu": float((on_cpu.attentions - want.attentions).abs().max()),
    }
    for method in ("rollout", "relevance", "ig"):
        kwargs = {"tokenizer": tokenizer, "seed": 0, "target": probe.similarity_target(
            reference, tokenizer, "It was exhausted.")}
        a = probe.attribute(model, TEXT, method, **kwargs)
        b = probe.attribute(reference, TEXT, method, **kwargs)
        diffs[method] = float((a.scores.cpu() - b.scores).abs().max())
    report["max_abs_diff"] = diffs
    ok = all(d <= 1e-4 for d in diffs.values()) and on_cpu.attentions.device.type == "cpu"
    report["status"] = "ok" if ok else "MISMATCH"
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
