"""Method options are declared once and reach the API, compare, faithfulness, eval and the CLI.

Every registration a test makes is undone with the public ``unregister_*`` functions.
"""

from __future__ import annotations

import re

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests._tiny import timm_model
from PIL import Image

import probe
from probe._errors import ProbeError
from probe.analysis._rollout import rollout
from probe.attribution._registry import MethodOption, method_options, parse_method_options
from probe.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vit():
    return timm_model("vit_small_patch16_224", img=(32, 48))  # 6 heads, 4x6 grid, 1 CLS


@pytest.fixture
def median():
    """A user head fusion, registered for one test and removed after it."""

    @probe.register_head_fusion("median")
    def _median(attn: torch.Tensor) -> torch.Tensor:
        return attn.median(dim=-3).values

    try:
        yield "median"
    finally:
        probe.unregister_head_fusion("median")
    assert "median" not in probe.list_head_fusions()


# --------------------------------------------------------------------------- declarations
def test_every_method_declares_its_options():
    spec = probe.method_spec("rollout")
    assert [o.name for o in spec.options] == ["head_fusion", "discard_ratio", "start_layer",
                                              "query"]
    assert spec.defaults()["head_fusion"] == "mean"
    assert probe.method_spec("rollout-max").defaults()["head_fusion"] == "max"
    assert probe.method_spec("rollout-min").defaults()["head_fusion"] == "min"
    assert {o.name for o in probe.method_spec("ig").options} == {
        "n_steps", "baseline", "integration", "internal_batch_size",
    }
    assert [o.name for o in probe.method_spec("gradcam").options] == ["block"]
    assert "head_fusion" in probe.method_spec("flow").defaults()
    assert "head_fusion" in probe.method_spec("attention").defaults()
    assert probe.method_spec("random").options == ()


def test_a_fusion_registered_later_is_a_valid_choice(median):
    choices = probe.method_spec("rollout").option("head_fusion").valid_choices()
    assert "median" in choices and {"mean", "max", "min"} <= set(choices)
    assert method_options("rollout", {"head_fusion": "median"})["head_fusion"] == "median"


def test_unknown_options_name_the_closest_one():
    with pytest.raises(ProbeError,
                       match="does not take option 'discard'.*did you mean 'discard_ratio'"):
        method_options("rollout", {"discard": 0.5})
    with pytest.raises(ProbeError, match="did you mean 'n_steps'"):
        method_options("ig", {"nsteps": 8})
    with pytest.raises(ProbeError, match="unknown method 'rolout'.*did you mean 'rollout'"):
        method_options("rolout", {})


@pytest.mark.parametrize(
    "method, options, needle",
    [
        ("ig", {"n_steps": True}, "must be int"),          # a bool is not an int
        ("ig", {"n_steps": 2.0}, "must be int"),
        ("ig", {"n_steps": 0}, ">= 1"),
        ("ig", {"internal_batch_size": 0}, ">= 1"),
        ("ig", {"baseline": "zeros"}, "baseline"),
        ("ig", {"integration": "simpson"}, "must be one of"),
        ("rollout", {"discard_ratio": "0.5"}, "must be float"),
        ("rollout", {"discard_ratio": True}, "must be float"),
        ("rollout", {"discard_ratio": 1.0}, "< 1"),
        ("rollout", {"discard_ratio": -0.1}, ">= 0"),
        ("rollout", {"start_layer": 1.0}, "must be int"),
        ("rollout", {"head_fusion": "nope"}, "must be one of"),
        ("flow", {"max_tokens": 0}, ">= 1"),
        ("attention", {"query": "first"}, "query must be"),
        ("attention", {"query": False}, "must be str or int"),
        ("gradcam", {"block": "last"}, "must be int"),
    ],
)
def test_bad_option_values(method, options, needle):
    with pytest.raises(ProbeError, match=needle):
        method_options(method, options)


