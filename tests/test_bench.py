"""``probe bench`` on tiny models: the JSON schema, finite positive ratios, the memory worker.

Speed goals are never asserted here: this only checks that every part runs and reports what
the README documents.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from probe.commands.bench import (
    PARTS,
    VARIANTS,
    BenchPart,
    BenchSettings,
    CaptureCase,
    VisionCase,
    bench_analyzers,
    bench_capture,
    bench_cli,
    evaluate_goals,
    main,
    make_settings,
    reference_relevance,
    reference_rollout,
    run_bench,
    time_interleaved,
    to_markdown,
)
from probe.commands.bench._memory_worker import measure
from probe._errors import ProbeError
from probe.commands.bench._command import BenchArgs
from tests._tiny import bert as tiny_bert
from tests._tiny import timm_model

TINY_BERT = {
    "vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "max_position_embeddings": 64,
}
SETTINGS = BenchSettings(repeats=1, warmup=0, batch_sizes=(1, 2), throughput_repeats=1,
                         cli_repeats=1, min_sample_s=0.0, capture_min_sample_s=0.0,
                         throughput_min_sample_s=0.0, measurement_budget_s=30.0)


def _positive_finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def _tiny_vit() -> torch.nn.Module:
    return timm_model("vit_small_patch16_224", num_classes=4)[0]


def test_time_interleaved_rotates_and_calibrates() -> None:
    order: list[str] = []
    fns = {name: (lambda n=name: order.append(n)) for name in ("a", "b", "c")}
    samples = time_interleaved(fns, repeats=3, warmup=0)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(v) == 3 and all(s >= 0 for s in v) for v in samples.values())


def test_capture_schema_and_ratios() -> None:
    bert, inputs = tiny_bert()
    vit = _tiny_vit()
    cases = [
        CaptureCase("bert", bert, inputs, "2 x 9 tokens"),
        CaptureCase("vit", vit, torch.randn(1, 3, 32, 32), "1 x 3 x 32 x 32"),
    ]
    result = bench_capture(SETTINGS, "cpu", cases)
    assert set(result["cases"]) == {"bert", "vit"}
    for case in result["cases"].values():
        for key in ("median_ms", "vs_sdpa", "vs_eager", "vs_eager_output_attentions", "samples_ms"):
            assert set(case[key]) == set(VARIANTS), key
        for key in ("vs_sdpa", "vs_eager", "vs_eager_output_attentions"):
            assert all(_positive_finite(v) for v in case[key].values())
        assert case["vs_eager"]["eager"] == pytest.approx(1.0)
    # the models come back as they went in: the SDPA model stays SDPA, timm stays fused
    assert bert.config._attn_implementation == "sdpa"
    assert all(m.fused_attn for m in vit.modules() if hasattr(m, "fused_attn"))

    goals = evaluate_goals({"results": {"cpu": {"capture": result}}})
    assert [g["id"] for g in goals] == ["capture_vs_eager", "capture_attentions_vs_eager"]
    assert all(g["met"] in (True, False) for g in goals)
    text = to_markdown({"results": {"cpu": {"capture": result}}, "goals": goals})
    assert "| model / input |" in text and "probe.trace(stream=True)" in text
    assert "probe.trace then .attentions read" in text
    # a run from before the .attentions variant existed still reports the probe.trace goal
    for case in result["cases"].values():
        for key in ("vs_eager", "vs_eager_output_attentions"):
            del case[key]["trace_attentions"]
    old = evaluate_goals({"results": {"cpu": {"capture": result}}})
    assert [g["id"] for g in old] == ["capture_vs_eager"]


def test_memory_worker_in_process() -> None:
    for mode in ("sdpa", "stream"):  # output_attentions runs inside "check"
        res = measure(mode, 32, config=TINY_BERT)
        assert res["peak_increase_bytes"] >= 0 and res["before_bytes"] > 0
    check = measure("check", 32, config=TINY_BERT)
    assert check["max_abs_diff"] < 1e-5 and check["assert_close"] is True
    with pytest.raises(ProbeError, match="max_position_embeddings"):
        measure("stream", 128, config=TINY_BERT)
    with pytest.raises(ProbeError, match="unknown memory mode"):
        measure("bogus", 32, config=TINY_BERT)  # type: ignore[arg-type]


def test_memory_worker_subprocess() -> None:
    cmd = [sys.executable, "-m", "probe.commands.bench._memory_worker", "--mode", "stream",
           "--tokens", "24",
           "--config", json.dumps(TINY_BERT), "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["mode"] == "stream" and res["tokens"] == 24 and res["peak_increase_bytes"] >= 0


def test_analyzers_schema_and_references() -> None:
    vit = _tiny_vit()
    cases = [VisionCase("tiny", vit, lambda b: torch.randn(b, 3, 32, 32))]
    result = bench_analyzers(SETTINGS, "cpu", cases, methods=("rollout", "flow"))
    costs = result["costs"]
    assert all(_positive_finite(v) for v in costs["ratios"].values())
    assert costs["max_abs_diff"]["rollout_vs_reference"] < 1e-5
    assert costs["max_abs_diff"]["relevance_vs_reference"] < 1e-5
    for case in result["throughput"].values():
        assert set(case["by_batch"]) == {"1", "2"}
        for rows in case["by_batch"].values():
            assert set(rows) == {"forward", "rollout", "flow"}
            assert _positive_finite(rows["forward"]["images_per_s"])
            # flow on 17 tokens fits its default limit; an error would be recorded, not raised
            assert all(r["status"] == "ok" or r["status"].startswith(("error", "skipped"))
                       for r in rows.values())
    goals = evaluate_goals({"results": {"cpu": {"analyzers": result}}})
    assert {g["id"] for g in goals} == {"rollout_vs_forward", "relevance_vs_forward_backward"}
    assert "### Attribution throughput" in to_markdown({"results": {"cpu": {"analyzers": result}}})


def test_reference_loops_match_probe() -> None:
    import probe

    gen = torch.Generator().manual_seed(0)
    attn = torch.rand(3, 2, 4, 5, 5, generator=gen).softmax(-1)
    grads = torch.randn(3, 2, 4, 5, 5, generator=gen)
    torch.testing.assert_close(reference_relevance(attn, grads),
                               probe.relevance_from_gradients(attn, grads))
    manual = torch.eye(5).expand(2, 5, 5)
    for a in attn:
        a_hat = 0.5 * a.mean(1) + 0.5 * torch.eye(5)
        manual = (a_hat / a_hat.sum(-1, keepdim=True)) @ manual
    torch.testing.assert_close(reference_rollout(attn), manual)


def test_cli_part_and_json_markdown_roundtrip(tmp_path, capsys) -> None:
    cli = bench_cli(SETTINGS, include_render=False)
    assert _positive_finite(cli["help"]["median_s"])
    assert cli["help"]["heavy_modules_imported"] == []
    assert cli["render_coref"]["status"] == "not run"
    results = {"schema": "probe-bench/1", "machine": {}, "settings": {"repeats": 1},
               "results": {}, "cli": cli}
    results["goals"] = evaluate_goals(results)
    assert [g["id"] for g in results["goals"]] == ["cli_help_s"]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(results, allow_nan=False))
    assert main(["--markdown", str(path)]) == 0
    assert "### CLI cold start" in capsys.readouterr().out
    path.write_text("{}")
    assert main(["--markdown", str(path)]) == 2


def test_settings_validation() -> None:
    quick = make_settings(BenchArgs(quick=True, device="cpu"))
    assert quick.memory_tokens == (1024, 2048) and quick.batch_sizes == (1, 8)
    assert quick.repeats <= 3 and quick.devices == ("cpu",)
    full = make_settings(BenchArgs(device="cpu", parts=("memory",)))
    assert full.memory_tokens == (1024, 2048, 4096) and full.parts == ("memory",)
    with pytest.raises(ProbeError, match="repeats"):
        make_settings(BenchArgs(repeats=0))
    with pytest.raises(ProbeError, match="device"):
        make_settings(BenchArgs(device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ProbeError, match="CUDA"):
            make_settings(BenchArgs(device="cuda"))


def test_registered_part_runs_and_lands_in_the_document(tmp_path, monkeypatch, capsys) -> None:
    """A part plugs in with one registry entry: per device under ``results``, else top level."""
    seen: list[object] = []
    monkeypatch.setitem(PARTS, "fake", BenchPart(
        run=lambda s, device, progress: seen.append(device) or {"device": device},
        steps=lambda s: 1))
    monkeypatch.setitem(PARTS, "fake_once", BenchPart(
        run=lambda s, device, progress: {"repeats": s.repeats}, steps=lambda s: 0,
        per_device=False))
    out = tmp_path / "bench.json"
    args = BenchArgs(json=str(out), device="cpu", repeats=2, quiet=True,
                     parts=("fake_once", "fake"))
    assert run_bench(args) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "probe-bench/1" and doc["settings"]["parts"] == ["fake", "fake_once"]
    assert doc["results"] == {"cpu": {"fake": {"device": "cpu"}}}
    assert doc["fake_once"] == {"repeats": 2} and doc["goals"] == [] and seen == ["cpu"]
    assert f"results written to {out}" in capsys.readouterr().out
    with pytest.raises(ProbeError, match="folder"):
        run_bench(BenchArgs(json=str(tmp_path / "missing" / "b.json"), parts=("fake",)))


def test_startup_part_steps_and_markdown(tmp_path) -> None:
    """The start-up worker's steps in this process (imports already done: near zero), and the
    part's tables from a result of that shape; the fresh-process part itself is too slow for
    the default run (``probe bench --part startup``)."""
    from probe.commands.bench._startup import to_markdown as startup_markdown
    from probe.commands.bench._startup_worker import IMPORT_GROUPS, measure_phases

    out = measure_phases(str(tmp_path))
    names = [p[0] for p in out["phases"]]
    assert names[: len(IMPORT_GROUPS)] == [name for name, _ in IMPORT_GROUPS]
    assert names[len(IMPORT_GROUPS):] == [
        "import probe render command", "load model (config, weights, tokenizer)",
        "capture (probe.trace)", "import matplotlib + probe.viewers", "figure (coref view)",
        "save PNG (draw, encode, write)"]
    assert all(w >= 0 and c >= 0 for _, w, c in out["phases"])
    assert len(out["files"]) == 1 and (tmp_path / out["files"][0]).stat().st_size > 10_000
    summary = {"wall_median_s": 1.0, "wall_min_s": 0.9, "cpu_median_s": 0.8,
               "wall_samples_s": [1.0], "cpu_samples_s": [0.8]}
    result = {"command": "probe render coref", "repeats": 1, "load_average": [0.5, 0.6],
              "cpus": 2, "end_to_end": summary, "worker": summary,
              "batch": {**summary, "wall_median_s": 3.0, "cpu_median_s": 2.0, "sentences": 5},
              "import_floor": {**summary, "modules": ["torch"]}, "interpreter": summary,
              "served": {**summary, "wall_median_s": 0.5, "worker_cpu_median_s": 0.6,
                         "server_start_s": 9.0},
              "phases": [{"name": n, "wall_median_s": w, "wall_min_s": w, "cpu_median_s": c}
                         for n, w, c in out["phases"]]}
    text = startup_markdown(result)
    assert "| probe render coref, end to end | 1.00 (0.90) | 0.80 |" in text
    assert "| the same with 5 sentences (--text repeated) | 3.00 (0.90) | 2.00 |" in text
    assert "| each sentence after the first | 0.50 | 0.30 |" in text
    assert ("| the same, served by `probe serve` (client + worker; the server started once in "
            "9.0 s) | 0.50 (0.90) | 0.80 |") in text
    assert all(f"| {n} |" in text for n in names)
    goals = evaluate_goals({"startup": result})
    assert [(g["id"], g["met"]) for g in goals] == [("render_coref_s", True)]
    assert "### Start-up of probe render coref" in to_markdown({"startup": result})


@pytest.mark.slow
def test_startup_part_in_fresh_processes() -> None:
    from probe.commands.bench._startup import bench_startup

    result = bench_startup(BenchSettings(render_repeats=1))
    assert result["end_to_end"]["wall_median_s"] > result["interpreter"]["wall_median_s"] > 0
    assert len(result["phases"]) == 12 and result["import_floor"]["modules"][0] == "torch"
    assert result["batch"]["sentences"] == 5
    served = result["served"]
    assert 0 < served["worker_cpu_median_s"] <= served["cpu_median_s"]
    assert result["batch"]["wall_median_s"] > result["end_to_end"]["wall_median_s"] * 0.8


def test_unusable_json_path_fails_before_any_part_runs(tmp_path, monkeypatch) -> None:
    """``--json`` naming a folder (or a path under a file) fails first, not after the bench."""
    ran: list[object] = []
    monkeypatch.setitem(PARTS, "fake", BenchPart(
        run=lambda s, device, progress: ran.append(device) or {}, steps=lambda s: 1))
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path, tmp_path / "file" / "b.json"):
        with pytest.raises(ProbeError, match="folder"):
            run_bench(BenchArgs(json=str(bad), device="cpu", quiet=True, parts=("fake",)))
    assert ran == []


def test_html_part_quick_reports_a_row_per_view(monkeypatch) -> None:
    """``--part html --quick`` builds every view's page (the attention views, image, detr,
    curves, gates, window) and reports its size and build time side by side; run without the
    browser here (the time to interactive is then ``None``, as the part reports it)."""
    import probe.commands.bench._html as bench_html_module

    monkeypatch.setattr(bench_html_module, "_browser", lambda: None)
    result = PARTS["html"].run(BenchSettings(repeats=1, quick=True), None, None)
    views = [r["view"].split()[0] for r in result["cases"]]
    assert views == ["model", "heads", "image", "detr", "curves", "gates", "window"]
    for row in result["cases"]:
        assert "refused" not in row, row
        assert _positive_finite(row["size_mb"]) and row["build_s"] >= 0
        assert row["interactive_s"] is None
    assert result["browser"] is False
    table = to_markdown({"html": result})
    assert all(r["view"] in table for r in result["cases"])
