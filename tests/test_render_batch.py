"""``probe render`` over several inputs: ``--text`` / ``--image`` repeated and ``--text-file``.

One model load for the batch, the same files as one command per input, all or nothing over
the batch, and errors that name the input they are about."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probe.cli import main

TEXTS = [
    "The animal didn't cross the street because it was too tired.",
    "The trophy didn't fit in the suitcase because it was too big.",
    "猫が魚を食べたのは、それがお腹を空かせていたからだ。 it",
]


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _count_loads(monkeypatch) -> list[str]:
    import probe.models._registry as registry

    calls: list[str] = []
    real = registry.load_model

    def counting(name, *args, **kwargs):
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(registry, "load_model", counting)
    return calls


def test_repeated_text_equals_one_command_per_text(tmp_path, capsys, monkeypatch):
    alone = tmp_path / "alone"
    names = []
    for text in TEXTS:
        rc, out, err = _run(["render", "coref", "--text", text, "--word", "it", "--out",
                             str(alone), "--quiet", "--format", "png", "--format", "svg"],
                            capsys)
        assert rc == 0, err
        names += [Path(line).name for line in out.splitlines()]
    calls = _count_loads(monkeypatch)
    together = tmp_path / "together"
    argv = ["render", "coref", "--word", "it", "--out", str(together), "--quiet",
            "--format", "png", "--format", "svg"]
    for text in TEXTS:
        argv += ["--text", text]
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    assert calls == ["minilm"]  # one load for the three sentences
    printed = [Path(line) for line in out.splitlines()]
    assert all(p.parent == together for p in printed)
    assert [p.name for p in printed] == names  # input by input, in order
    assert _files(together) == _files(alone)  # same names, same bytes


def test_text_file_lines_are_texts(tmp_path, capsys):
    listing = tmp_path / "sentences.txt"
    listing.write_text("\ufeff" + TEXTS[0] + "\n\n   \n" + TEXTS[1] + "\n", encoding="utf-8")
    rc, out, err = _run(["render", "coref", "--word", "it", "--text-file", str(listing),
                         "--text", TEXTS[2], "--out", str(tmp_path / "a"), "--quiet"], capsys)
    assert rc == 0, err
    assert len(out.splitlines()) == 3
    alone = tmp_path / "b"
    for text in (TEXTS[2], TEXTS[0], TEXTS[1]):
        assert _run(["render", "coref", "--word", "it", "--text", text, "--out", str(alone),
                     "--quiet"], capsys)[0] == 0
    assert _files(tmp_path / "a") == _files(alone)


def test_text_file_dash_reads_standard_input(tmp_path, capsys, monkeypatch):
    """``--text-file -`` reads the sentences from standard input (CRLF and a BOM allowed),
    as ``--text-file FILE`` reads a file; a closed standard input is one line."""
    import io
    import sys

    data = ("\ufeff" + TEXTS[0] + "\r\n\r\n" + TEXTS[1] + "\r\n").encode("utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, err = _run(["render", "coref", "--word", "it", "--text-file", "-", "--out",
                         str(tmp_path / "a"), "--quiet"], capsys)
    assert rc == 0, err
    listing = tmp_path / "s.txt"
    listing.write_bytes(data)
    assert _run(["render", "coref", "--word", "it", "--text-file", str(listing), "--out",
                 str(tmp_path / "b"), "--quiet"], capsys)[0] == 0
    assert len(out.splitlines()) == 2 and _files(tmp_path / "a") == _files(tmp_path / "b")
    closed = io.TextIOWrapper(io.BytesIO(b""))
    closed.close()
    monkeypatch.setattr(sys, "stdin", closed)
    rc, out, err = _run(["render", "coref", "--word", "it", "--text-file", "-", "--out",
                         str(tmp_path / "c"), "--quiet"], capsys)
    assert rc == 2 and "--text-file -: standard input is closed" in err
    assert not (tmp_path / "c").exists()


def test_text_file_lines_split_on_newlines_only():
    """A U+2028 inside a line does not split it (it did not before ``-`` was read)."""
    from probe.commands.render._command import _read_text_file

    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as fh:
        fh.write("one\u2028line\rtwo\n".encode("utf-8"))
    try:
        assert _read_text_file(fh.name) == ["one\u2028line", "two"]
    finally:
        os.unlink(fh.name)


def test_an_error_on_one_input_writes_nothing_and_names_it(tmp_path, capsys):
    out_dir = tmp_path / "out"
    (out_dir).mkdir()
    (out_dir / "keep.txt").write_text("x")
    bad = "A sentence without the pronoun."
    rc, out, err = _run(["render", "coref", "--word", "it", "--text", TEXTS[0], "--text", bad,
                         "--text", TEXTS[1], "--out", str(out_dir), "--quiet"], capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "--text 2 of 3 ('A sentence without the pronoun.')" in lines[0]
    assert "--word 'it' is not a word of --text" in lines[0]
    assert sorted(os.listdir(out_dir)) == ["keep.txt"]  # the first input's files are gone too
    rc, out, err = _run(["render", "coref", "--word", "it", "--text", bad, "--out",
                         str(tmp_path / "new"), "--quiet"], capsys)
    assert rc == 2 and "of 1" not in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--text", TEXTS[0], "--text", TEXTS[0]], "is given twice: pass each input once"),
        (["--text", TEXTS[0], "--image", "x.png"], "pass either --text or --image, not both"),
        (["--text-file", "missing.txt"], "--text-file 'missing.txt' does not exist"),
        (["--text-file", "."], "is a directory"),
        (["--text-file", "blank.txt"], "has no non-blank line"),
        (["--text-file", "latin1.txt"], "is not UTF-8 (byte 1)"),
    ],
)
def test_batch_argument_errors(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "latin1.txt").write_bytes(b"a\xe9b\n")
    rc, out, err = _run(["render", "coref", "--word", "it", *argv, "--out", "o", "--quiet"],
                        capsys)
    assert rc == 2 and out == "" and "Traceback" not in err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_repeated_image_equals_one_command_per_image(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from probe.models._shapes import make_shapes

    batch = make_shapes(2, seed=3)
    paths = []
    for i in range(2):
        path = tmp_path / f"shape{i}.png"
        Image.fromarray((batch.to_display(i) * 255).round().astype("uint8")).save(path)
        paths.append(str(path))
    alone = tmp_path / "alone"
    for path in paths:
        rc, out, err = _run(["render", "rollout", "--image", path, "--out", str(alone),
                             "--quiet"], capsys)
        assert rc == 0, err
    calls = _count_loads(monkeypatch)
    rc, out, err = _run(["render", "rollout", "--image", paths[0], "--image", paths[1],
                         "--out", str(tmp_path / "together"), "--quiet"], capsys)
    assert rc == 0, err
    assert calls == ["vit-shapes"] and len(out.splitlines()) == 2
    assert _files(tmp_path / "together") == _files(alone)
    rc, out, err = _run(["render", "rollout", "--image", paths[0], "--image",
                         str(tmp_path / "." / "shape0.png"), "--out", str(tmp_path / "d"),
                         "--quiet"], capsys)
    assert rc == 2 and "is given twice" in err


def test_a_bad_image_in_a_batch_is_named_by_its_place(tmp_path, capsys):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (32, 32), (255, 255, 255)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    rc, out, err = _run(["render", "rollout", "--model", "vit-shapes", "--image", str(good),
                         "--image", str(bad), "--out", str(tmp_path / "o"), "--quiet"], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("probe: error: --image 2 of 2 (") and "bad.png'):" in lines[0]
    assert not (tmp_path / "o").exists()