def test_defaults_are_filled_and_ints_widen_to_floats():
    opts = method_options("rollout", {"discard_ratio": 0})
    assert opts == {"head_fusion": "mean", "discard_ratio": 0.0, "start_layer": 0, "query": "auto"}
    assert isinstance(opts["discard_ratio"], float)
    assert method_options("ig", {"baseline": 0})["baseline"] == 0
    assert method_options("ig", {"internal_batch_size": None})["internal_batch_size"] is None


def test_numpy_scalars_are_taken_as_the_numbers_they_hold():
    # what a sweep over np.arange / np.linspace hands over
    opts = method_options("ig", {"n_steps": np.int64(16)})
    assert opts["n_steps"] == 16 and type(opts["n_steps"]) is int
    opts = method_options("rollout", {"discard_ratio": np.float32(0.5), "start_layer": np.int8(1)})
    assert (opts["discard_ratio"], opts["start_layer"]) == (0.5, 1)
    assert type(opts["discard_ratio"]) is float and type(opts["start_layer"]) is int
    assert type(method_options("rollout", {"discard_ratio": np.int64(0)})["discard_ratio"]) is float
    with pytest.raises(ProbeError, match="must be int, got np.True_"):
        method_options("ig", {"n_steps": np.bool_(True)})
    with pytest.raises(ProbeError, match="got nan"):
        method_options("rollout", {"discard_ratio": np.float64("nan")})
    with pytest.raises(ProbeError, match="must be int"):
        method_options("ig", {"n_steps": np.float64(16.0)})


def test_command_line_values_are_typed_by_the_declarations(median):
    parsed = parse_method_options(
        ["ig.n_steps=16", "rollout.head_fusion=median", "rollout.discard_ratio=0.25",
         "attention.query=3", "attention.query=cls", "ig.internal_batch_size=none"]
    )
    assert parsed == {
        "ig": {"n_steps": 16, "internal_batch_size": None},
        "rollout": {"head_fusion": "median", "discard_ratio": 0.25},
        "attention": {"query": "cls"},
    }
    assert isinstance(parsed["ig"]["n_steps"], int)
    for bad, needle in (("ig.n_steps", "METHOD.OPTION=VALUE"), ("n_steps=3", "METHOD.OPTION"),
                        ("ig.n_steps=many", "must be int"), ("ig.steps=3", "did you mean"),
                        ("rollout.head_fusion=nope", "must be one of")):
        with pytest.raises(ProbeError, match=needle):
            parse_method_options([bad])


# --------------------------------------------------------------------------- registry
def test_a_user_method_declares_options_and_reads_them_filled_in(vit):
    model, x = vit
    seen = {}

    @probe.register_method(
        "test-scaled", modalities=("vision",),
        options=(MethodOption("scale", 1.0, float, minimum=0.0, doc="factor"),
                 MethodOption("flip", False, bool)),
    )
    def _scaled(ctx: probe.MethodContext) -> torch.Tensor:
        seen.update(ctx.options)
        tr = ctx.trace()
        scores = tr.attentions[-1, :, :, 0, 1:].mean(1) * ctx.options["scale"]
        return -scores if ctx.options["flip"] else scores

    try:
        assert "test-scaled" in probe.list_methods("vision")
        a = probe.attribute(model, x, "test-scaled", scale=2)
        assert seen == {"scale": 2.0, "flip": False}
        assert a.options == {"scale": 2.0, "flip": False} and a.label == "test-scaled[scale=2]"
        b = probe.attribute(model, x, "test-scaled")
        torch.testing.assert_close(a.scores, 2 * b.scores)
        assert b.label == "test-scaled"
        with pytest.raises(ProbeError, match="must be bool"):
            probe.attribute(model, x, "test-scaled", flip=1)
        with pytest.raises(ProbeError, match="did you mean 'scale'"):
            probe.attribute(model, x, "test-scaled", scal=2.0)
    finally:
        probe.unregister_method("test-scaled")
    assert "test-scaled" not in probe.list_methods()
    with pytest.raises(ProbeError, match="not registered"):
        probe.unregister_method("test-scaled")
    with pytest.raises(ProbeError, match="not registered"):
        probe.unregister_head_fusion("test-nothing")


