"""The ``main`` of the figure recipes: options reach ``run`` as given, every written path is
printed on its own line, exit code 0 (``run`` replaced by a recorder: no model is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.recipes import alignment_demo, coref_demo, similarity, vit_saliency

CASES = [
    (alignment_demo, [], {}),
    (coref_demo, [], {}),
    (similarity, ["--quiet"], {"quiet": True}),
    (similarity, [], {"quiet": False}),
    (vit_saliency, ["--images", "3", "--quiet"], {"n_images": 3, "quiet": True}),
    (vit_saliency, [], {"n_images": 2, "quiet": False}),
]


@pytest.mark.parametrize(("recipe", "extra", "kwargs"), CASES)
def test_main_passes_the_options_and_prints_the_paths(
    recipe, extra: list[str], kwargs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls = []

    def run(*args: object, **kw: object) -> list[str]:
        calls.append((args, kw))
        return [str(tmp_path / "a.png"), str(tmp_path / "b.svg")]

    monkeypatch.setattr(recipe, "run", run)
    argv = ["--out", str(tmp_path), "--format", "png", "--format", "svg", "--dpi", "72", *extra]
    assert recipe.main(argv) == 0
    assert calls == [((str(tmp_path), ["png", "svg"], 72), kwargs)]
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'a.png'}\n{tmp_path / 'b.svg'}\n"
    assert captured.err == ""


def test_a_negative_count_is_refused_before_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(vit_saliency, "run", lambda *a, **k: pytest.fail("run started"))
    assert vit_saliency.main(["--out", str(tmp_path), "--images", "-1"]) == 2
    assert capsys.readouterr().err == "error: --images must be >= 0\n"


@pytest.mark.parametrize("quiet", [False, True])
def test_write_results_writes_the_json_and_lists_the_files(
    quiet: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import json

    from probe.recipes._common import write_results

    written = [str(tmp_path / "a.png")]
    args = argparse.Namespace(json=str(tmp_path / "r.json"), quiet=quiet)
    assert write_results(args, written, {"n": 3, "x": (1.5, 2)}) == 0
    assert json.loads((tmp_path / "r.json").read_text()) == {"n": 3, "x": [1.5, 2]}
    assert written == [str(tmp_path / "a.png"), str(tmp_path / "r.json")]
    expected = "" if quiet else f"wrote {tmp_path / 'a.png'}\nwrote {tmp_path / 'r.json'}\n"
    assert capsys.readouterr().out == expected
    args = argparse.Namespace(json=None, quiet=False)
    assert write_results(args, [], {"n": 1}) == 0
    assert capsys.readouterr().out == "\n"  # as before: an empty list prints one empty line
