"""The HTML views' size budget where the user is: ``probe render ... --format html
--max-values N`` (checked up front, passed to every view with a budget) and ``probe.show(...,
max_values=)``; every refusal names the options of the caller (the CLI's flags on the command
line, keyword arguments in Python), never the other's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import probe
from probe import ProbeError
from probe.viewers.html import BudgetError, head_view_html
from tests.test_html_detr import folder, wide  # noqa: F401  (fixtures)
from tests.test_html_windows import swin_folder  # noqa: F401  (fixture)


def _cli(argv, capsys):
    from probe.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _python_worded(message: str) -> bool:
    return "max_values=" in message and "--" not in message


def _cli_worded(message: str) -> bool:
    return "--max-values N" in message and not re.search(r"\w=", message)


# ----------------------------------------------------------------------------- the error
def test_budget_error_is_a_probe_error_and_rewords_its_hint():
    attn = np.full((2, 3, 4, 4), 0.25, dtype=np.float32)
    with pytest.raises(BudgetError) as info:
        head_view_html(attn, list("abcd"), max_values=50)
    exc = info.value
    assert isinstance(exc, ProbeError)
    assert (exc.values, exc.shape, exc.max_values) == (96, (2, 3, 4, 4), 50)
    assert str(exc).startswith("attn has 96 values (2 x 3 x 4 x 4), over the interactive "
                               "view's budget of 50: ")
    assert _python_worded(str(exc))
    cli = exc.reworded("show one layer (--layer L)", "--max-values N")
    assert str(cli).endswith("budget of 50: show one layer (--layer L), or raise --max-values N")
    assert str(exc.reworded("", "--max-values N")).endswith("budget of 50: raise --max-values N")
    # a plural noun takes "have", also reworded; a new (singular) name takes "has"
    many = BudgetError("the maps together", (6,), 5, "", plural=True)
    assert str(many) == ("the maps together have 6 values (6), over the interactive view's "
                         "budget of 5: raise max_values=")
    assert str(many.reworded("", "--max-values N")).startswith("the maps together have 6 values")
    assert str(many.reworded("", "--max-values N", "the page's attention")).startswith(
        "the page's attention has 6 values")


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("extra, message", [
    (["--max-values", "0", "--format", "html"], "--max-values must be a positive integer"),
    (["--max-values", "-5", "--format", "html"], "--max-values must be a positive integer"),
    (["--max-values", "100"], "--max-values is the size budget of the HTML page: add --format "
                              "html"),
    (["--max-values", "100", "--format", "png"], "add --format html"),
    (["--max-values", "1e6", "--format", "html"], "--max-values: invalid int value"),
])
def test_cli_bad_max_values_is_refused_up_front(extra, message, tmp_path, capsys, monkeypatch):
    import probe.commands.render._command as command

    def no_stage(*a, **k):  # refused before any model loads
        raise AssertionError("the input was staged")

    monkeypatch.setattr(command, "_stage", no_stage)
    out_dir = tmp_path / "out"
    try:
        rc, out, err = _cli(["render", "heads", "--text", "A cat.", *extra, "--out",
                             str(out_dir), "--quiet"], capsys)
    except SystemExit as exc:  # argparse's own refusal of a non-integer
        rc, captured = exc.code, capsys.readouterr()
        out, err = captured.out, captured.err
    assert rc == 2 and out == "" and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


@pytest.mark.parametrize("view, extra", [("coref", ["--word", "it"]), ("curves", [])])
def test_cli_max_values_on_a_view_without_a_budget_is_refused(view, extra, tmp_path, capsys):
    rc, out, err = _cli(["render", view, "--text", "The cat sat because it was tired.", *extra,
                         "--max-values", "100", "--format", "html", "--out", str(tmp_path),
                         "--quiet"], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"--max-values does not apply to the {view} view" in err
    assert list(tmp_path.iterdir()) == []


TEXT = ["--text", "The cat sat on the mat."]


def _cases():
    return [
        ("heads", TEXT, "show one layer (--layer L)"),
        ("links", TEXT, "show one head (--head H)"),
        ("head", [*TEXT, "--head", "0"], "a shorter --text"),
        ("saliency", ["--model", "vit-shapes"], None),
        ("compare", ["--model", "vit-shapes", "--method", "rollout", "--method", "attention"],
         None),
        ("alignment", ["--model", "toy-mt", "--text", "le chat"], "a shorter --text or fewer "
         "--generate tokens"),
        ("gates", ["--model", "cnn-shapes-nl"], "show one stage's blocks (--layer S)"),
        ("detr", "detr", None),
        ("window", "swin", "pick a block of a later stage with --layer"),
    ]


@pytest.mark.parametrize("view, extra, hint", _cases(), ids=[c[0] for c in _cases()])
def test_cli_every_html_view_takes_max_values_and_names_the_cli_options(
        view, extra, hint, folder, swin_folder, tmp_path, capsys):  # noqa: F811
    """A tiny ``--max-values`` reaches the view (it refuses, writing nothing), and the
    refusal names the command line's options; a large one writes the page."""
    if extra == "detr":
        extra = ["--model", str(folder)]
    elif extra == "swin":
        extra = ["--model", swin_folder]
    argv = ["render", view, *extra, "--format", "html", "--out", str(tmp_path), "--quiet"]
    rc, out, err = _cli([*argv, "--max-values", "10"], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "over the interactive view's budget of 10: " in err
    assert _cli_worded(err), err
    if hint is None:
        assert err.rstrip().endswith("budget of 10: raise --max-values N")
    else:
        assert hint in err.split("budget of 10: ")[1]
    assert list(tmp_path.iterdir()) == []
    rc, out, err = _cli([*argv, "--max-values", "50000000"], capsys)
    assert rc == 0, err
    assert [Path(p).suffix for p in out.split()] == [".html"]


def test_cli_window_max_values_sets_the_stage_fallback(swin_folder, tmp_path,  # noqa: F811
                                                       capsys):
    """Over ``--max-values`` with every block, the page keeps the blocks of ``--layer``'s
    stage (as over the default budget); under it, every block."""
    from tests.test_html_windows import _data_block

    argv = ["render", "window", "--model", swin_folder, "--layer", "0", "--format", "html",
            "--out", str(tmp_path), "--quiet"]
    rc, out, err = _cli([*argv, "--max-values", "5000"], capsys)  # the 4 blocks hold 6144
    assert rc == 0, err
    data = _data_block(Path(out.split()[0]).read_text())
    assert len(data["blocks"]) == 2 and "the blocks of stage 0 only" in data["subtitle"]
    rc, out, err = _cli([*argv, "--max-values", "6144"], capsys)
    assert rc == 0, err
    data = _data_block(Path(out.split()[0]).read_text())
    assert len(data["blocks"]) == 4


# ----------------------------------------------------------------------------- probe.show
def test_show_budget_refusals_name_python_options(folder, swin_folder):  # noqa: F811
    """Each view of ``probe.show`` with a budget refuses naming its own keyword arguments."""
    lm = probe.load_model("minilm")
    tr = probe.trace(lm.model, "The cat sat.", tokenizer=lm.processor)
    for view, hint in (("heads", "window=(start, stop)"), ("model", "layers=, heads=")):
        with pytest.raises(BudgetError) as info:
            probe.show(tr, view, max_values=10)
        assert hint in str(info.value) and _python_worded(str(info.value))
    vit = probe.load_model("vit-shapes")
    with pytest.raises(BudgetError) as info:
        probe.show(vit.model, "image", probe.make_shapes(1).images,
                   methods=["rollout", "attention"],
                   faithfulness=False, max_values=10)
    assert "(layers=, heads=)" in str(info.value) and _python_worded(str(info.value))
    with pytest.raises(BudgetError) as info:
        probe.show(probe.load_model("cnn-shapes-nl").model, "gates", probe.make_shapes(1).images,
                   max_values=10)
    assert "(stage=S)" in str(info.value) and _python_worded(str(info.value))
    from transformers import AutoModelForObjectDetection, AutoModelForImageClassification

    detr = AutoModelForObjectDetection.from_pretrained(folder).eval()
    with pytest.raises(BudgetError) as info:
        probe.show(detr, "detr", _pixels(48, 64), max_values=10)
    assert "(layers=, heads=)" in str(info.value) and _python_worded(str(info.value))
    swin = AutoModelForImageClassification.from_pretrained(swin_folder).eval()
    with pytest.raises(BudgetError) as info:
        probe.show(swin, "window", _pixels(32, 32), max_values=10)
    assert "(layers=[...])" in str(info.value) and _python_worded(str(info.value))


def _pixels(h: int, w: int):
    import torch

    return torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, h, w)).astype("float32"))
