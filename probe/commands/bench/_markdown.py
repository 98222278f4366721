"""Markdown tables of a ``probe bench`` JSON document (the README tables), and
``python -m probe.commands.bench --markdown OUT.json`` to print them for a saved run."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from probe._report import format_value, markdown_table
from probe.commands.bench._settings import SCHEMA

__all__ = ["main", "to_markdown"]

PROG = "python -m probe.commands.bench"


def _fmt(x: Any, digits: int = 2, suffix: str = "") -> str:
    return format_value(x, digits, suffix=suffix, missing="-")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [markdown_table(header, rows, align=["left"] * len(header), missing="-")]


def to_markdown(results: dict[str, Any]) -> str:
    """Markdown tables of a ``probe bench`` JSON document (the README table)."""
    m = results.get("machine", {})
    s = results.get("settings", {})
    threads = s.get("threads")
    lines = [
        f"**Machine**: {m.get('cpu_model')}, {m.get('usable_cores')} cores, "
        f"{m.get('ram_gb')} GB RAM"
        + (f", {m['cuda_device']}" if m.get("cuda_device") else "")
        + f"; torch {m.get('torch')}, transformers {m.get('transformers')}, timm {m.get('timm')}; "
        f"{'torch default' if not threads else threads} CPU thread(s); "
        f"load average {m.get('load_average_start')} at start. "
        f"{'Quick run' if s.get('quick') else 'Full run'}, median of {s.get('repeats')} "
        "interleaved "
        f"repeats, ratios are medians of per-repeat ratios"
        + (f"; run took {results['elapsed_s'] / 60:.1f} min." if results.get("elapsed_s") else "."),
        "",
    ]
    for device, parts in results.get("results", {}).items():
        capture = parts.get("capture")
        if capture:
            lines += [f"### Capture overhead ({device})", ""]
            run = results.get("capture_run")
            if run:  # capture numbers from a later run than the rest of the document
                lines += [f"From a capture-only run of {run.get('created')}: median of "
                          f"{run.get('settings', {}).get('repeats')} interleaved repeats, load "
                          f"average {run.get('machine', {}).get('load_average_start')} at "
                          "start.", ""]
            rows = []
            for name, c in capture["cases"].items():
                for v, label in capture["variants"].items():
                    rows.append([
                        f"{c['model']} {c['input']}", label, _fmt(c["median_ms"][v], 1),
                        _fmt(c["vs_sdpa"][v], 2, "x"), _fmt(c["vs_eager"][v], 2, "x"),
                        _fmt(c["vs_eager_output_attentions"][v], 2, "x"),
                    ])
            lines += _table(["model / input", "variant", "median ms", "vs sdpa", "vs eager",
                             "vs eager+output_attentions"], rows) + [""]
        memory = parts.get("memory")
        if memory:
            lines += [f"### Peak memory added by one forward ({device}, {memory['model']} "
                      "6 x 12 heads, hidden 384)", ""]
            rows = []
            for n, r in memory["by_tokens"].items():
                diff = r.get("stream_vs_rollout_max_abs_diff")
                rows.append([
                    n, _fmt(r.get("sdpa_gb"), 3), _fmt(r.get("output_attentions_gb"), 3),
                    _fmt(r.get("stream_gb"), 3),
                    _fmt(r.get("ratio_output_attentions_over_stream"), 1, "x"),
                    "-" if diff is None else f"{diff:.1e}",
                ])
            lines += _table(["tokens", "SDPA GB", "output_attentions GB", "probe stream GB",
                             "output_attentions / stream", "stream vs rollout max abs diff"],
                            rows) + [""]
        analyzers = parts.get("analyzers")
        if analyzers:
            c = analyzers["costs"]
            med, rat = c["median_ms"], c["ratios"]
            lines += [f"### Analyzers on {analyzers['model']} ({device}, {c['tokens']} tokens, "
                      f"{c['layers']} layers, batch 1)", ""]
            rows = [
                ["forward (fused)", _fmt(med["forward"], 2), "1.00x forward"],
                ["probe.trace", _fmt(med["trace"], 2), f"{rat['trace_vs_forward']:.2f}x forward"],
                ["probe.rollout", _fmt(med["rollout"], 3),
                 f"{rat['rollout_vs_trace']:.4f}x trace, "
                 f"{rat['rollout_vs_reference']:.2f}x reference loop"],
                ["reference rollout loop", _fmt(med["rollout_reference"], 3), ""],
                ["forward + backward", _fmt(med["forward_backward"], 2), ""],
                ["relevance (attribute, end to end)", _fmt(med["relevance_method"], 2),
                 f"{rat['relevance_method_vs_forward_backward']:.2f}x forward+backward"],
                ["relevance_from_gradients", _fmt(med["relevance_from_gradients"], 3),
                 f"{rat['relevance_from_gradients_vs_reference']:.2f}x reference loop"],
                ["reference relevance loop", _fmt(med["relevance_reference"], 3), ""],
            ]
            lines += _table(["step", "median ms", "ratio"], rows) + [""]
            lines += [f"### Attribution throughput ({device}, images per second)", ""]
            batches = sorted(
                {b for t in analyzers["throughput"].values() for b in t["by_batch"]}, key=int
            )
            rows = []
            for model, t in analyzers["throughput"].items():
                for method in ["forward", *analyzers["methods"]]:
                    cells = []
                    for b in batches:
                        r = t["by_batch"].get(b, {}).get(method)
                        if r is None:
                            cells.append("-")
                        elif r["status"] == "ok":
                            cells.append(_fmt(r["images_per_s"], 3 if r["images_per_s"] < 1 else 1)
                                         + (" (1 call)" if r.get("note") else ""))
                        else:
                            cells.append(_short_status(r))
                    rows.append([model, method, *cells])
            lines += _table(["model", "method", *[f"batch {b}" for b in batches]], rows) + [""]
            lines += [f"{model}: {t['note']}." for model, t in analyzers["throughput"].items()
                      if t.get("note")] + [""]
        flow = parts.get("flow")
        if flow:
            rows = [[name, _fmt(flow["median_ms"][name], 1)] for name in flow["median_ms"]]
            lines += [f"### Attention flow on {flow['model']} ({device}, {flow['tokens']} tokens, "
                      f"{flow['layers']} layers, one image; {flow['note']})", ""]
            lines += _table(["analyzer", "median ms"], rows) + [
                "", f"Flow of the CLS row costs {flow['flow_vs_rollout']}x rollout of the whole "
                f"matrix; Spearman of the two CLS rows over the patches "
                f"{flow['spearman_flow_vs_rollout_cls_row']:.2f}.", ""]
    cli = results.get("cli")
    if cli:
        h, r = cli["help"], cli["render_coref"]
        rows = [
            ["probe --help", _fmt(h["median_s"], 3),
             f"interpreter alone {h['python_startup_median_s']:.3f} s; heavy imports: "
             f"{', '.join(h['heavy_modules_imported']) or 'none'}"],
            ["probe render coref (MiniLM)", _fmt(r.get("median_s"), 2), r.get("status", "")],
        ]
        lines += ["### CLI cold start", ""] + _table(["command", "median s", "note"], rows) + [""]
    parallel = results.get("parallel")
    if parallel:
        from probe.commands.bench._parallel import parallel_markdown

        lines += parallel_markdown(parallel)
    startup = results.get("startup")
    if startup:
        from probe.commands.bench._startup import to_markdown as startup_markdown

        lines += ["### Start-up of probe render coref (MiniLM)", "", startup_markdown(startup), ""]
    html = results.get("html")
    if html:
        from probe.commands.bench._html import to_markdown as html_markdown

        lines += ["### Interactive HTML views (headless Chromium)", "", html_markdown(html), ""]
    for device, parts in (results.get("results") or {}).items():
        if isinstance(parts, dict) and parts.get("generation"):
            from probe.commands.bench._generation import to_markdown as generation_markdown

            lines += [f"### Generation with capture ({device})", "",
                      generation_markdown(parts["generation"]), ""]
    goals = results.get("goals") or []
    if goals:
        rows = []
        for g in goals:
            met = {True: "met", False: "**missed**", None: "not measured"}[g["met"]]
            rows.append([g["id"] + (f" ({g['device']})" if g.get("device") else ""), g["target"],
                         _goal_measured(g), met])
        lines += ["### Goals", ""] + _table(["goal", "target", "measured", "status"], rows) + [""]
    return "\n".join(lines)


def _short_status(row: dict[str, Any]) -> str:
    status = row["status"]
    if status.startswith("skipped"):
        est = row.get("estimated_images_per_s")
        return "skipped: over time budget" + (f" (~{est:.2g} at the smallest batch)" if est else "")
    if len(status) > 90:
        status = status[:87] + "..."
    return status.replace("|", "/")


def _goal_measured(g: dict[str, Any]) -> str:
    m = g["measured"]
    if isinstance(m, dict):
        parts = []
        for k, v in m.items():
            if isinstance(v, dict):
                parts.append(f"{k}: " + ", ".join(f"{_fmt(x, 3)}" for x in v.values()))
            elif isinstance(v, float) and abs(v) < 1e-3:
                parts.append(f"{k}: {v:.1e}")
            else:
                parts.append(f"{k}: {_fmt(v, 2)}")
        text = "; ".join(parts) or "-"
    elif isinstance(m, float):
        text = f"{m:.4g}"
    else:
        text = _fmt(m)
    return text + (f" ({g['note']})" if g.get("note") else "")



def main(argv: Sequence[str] | None = None) -> int:
    """``python -m probe.commands.bench --markdown OUT.json``: print the tables of a saved run."""
    import argparse

    parser = argparse.ArgumentParser(prog=PROG,
                                     description="Render a probe bench JSON file as markdown.")
    parser.add_argument("--markdown", metavar="JSON", required=True,
                        help="results of probe bench --json")
    ns = parser.parse_args(list(argv) if argv is not None else None)
    try:
        with open(ns.markdown) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"{PROG}: error: cannot read {ns.markdown}: {exc}", file=sys.stderr)
        return 2
    if results.get("schema") != SCHEMA:
        print(f"{PROG}: error: {ns.markdown} is not a {SCHEMA} document",
              file=sys.stderr)
        return 2
    print(to_markdown(results))
    return 0

