"""The goals of ``probe bench`` and whether a run meets them."""

from __future__ import annotations

from typing import Any

from probe._report import format_value

__all__ = ["GOALS", "evaluate_goals"]

#: Goal id -> target (see :func:`evaluate_goals` for the comparison of each).
GOALS = {
    "capture_vs_eager": 1.05,
    "memory_ratio_4096": 10.0,
    "memory_same_rollout": 1e-5,
    "rollout_vs_forward": 0.05,
    "relevance_vs_forward_backward": 1.3,
    "cli_help_s": 0.3,
    "render_coref_s": 4.0,
    "flow_cls_row_s": 2.0,
}


def _goal(gid: str, device: str | None, description: str, target: str, measured: Any,
          met: bool | None, note: str = "") -> dict[str, Any]:
    return {"id": gid, "device": device, "description": description, "target": target,
            "measured": measured, "met": met, "note": note}


def evaluate_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal of the benchmark issue with its measurement and whether it is met
    (``met`` is ``None`` when the run did not measure it)."""
    goals = []
    for device, parts in results.get("results", {}).items():
        capture = parts.get("capture")
        if capture:
            for variant, gid, what in (
                ("trace", "capture_vs_eager", "probe.trace"),
                ("trace_attentions", "capture_attentions_vs_eager",
                 "probe.trace then reading .attentions (the layers stacked)"),
            ):
                cases = {n: c for n, c in capture["cases"].items() if variant in c["vs_eager"]}
                if not cases:
                    continue  # a run from before the variant existed
                measured = {
                    name: {f"{variant}_vs_eager": c["vs_eager"][variant],
                           f"{variant}_vs_eager_output_attentions":
                               c["vs_eager_output_attentions"][variant]}
                    for name, c in cases.items()
                }
                worst = max(m[f"{variant}_vs_eager"] for m in measured.values())
                goals.append(_goal(
                    gid, device,
                    f"{what} costs at most 1.05x the eager forward (cheaper than "
                    "output_attentions)",
                    f"<= {GOALS['capture_vs_eager']}", measured,
                    worst <= GOALS["capture_vs_eager"], f"worst case {worst:.3f}x",
                ))
        memory = parts.get("memory")
        if memory:
            rows = memory["by_tokens"]
            ratios = {k: r.get("ratio_output_attentions_over_stream") for k, r in rows.items()}
            at = rows.get("4096")
            ratio = at.get("ratio_output_attentions_over_stream") if at else None
            note = "" if at else "4096 tokens not measured in this run (--quick)"
            if at and ratio is None:
                note = "a 4096-token measurement failed"
            if at and at.get("stream_gb") is not None:
                note = (f"stream adds {at['stream_gb']:.3f} GB, output_attentions "
                        f"{format_value(at.get('output_attentions_gb'), 3, missing='-')} GB")
            goals.append(_goal(
                "memory_ratio_4096", device,
                "streaming rollout adds >= 10x less peak memory than output_attentions at 4096 "
                "tokens",
                f">= {GOALS['memory_ratio_4096']}", ratios,
                None if ratio is None else ratio >= GOALS["memory_ratio_4096"], note,
            ))
            diffs = {k: r["stream_vs_rollout_max_abs_diff"] for k, r in rows.items()
                     if "stream_vs_rollout_max_abs_diff" in r}
            goals.append(_goal(
                "memory_same_rollout", device,
                "streaming rollout equals probe.rollout of the full output_attentions",
                f"max abs diff <= {GOALS['memory_same_rollout']:g}", diffs,
                (all(d <= GOALS["memory_same_rollout"] for d in diffs.values()) if diffs else None),
            ))
        analyzers = parts.get("analyzers")
        if analyzers:
            ratios = analyzers["costs"]["ratios"]
            goals.append(_goal(
                "rollout_vs_forward", device,
                "rollout costs under 5% of the forward that produced the trace (ViT-S)",
                f"< {GOALS['rollout_vs_forward']}", ratios["rollout_vs_trace"],
                ratios["rollout_vs_trace"] < GOALS["rollout_vs_forward"],
            ))
            rel = ratios["relevance_method_vs_forward_backward"]
            goals.append(_goal(
                "relevance_vs_forward_backward", device,
                "relevance within 1.3x of one forward plus one backward (ViT-S)",
                f"<= {GOALS['relevance_vs_forward_backward']}", rel,
                rel <= GOALS["relevance_vs_forward_backward"],
                "the Chefer rule alone: "
                f"{ratios['relevance_from_gradients_vs_forward_backward']:.3f}x",
            ))
        flow = parts.get("flow")
        if flow:
            t = flow["median_s"]["flow_cls_row"]
            goals.append(_goal(
                "flow_cls_row_s", device,
                "attention flow of the vit-shapes CLS row (65 tokens, 4 layers) under 2 s per "
                "image", f"< {GOALS['flow_cls_row_s']} s", t, t < GOALS["flow_cls_row_s"],
                f"rollout {flow['median_ms']['rollout']} ms; flow/rollout "
                f"{flow['flow_vs_rollout']}x",
            ))
    cli = results.get("cli")
    if cli:
        t = cli["help"]["median_s"]
        goals.append(_goal("cli_help_s", None, "probe --help cold start under 0.3 s",
                           f"< {GOALS['cli_help_s']} s", t, t < GOALS["cli_help_s"],
                           f"bare interpreter start "
                           f"{cli['help']['python_startup_median_s']:.3f} s"))
    startup = results.get("startup")
    if startup:
        e, floor = startup["end_to_end"], startup["import_floor"]
        t = e["wall_median_s"]
        goals.append(_goal(
            "render_coref_s", None, "probe render coref on MiniLM under 4 s end to end",
            f"< {GOALS['render_coref_s']} s", t, t < GOALS["render_coref_s"],
            f"best {e['wall_min_s']:.2f} s, CPU {format_value(e['cpu_median_s'], 2)} s; "
            f"importing torch + transformers' BERT code alone: {floor['wall_median_s']:.2f} s "
            f"wall, CPU {format_value(floor['cpu_median_s'], 2)} s"
            + (f"; served by probe serve: {startup['served']['wall_median_s']:.2f} s wall, CPU "
               f"{format_value(startup['served']['cpu_median_s'], 2)} s"
               if startup.get("served") else ""),
        ))
    return goals

