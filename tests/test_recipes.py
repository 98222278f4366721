"""The recipes behind the README's demo command run end to end and write their figures."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from probe.recipes import coref_demo, similarity, vit_saliency


def _pngs(paths: list[str]) -> None:
    assert paths
    for p in paths:
        assert Path(p).stat().st_size > 1000
        with Image.open(p) as img:
            assert img.size[0] > 200


def test_coref_demo(tmp_path, capsys):
    _pngs(coref_demo.run(str(tmp_path), dpi=60))
    out = capsys.readouterr().out
    assert "'it' -> 'animal'" in out and "too wide" in out


def test_similarity_recipe(tmp_path, capsys):
    _pngs(similarity.run(str(tmp_path), dpi=60, quiet=True))
    out = capsys.readouterr().out
    assert "Spearman" in out and "comprehensiveness" in out


def test_vit_saliency_recipe(tmp_path):
    paths = vit_saliency.run(str(tmp_path), dpi=60, n_images=1, n_curves=2, quiet=True)
    _pngs(paths)
    names = {Path(p).stem for p in paths}
    assert {"vit_saliency_compare_0", "vit_saliency_deletion", "vit_saliency_insertion"} <= names