def test_rollout_with_a_user_fusion(vit, median):
    model, x = vit
    tr = probe.trace(model, x)
    got = probe.attribute(model, x, "rollout", trace=tr, head_fusion="median")
    expected = rollout(tr, "median")[:, 0, 1:].float()
    torch.testing.assert_close(got.scores, expected)
    mean = probe.attribute(model, x, "rollout", trace=tr)
    assert not torch.allclose(got.scores, mean.scores)
    assert got.label == "rollout[head_fusion=median]" and mean.label == "rollout"
    # flow and raw attention take the fusion too
    att = probe.attribute(model, x, "attention", trace=tr, head_fusion="median")
    torch.testing.assert_close(att.scores, tr.attentions[-1].median(1).values[:, 0, 1:].float())


def test_presets_are_the_rollout_method_with_another_default(vit):
    model, x = vit
    tr = probe.trace(model, x)
    preset = probe.attribute(model, x, "rollout-max", trace=tr)
    explicit = probe.attribute(model, x, "rollout", trace=tr, head_fusion="max")
    torch.testing.assert_close(preset.scores, explicit.scores)
    assert preset.label == "rollout-max" and explicit.label == "rollout[head_fusion=max]"
    back = probe.attribute(model, x, "rollout-max", trace=tr, head_fusion="mean")
    torch.testing.assert_close(back.scores, probe.attribute(model, x, "rollout", trace=tr).scores)


def test_compare_and_faithfulness_with_a_user_fusion(vit, median):
    model, x = vit
    tr = probe.trace(model, x)
    attrs = [probe.attribute(model, x, "rollout", trace=tr, head_fusion=f)
             for f in ("mean", "median")]
    table = probe.compare(attrs)
    assert table.methods == ("rollout", "rollout[head_fusion=median]")
    assert float(table.values[0, 1]) < 1.0
    faith = probe.faithfulness(model, x, attrs, steps=4, n_random=0)
    assert set(faith.curves) == {"rollout", "rollout[head_fusion=median]"}


# --------------------------------------------------------------------------- probe eval
def test_eval_runs_a_user_fusion_and_checks_options_first(tmp_path, median):
    from test_eval import tiny_vit

    from probe.commands._eval import EvalArgs, run_eval

    model = tiny_vit()
    out = tmp_path / "faith.json"
    args = EvalArgs(task="faithfulness", n=2, quiet=True, json=str(out), methods=("rollout",),
                    options=("rollout.head_fusion=median",))
    assert run_eval(args, model=model) == 0
    result = json.loads(out.read_text())
    assert result["protocol"]["method_options"] == {"rollout": {"head_fusion": "median"}}
    assert "rollout" in result["methods"] and not result["skipped"]
    # a bad option is an error before any work, not a skipped method
    with pytest.raises(ProbeError, match="did you mean 'head_fusion'"):
        run_eval(EvalArgs(task="faithfulness", n=2, methods=("rollout",)), model=model,
                 options={"rollout": {"fusion": "median"}})
    with pytest.raises(ProbeError, match="must be one of"):
        run_eval(EvalArgs(task="sanity", n=2, methods=("rollout",),
                          options=("rollout.head_fusion=nope",)), model=model)


def test_eval_option_reaches_the_results(tmp_path, capsys, median):
    results = {}
    for fusion in ("mean", "median"):
        out = tmp_path / f"{fusion}.json"
        rc = main(["eval", "faithfulness", "--n", "2", "--method", "rollout", "--quiet",
                   "--option", f"rollout.head_fusion={fusion}", "--json", str(out)])
        assert rc == 0, capsys.readouterr().err
        results[fusion] = json.loads(out.read_text())
    mean, med = (results[f]["methods"]["rollout"] for f in ("mean", "median"))
    assert results["median"]["protocol"]["method_options"] == {"rollout": {"head_fusion": "median"}}
    assert mean["mass_on_object"] != med["mass_on_object"]


