"""File names of ``probe render`` say which methods a file holds, and a view's PNG and HTML
forms share a name (only the extension differs): ``saliency`` without ``--method`` holds the
rollout of the text and is named ``saliency_minilm_rollout_...`` in both forms."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from probe.cli import main  # noqa: E402

TEXT = "The cat sat on the mat."


def _names(tmp_path: Path, capsys, *argv: str) -> list[str]:
    rc = main(["render", *argv, "--text", TEXT, "--out", str(tmp_path), "--quiet",
               "--format", "png", "--format", "html"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return sorted(Path(line).name for line in out.split())


@pytest.mark.parametrize("argv, part", [
    ((), "rollout"),
    (("--method", "rollout"), "rollout"),
    (("--discard", "0.5"), "rollout-d0.5"),
    (("--method", "attention"), "attention"),
])
def test_saliency_png_and_html_share_a_truthful_name(tmp_path, capsys, argv, part) -> None:
    names = _names(tmp_path, capsys, "saliency", *argv)
    stems = {Path(n).stem for n in names}
    assert {Path(n).suffix for n in names} == {".png", ".html"}
    assert len(stems) == 1, names  # one name, two extensions
    assert stems.pop().startswith(f"saliency_minilm_{part}_the-cat-sat-on-")


def test_compare_names_its_methods_in_both_forms(tmp_path, capsys) -> None:
    names = _names(tmp_path, capsys, "compare", "--method", "rollout", "--method", "random")
    assert len({Path(n).stem for n in names}) == 1, names
    assert names[0].startswith("compare_minilm_rollout-random_")
