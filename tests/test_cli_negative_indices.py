"""Every index-like option of ``probe render`` (``--layer``, ``--head``, ``--query``,
``--occurrence``) takes Python-style indices: ``-1`` is the last, and a value outside
``-n..n-1`` is one line naming that range (``--query -1`` was refused by the window view while
the detr view took it as the last query)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from probe.cli import main

SENTENCE = "The animal didn't cross the street because it was too tired and it slept."


def _run(argv: list[str], capsys: Any, tmp_path: Path) -> tuple[int, list[str], str]:
    rc = main(["render", *argv, "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    return rc, [Path(line).name for line in out.split()], err


def _refused(argv: list[str], capsys: Any, tmp_path: Path, needle: str) -> None:
    rc, names, err = _run(argv, capsys, tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and names == [] and "Traceback" not in err, err
    assert len(lines) == 1 and needle in lines[0], err
    assert not any(tmp_path.iterdir())


def test_window_query_minus_one_is_the_last_token_and_drawn_once(tmp_path, capsys):
    """swin-shapes' last block is 4x4 tokens: -1 is token 15, and -1 with 15 is one figure."""
    rc, names, err = _run(["window", "--query", "-1", "--query", "15"], capsys, tmp_path)
    assert rc == 0, err
    assert len(names) == 1 and "_q15_" in names[0], names


@pytest.mark.parametrize("argv, needle", [
    (["window", "--query", "-17"],
     "--query -17 is out of range: block 3 has 4x4 tokens, row-major (use -16..15; negative "
     "counts from the end)"),
    (["window", "--query", "16"], "(use -16..15; negative counts from the end)"),
    (["window", "--layer", "-5"], "layer -5 is out of range: the model has 4 layers (use -4..3"),
    (["detr", "--query", "-9"],
     "--query -9 is out of range: the model has 8 object queries (use -8..7; negative counts "
     "from the end)"),
    (["gates", "--layer", "-5"], "stages with gates are [0, 1, 2, 3] (or -4..-1"),
], ids=["window-query-neg", "window-query-pos", "window-layer", "detr-query", "gates-stage"])
def test_image_views_name_the_range(argv, needle, tmp_path, capsys):
    _refused(argv, capsys, tmp_path, needle)


def test_head_and_layer_take_negative_indices(tmp_path, capsys):
    rc, names, err = _run(["head", "--text", SENTENCE, "--layer", "-1", "--head", "-1"],
                          capsys, tmp_path)
    assert rc == 0, err
    assert len(names) == 1 and names[0].startswith("head_minilm_L5H11_"), names


@pytest.mark.parametrize("argv, needle", [
    (["--layer", "-7", "--head", "0"],
     "layer -7 is out of range: the model has 6 layers (use -6..5; negative counts from the "
     "end)"),
    (["--layer", "0", "--head", "-13"],
     "head -13 is out of range: the model has 12 heads per layer (use -12..11; negative "
     "counts from the end)"),
], ids=["layer", "head"])
def test_head_and_layer_name_the_range(argv, needle, tmp_path, capsys):
    _refused(["head", "--text", SENTENCE, *argv], capsys, tmp_path, needle)


def test_occurrence_minus_one_is_the_last(minilm):
    from probe.commands.render._args import RenderArgs
    from probe.commands.render._methods import _coref_report
    from probe.commands.render._session import _session

    def word_index(occurrence: int) -> int:
        s = _session(RenderArgs(view="coref", text=SENTENCE, word="it", occurrence=occurrence))
        return _coref_report(s).word_index

    assert word_index(-1) == word_index(1) == 14  # the second "it"
    assert word_index(-2) == word_index(0) != 14


def test_occurrence_out_of_range_names_the_range(tmp_path, capsys):
    _refused(["coref", "--text", SENTENCE, "--word", "it", "--occurrence", "-3"], capsys,
             tmp_path, "--occurrence -3 but 'it' occurs 2 time(s); use -2..1 (0 is the first, "
             "-1 the last)")