# --------------------------------------------------------------------------- probe render
def _render_rollout(fusion, tmp_path, capsys, monkeypatch):
    """Run ``probe render rollout --fusion FUSION`` in process; return (paths, Attribution)."""
    import probe.commands.render._figures as render_module  # where the rollout view looks it up

    seen = []
    original = render_module._attribution

    def recording(s, method, **options):
        seen.append(original(s, method, **options))
        return seen[-1]

    monkeypatch.setattr(render_module, "_attribution", recording)
    rc = main(["render", "rollout", "--fusion", fusion, "--out", str(tmp_path), "--dpi", "60",
               "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert len(seen) == 1
    return [Path(line) for line in out.split()], seen[0]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_render_fusion_reaches_the_map_and_the_file_name(tmp_path, capsys, monkeypatch, median):
    runs = {f: _render_rollout(f, tmp_path, capsys, monkeypatch) for f in ("mean", "max", "median")}
    for fusion, (paths, attr) in runs.items():
        # README: view, model, options (fusion, discard), input
        [name] = [p.name for p in paths]
        assert re.fullmatch(rf"rollout_vit-shapes_{fusion}-d0_shapes-seed0-[0-9a-f]{{8}}\.png",
                            name)
        assert attr.method == "rollout" and attr.options["head_fusion"] == fusion
    mean_scores = runs["mean"][1].scores
    for fusion in ("max", "median"):
        assert not torch.allclose(runs[fusion][1].scores, mean_scores), fusion
        a, b = _pixels(runs[fusion][0][0]), _pixels(runs["mean"][0][0])
        assert a.shape == b.shape and np.abs(a - b).max() > 0
    model, _ = probe.load_model("vit-shapes")
    preset = probe.attribute(model, probe.make_shapes(1, seed=0).images, "rollout-max")
    torch.testing.assert_close(runs["max"][1].scores, preset.scores)


def test_render_help_lists_registered_fusions_and_rejects_others(capsys, median):
    assert main(["render", "--help"]) == 0
    assert "median" in capsys.readouterr().out
    probe.unregister_head_fusion("median")
    try:
        assert main(["render", "rollout", "--fusion", "median", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--fusion" in err[0] and "'mean'" in err[0]
    finally:
        probe.register_head_fusion("median")(lambda attn: attn.median(dim=-3).values)


def test_render_api_checks_fusion_and_discard_through_the_declarations(tmp_path):
    from probe.commands.render import RenderArgs, render

    with pytest.raises(ProbeError, match="--fusion: option 'head_fusion'.*must be one of"):
        render(RenderArgs(view="rollout", fusion="nope", out=str(tmp_path)))
    with pytest.raises(ProbeError, match=r"^--discard 1 is out of range: use a fraction in "
                       r"\[0, 1\) "):
        render(RenderArgs(view="rollout", discard=1.0, out=str(tmp_path)))
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- import graph
def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_registry_and_commands_import_nothing_above_them():
    registry = _imports(ROOT / "probe" / "attribution" / "_registry.py")
    assert not {m for m in registry if m.startswith(("probe.attribution._attention",
                                                      "probe.attribution._gradient",
                                                      "probe.evaluation", "probe.commands",
                                                      "probe.cli"))}
    gradient = _imports(ROOT / "probe" / "attribution" / "_gradient.py")
    assert not {m for m in gradient if m.startswith("probe.attribution._attention")}
    for folder in ("commands", "evaluation", "attribution", "analysis"):
        for path in (ROOT / "probe" / folder).glob("*.py"):
            assert "probe.cli" not in _imports(path), path
