"""``probe render --block``: GradCAM's block (a CNN's stage) from the command line, as
``probe.attribute(..., "gradcam", block=B)`` takes it: passed to the API for gradcam only, one
file per block, and a bad block, a view without gradcam or a view that computes no
attribution refused in one line with exit code 2 (a bad block lists the valid ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import probe
from probe.cli import main

REAL_ATTRIBUTE = probe.attribute


def _run(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def calls(monkeypatch):
    """Every ``probe.attribute`` call of the command: (method, model, inputs, keyword options,
    result)."""
    seen: list[tuple[str, Any, Any, dict[str, Any], Any]] = []

    def recording(model, inputs, method, **kwargs):
        result = REAL_ATTRIBUTE(model, inputs, method, **kwargs)
        seen.append((method, model, inputs, kwargs, result))
        return result

    monkeypatch.setattr(probe, "attribute", recording)
    return seen


def test_block_reaches_gradcam_as_the_api_takes_it(tmp_path, capsys, calls):
    code, out, err = _run(["render", "saliency", "--method", "gradcam", "--block", "0",
                           "--out", str(tmp_path), "--dpi", "20", "--quiet"], capsys)
    assert code == 0, err
    (path,) = out.split()
    assert Path(path).name.startswith("saliency_vit-shapes_gradcam-b0_")
    ((method, model, inputs, kwargs, result),) = calls
    assert method == "gradcam" and kwargs["block"] == 0 and result.options["block"] == 0
    torch.testing.assert_close(
        result.scores, REAL_ATTRIBUTE(model, inputs, "gradcam", block=0).scores)
    last = REAL_ATTRIBUTE(model, inputs, "gradcam").scores  # the default: the last block
    assert not torch.allclose(result.scores, last)


def test_block_goes_to_gradcam_only_in_compare(tmp_path, capsys, calls):
    code, out, err = _run(["render", "compare", "--method", "gradcam", "--method", "rollout",
                           "--block", "-2", "--out", str(tmp_path), "--dpi", "20", "--quiet"],
                          capsys)
    assert code == 0, err
    assert Path(out.split()[0]).name.startswith("compare_vit-shapes_gradcam-rollout-b2_")
    options = {method: kwargs for method, _, _, kwargs, _ in calls}
    assert options["gradcam"]["block"] == 2 and "block" not in options["rollout"]


def test_without_block_the_file_name_is_unchanged(tmp_path, capsys, calls):
    code, out, err = _run(["render", "saliency", "--method", "gradcam", "--out", str(tmp_path),
                           "--dpi", "20", "--quiet"], capsys)
    assert code == 0, err
    assert Path(out.split()[0]).name.startswith("saliency_vit-shapes_gradcam_")
    assert "block" not in calls[0][3]


@pytest.mark.parametrize("model, noun, count", [("vit-shapes", "blocks", 4),
                                                ("cnn-shapes", "stages", 4)])
def test_a_bad_block_is_one_line_listing_the_valid_ones(tmp_path, capsys, model, noun, count):
    code, out, err = _run(["render", "saliency", "--model", model, "--method", "gradcam",
                           "--block", "9", "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 2 and out == ""
    valid = ", ".join(map(str, range(count - 1))) + f" or {count - 1}"
    assert _one_line(err) == (
        f"probe: error: --block 9 is out of range: gradcam on {model} reads one of its "
        f"{count} {noun}: use {valid} (or -{count}..-1 from the end; -1, the last, is the "
        "default)")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, says", [
    (["saliency", "--block", "0"], "this view computes no gradcam (methods: rollout): add "
                                   "--method gradcam"),
    (["compare", "--text", "a cat", "--block", "0"], "computes no gradcam"),
    (["heads", "--block", "0"], "--block does not apply to the heads view"),
])
def test_block_where_no_gradcam_runs_is_refused(tmp_path, capsys, argv, says):
    code, out, err = _run(["render", *argv, "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 2 and out == "" and says in _one_line(err)


def test_help_names_block(capsys):
    code, out, _ = _run(["render", "--help"], capsys)
    help_text = " ".join(out.split())
    assert code == 0 and "--block B" in help_text and "gradcam: the block" in help_text


@pytest.mark.parametrize("same", [("-4", "0"), ("-1", None), ("3", None), ("-3", "1")])
def test_one_block_is_named_one_way(tmp_path, capsys, calls, same):
    """``--block -4`` and ``--block 0`` (of 4 blocks) wrote ``gradcam-b-4`` and ``gradcam-b0``;
    ``-1`` (the last, the default) ``-b-1`` where no ``--block`` wrote none."""
    names, blocks = [], []
    for i, block in enumerate(same):
        out_dir = tmp_path / str(i)
        argv = ["render", "saliency", "--method", "gradcam", "--out", str(out_dir), "--dpi",
                "20", "--quiet"] + (["--block", block] if block is not None else [])
        code, out, err = _run(argv, capsys)
        assert code == 0, err
        names.append(Path(out.split()[0]).name)
        blocks.append(calls[-1][3].get("block"))
    assert names[0] == names[1] and blocks[0] == blocks[1]


def test_a_model_with_no_block_says_so(tmp_path, capsys, monkeypatch):
    from probe.commands.render import _methods

    monkeypatch.setattr(_methods, "_gradcam_blocks", lambda s: (0, "block"))
    code, out, err = _run(["render", "saliency", "--method", "gradcam", "--block", "0",
                           "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 2
    assert _one_line(err) == ("probe: error: --block picks the block GradCAM reads, but "
                              "gradcam finds no block on vit-shapes: drop --block")
